"""Exceptions of the tasker binding and the table that maps C status codes to them."""

from __future__ import annotations

# Status codes of include/tasker.h, as named constants.
OK = 0
EMPTY = 1
CLOSED = 2
EINVAL = -1
EBADF = -2
ENOENT = -3
EFULL = -4
ESHUTDOWN = -5
ETOOBIG = -6
EFORKED = -7
EINTERNAL = -8

STATUS_NAMES: dict[int, str] = {
    OK: "TASKER_OK",
    EMPTY: "TASKER_EMPTY",
    CLOSED: "TASKER_CLOSED",
    EINVAL: "TASKER_EINVAL",
    EBADF: "TASKER_EBADF",
    ENOENT: "TASKER_ENOENT",
    EFULL: "TASKER_EFULL",
    ESHUTDOWN: "TASKER_ESHUTDOWN",
    ETOOBIG: "TASKER_ETOOBIG",
    EFORKED: "TASKER_EFORKED",
    EINTERNAL: "TASKER_EINTERNAL",
}

FORK_ADVICE = (
    "libtasker was loaded in this process's parent before it forked; the Go runtime inside the "
    "library does not survive fork(), so nothing in libtasker can be used in this child. "
    "Importing tasker before fork is fine: create the first tasker.Channel only after fork, in the "
    "process that uses it (e.g. in the worker, not in the gunicorn master or multiprocessing parent), "
    "or start workers with multiprocessing's 'spawn' or 'forkserver' start method."
)


class TaskerError(Exception):
    """Base class of every error the binding raises.

    ``status`` is the C status code (``None`` for errors that are not a status, such as a library
    that cannot be loaded) and ``message`` the library's explanation (``tasker_last_error``).
    """

    status: int | None
    message: str

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        if self.status is None:
            return self.message
        return f"{self.message} [{STATUS_NAMES.get(self.status, self.status)}]"

    def __reduce__(self) -> tuple[type[TaskerError], tuple[str, int | None]]:  # picklable, both attributes
        return (self.__class__, (self.message, self.status))


class InvalidArgument(TaskerError, ValueError):
    """TASKER_EINVAL: bad argument, bad JSON, unknown key, bad config; the message names the key."""


class BadHandle(TaskerError):
    """TASKER_EBADF: the channel was closed (destroyed) or the handle is unknown."""


class EventNotPending(TaskerError):
    """TASKER_ENOENT: complete/fail for an event that is not pending (already ended, expired,
    cancelled, never polled or unknown). The first end stands."""


class QueueFull(TaskerError):
    """TASKER_EFULL: the dispatch queue stayed full for the whole wait; nothing was queued."""


class ShutdownError(TaskerError):
    """TASKER_ESHUTDOWN: dispatch after shutdown began."""


class TooLarge(TaskerError, ValueError):
    """TASKER_ETOOBIG: the document is larger than the channel's max_payload_bytes."""


class ForkedError(TaskerError):
    """TASKER_EFORKED: the library was loaded before this process was forked from its parent."""


class InternalError(TaskerError):
    """TASKER_EINTERNAL: a bug inside libtasker (a recovered panic); please report the message."""


class ChannelClosed(TaskerError):
    """TASKER_CLOSED: the channel is shut down and drained; nothing more will arrive."""


class LibraryError(TaskerError, OSError):
    """libtasker could not be found or loaded, or its ABI version differs from the binding's."""


# status -> exception class; every negative status of tasker.h and TASKER_CLOSED.
ERRORS: dict[int, type[TaskerError]] = {
    EINVAL: InvalidArgument,
    EBADF: BadHandle,
    ENOENT: EventNotPending,
    EFULL: QueueFull,
    ESHUTDOWN: ShutdownError,
    ETOOBIG: TooLarge,
    EFORKED: ForkedError,
    EINTERNAL: InternalError,
    CLOSED: ChannelClosed,
}


def error_for(status: int, message: str) -> TaskerError:
    """Return the exception for a status code (TaskerError for a code this binding does not know)."""
    cls = ERRORS.get(status, TaskerError)
    if not message:
        message = STATUS_NAMES.get(status, f"unknown tasker status {status}")
    return cls(message, status)
