"""tasker.Channel: one libtasker channel (a handle), with decoded and raw methods."""

from __future__ import annotations

import ctypes
import json
import math
import random
import threading
import time
import uuid
from typing import Any, Callable, Iterator, Mapping

from . import _native
from ._errors import (
    CLOSED,
    EBADF,
    EFORKED,
    EFULL,
    EINVAL,
    EMPTY,
    ETOOBIG,
    FORK_ADVICE,
    OK,
    BadHandle,
    ChannelClosed,
    ForkedError,
    InvalidArgument,
    TaskerError,
    error_for,
)
from ._native import outs as _outs
from ._native import tls as _tls
from .events import Completion, StepEvent

__all__ = ["Channel", "dumps"]

# Compact, UTF-8, strict JSON (NaN/Infinity are not JSON: ValueError before the library sees them).
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
_encode: Callable[[Any], str]
if _c_make_encoder is not None:
    # The C encoder that JSONEncoder.encode would build on every call, built once. No circular
    # reference markers (a cycle raises RecursionError instead of ValueError): sharing one markers
    # dict between threads could report a false cycle.
    _c_encode = _c_make_encoder(
        None, _encoder.default, getattr(json.encoder, "encode_basestring"), None, ":", ",",
        False, False, False,
    )
    _join = "".join

    def _encode(value: Any) -> str:
        return _join(_c_encode(value, 0))

else:  # pragma: no cover - CPython always has the C encoder
    _encode = _encoder.encode


def _json(value: Any, what: str) -> bytes:
    """``value`` as compact UTF-8 JSON; InvalidArgument naming ``what`` when it is not JSON (any
    exception of the encoder: TypeError, ValueError for NaN, RecursionError for a cycle, or
    whatever a container's own methods raise)."""
    try:
        return _encode(value).encode()
    except Exception as exc:  # noqa: BLE001 - every way of not being JSON is the caller's bad input
        raise InvalidArgument(f"{what}: not JSON-serialisable: {_describe_exc(exc)}", EINVAL) from exc


def _describe_exc(exc: BaseException) -> str:
    """``ClassName: message`` for an exception, even one whose ``__str__`` raises."""
    name = type(exc).__qualname__
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        return f"{name} (its message could not be read)"
    return f"{name}: {text}" if text else name


_decode = json.JSONDecoder().decode


def _loads(raw: bytes) -> Any:
    return _decode(raw.decode())


_string_at = _native.string_at
_C0 = ctypes.c_int32(0)  # timeout_ms 0, as the unchecked calls take it (never changed)
_c_size_t = ctypes.c_size_t
_c_uint32 = ctypes.c_uint32
_monotonic = time.monotonic
_getrandbits = random.getrandbits

SLICE_MS = 100
"""Longest single wait inside the library: longer waits are made of slices so that Ctrl-C
(KeyboardInterrupt) and other signals are handled within a fraction of a second."""

_MAX_MS = 0x7FFFFFFF
_OK_NULL = b'{"success":true}'


def dumps(value: Any) -> bytes:
    """Encode a value the way the binding sends it: compact JSON, UTF-8, no NaN/Infinity."""
    return _encode(value).encode()


def _ms(seconds: float | None, what: str = "timeout") -> int:
    """Seconds (None = no limit) -> the ABI's timeout_ms (-1 = no limit, 0 = never wait), rounded
    up to whole milliseconds. A negative, NaN or non-numeric value raises InvalidArgument (as
    the library does for timeout_ms < -1), before anything is taken or queued."""
    if seconds is None:
        return -1
    if type(seconds) is bool or not isinstance(seconds, (int, float)) or not seconds >= 0:
        raise InvalidArgument(f"{what} must be a number of seconds >= 0 or None, got {seconds!r}", EINVAL)
    if seconds == 0:
        return 0
    if seconds * 1000 >= _MAX_MS:  # also infinity
        return -1
    return math.ceil(seconds * 1000)


# What a take hands out (Outs.kind): decides what happens to it if the caller is interrupted.
_EVENT = 1
_COMPLETION = 2

_INTERRUPTED_RESULT = (
    b'{"success":false,"error":{"message":"the Python thread that polled this event was interrupted '
    b'(an exception such as KeyboardInterrupt) before the event reached its caller",'
    b'"error_type":"interrupted","retryable":true}}'
)


def _settle(o: _native.Outs) -> None:
    """Put what an interrupted take on this thread left behind where it cannot be lost: a
    completion is kept for the next next_completion of its channel, an event is failed at once
    (error_type "interrupted", retryable). Called at the start of the next take on this thread
    and, best effort, from the interrupted take itself.

    Every step is safe to repeat after a further interrupt (Ctrl-C can strike after any C call):
    the document stays in ``o.p`` (the library's buffer) until its copy is in ``o.held``, and in
    ``o.held`` until it is stored in the channel's ``_kept`` (plain stores, which Python never
    interrupts)."""
    owner = o.owner
    if o.inn.value:  # a document in the into-buffer, not yet copied out
        if o.buf[0] == b"{":
            o.held = o.mv[:o.inn.value].tobytes()
        o.inn.value = 0
    addr = o.p.value
    if addr:
        data = _string_at(addr, o.n.value)
        o.held = data
        o.p.value = None
        lib = _native.loaded()
        if lib is not None:
            lib.free(addr)
    held = o.held
    if held is None:
        return
    if owner is None:
        o.held = None
        return
    if o.kind == _COMPLETION:
        k = owner._seq
        owner._seq = k + 1
        owner._kept[k] = held
        o.held = None
        return
    k = owner._seq
    owner._seq = k + 1
    owner._unfailed[k] = held
    o.held = None
    owner._fail_unfailed()


def _settle_quietly(o: _native.Outs) -> None:
    """_settle from inside an interrupted take, before its exception goes on: a second interrupt
    during it is dropped (the document stays in ``o``, and the next take on this thread settles
    it), so that the first exception is the one the caller sees."""
    try:
        _settle(o)
    except BaseException:  # noqa: BLE001 - a second interrupt: the next take settles it
        pass


_V4_CLEAR = ~((0xF << 76) | (0x3 << 62))
_V4_SET = (0x4 << 76) | (0x2 << 62)


def _uuid4() -> str:
    """A random (version 4) UUID string. Uses the random module's generator (no system call per
    id; it is reseeded in forked children): ids, not secrets."""
    h = "%032x" % ((_getrandbits(128) & _V4_CLEAR) | _V4_SET)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _id(value: str | uuid.UUID) -> str:
    return value if type(value) is str else str(value)


class Channel:
    """A libtasker channel: dispatch step events, poll and complete them, consume completions.

    ``Channel(**config)`` takes the config keys of docs/ABI.md / tasker.h (``dispatch_buffer_size``,
    ``completion_buffer_size``, ``max_concurrent_handlers``, ``handler_timeout_ms``,
    ``cleanup_interval_ms``, ``starvation_warning_threshold_ms``, ``max_payload_bytes``,
    ``worker_id``); unknown keys and bad values raise ``InvalidArgument`` naming the key.

    The first Channel of a process loads libtasker (and with it the Go runtime); do that after any
    fork. Every method may be called from any thread. Times are in seconds (``None`` = no limit).
    ``close()`` (or leaving the ``with`` block) destroys the channel: events still queued or pending
    are cancelled, completions not yet taken are discarded, and later calls raise ``BadHandle``.
    """

    __slots__ = ("_lib", "_h", "_ch", "_closed", "_seq", "_kept", "_kept_lock", "_unfailed", "__weakref__")

    _kept: dict[int, bytes]
    _unfailed: dict[int, bytes]

    def __init__(self, **config: Any) -> None:
        self._h = 0
        self._ch = ctypes.c_uint64(0)  # the handle as the unchecked calls take it
        self._closed = True  # until the handle exists (so __del__ of a half-made channel is a no-op)
        self._seq = 0
        self._kept = {}  # completions taken by interrupted calls, handed out by next_completion
        self._kept_lock = threading.Lock()
        self._unfailed = {}  # events taken by interrupted calls, not yet failed as "interrupted"
        self._lib = lib = _native.load()
        doc = _json(config, "config") if config else None
        o = _tls.o or _outs()
        rc = lib.new(doc, o.bhandle)
        if rc != OK:
            raise self._error(rc)
        self._h = o.handle.value
        self._ch = ctypes.c_uint64(self._h)
        self._closed = False

    # ---- lifecycle ----

    @property
    def handle(self) -> int:
        """The C handle (a tasker_t), e.g. to pass to other code that calls libtasker."""
        return self._h

    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._closed

    def close(self) -> None:
        """Destroy the channel (tasker_destroy): shutdown with no drain, discard completions not
        yet taken, release the handle. Idempotent. Threads blocked on it wake up. In a child forked
        after the library was loaded it only marks the channel closed and never raises (the
        library is unusable there, and the handle belongs to the parent); see bindings/SPEC.md."""
        if self._closed:
            return
        self._closed = True
        if not self._h or _native.is_forked():
            return
        rc = self._lib.destroy(self._h)
        if rc != OK and rc != EBADF:  # EBADF: a concurrent close() won
            raise self._error(rc)

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # Never call into the library in a forked child (nor during interpreter teardown errors).
        try:
            if not self._closed and self._h and not _native._forked:
                self._closed = True
                self._lib.destroy(self._h)
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<tasker.Channel handle={self._h} {state}>"

    # ---- errors ----

    def _error(self, rc: int) -> TaskerError:
        """The exception for a non-OK status; must run on the thread that made the failed call,
        before any other library call on it (the last error is per thread)."""
        if rc == EFORKED or _native._forked:
            return ForkedError(FORK_ADVICE, EFORKED)
        if rc == CLOSED:
            return ChannelClosed("the channel is shut down and drained: nothing more will arrive", CLOSED)
        msg = _native.last_error(self._lib) if rc < 0 else ""
        if rc == EBADF and self._closed:
            return BadHandle(f"the channel is closed (close() was called): {msg}", rc)
        return error_for(rc, msg)

    def _wait(self, call: Callable[[int], int], ms: int, again: int = EMPTY) -> int:
        """Run a waiting call in slices of at most SLICE_MS. ``call(step_ms)`` returns a status;
        ``again`` (EMPTY, or EFULL for dispatch) means "not yet". A wait that fits in one slice is
        one call."""
        if 0 < ms <= SLICE_MS:
            return call(ms)
        deadline = None if ms < 0 else _monotonic() + ms / 1000.0
        while True:
            step = SLICE_MS
            if deadline is not None:
                left = deadline - _monotonic()
                step = 0 if left <= 0 else min(SLICE_MS, math.ceil(left * 1000))
            rc = call(step)
            if rc != again or step == 0:
                return rc
            if deadline is not None and _monotonic() >= deadline:
                return again

    def _begin_take(self, o: _native.Outs, timeout: float | None) -> int:
        """What every take does before it calls the library: settle what an interrupted take on
        this thread left behind, fail the events interrupted calls took, and turn ``timeout`` into
        timeout_ms (a bad one raises here, before anything is taken; the default 0.0 skips _ms)."""
        if o.held is not None or o.inn.value or o.p.value:
            _settle(o)
        if self._unfailed:
            self._fail_unfailed()
        return 0 if timeout == 0 and type(timeout) is float else _ms(timeout)

    def _take_into(self, o: _native.Outs, kind: int, now: Callable[..., int], waiting: Callable[..., int],
                   timeout: float | None) -> bytes | None:
        """The shape of poll and next_completion: one try that cannot wait (``now``, an unchecked
        view that keeps the GIL), then, if nothing was there and ``timeout`` allows, waits through
        the GIL-releasing binding ``waiting`` (sliced, see _wait). The document lands in the
        thread's into-buffer and is copied out here. Returns None for EMPTY and raises for every
        other non-OK status.

        The returned bytes stay in ``o.held`` until the public method clears it just before it
        returns: an exception (Ctrl-C) anywhere before that leaves the document for _settle, so
        nothing taken from the library is ever dropped."""
        ms = self._begin_take(o, timeout)
        if kind == _COMPLETION and self._kept:
            data = self._pop_kept(o)
            if data is not None:
                return data
        o.owner = self
        o.kind = kind
        try:
            rc = now(self._ch, _C0, o.buf, o.ccap, o.binn)
            if rc == EMPTY and ms != 0:
                h = self._h

                def call(step: int) -> int:
                    return waiting(h, step, o.buf, o.cap, o.binn)

                rc = self._wait(call, ms)
            while rc == ETOOBIG:
                # larger than the buffer: the library keeps it and hands it out first to the
                # next take on this channel, which is this one with a buffer that fits
                need = o.inn.value + 1
                o.inn.value = 0
                o.grow(max(need, 2 * o.cap))
                rc = now(self._ch, _C0, o.buf, o.ccap, o.binn)
            if rc == OK:
                inn = o.inn
                data = o.buf[:inn.value]  # a c_char array's slice is bytes: one copy
                o.held = data
                inn.value = 0
                return data
        except BaseException:
            _settle_quietly(o)
            raise
        self._raise_unless_empty(rc)
        return None

    def _raise_unless_empty(self, rc: int) -> None:
        """How a take that got no document ends: it returns None for EMPTY and raises for any other
        status."""
        if rc != EMPTY:
            raise self._error(rc)

    def _take_batch(self, o: _native.Outs, max_events: int, timeout: float | None) -> bytes | None:
        """poll_batch's take: the shape of _take_into, with the library's malloc'd array (copied
        out and freed here) instead of the into-buffer."""
        ms = self._begin_take(o, timeout)
        o.owner = self
        o.kind = _EVENT
        try:
            rc = self._lib.u_poll_batch_now(self._ch, _c_uint32(max_events), _C0, o.bp, o.bn, o.bcount)
            if rc == EMPTY and ms != 0:
                h, waiting = self._h, self._lib.poll_batch

                def call(step: int) -> int:
                    return waiting(h, max_events, step, o.bp, o.bn, o.bcount)

                rc = self._wait(call, ms)
            if rc == OK:
                addr = o.p.value or 0
                data = _string_at(addr, o.n.value)
                o.held = data
                o.p.value = None
                self._lib.free(addr)
                return data
        except BaseException:
            _settle_quietly(o)
            raise
        self._raise_unless_empty(rc)
        return None

    def _pop_kept(self, o: _native.Outs) -> bytes | None:
        """The oldest completion kept from an interrupted call, now held for this caller."""
        with self._kept_lock:
            k = next(iter(self._kept), None)
            if k is None:
                return None
            data = self._kept[k]
            del self._kept[k]
            o.owner = self
            o.kind = _COMPLETION
            o.held = data
            return data

    def _fail_unfailed(self) -> None:
        """Fail the events that interrupted calls took (error_type "interrupted", retryable)."""
        lib = self._lib
        for k in list(self._unfailed):
            data = self._unfailed.get(k)
            if data is None:
                continue
            try:
                docs = _loads(data)
                for doc in docs if isinstance(docs, list) else [docs]:
                    eid = str(doc["event_id"]).encode()
                    if not self._closed and not _native._forked:
                        lib.complete(self._h, eid, _INTERRUPTED_RESULT, len(_INTERRUPTED_RESULT))
            finally:
                self._unfailed.pop(k, None)

    # ---- producing ----

    def dispatch(
        self,
        handler: str,
        payload: Any = None,
        *,
        payload_json: bytes | str | None = None,
        task_uuid: str | uuid.UUID | None = None,
        step_uuid: str | uuid.UUID | None = None,
        event_id: str | uuid.UUID | None = None,
        correlation_id: str | uuid.UUID | None = None,
        timeout_ms: int | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
        wait: float | None = 0.0,
    ) -> str:
        """Queue one step event for ``handler`` and return its event id.

        ``payload`` is any JSON-serialisable value; ``payload_json`` is already-encoded JSON passed
        through as written (give one or the other). Missing ``task_uuid``/``step_uuid`` are new
        random UUIDs; ``event_id`` and ``correlation_id`` default to UUIDv7s made by the library.
        ``timeout_ms`` overrides the channel's ``handler_timeout_ms`` for this event. ``wait`` is how
        long to wait for room in the dispatch queue in seconds (0: not at all, None: no limit), then
        ``QueueFull``. Raises ``ShutdownError`` after shutdown, ``TooLarge``, ``InvalidArgument``.
        """
        doc: dict[str, Any] = {
            "task_uuid": _uuid4() if task_uuid is None else _id(task_uuid),
            "step_uuid": _uuid4() if step_uuid is None else _id(step_uuid),
            "handler": handler,
        }
        if event_id is not None:
            doc["event_id"] = _id(event_id)
        if correlation_id is not None:
            doc["correlation_id"] = _id(correlation_id)
        if timeout_ms is not None:
            doc["timeout_ms"] = timeout_ms
        if trace_id is not None:
            doc["trace_id"] = trace_id
        if span_id is not None:
            doc["span_id"] = span_id
        if payload_json is None:
            if payload is not None:
                doc["payload"] = payload
            data = _json(doc, "payload")
        else:
            if payload is not None:
                raise TypeError("dispatch: give payload or payload_json, not both")
            pj = payload_json.encode() if isinstance(payload_json, str) else bytes(payload_json)
            data = _json(doc, "event")[:-1] + b',"payload":' + pj + b"}"
        return self.dispatch_raw(data, wait)

    def dispatch_raw(self, event_json: bytes | str, wait: float | None = 0.0) -> str:
        """Queue one step event given as a complete dispatch document (JSON, see docs/ABI.md) and return
        its event id. The fast path: no encoding work beyond what you did. ``wait`` as for
        dispatch; waits are made of SLICE_MS slices (each slice that ends with the queue still
        full counts once in the ``rejected_full`` stat), so Ctrl-C acts within one slice."""
        if type(event_json) is not bytes:
            event_json = event_json.encode() if isinstance(event_json, str) else bytes(event_json)
        idbuf = (_tls.o or _outs()).idbuf
        lib = self._lib
        h = self._h
        n = len(event_json)
        if wait == 0:
            rc = lib.u_dispatch_now(self._ch, event_json, _c_size_t(n), _C0, idbuf)
        else:
            ms = _ms(wait, "wait")
            if ms == 0:
                rc = lib.dispatch_now(h, event_json, n, 0, idbuf)
            else:
                rc = self._wait(lambda step: lib.dispatch(h, event_json, n, step, idbuf), ms, EFULL)
        if rc != OK:
            raise self._error(rc)
        return idbuf.value.decode()

    # ---- working ----

    def poll_raw(self, timeout: float | None = 0.0) -> bytes | None:
        """Take one event as the library's JSON bytes; None when nothing arrived within ``timeout``
        seconds (None: wait until an event arrives or the channel shuts down). Raises
        ``ChannelClosed`` once the channel is shut down and no queued event is left."""
        o = _tls.o or _outs()
        lib = self._lib
        raw = self._take_into(o, _EVENT, lib.u_poll_into_now, lib.poll_into, timeout)
        o.held = None
        o.owner = None  # no reference to this channel stays behind in the thread
        return raw

    def poll(self, timeout: float | None = 0.0) -> StepEvent | None:
        """Take one event (it becomes pending and its timeout clock starts); None when nothing
        arrived within ``timeout`` seconds (None: wait until an event or shutdown). Raises
        ``ChannelClosed`` once the channel is shut down and drained."""
        o = _tls.o or _outs()
        lib = self._lib
        raw = self._take_into(o, _EVENT, lib.u_poll_into_now, lib.poll_into, timeout)
        ev = None if raw is None else StepEvent.from_dict(_loads(raw))
        o.held = None
        o.owner = None  # no reference to this channel stays behind in the thread
        return ev

    def _check_max(self, max_events: int) -> None:
        if type(max_events) is not int or not 0 < max_events <= 0xFFFFFFFF:
            raise InvalidArgument(f"max_events must be an integer between 1 and 2**32-1, not {max_events!r}", EINVAL)

    def poll_batch_raw(self, max_events: int, timeout: float | None = 0.0) -> bytes | None:
        """Take up to ``max_events`` events as one JSON array (bytes), waiting only for the first;
        None when nothing arrived. Raises ``ChannelClosed`` as poll does."""
        self._check_max(max_events)
        o = _tls.o or _outs()
        lib = self._lib
        raw = self._take_batch(o, max_events, timeout)
        o.held = None
        o.owner = None  # no reference to this channel stays behind in the thread
        return raw

    def poll_batch(self, max_events: int, timeout: float | None = 0.0) -> list[StepEvent]:
        """Take up to ``max_events`` events, waiting up to ``timeout`` seconds only for the first;
        [] when nothing arrived."""
        self._check_max(max_events)
        o = _tls.o or _outs()
        lib = self._lib
        raw = self._take_batch(o, max_events, timeout)
        from_dict = StepEvent.from_dict
        events = [] if raw is None else [from_dict(d) for d in _loads(raw)]
        o.held = None
        o.owner = None  # no reference to this channel stays behind in the thread
        return events

    def complete_raw(self, event_id: str | bytes | uuid.UUID, result_json: bytes | str) -> None:
        """End a pending event with a complete result document (JSON bytes, see docs/ABI.md:
        ``{"success":true,"result":...}`` or ``{"success":false,"error":{...}}``)."""
        if type(event_id) is str:
            eid = event_id.encode()
        elif type(event_id) is bytes:
            eid = event_id
        else:  # uuid.UUID, or anything else: never hand ctypes an int (it would be taken as a pointer)
            eid = str(event_id).encode()
        if type(result_json) is not bytes:
            result_json = result_json.encode() if isinstance(result_json, str) else bytes(result_json)
        rc = self._lib.u_complete(self._ch, eid, result_json, _c_size_t(len(result_json)))
        if rc != OK:
            raise self._error(rc)

    def complete(self, event_id: str | uuid.UUID, result: Any = None, *, metadata: Mapping[str, Any] | None = None) -> None:
        """End a pending event successfully with ``result`` (any JSON-serialisable value).
        Raises ``EventNotPending`` if it already ended (e.g. it timed out meanwhile)."""
        if metadata is None:
            doc = _OK_NULL if result is None else b'{"success":true,"result":' + _json(result, "result") + b"}"
        else:
            doc = (
                b'{"success":true,"result":' + _json(result, "result")
                + b',"metadata":' + _json(metadata, "metadata") + b"}"
            )
        self.complete_raw(event_id, doc)

    def fail(
        self,
        event_id: str | uuid.UUID,
        message: str,
        *,
        error_type: str = "handler_error",
        retryable: bool = True,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """End a pending event as failed. ``message`` must not be empty."""
        doc: dict[str, Any] = {
            "success": False,
            "error": {"message": message, "error_type": error_type, "retryable": bool(retryable)},
        }
        if metadata is not None:
            doc["metadata"] = metadata
        self.complete_raw(event_id, _json(doc, "metadata"))

    def checkpoint_raw(self, event_id: str | bytes | uuid.UUID, checkpoint_json: bytes | str) -> None:
        """End the current run of a pending event without a completion, with a checkpoint document
        (JSON bytes: ``{"cursor": ..., "items_processed": n, "accumulated_results": ...}``): the
        event goes back to the queue and a later poll hands it out again with ``event.checkpoint``.
        Never waits. Raises ``EventNotPending`` if it is not pending, ``LibraryError`` if the loaded
        library predates checkpoints (ABI minor < 1)."""
        lib = self._lib
        if lib.minor < _native.CHECKPOINT_MINOR:
            lib.require_minor(_native.CHECKPOINT_MINOR, "Channel.checkpoint")
        if type(event_id) is str:
            eid = event_id.encode()
        elif type(event_id) is bytes:
            eid = event_id
        else:
            eid = str(event_id).encode()
        if type(checkpoint_json) is not bytes:
            checkpoint_json = checkpoint_json.encode() if isinstance(checkpoint_json, str) else bytes(checkpoint_json)
        rc = lib.checkpoint(self._h, eid, checkpoint_json, len(checkpoint_json))
        if rc != OK:
            raise self._error(rc)

    def checkpoint(
        self, event_id: str | uuid.UUID, cursor: Any, items_processed: int, accumulated_results: Any = None
    ) -> None:
        """Yield a long step (see ``tasker.Checkpoint``): its event goes back to the queue with
        ``cursor`` (any JSON value), ``items_processed`` (an integer >= 0) and
        ``accumulated_results`` (any JSON value); the next poll hands it out again with them in
        ``event.checkpoint`` and restarts its timeout. A checkpoint beyond the channel's
        ``max_checkpoints`` ends the event as failed (``too_many_checkpoints``) instead."""
        n = items_processed
        if type(n) is not int or n < 0:
            raise InvalidArgument(f"items_processed: must be an integer >= 0, not {n!r}", EINVAL)
        self.checkpoint_raw(event_id, b'{"cursor":' + _json(cursor, "cursor") + b',"items_processed":'
                            + str(n).encode() + b',"accumulated_results":'
                            + _json(accumulated_results, "accumulated_results") + b"}")

    def cleanup_timeouts(self) -> int:
        """End every pending event past its deadline as a timeout; returns how many. Optional:
        the library's reaper does this every cleanup_interval_ms."""
        o = _tls.o or _outs()
        rc = self._lib.cleanup_timeouts(self._h, o.bcount)
        if rc != OK:
            raise self._error(rc)
        return o.count.value

    # ---- consuming ----

    def next_completion_raw(self, timeout: float | None = 0.0) -> bytes | None:
        """Take the next completion as JSON bytes; None when nothing arrived within ``timeout``
        seconds. Raises ``ChannelClosed`` once every event has ended and the stream is empty."""
        o = _tls.o or _outs()
        lib = self._lib
        raw = self._take_into(o, _COMPLETION, lib.u_next_completion_into_now, lib.next_completion_into, timeout)
        o.held = None
        o.owner = None  # no reference to this channel stays behind in the thread
        return raw

    def next_completion(self, timeout: float | None = 0.0) -> Completion | None:
        """Take the next completion; None when nothing arrived within ``timeout`` seconds (None:
        wait until one arrives or the channel is closed). Raises ``ChannelClosed`` once every
        event has ended and the stream is empty. A completion taken by a call that was
        interrupted (Ctrl-C) before it could return is handed out by the next call."""
        o = _tls.o or _outs()
        lib = self._lib
        raw = self._take_into(o, _COMPLETION, lib.u_next_completion_into_now, lib.next_completion_into, timeout)
        c = None if raw is None else Completion.from_dict(_loads(raw))
        o.held = None
        o.owner = None  # no reference to this channel stays behind in the thread
        return c

    def completions(self, timeout: float | None = None, limit: int | None = None) -> Iterator[Completion]:
        """Iterate over completions until the channel is shut down and drained (or closed).
        With a ``timeout`` (seconds), iteration also ends when none arrives within it; with a
        ``limit``, after that many. Every item is a Completion (never None)::

            done = {c.event_id: c for c in channel.completions(timeout=5.0, limit=len(ids))}
        """
        if limit is not None and (type(limit) is not int or limit < 0):
            raise InvalidArgument(f"limit must be an integer >= 0 or None, not {limit!r}", EINVAL)
        _ms(timeout)  # a bad timeout raises now, not at the first next()
        n = 0
        while limit is None or n < limit:
            try:
                raw = self.next_completion_raw(timeout)
            except ChannelClosed:
                return
            except BadHandle:
                if self._closed:
                    return
                raise
            if raw is None:
                return
            n += 1
            yield Completion.from_dict(_loads(raw))

    # ---- shutdown and observation ----

    def shutdown(self, drain: float | None = 0.0) -> None:
        """Stop intake (dispatch raises ShutdownError from now on), let workers drain queued and
        pending events for ``drain`` seconds (None: until all have ended), then cancel the rest.
        Returns once every event has ended. Idempotent; completions stay in the stream.

        On the main thread a draining shutdown runs the library call on a helper thread and waits
        for it interruptibly: Ctrl-C raises KeyboardInterrupt at once while the drain goes on
        (intake is already stopped; ``close()`` cancels what is left)."""
        ms = _ms(drain, "drain")
        if ms == 0 or threading.current_thread() is not threading.main_thread():
            rc = self._lib.shutdown(self._h, ms)
            if rc != OK:
                raise self._error(rc)
            return
        box: list[TaskerError | None] = []
        done = threading.Event()

        def drain_in_background() -> None:
            try:
                rc = self._lib.shutdown(self._h, ms)
                box.append(None if rc == OK else self._error(rc))  # last error is per thread: read it here
            finally:
                done.set()

        threading.Thread(target=drain_in_background, name="tasker-shutdown", daemon=True).start()
        done.wait()
        err = box[0] if box else None
        if err is not None:
            raise err

    def stats_raw(self) -> bytes:
        """The library's stats document as JSON bytes."""
        o = _tls.o or _outs()
        if o.held is not None or o.p.value or o.inn.value:
            _settle(o)
        o.owner = None  # a stats document left by an interrupt is only freed
        p, n, bp, bn = o.pn
        lib = self._lib
        rc = lib.stats(self._h, bp, bn)
        if rc != OK:
            raise self._error(rc)
        addr = p.value or 0
        data = _string_at(addr, n.value)  # interrupted here: the next take frees it (_settle)
        p.value = None
        lib.free(addr)
        return data

    def stats(self) -> dict[str, Any]:
        """Counters and gauges (one consistent snapshot): dispatched, polled, completed, failed,
        timed_out, cancelled, late_completions, queued, pending, state, ..."""
        result: dict[str, Any] = _loads(self.stats_raw())
        return result

    def readiness_fd(self, stream: str) -> int:
        """The library's readiness descriptor for ``stream`` ("events" or "completions"): readable
        when ``poll(0)`` (resp. ``next_completion(0)``) would return something or raise
        ``ChannelClosed``, updated right after each change (level-triggered; include/tasker.h,
        "Readiness descriptors"). The library
        owns it and closes it in ``close()``: only wait on it (never read or close it), or on your
        own ``os.dup()`` of it. ``tasker.aio`` builds on it."""
        if stream not in ("events", "completions"):
            raise ValueError(f"stream must be 'events' or 'completions', not {stream!r}")
        if _native._forked:
            raise ForkedError(FORK_ADVICE, EFORKED)
        lib = self._lib
        lib.require_minor(_native.READINESS_MINOR, "Channel.readiness_fd")
        fd = ctypes.c_int(-1)
        rc = (lib.event_fd if stream == "events" else lib.completion_fd)(self._h, ctypes.byref(fd))
        if rc != OK:
            raise self._error(rc)
        return fd.value
