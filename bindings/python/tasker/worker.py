"""tasker.Worker: a pool of threads that poll a Channel and run Python handlers.

The behaviour is the one of bindings/SPEC.md, shared with the Ruby binding: the same counters,
error types, failure metadata and stop rules.
"""

from __future__ import annotations

import threading
import time
import traceback
import warnings
from typing import Any, Callable, Mapping

from . import _native
from ._errors import (
    EFORKED,
    FORK_ADVICE,
    BadHandle,
    ChannelClosed,
    EventNotPending,
    ForkedError,
    InvalidArgument,
    LibraryError,
    TooLarge,
)
from ._observe import StatsCallback, StatsMonitor, check_stats_options
from ._observe import logger as _root_logger
from .channel import Channel, _describe_exc, _json, _loads
from .events import Checkpoint, StepEvent

log = _root_logger.getChild("worker")

__all__ = ["Worker", "Handler", "COUNTERS", "BACKTRACE_LINES"]

Handler = Callable[[StepEvent], Any]

COUNTERS = ("polled", "completed", "failed", "late", "not_found", "result_errors", "errors", "checkpointed")
"""The names of Worker.counts, in the order of bindings/SPEC.md."""

BACKTRACE_LINES = 30
"""Frames of a handler exception's traceback kept in the failure's metadata["backtrace"]."""


class _Counts:
    """One thread's counters (only that thread writes them; counts adds them up)."""

    __slots__ = COUNTERS

    def __init__(self) -> None:
        self.polled = 0
        self.completed = 0
        self.failed = 0
        self.late = 0
        self.not_found = 0
        self.result_errors = 0
        self.errors = 0
        self.checkpointed = 0


def _utf8(text: str) -> str:
    """``text`` made encodable as UTF-8 (lone surrogates escaped), so the library accepts it."""
    try:
        text.encode()
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()


def describe_exception(exc: BaseException) -> tuple[str, str, bool, dict[str, Any]]:
    """(message, error_type, retryable, metadata) of a handler's exception, as bindings/SPEC.md
    says: error_type is the exception's ``error_type`` attribute when it is a non-empty string,
    else its class's ``__qualname__``; message its ``str()``; retryable its ``retryable``
    attribute (default True); metadata ``{"exception": "module.QualName", "backtrace": [...]}``.
    Never raises, whatever the exception's own methods do."""
    cls = type(exc)
    name = cls.__qualname__.rsplit("<locals>.", 1)[-1]  # a class made in a function: its own name
    error_type = name
    try:
        custom = getattr(exc, "error_type", None)
        if isinstance(custom, str) and custom:
            error_type = custom
    except Exception:  # noqa: BLE001
        pass
    try:
        message = str(exc)
    except Exception as e2:  # noqa: BLE001
        message = f"<{name}: its message could not be read ({_describe_exc(e2)})>"
    retryable = True
    try:
        r = getattr(exc, "retryable", True)
        retryable = bool(r() if callable(r) else r)
    except Exception:  # noqa: BLE001
        retryable = True
    backtrace: list[str] = []
    try:
        frames = traceback.extract_tb(exc.__traceback__)
        backtrace = [f"{f.filename}:{f.lineno}:in {f.name}" for f in reversed(frames)][:BACKTRACE_LINES]
    except Exception:  # noqa: BLE001
        pass
    metadata = {"exception": f"{cls.__module__}.{name}", "backtrace": [_utf8(b) for b in backtrace]}
    return _utf8(message or name), _utf8(error_type), retryable, metadata


class Worker:
    """Runs ``handlers`` (event handler name -> ``callable(event) -> result``) on ``threads``
    threads that poll ``channel``. The rules are those of bindings/SPEC.md:

    - A handler's return value (JSON-serialisable) completes the event. Any exception (even
      SystemExit or KeyboardInterrupt raised by the handler) fails it: error_type is the
      exception's class name (or its ``error_type`` attribute), message its text, metadata
      ``{"exception", "backtrace"}``, retryable its ``retryable`` attribute (default True); the
      thread goes on with the next event.
    - An unknown handler name fails with ``handler_not_found`` (not retryable); a result that is
      not JSON fails with ``result_not_json``, one larger than max_payload_bytes with
      ``result_too_large`` (neither retryable).
    - A handler that returns a ``tasker.Checkpoint`` yields: the event goes back to the queue with
      that progress (``counts["checkpointed"]``) and runs again later with ``event.checkpoint``
      set; a library without checkpoints (ABI minor < 1) fails it with ``checkpoint_unsupported``.
    - A complete/fail that finds the event already ended (timed out, cancelled) counts in
      ``counts["late"]``. An error of the worker loop itself (not of one event) counts in
      ``counts["errors"]``, is kept in ``last_error``, and the thread goes on after
      ``poll_interval``.

    ``stats_callback(stats)`` is called every ``stats_interval`` seconds (default 5) from a thread of
    the worker with the channel's ``stats()`` plus ``"worker"``: ``counts``; the same tick logs a
    warning when ``starvation_detected`` turns true. Log records go to the ``"tasker.worker"`` logger
    (start/stop INFO, handler exceptions ERROR, late completions WARNING).

    Threads wait in slices of ``poll_interval`` seconds (never holding the GIL while they wait).
    ``stop()`` lets every running handler finish; leaving the ``with`` block (and Ctrl-C in
    ``run()``) waits at most ``stop_timeout`` seconds for them.
    """

    def __init__(
        self,
        channel: Channel,
        handlers: Mapping[str, Handler],
        *,
        threads: int = 4,
        batch: int = 1,
        poll_interval: float = 0.05,
        stop_timeout: float = 30.0,
        name: str = "tasker-worker",
        stats_callback: StatsCallback | None = None,
        stats_interval: float | None = None,
    ) -> None:
        if type(threads) is not int or threads < 1:
            raise ValueError(f"threads must be an integer >= 1, not {threads!r}")
        if type(batch) is not int or batch < 1:
            raise ValueError(f"batch must be an integer >= 1, not {batch!r}")
        if not isinstance(poll_interval, (int, float)) or not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {poll_interval!r}")
        if not isinstance(stop_timeout, (int, float)) or not stop_timeout >= 0:
            raise ValueError(f"stop_timeout must be >= 0 seconds, not {stop_timeout!r}")
        for key, fn in handlers.items():
            if not callable(fn):
                raise TypeError(f"handler {key!r} is not callable")
        self.channel = channel
        self.handlers: dict[str, Handler] = dict(handlers)
        self.threads = threads
        self.batch = batch
        self.poll_interval = poll_interval
        self.stop_timeout = stop_timeout
        self.name = name
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # Set by each thread as it ends. Thread.join/is_alive are not used to tell whether a
        # thread has ended: on Python 3.11, Ctrl-C during Thread.join can mark a running thread
        # as stopped (gh-90882), and stop() would return while a handler still runs.
        self._done: list[threading.Event] = []
        self._counts: list[_Counts] = []
        self._last_error: BaseException | None = None
        self._lock = threading.Lock()
        # stats_callback(stats) every stats_interval seconds, and the starvation check (_observe.py)
        self._monitor = StatsMonitor(name, channel.stats, lambda: self.counts, stats_callback,
                                     check_stats_options(stats_callback, stats_interval), log)
        self._watch_end = threading.Event()  # set by stop() and when the last thread ends

    # ---- control ----

    def start(self) -> Worker:
        """Start the threads (once). Raises ForkedError in a child forked after the library was
        loaded (the channel belongs to the parent), RuntimeError if already started."""
        if _native.is_forked():
            raise ForkedError(FORK_ADVICE, EFORKED)
        with self._lock:
            if self._threads:
                raise RuntimeError("Worker already started")
            for i in range(self.threads):
                counts = _Counts()
                done = threading.Event()
                self._counts.append(counts)
                self._done.append(done)
                t = threading.Thread(target=self._loop, args=(counts, done), name=f"{self.name}-{i}", daemon=True)
                self._threads.append(t)
            for t in self._threads:
                t.start()
            threading.Thread(target=self._watch, name=f"{self.name}-stats", daemon=True).start()
        log.info("%s: started (%d threads, handlers %s)", self.name, self.threads, sorted(self.handlers))
        return self

    def _watch(self) -> None:
        """The stats thread: a monitor tick every stats_interval until the worker stops."""
        while not self._watch_end.wait(self._monitor.interval):
            self._monitor.tick()

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the threads to stop after the event each is handling, and wait up to ``timeout``
        seconds (None: until they have). Returns True when every thread has ended. Events not yet
        polled stay queued."""
        self._stop.set()
        self._watch_end.set()
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the threads to end; True when all have."""
        deadline = None if timeout is None else time.monotonic() + timeout
        me = threading.current_thread()
        for t, done in zip(self._threads, self._done):
            if t is me:  # stop() called from a handler: this thread ends after the handler returns
                continue
            while not done.is_set():
                if deadline is None:
                    done.wait(0.1)  # short slices: Ctrl-C in the main thread is not delayed
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    done.wait(min(0.1, left))
        return True

    def run(self) -> None:
        """Start (if needed) and block until the channel is closed and drained, or ``stop()`` is
        called. Ctrl-C stops the threads, waits up to ``stop_timeout`` for running handlers to
        finish, and re-raises KeyboardInterrupt."""
        if not self._threads:
            self.start()
        try:
            self.join()
        except KeyboardInterrupt:
            self._stop_bounded()
            raise

    @property
    def running(self) -> bool:
        """True while any thread has not ended."""
        return any(not done.is_set() for done in self._done)

    @property
    def last_error(self) -> BaseException | None:
        """The last unexpected error of the worker loop itself (counted in counts["errors"])."""
        return self._last_error

    @property
    def error(self) -> BaseException | None:
        """Old name of last_error."""
        return self._last_error

    @property
    def counts(self) -> dict[str, int]:
        """Totals over all threads (bindings/SPEC.md, "Worker counters"): polled, completed,
        failed, late, not_found, result_errors, errors, checkpointed."""
        return {name: sum(getattr(c, name) for c in self._counts) for name in COUNTERS}

    def __enter__(self) -> Worker:
        if not self._threads:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop_bounded()

    def _stop_bounded(self) -> None:
        if not self.stop(self.stop_timeout):
            left = sum(1 for done in self._done if not done.is_set())
            warnings.warn(
                f"tasker.Worker: {left} thread(s) still running a handler {self.stop_timeout} s after stop; "
                "they are left running (daemon threads): their events end at their timeout (or are "
                "cancelled when the channel closes) and a result they return later counts as late",
                RuntimeWarning,
                stacklevel=3,
            )

    # ---- the threads ----

    def _loop(self, counts: _Counts, done: threading.Event) -> None:
        ch = self.channel
        stop = self._stop
        interval = self.poll_interval
        batch = self.batch
        handle = self._handle
        from_dict = StepEvent.from_dict
        try:
            while not stop.is_set():
                try:
                    if batch == 1:
                        raw = ch.poll_raw(interval)
                        if raw is None:
                            continue
                        counts.polled += 1
                        handle(from_dict(_loads(raw)), counts)
                    else:
                        raw = ch.poll_batch_raw(batch, interval)
                        if raw is None:
                            continue
                        docs = _loads(raw)
                        counts.polled += len(docs)
                        for d in docs:  # finish the whole batch even when stopping: they are pending
                            handle(from_dict(d), counts)
                except (ChannelClosed, ForkedError):
                    return
                except BadHandle as exc:
                    if not ch.closed:  # not closed by close(): say why the worker ended
                        self._record(exc, counts)
                    return
                except Exception as exc:  # noqa: BLE001 - counted, kept, and the thread goes on
                    self._record(exc, counts)
                    stop.wait(interval)
        finally:
            log.info("%s: %s stopped", self.name, threading.current_thread().name)
            done.set()
            if all(d.is_set() for d in self._done):
                self._watch_end.set()

    def _record(self, exc: BaseException, counts: _Counts) -> None:
        counts.errors += 1
        self._last_error = exc

    def _handle(self, ev: StepEvent, counts: _Counts) -> None:
        """Run one event's handler and end the event, whatever the handler does. Never raises."""
        fn = self.handlers.get(ev.handler)
        if fn is None:
            self._fail(ev, f"no handler registered for {ev.handler!r}", "handler_not_found", False, None, counts,
                       "not_found")
            return
        try:
            result = fn(ev)
        except BaseException as exc:  # noqa: BLE001 - SystemExit too: fails this event, the thread goes on
            self._crashed(ev, exc, counts)
            return
        self._complete(ev, result, counts)

    def _crashed(self, ev: StepEvent, exc: BaseException, counts: _Counts) -> None:
        """Log a handler's exception and fail its event with it."""
        message, error_type, retryable, metadata = describe_exception(exc)
        log.error("%s: handler %r raised %s for event %s: %s", self.name, ev.handler, error_type, ev.event_id,
                  message, exc_info=exc)
        self._fail(ev, message, error_type, retryable, metadata, counts)

    def _late(self, ev: StepEvent, counts: _Counts) -> None:
        """A result for an event that had already ended (timed out, cancelled)."""
        counts.late += 1
        log.warning("%s: late completion for event %s (handler %r): it had already ended (timed out or "
                    "cancelled); the result was dropped", self.name, ev.event_id, ev.handler)

    def _complete(self, ev: StepEvent, result: Any, counts: _Counts) -> None:
        """Complete ``ev`` with a handler's return value (or fail it if the value cannot be sent)."""
        if isinstance(result, Checkpoint):  # a checkpoint, not an end (ABI minor 1)
            self._checkpoint(ev, result, counts)
            return
        try:
            doc = b'{"success":true,"result":' + _json(result, "result") + b"}"
        except Exception as exc:  # noqa: BLE001 - RecursionError, TypeError, a container that raises...
            self._fail(ev, f"handler {ev.handler!r} returned a result that is not JSON: {_describe_exc(exc)}",
                       "result_not_json", False, None, counts, "result_errors")
            return
        if self._send(ev, "result", lambda: self.channel.complete_raw(ev.event_id, doc), counts):
            counts.completed += 1

    def _checkpoint(self, ev: StepEvent, cp: Checkpoint, counts: _Counts) -> None:
        """The handler returned a Checkpoint: send the event back to the queue with it (SPEC.md,
        "Checkpoints"). Never raises."""
        if self._send(ev, "checkpoint", lambda: self.channel.checkpoint(
                ev.event_id, cp.cursor, cp.items_processed, cp.accumulated_results), counts):
            counts.checkpointed += 1

    def _send(self, ev: StepEvent, what: str, send: Callable[[], object], counts: _Counts) -> bool:
        """Hand a handler's result or checkpoint (``what``) to the library with ``send``; True when it
        took it. A refusal ends the event as SPEC.md, "Worker" says (late, result_too_large,
        result_not_json, checkpoint_unsupported) or is recorded; never raises."""
        try:
            send()
            return True
        except EventNotPending:
            self._late(ev, counts)
        except TooLarge as exc:
            self._fail(ev, f"handler {ev.handler!r} returned a {what} larger than max_payload_bytes: {exc.message}",
                       "result_too_large", False, None, counts, "result_errors")
        except InvalidArgument as exc:
            self._fail(ev, f"handler {ev.handler!r} returned a {what} the library refused: {exc.message}",
                       "result_not_json", False, None, counts, "result_errors")
        except LibraryError as exc:  # a checkpoint against a library older than ABI minor 1
            self._fail(ev, f"handler {ev.handler!r} returned a {what}: {exc.message}",
                       "checkpoint_unsupported", False, None, counts)
        except BadHandle as exc:
            if self.channel.closed:
                counts.late += 1  # closed meanwhile: the event was cancelled
            else:
                self._record(exc, counts)
        except Exception as exc:  # noqa: BLE001
            self._record(exc, counts)
        return False

    def _fail(self, ev: StepEvent, message: str, error_type: str, retryable: bool,
              metadata: dict[str, Any] | None, counts: _Counts, reason: str | None = None) -> None:
        """Fail ``ev``; if the library refuses the document (too large for max_payload_bytes),
        retry with less, so that the event still ends now rather than at its timeout. ``reason``
        names the counter ("not_found", "result_errors") that also counts this failure."""
        attempts = ((message, metadata), (message[:200], None), (error_type[:64] or "error", None))
        for msg, md in attempts:
            try:
                self.channel.fail(ev.event_id, msg, error_type=error_type[:200], retryable=retryable, metadata=md)
            except EventNotPending:
                self._late(ev, counts)
                return
            except BadHandle as exc:
                if self.channel.closed:
                    counts.late += 1
                else:
                    self._record(exc, counts)
                return
            except Exception:  # noqa: BLE001 - TooLarge, unserialisable metadata: try with less
                continue
            counts.failed += 1
            if reason == "not_found":
                counts.not_found += 1
            elif reason == "result_errors":
                counts.result_errors += 1
            return
        # Nothing could be sent (max_payload_bytes below the smallest failure): the event ends at
        # its timeout.
        self._record(TooLarge(f"could not fail event {ev.event_id}: even the shortest failure is too large", -6),
                     counts)
