"""Private: finding, loading and declaring libtasker with ctypes.

Nothing here runs at import time except declarations: the library is loaded by ``load()``, which
``tasker.Channel`` calls when the first channel is made. Loading starts the Go runtime, and a
process forked after that leaves its children unable to use the library (docs/ABI.md rule 11), so a
parent that only imports ``tasker`` can fork freely and each child loads its own copy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from ctypes import POINTER, c_char, c_char_p, c_int, c_int32, c_size_t, c_uint32, c_uint64, c_void_p
from typing import Any, Callable

from ._errors import EFORKED, FORK_ADVICE, ForkedError, LibraryError

ABI_VERSION = 1
"""The ABI version of include/tasker.h that this binding is written for."""

CHECKPOINT_MINOR = 1
"""The ABI minor version that added tasker_checkpoint (and tasker_abi_minor)."""

READINESS_MINOR = 2
"""The ABI minor version that added tasker_event_fd and tasker_completion_fd."""

ERRBUF_SIZE = 4096  # tasker_last_error messages are at most 4095 bytes
INTO_BUF_SIZE = 16384  # first size of each thread's tasker_*_into buffer; grows to the largest document seen

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
SONAME = f"libtasker.so.{ABI_VERSION}"
"""The library's SONAME: the file name the dynamic linker knows it by (ABI major in the name)."""
BUNDLED_LIBRARY = os.path.join(_PKG_DIR, SONAME)
"""The library a wheel carries inside the package (absent in a source checkout)."""
_REPO_ROOT = os.path.normpath(os.path.join(_PKG_DIR, "..", "..", ".."))
REPO_LIBRARY = os.path.join(_REPO_ROOT, "build", "libtasker.so")
"""The build output of the libtasker checkout this package sits in (bindings/python/tasker)."""
INSTALL_ADVICE = (
    "To fix it, install the wheel that carries the library (`pip install tasker-<version>-py3-none-linux_x86_64.whl`;"
    " `make wheel` in a libtasker checkout builds it into dist/), or install libtasker system-wide"
    " (`sudo make install` in a checkout, which runs ldconfig), or set TASKER_LIBRARY to the path of a"
    f" {SONAME}."
)

_charpp = POINTER(c_void_p)  # char ** outputs are taken as void* so ctypes never copies or frees them

# name -> (restype, argtypes): every function of include/tasker.h
SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "tasker_abi_version": (c_uint32, []),
    "tasker_version": (c_char_p, []),
    "tasker_strerror": (c_char_p, [c_int]),
    "tasker_last_error": (c_size_t, [POINTER(c_char), c_size_t]),
    "tasker_free": (None, [c_void_p]),
    "tasker_new": (c_int, [c_char_p, POINTER(c_uint64)]),
    "tasker_destroy": (c_int, [c_uint64]),
    "tasker_dispatch": (c_int, [c_uint64, c_char_p, c_size_t, c_int32, POINTER(c_char)]),
    "tasker_poll": (c_int, [c_uint64, c_int32, _charpp, POINTER(c_size_t)]),
    "tasker_poll_batch": (c_int, [c_uint64, c_uint32, c_int32, _charpp, POINTER(c_size_t), POINTER(c_uint32)]),
    "tasker_complete": (c_int, [c_uint64, c_char_p, c_char_p, c_size_t]),
    "tasker_cleanup_timeouts": (c_int, [c_uint64, POINTER(c_uint32)]),
    "tasker_next_completion": (c_int, [c_uint64, c_int32, _charpp, POINTER(c_size_t)]),
    "tasker_poll_into": (c_int, [c_uint64, c_int32, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "tasker_next_completion_into": (c_int, [c_uint64, c_int32, POINTER(c_char), c_size_t, POINTER(c_size_t)]),
    "tasker_shutdown": (c_int, [c_uint64, c_int32]),
    "tasker_stats": (c_int, [c_uint64, _charpp, POINTER(c_size_t)]),
    "tasker_abi_minor": (c_uint32, []),
    "tasker_checkpoint": (c_int, [c_uint64, c_char_p, c_char_p, c_size_t]),
    "tasker_event_fd": (c_int, [c_uint64, POINTER(c_int)]),
    "tasker_completion_fd": (c_int, [c_uint64, POINTER(c_int)]),
}

# Functions added by an ABI minor version: a library older than that minor lacks them. Lib binds a
# stand-in instead (abi_minor() -> 0; the others are never called: callers check Lib.minor first).
OPTIONAL = {"tasker_abi_minor": 1, "tasker_checkpoint": 1, "tasker_event_fd": 2, "tasker_completion_fd": 2}

# Attribute of Lib -> (C function, holds the GIL). Calls that can wait (a timeout, a drain, the
# shutdown inside destroy) go through CDLL, which releases the GIL for the whole call: the GIL is never
# held while the library waits. Calls that cannot wait (a zero timeout, complete, cleanup, stats, free)
# go through a PyDLL view of the same library handle and keep the GIL: they take microseconds, and
# releasing the GIL around each of them costs a thread hand-off (two context switches) whenever other
# Python threads are runnable, which dominates a busy worker. The library never calls back into
# Python, so holding the GIL across a call cannot deadlock.
FUNCTIONS: dict[str, tuple[str, bool]] = {
    "abi_version": ("tasker_abi_version", True),
    "version": ("tasker_version", True),
    "strerror": ("tasker_strerror", True),
    "last_error": ("tasker_last_error", True),
    "free": ("tasker_free", True),
    "new": ("tasker_new", False),
    "destroy": ("tasker_destroy", False),
    "dispatch": ("tasker_dispatch", False),  # wait > 0 or -1
    "dispatch_now": ("tasker_dispatch", True),  # wait == 0
    "poll": ("tasker_poll", False),
    "poll_now": ("tasker_poll", True),
    "poll_batch": ("tasker_poll_batch", False),
    "poll_batch_now": ("tasker_poll_batch", True),
    "complete": ("tasker_complete", True),  # never waits (ABI rule 2)
    "cleanup_timeouts": ("tasker_cleanup_timeouts", True),  # never waits (ABI rule 2)
    "next_completion": ("tasker_next_completion", False),
    "next_completion_now": ("tasker_next_completion", True),
    "poll_into": ("tasker_poll_into", False),
    "poll_into_now": ("tasker_poll_into", True),
    "next_completion_into": ("tasker_next_completion_into", False),
    "next_completion_into_now": ("tasker_next_completion_into", True),
    "shutdown": ("tasker_shutdown", False),
    "stats": ("tasker_stats", True),
    "abi_minor": ("tasker_abi_minor", True),
    "checkpoint": ("tasker_checkpoint", True),  # never waits
    "event_fd": ("tasker_event_fd", True),  # never waits (tasker.aio waits on the descriptor)
    "completion_fd": ("tasker_completion_fd", True),
}

# Attribute of Lib -> C function: unchecked views of the calls a round trip makes while keeping the
# GIL. They have no argtypes, so ctypes passes each argument as the ctypes object it already is
# instead of converting it through the declared type's from_param: that conversion is about half the
# cost of such a call (a 5-argument tasker_poll_into returning EMPTY: ~0.93 µs declared, ~0.45 µs
# unchecked; tests/bench/NOTES.md). The caller must pass exactly what the C function takes:
# a c_uint64 handle, c_int32 / c_uint32 numbers, c_size_t lengths, bytes or a ctypes buffer for
# each pointer, byref() for each out-pointer. Only channel.py's hot paths call them, with objects it
# prepares once (Channel._ch, Outs, channel._C0); a Python int passed here would become a C int.
UNCHECKED: dict[str, str] = {
    "u_dispatch_now": "tasker_dispatch",
    "u_poll_into_now": "tasker_poll_into",
    "u_poll_batch_now": "tasker_poll_batch",
    "u_complete": "tasker_complete",
    "u_next_completion_into_now": "tasker_next_completion_into",
}

# Functions that enter the Go runtime: in a child forked after loading they must not be called.
GO_FUNCTIONS = tuple(
    name for name, (cname, _) in FUNCTIONS.items()
    if cname not in ("tasker_abi_version", "tasker_abi_minor", "tasker_version", "tasker_strerror",
                     "tasker_last_error", "tasker_free")
) + tuple(UNCHECKED)


def _forked_stub(*_args: Any) -> int:
    return EFORKED


def _zero() -> int:
    return 0


def _missing(cname: str) -> Callable[..., int]:
    def call(*_args: Any) -> int:
        raise LibraryError(f"the loaded libtasker has no {cname} (check Lib.minor before calling it)")
    return call


class Lib:
    """The loaded library: one pre-declared ctypes function per entry of FUNCTIONS.

    Every attribute is declared here (typed for mypy): ``int``-returning functions return a
    status code; the ``*_now`` variants keep the GIL (calls that cannot wait)."""

    __slots__ = ("cdll", "pydll", "path", "minor") + tuple(FUNCTIONS) + tuple(UNCHECKED)

    cdll: ctypes.CDLL
    pydll: ctypes.PyDLL
    path: str
    minor: int
    """The library's ABI minor version (tasker_abi_minor; 0 for a library older than it)."""
    abi_version: Callable[[], int]
    abi_minor: Callable[[], int]
    checkpoint: Callable[..., int]
    version: Callable[[], bytes]
    strerror: Callable[[int], bytes]
    last_error: Callable[[Any, int], int]
    free: Callable[[Any], None]
    new: Callable[..., int]
    destroy: Callable[[int], int]
    dispatch: Callable[..., int]
    dispatch_now: Callable[..., int]
    poll: Callable[..., int]
    poll_now: Callable[..., int]
    poll_batch: Callable[..., int]
    poll_batch_now: Callable[..., int]
    complete: Callable[..., int]
    cleanup_timeouts: Callable[..., int]
    next_completion: Callable[..., int]
    next_completion_now: Callable[..., int]
    poll_into: Callable[..., int]
    poll_into_now: Callable[..., int]
    next_completion_into: Callable[..., int]
    next_completion_into_now: Callable[..., int]
    shutdown: Callable[[int, int], int]
    stats: Callable[..., int]
    event_fd: Callable[..., int]
    completion_fd: Callable[..., int]
    u_dispatch_now: Callable[..., int]
    u_poll_into_now: Callable[..., int]
    u_poll_batch_now: Callable[..., int]
    u_complete: Callable[..., int]
    u_next_completion_into_now: Callable[..., int]

    def __init__(self, cdll: ctypes.CDLL, path: str) -> None:
        self.cdll = cdll
        self.pydll = ctypes.PyDLL(path, handle=cdll._handle)  # same library, GIL kept during calls
        self.path = path
        missing = set()
        for cname, (restype, argtypes) in SIGNATURES.items():
            for dll in (cdll, self.pydll):
                try:
                    fn = getattr(dll, cname)
                except AttributeError:
                    if cname not in OPTIONAL:
                        raise LibraryError(
                            f"{path} lacks {cname}: it is older than this tasker binding (ABI "
                            f"{ABI_VERSION}, with tasker_poll_into and tasker_next_completion_into); rebuild it "
                            "(make build) or install the tasker wheel, which carries its own library"
                        ) from None
                    missing.add(cname)
                    continue
                fn.restype = restype
                fn.argtypes = argtypes
        for name, (cname, keeps_gil) in FUNCTIONS.items():
            if cname in missing:
                setattr(self, name, _zero if cname == "tasker_abi_minor" else _missing(cname))
            else:
                setattr(self, name, getattr(self.pydll if keeps_gil else cdll, cname))
        for name, cname in UNCHECKED.items():
            fn = self.pydll._FuncPtr((cname, self.pydll))  # its own object: the declared one keeps argtypes
            fn.restype = c_int
            setattr(self, name, fn)
        self.minor = int(self.abi_minor())

    def require_minor(self, minor: int, what: str) -> None:
        """Raise LibraryError unless the library's ABI minor is at least ``minor``."""
        if self.minor < minor:
            raise LibraryError(
                f"{what} needs libtasker ABI {ABI_VERSION}.{minor} or newer, but {self.path} is ABI "
                f"{ABI_VERSION}.{self.minor}; use a newer libtasker (set TASKER_LIBRARY)"
            )

    def poison(self) -> None:
        """In a forked child: make every Go-entering function return TASKER_EFORKED without
        calling the library (which would return the same, but this never even gets near Go)."""
        for name in GO_FUNCTIONS:
            setattr(self, name, _forked_stub)


_lib: Lib | None = None
_forked = False
_load_lock = threading.Lock()


def _in_checkout() -> bool:
    return os.path.isfile(os.path.join(_REPO_ROOT, "include", "tasker.h"))


def _not_found(looked: list[str]) -> LibraryError:
    places = "\n".join(f"  {n}. {place}" for n, place in enumerate(looked, 1))
    return LibraryError(f"cannot find libtasker (ABI {ABI_VERSION}). Looked in, in this order:\n{places}\n{INSTALL_ADVICE}")


def _looked_before_system() -> list[str]:
    """What find_library checked before falling back to the system, as lines for an error."""
    looked = [f"{BUNDLED_LIBRARY} (the library a wheel carries): no such file"]
    looked.append("$TASKER_LIBRARY: not set")
    if _in_checkout():
        looked.append(f"{REPO_LIBRARY} (this checkout's build): no such file; `make` in {_REPO_ROOT} builds it")
    return looked


def find_library() -> str:
    """Return the path of the libtasker to load, the first of: the library bundled in this package
    (a wheel's tasker/libtasker.so.1), $TASKER_LIBRARY, the build/libtasker.so of the libtasker
    checkout this package sits in, else the SONAME libtasker.so.1, which the dynamic linker looks up
    (LD_LIBRARY_PATH, the ldconfig cache, /lib, /usr/lib) when it is loaded."""
    if os.path.exists(BUNDLED_LIBRARY):
        return BUNDLED_LIBRARY
    env = os.environ.get("TASKER_LIBRARY")
    if env:
        if not os.path.exists(env):
            raise _not_found([
                f"{BUNDLED_LIBRARY} (the library a wheel carries): no such file",
                f"TASKER_LIBRARY={env!r}: no such file (unset it to search the defaults)",
            ])
        return env
    if _in_checkout() and os.path.exists(REPO_LIBRARY):
        return REPO_LIBRARY
    return SONAME


def _loaded_path(name: str) -> str:
    """The file the dynamic linker loaded for ``name`` (from /proc/self/maps), else ``name``."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.rstrip("\n").split(" ", 5)[-1].strip()
                if path.startswith("/") and os.path.basename(path) == name:
                    return path
    except OSError:
        pass
    return name


def _open(path: str) -> ctypes.CDLL:
    try:
        # CDLL: its calls release the GIL while the library runs or waits. Lib adds a PyDLL view of
        # the same handle only for the calls that cannot wait (see FUNCTIONS).
        return ctypes.CDLL(path)
    except OSError as exc:
        if path == SONAME:  # the system lookup, the last place: say where else it looked
            raise _not_found(_looked_before_system() + [
                f"{SONAME} through the dynamic linker (LD_LIBRARY_PATH, the ldconfig cache, /lib, /usr/lib): {exc}"
            ]) from exc
        hint = ""
        if "static TLS" in str(exc):
            hint = (
                " -- this libtasker build needs more static thread-local storage than glibc keeps for "
                "libraries loaded with dlopen() (a library bug: its TLS segment must stay small). "
                "Workaround until it is fixed: start the process with "
                "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384"
            )
        elif "GLIBC_" in str(exc):
            hint = (
                " -- this libtasker was built against a newer glibc than this system has (a wheel's library "
                "needs the glibc versions listed in the tasker README); build it here instead: "
                "`make install` in a libtasker checkout, or set TASKER_LIBRARY to a libtasker.so.1 built on this system"
            )
        raise LibraryError(f"cannot load libtasker from {path}: {exc}{hint}") from exc


def load() -> Lib:
    """Load the library once per process (thread-safe) and return it. Raises ForkedError in a
    child forked after the parent had loaded it, LibraryError when it cannot be found or loaded or
    its ABI version differs."""
    lib = _lib
    if lib is not None:
        if _forked:
            raise ForkedError(FORK_ADVICE, EFORKED)
        return lib
    return _load_slow()


def _load_slow() -> Lib:
    global _lib
    with _load_lock:
        if _lib is not None:
            if _forked:
                raise ForkedError(FORK_ADVICE, EFORKED)
            return _lib
        path = find_library()
        cdll = _open(path)
        abi = cdll.tasker_abi_version
        abi.restype, abi.argtypes = c_uint32, []
        version = int(abi())
        if version != ABI_VERSION:
            raise LibraryError(
                f"{path} has ABI version {version}, but this tasker binding is written for ABI version "
                f"{ABI_VERSION}; use a libtasker built for ABI {ABI_VERSION} (set TASKER_LIBRARY) or a "
                f"binding for ABI {version}"
            )
        _lib = Lib(cdll, _loaded_path(path) if path == SONAME else path)
        return _lib


def loaded() -> Lib | None:
    """The library if this process has loaded it, else None (never loads)."""
    return _lib


def is_forked() -> bool:
    """True in a child forked after the library was loaded: the library is unusable here."""
    return _forked


def _after_fork_in_child() -> None:
    global _forked, _load_lock
    _load_lock = threading.Lock()  # another thread may have held it at fork time
    if _lib is not None:
        _forked = True
        _lib.poison()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Outs:
    """One thread's ctypes out-variables, reused by every call on that thread (no per-call
    allocation; ``byref`` objects are made once). Each thread has its own (``outs()``); a plain
    object with slots, so that the hot paths pay for one thread-local lookup per call and not
    one per attribute (~8 ns against ~40 ns an access on CPython 3.11).

    ``p``/``n`` receive the document a call hands out; ``held`` keeps its copy until the public
    method that took it returns; ``owner``/``kind`` say which channel and which call it came
    from. Together they let a document survive an exception (Ctrl-C) raised anywhere between
    the library call and the return to the caller: see ``Channel._settle``."""

    __slots__ = ("owner", "kind", "held", "p", "n", "count", "handle", "bp", "bn", "bcount", "bhandle", "pn",
                 "idbuf", "errbuf", "cap", "ccap", "buf", "mv", "inn", "binn")

    owner: Any
    kind: int
    held: bytes | None
    cap: int
    ccap: c_size_t
    buf: Any
    mv: memoryview

    def __init__(self) -> None:
        self.owner = None
        self.kind = 0
        self.held = None
        self.p = c_void_p()
        self.n = c_size_t()
        self.count = c_uint32()
        self.handle = c_uint64()
        self.bp = ctypes.byref(self.p)
        self.bn = ctypes.byref(self.n)
        self.bcount = ctypes.byref(self.count)
        self.bhandle = ctypes.byref(self.handle)
        self.pn = (self.p, self.n, self.bp, self.bn)  # the four a malloc'ing call uses, in one load
        self.idbuf = ctypes.create_string_buffer(37)
        self.errbuf = ctypes.create_string_buffer(ERRBUF_SIZE)
        # The buffer poll and next_completion take single documents into (tasker_*_into): no
        # tasker_free and no string_at call per document. ``inn`` is the length the library wrote;
        # while it is non-zero and the buffer starts with "{", the buffer holds a document not yet
        # copied out (Channel._settle keeps it if an exception strikes before the copy).
        self.grow(INTO_BUF_SIZE)
        self.inn = c_size_t()
        self.binn = ctypes.byref(self.inn)

    def grow(self, cap: int) -> None:
        """Replace the into-buffer by one of at least ``cap`` bytes."""
        self.cap = cap
        self.ccap = c_size_t(cap)  # the same, as the unchecked calls take it
        self.buf = ctypes.create_string_buffer(cap)
        self.mv = memoryview(self.buf).cast("B")


class _PerThread(threading.local):
    o: Outs | None = None


tls = _PerThread()
"""``tls.o`` is this thread's Outs once made (None before): ``tls.o or outs()`` is the hot path's
lookup."""


def outs() -> Outs:
    """This thread's Outs, made on its first use."""
    o = tls.o
    if o is None:
        o = tls.o = Outs()
    return o


# ctypes.string_at is a Python wrapper around this foreign function; call it directly (one frame less)
string_at: Callable[[int, int], bytes] = getattr(ctypes, "_string_at", ctypes.string_at)


def last_error(lib: Lib) -> str:
    """The calling thread's last error message from the library ("" when none)."""
    buf = outs().errbuf
    lib.last_error(buf, ERRBUF_SIZE)
    return buf.value.decode("utf-8", "replace")
