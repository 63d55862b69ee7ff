"""tasker — Python binding of libtasker, the step-dispatch channel (C ABI version 1).

Standard library only. The shared library is found via ``$TASKER_LIBRARY``, else the repository's
``build/libtasker.so``, else the system's, and is loaded lazily when the first ``Channel`` is made
(never at import), so a process that only imported ``tasker`` may fork freely.

    import tasker
    with tasker.Channel(handler_timeout_ms=5000) as ch:
        ch.dispatch("greet", {"name": "Ada"})
        ev = ch.poll(timeout=1.0)
        ch.complete(ev.event_id, {"hello": ev.payload["name"]})
        print(ch.next_completion(timeout=1.0).status)   # completed
"""

from __future__ import annotations

from . import _native
from ._errors import (
    BadHandle,
    ChannelClosed,
    EventNotPending,
    ForkedError,
    InternalError,
    InvalidArgument,
    LibraryError,
    QueueFull,
    ShutdownError,
    TaskerError,
    TooLarge,
)
from ._native import ABI_VERSION
from .channel import Channel, dumps
from .events import Checkpoint, Completion, ErrorInfo, StepEvent, parse_timestamp, timestamp_ns
from .worker import Handler, Worker

__version__ = "0.1.0"

__all__ = [
    "ABI_VERSION",
    "BadHandle",
    "Channel",
    "ChannelClosed",
    "Checkpoint",
    "Completion",
    "ErrorInfo",
    "EventNotPending",
    "ForkedError",
    "Handler",
    "InternalError",
    "InvalidArgument",
    "LibraryError",
    "QueueFull",
    "ShutdownError",
    "StepEvent",
    "TaskerError",
    "TooLarge",
    "Worker",
    "__version__",
    "abi_minor",
    "dumps",
    "is_loaded",
    "library_path",
    "library_version",
    "load_library",
    "parse_timestamp",
    "timestamp_ns",
]


def load_library() -> str:
    """Load libtasker now (normally the first Channel does) and return its path. Starts the Go
    runtime: do it only in the process that will use the library, after any fork."""
    return _native.load().path


def library_path() -> str:
    """The path libtasker is (or would be) loaded from; does not load it."""
    lib = _native.loaded()
    return lib.path if lib is not None else _native.find_library()


def abi_minor() -> int:
    """The loaded library's ABI minor version (loads the library): 1 and up have checkpoints."""
    return _native.load().minor


def library_version() -> str:
    """The loaded library's version string, e.g. "libtasker 0.1.0 (abi 1)" (loads the library)."""
    version: bytes = _native.load().version()
    return version.decode()


def is_loaded() -> bool:
    """Whether this process has loaded libtasker (and so started its Go runtime)."""
    return _native.loaded() is not None
