"""tasker.Worker: a pool of threads that poll a Channel and run Python handlers."""

from __future__ import annotations

import threading
import time
import traceback
from typing import Any, Callable, Mapping

from ._errors import BadHandle, ChannelClosed, EventNotPending
from .channel import Channel
from .events import StepEvent

__all__ = ["Worker", "Handler"]

Handler = Callable[[StepEvent], Any]

from .channel import _loads  # noqa: E402  (bytes -> str -> the shared C decoder)
_COUNTERS = ("polled", "completed", "failed", "not_found", "late", "result_errors")


class _Counts:
    __slots__ = _COUNTERS

    def __init__(self) -> None:
        for name in _COUNTERS:
            setattr(self, name, 0)


class Worker:
    """Runs ``handlers`` (event handler name -> ``callable(event) -> result``) on ``threads``
    threads that poll ``channel``.

    A handler's return value (JSON-serialisable) completes the event. An exception fails it:
    ``error_type`` is the exception's class name, ``message`` its text, the traceback goes into
    ``metadata``, and ``retryable`` is the exception's ``retryable`` attribute when it has one, else
    True. An event whose handler name is unknown fails with ``handler_not_found``, not retryable.
    A complete that finds the event no longer pending (it timed out meanwhile) is counted in
    ``counts["late"]``, not raised.

    Threads wait in slices of ``poll_interval`` seconds (never holding the GIL while they wait),
    so ``stop()`` and Ctrl-C act within a fraction of a second; an event already being handled is
    finished first. ``batch`` > 1 takes up to that many events per poll.
    """

    def __init__(
        self,
        channel: Channel,
        handlers: Mapping[str, Handler],
        *,
        threads: int = 4,
        batch: int = 1,
        poll_interval: float = 0.05,
        name: str = "tasker-worker",
    ) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        if batch < 1:
            raise ValueError("batch must be >= 1")
        for key, fn in handlers.items():
            if not callable(fn):
                raise TypeError(f"handler {key!r} is not callable")
        self.channel = channel
        self.handlers: dict[str, Handler] = dict(handlers)
        self.threads = threads
        self.batch = batch
        self.poll_interval = poll_interval
        self.name = name
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counts: list[_Counts] = []
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    # ---- control ----

    def start(self) -> Worker:
        """Start the threads (once)."""
        with self._lock:
            if self._threads:
                raise RuntimeError("Worker already started")
            for i in range(self.threads):
                counts = _Counts()
                self._counts.append(counts)
                t = threading.Thread(target=self._loop, args=(counts,), name=f"{self.name}-{i}", daemon=True)
                self._threads.append(t)
            for t in self._threads:
                t.start()
        return self

    def stop(self, timeout: float | None = None) -> bool:
        """Ask the threads to stop and wait up to ``timeout`` seconds (None: until they have).
        Returns True when every thread has ended."""
        self._stop.set()
        return self.join(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds for the threads to end; True when all have."""
        deadline = None if timeout is None else time.monotonic() + timeout
        me = threading.current_thread()
        for t in self._threads:
            if t is me:  # stop() called from a handler: this thread ends after the handler returns
                continue
            while t.is_alive():
                if deadline is None:
                    t.join(0.1)  # short slices: Ctrl-C in the main thread is not delayed
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    t.join(min(0.1, left))
        return True

    def run(self) -> None:
        """Start (if needed) and block until the channel is closed and drained, or ``stop()`` is
        called. Ctrl-C stops the threads and re-raises KeyboardInterrupt. An unexpected error in a
        worker thread stops the others and is re-raised here."""
        if not self._threads:
            self.start()
        try:
            self.join()
        except KeyboardInterrupt:
            self.stop()
            raise
        if self._error is not None:
            raise self._error

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    @property
    def error(self) -> BaseException | None:
        """The unexpected error that stopped the threads, if any."""
        return self._error

    @property
    def counts(self) -> dict[str, int]:
        """Totals over all threads: polled, completed, failed (handler raised), not_found,
        late (complete/fail found the event no longer pending), result_errors (a result the
        library refused, e.g. not JSON-serialisable or too large; the event was failed instead)."""
        return {name: sum(getattr(c, name) for c in self._counts) for name in _COUNTERS}

    def __enter__(self) -> Worker:
        if not self._threads:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the threads ----

    def _loop(self, counts: _Counts) -> None:
        ch = self.channel
        stop = self._stop
        interval = self.poll_interval
        batch = self.batch
        handle = self._handle
        from_dict = StepEvent.from_dict
        try:
            while not stop.is_set():
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
        except ChannelClosed:
            pass
        except BadHandle as exc:
            if not ch.closed:  # closed by us: the channel is gone, which ends the worker
                self._fatal(exc)
        except BaseException as exc:  # noqa: BLE001 - recorded and re-raised by run()
            self._fatal(exc)

    def _fatal(self, exc: BaseException | None) -> None:
        with self._lock:
            if self._error is None and exc is not None:
                self._error = exc
        self._stop.set()

    def _handle(self, ev: StepEvent, counts: _Counts) -> None:
        fn = self.handlers.get(ev.handler)
        if fn is None:
            counts.not_found += 1
            self._fail(ev, f"no handler registered for {ev.handler!r}", "handler_not_found", False, None, counts)
            return
        try:
            result = fn(ev)
        except BaseException as exc:
            counts.failed += 1
            retryable = getattr(exc, "retryable", True)
            metadata = {
                "exception": f"{type(exc).__module__}.{type(exc).__qualname__}",
                "traceback": traceback.format_exc(),
            }
            self._fail(ev, str(exc) or type(exc).__name__, type(exc).__name__, bool(retryable), metadata, counts)
            if not isinstance(exc, Exception):
                raise  # SystemExit and the like end this thread (after failing the event)
            return
        try:
            self.channel.complete(ev.event_id, result)
        except EventNotPending:
            counts.late += 1
            return
        except (TypeError, ValueError) as exc:  # not JSON-serialisable, TooLarge, InvalidArgument
            counts.result_errors += 1
            self._fail(ev, f"handler {ev.handler!r} returned a result that cannot be sent: {exc}",
                       type(exc).__name__, False, None, counts)
            return
        counts.completed += 1

    def _fail(self, ev: StepEvent, message: str, error_type: str, retryable: bool,
              metadata: dict[str, Any] | None, counts: _Counts) -> None:
        """Fail ``ev``; if the library refuses the document (too large for max_payload_bytes),
        retry with less, so that the event still ends now rather than at its timeout."""
        attempts = ((message, metadata), (message[:200], None), (error_type or "error", None))
        for msg, md in attempts:
            try:
                self.channel.fail(ev.event_id, msg, error_type=error_type, retryable=retryable, metadata=md)
                return
            except EventNotPending:
                counts.late += 1
                return
            except (TypeError, ValueError):  # TooLarge, InvalidArgument, unserialisable metadata
                continue
        # Nothing could be sent: the event stays pending and will end as a timeout.

