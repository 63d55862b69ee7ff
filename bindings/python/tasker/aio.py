"""tasker.aio — asyncio for libtasker, through the library's readiness descriptors.

No thread per waiter: an ``AsyncChannel`` registers each of the channel's two readiness descriptors
(``tasker_event_fd``, ``tasker_completion_fd``) with the event loop (``loop.add_reader``) while some
coroutine waits on it, and when the descriptor turns readable it takes the work with the ordinary
non-blocking call and hands it to the longest-waiting coroutine. A thousand coroutines waiting on
one loop cost a thousand futures, one registration per descriptor and no thread.

    import asyncio, tasker
    from tasker.aio import AsyncChannel, AsyncWorker

    async def resize(event):                      # async def handlers run on the loop
        await asyncio.sleep(0.01)
        return {"width": event.payload["width"] // 2}

    async def main():
        async with AsyncChannel(handler_timeout_ms=5_000) as ch:
            await ch.dispatch("resize", {"width": 640})
            async with AsyncWorker(ch, {"resize": resize}, concurrency=50):
                print((await ch.next_completion(timeout=5.0)).result)   # {'width': 320}

    asyncio.run(main())

An ``AsyncChannel`` belongs to the event loop that first waits on it; it may be used from that loop
only (the underlying ``Channel`` may still be used from any thread). Every waiting method takes a
``timeout`` in seconds (``None``: no limit, ``0``: do not wait) and returns ``None`` when nothing
arrived in time, like the blocking ``Channel`` methods.

Cancellation loses nothing: if a waiting coroutine is cancelled at the very moment an event or a
completion was handed to it, the item is kept and the next ``poll`` / ``next_completion`` on the same
``AsyncChannel`` returns it.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections import deque
from typing import Any, AsyncIterator, Awaitable, Callable, Deque, Generic, Mapping, TypeVar, Union

from ._errors import BadHandle, ChannelClosed, QueueFull
from ._observe import StatsCallback, StatsMonitor, check_stats_options
from ._observe import logger as _root_logger
from .channel import Channel
from .events import Completion, StepEvent
from .worker import COUNTERS, Worker, _Counts

__all__ = ["AsyncChannel", "AsyncWorker", "AsyncHandler"]

T = TypeVar("T")

log = _root_logger.getChild("aio")

AsyncHandler = Callable[[StepEvent], Union[Awaitable[Any], Any]]
"""A handler of an ``AsyncWorker``: ``async def handler(event) -> result`` (or a plain function,
which then runs on the loop and must not block)."""


def readiness_fd(channel: Channel, which: str) -> int:
    """``channel.readiness_fd(which)``: the library's readiness descriptor for "events" or
    "completions" (level-triggered; the library owns it: wait on it only, or on an ``os.dup()``)."""
    return channel.readiness_fd(which)


# ---- one descriptor, many waiters ----


class _Waiter(Generic[T]):
    __slots__ = ("fut", "take", "timer")

    def __init__(self, fut: asyncio.Future[T | None], take: Callable[[], T | None]) -> None:
        self.fut = fut
        self.take = take
        self.timer: asyncio.TimerHandle | None = None


class _Gate:
    """The coroutines waiting on one readiness descriptor, in arrival order.

    The loop watches our own ``dup()`` of the library's descriptor, so that the registration stays
    valid even when the library closes its descriptor (at destroy, the dup stays readable). When it
    is readable, ``_ready`` takes items for the waiters at the front with their ``take`` function
    (the non-blocking call) until one returns None (nothing left: a spurious wake-up or work taken
    elsewhere, so wait again) — one take per item handed out, no herd."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop = loop
        self.fd = os.dup(fd)
        self.waiters: Deque[_Waiter[Any]] = deque()
        self.registered = False
        self.closed = False

    def live(self) -> bool:
        """Whether some coroutine is waiting (not counting cancelled or timed-out ones)."""
        ws = self.waiters
        while ws and ws[0].fut.done():
            ws.popleft()
        return bool(ws)

    def wait(self, take: Callable[[], T | None], timeout: float | None) -> asyncio.Future[T | None]:
        fut: asyncio.Future[T | None] = self.loop.create_future()
        w: _Waiter[T] = _Waiter(fut, take)
        if timeout is not None:
            timer = w.timer = self.loop.call_later(max(timeout, 0.0), _expire, fut)

            def stop_timer(_f: asyncio.Future[T | None]) -> None:
                timer.cancel()

            fut.add_done_callback(stop_timer)
        self.waiters.append(w)
        if not self.registered:
            self.loop.add_reader(self.fd, self._ready)
            self.registered = True
        return fut

    def _ready(self) -> None:
        ws = self.waiters
        while ws:
            w = ws[0]
            if w.fut.done():  # cancelled or timed out
                ws.popleft()
                continue
            try:
                item = w.take()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiter (CLOSED, EBADF, ...)
                ws.popleft()
                w.fut.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            if item is None:
                return  # nothing now: keep waiting (level-triggered: we are called again when readable)
            ws.popleft()
            w.fut.set_result(item)
        self._unregister()

    def _unregister(self) -> None:
        if self.registered:
            self.loop.remove_reader(self.fd)
            self.registered = False

    def close(self) -> None:
        """Serve the waiters one last time (after destroy every take raises), fail any that are
        left, stop watching and close our dup."""
        if self.closed:
            return
        self._ready()
        for w in self.waiters:
            if not w.fut.done():
                w.fut.set_exception(BadHandle("the channel is closed (close() was called)", -2))
        self.waiters.clear()
        self._unregister()
        self.closed = True
        os.close(self.fd)


def _expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_result(None)


# ---- the channel ----


class AsyncChannel:
    """A ``Channel`` for asyncio: ``await poll()``, ``await next_completion()``, ``async for`` over
    ``events()`` and ``completions()``, ``await dispatch()`` — none of which blocks the loop or uses a
    thread.

    ``AsyncChannel(**config)`` makes and owns a new ``Channel``; ``AsyncChannel(channel)`` wraps an
    existing one. ``close()`` (or leaving ``async with``) closes the underlying channel either way.
    ``complete``, ``fail``, ``cleanup_timeouts`` and ``stats`` never wait and are plain methods.
    """

    def __init__(self, channel: Channel | None = None, /, **config: Any) -> None:
        if channel is not None and config:
            raise TypeError("give an existing Channel or config keys, not both")
        self.channel: Channel = channel if channel is not None else Channel(**config)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gates: dict[str, _Gate] = {}
        self._events: Deque[StepEvent] = deque()  # handed to a waiter that was cancelled: next poll gets them
        self._completions: Deque[Completion] = deque()

    # ---- plumbing ----

    def _gate(self, which: str) -> _Gate:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("this AsyncChannel is bound to another event loop (make one per loop)")
        gate = self._gates.get(which)
        if gate is None:
            gate = self._gates[which] = _Gate(loop, readiness_fd(self.channel, which))
        return gate

    async def _take(self, which: str, take: Callable[[], T | None], timeout: float | None,
                    keep: Callable[[Any], None]) -> T | None:
        gate = self._gate(which)
        if not gate.live():  # nobody is queued ahead of us: try at once
            item = take()
            if item is not None or timeout == 0:
                return item
        elif timeout == 0:
            return None
        fut = gate.wait(take, timeout)
        try:
            return await fut
        except asyncio.CancelledError:
            # cancelled after the item was handed over but before we resumed: keep it
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                item = fut.result()
                if item is not None:
                    keep(item)
            raise

    def _poll_now(self) -> StepEvent | None:
        return self.channel.poll(0)

    def _next_now(self) -> Completion | None:
        return self.channel.next_completion(0)

    # ---- lifecycle ----

    @property
    def closed(self) -> bool:
        return self.channel.closed

    def close(self) -> None:
        """Close the underlying channel (tasker_destroy) and release the descriptors' registrations.
        Coroutines still waiting get ``BadHandle``."""
        try:
            self.channel.close()
        finally:
            for gate in self._gates.values():
                gate.close()

    async def __aenter__(self) -> AsyncChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tasker.aio.AsyncChannel {self.channel!r}>"

    # ---- producing ----

    async def dispatch(self, handler: str, payload: Any = None, *, wait: float | None = 0.0, **fields: Any) -> str:
        """``Channel.dispatch`` (same keyword fields: task_uuid, step_uuid, event_id, correlation_id,
        timeout_ms, trace_id, span_id, payload_json) that never blocks the loop. ``wait`` seconds
        (``None``: no limit) for room in a full dispatch queue: there is no descriptor for room, so it
        retries with short sleeps (1 ms doubling to 50 ms), then raises ``QueueFull``."""
        loop = asyncio.get_running_loop()
        deadline = None if wait is None else loop.time() + max(wait, 0.0)
        delay = 0.001
        while True:
            try:
                return self.channel.dispatch(handler, payload, wait=0.0, **fields)
            except QueueFull:
                if deadline is not None and loop.time() >= deadline:
                    raise
            pause = delay if deadline is None else min(delay, max(deadline - loop.time(), 0.0))
            await asyncio.sleep(pause)
            delay = min(delay * 2, 0.05)

    # ---- working ----

    async def poll(self, timeout: float | None = None) -> StepEvent | None:
        """Take one event; ``None`` if none arrived within ``timeout`` seconds (``None``: wait until
        one arrives or the channel shuts down). Raises ``ChannelClosed`` once shut down and drained."""
        if self._events:
            return self._events.popleft()
        return await self._take("events", self._poll_now, timeout, self._events.append)

    async def poll_batch(self, max_events: int, timeout: float | None = None) -> list[StepEvent]:
        """Take up to ``max_events`` events, waiting only for the first; ``[]`` if none arrived."""
        if self._events:
            n = min(max_events, len(self._events))
            return [self._events.popleft() for _ in range(n)]
        ch = self.channel

        def take() -> list[StepEvent] | None:
            return ch.poll_batch(max_events, 0) or None

        got = await self._take("events", take, timeout, self._events.extend)
        return got or []

    def complete(self, event_id: str, result: Any = None, *, metadata: Mapping[str, Any] | None = None) -> None:
        """``Channel.complete`` (never waits)."""
        self.channel.complete(event_id, result, metadata=metadata)

    def fail(self, event_id: str, message: str, *, error_type: str = "handler_error", retryable: bool = True,
             metadata: Mapping[str, Any] | None = None) -> None:
        """``Channel.fail`` (never waits)."""
        self.channel.fail(event_id, message, error_type=error_type, retryable=retryable, metadata=metadata)

    def cleanup_timeouts(self) -> int:
        return self.channel.cleanup_timeouts()

    def events(self, timeout: float | None = None) -> AsyncIterator[StepEvent]:
        """``async for event in ch.events()``: every event until the channel is shut down and drained
        (or closed); with a ``timeout``, also ends when none arrives within it. Each event must be
        completed or failed."""
        return self._until_closed(lambda: self.poll(timeout))

    async def _until_closed(self, take: Callable[[], Awaitable[T | None]]) -> AsyncIterator[T]:
        """What ``take`` returns, until it returns ``None`` (its timeout passed), the channel is shut
        down and drained (ChannelClosed) or this channel was closed (BadHandle then)."""
        while True:
            try:
                x = await take()
            except ChannelClosed:
                return
            except BadHandle:
                if self.closed:
                    return
                raise
            if x is None:
                return
            yield x

    # ---- consuming ----

    async def next_completion(self, timeout: float | None = None) -> Completion | None:
        """Take the next completion; ``None`` if none arrived within ``timeout`` seconds. Raises
        ``ChannelClosed`` once every event has ended and the stream is empty."""
        if self._completions:
            return self._completions.popleft()
        return await self._take("completions", self._next_now, timeout, self._completions.append)

    def completions(self, timeout: float | None = None) -> AsyncIterator[Completion]:
        """``async for c in ch.completions()``: every completion until the channel is shut down and
        drained (or closed); with a ``timeout``, also ends when none arrives within it."""
        return self._until_closed(lambda: self.next_completion(timeout))

    # ---- shutdown and observation ----

    async def shutdown(self, drain: float | None = 0.0) -> None:
        """``Channel.shutdown``. With ``drain`` 0 it returns at once; a drain must wait inside the
        library until every event has ended, which runs in the loop's default executor (one thread,
        the only one this module ever uses) so that the loop — and the workers draining — go on."""
        if drain == 0:
            self.channel.shutdown(0)
            return
        await asyncio.get_running_loop().run_in_executor(None, self.channel.shutdown, drain)

    def stats(self) -> dict[str, Any]:
        return self.channel.stats()


# ---- the worker ----


class AsyncWorker:
    """Runs ``async def`` handlers for a channel's events on one event loop, at most ``concurrency``
    at a time (the bound; the channel's ``max_concurrent_handlers`` bounds all workers together).

    Results, failures, counters and logging follow ``Worker`` (bindings/SPEC.md): the return value
    completes the event; an exception fails it (error_type, message, retryable and metadata as
    ``Worker``); an unknown handler name fails with ``handler_not_found``; a result that is not JSON
    or too large fails with ``result_not_json`` / ``result_too_large``; a result for an event that
    already ended counts in ``counts["late"]`` and is logged. In addition, a coroutine still running
    at its event's ``timeout_ms`` is cancelled and the event fails with ``handler_timeout``
    (retryable), which frees its slot. A plain (non-async) handler runs on the loop and must not
    block.

    ``run()`` works until the channel is shut down and drained (or closed) or ``stop()`` is called,
    then waits for the handlers that are running. ``async with AsyncWorker(...)`` runs it in the
    background and stops it (waiting for running handlers) at the end of the block.

    ``stats_callback(stats)`` is called every ``stats_interval`` seconds (default 5) from a loop
    timer with the channel's stats plus ``"worker": counts``; the same tick logs a warning when
    ``starvation_detected`` turns true. Log records go to the ``"tasker.aio"`` and
    ``"tasker.worker"`` loggers.
    """

    def __init__(
        self,
        channel: AsyncChannel | Channel,
        handlers: Mapping[str, AsyncHandler],
        *,
        concurrency: int = 10,
        name: str = "tasker-async-worker",
        stats_callback: StatsCallback | None = None,
        stats_interval: float | None = None,
    ) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1, not {concurrency!r}")
        for key, fn in handlers.items():
            if not callable(fn):
                raise TypeError(f"handler {key!r} is not callable")
        self.channel: AsyncChannel = channel if isinstance(channel, AsyncChannel) else AsyncChannel(channel)
        self.handlers: dict[str, AsyncHandler] = dict(handlers)
        self.concurrency = concurrency
        self.name = name
        self._interval = check_stats_options(stats_callback, stats_interval)
        self._stats_callback = stats_callback
        # Ends events exactly as a Worker does (never started: no thread of its own).
        self._ender = Worker(self.channel.channel, {}, threads=1, name=name)
        self._counts = _Counts()
        self._stopping = False
        self._poll: asyncio.Future[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def counts(self) -> dict[str, int]:
        """As ``Worker.counts``: polled, completed, failed, late, not_found, result_errors, errors."""
        return {name: getattr(self._counts, name) for name in COUNTERS}

    @property
    def last_error(self) -> BaseException | None:
        """The last unexpected error while ending an event (counted in counts["errors"])."""
        return self._ender.last_error

    @property
    def running(self) -> int:
        """Handlers running now."""
        return len(self._running)

    def stop(self) -> None:
        """Ask ``run()`` to take no more events; it returns once the running handlers finished."""
        self._stopping = True
        if self._poll is not None and not self._poll.done():
            self._poll.cancel()

    async def __aenter__(self) -> AsyncWorker:
        self._task = asyncio.get_running_loop().create_task(self.run(), name=self.name)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        if self._task is not None:
            await self._task

    async def run(self) -> None:
        """Take events and run their handlers until the channel is shut down and drained (or closed)
        or ``stop()`` is called; then wait for the running handlers."""
        loop = asyncio.get_running_loop()
        ach = self.channel
        slots = asyncio.Semaphore(self.concurrency)
        monitor = StatsMonitor(self.name, ach.stats, lambda: self.counts, self._stats_callback,
                               self._interval, log)
        timer: list[asyncio.TimerHandle] = []

        def tick() -> None:
            monitor.tick()
            timer[:] = [loop.call_later(monitor.interval, tick)]

        timer.append(loop.call_later(monitor.interval, tick))
        log.info("%s: started (concurrency %d, handlers %s)", self.name, self.concurrency, sorted(self.handlers))
        reason = "stopped"
        try:
            while not self._stopping:
                await slots.acquire()
                if self._stopping:
                    slots.release()
                    break
                self._poll = poll = loop.create_task(ach.poll(None))
                try:
                    ev = await poll
                except asyncio.CancelledError:
                    slots.release()
                    if self._stopping and poll.cancelled():
                        break
                    raise
                except ChannelClosed:
                    slots.release()
                    reason = "channel shut down and drained"
                    break
                except BadHandle:
                    slots.release()
                    if ach.closed:
                        reason = "channel closed"
                        break
                    raise
                finally:
                    self._poll = None
                if ev is None:  # cannot happen with no timeout; be safe
                    slots.release()
                    continue
                self._start(loop, ev, slots)
        finally:
            # events handed to the poll we cancelled are pending: run them rather than abandon them
            while ach._events:
                self._start(loop, ach._events.popleft(), None)
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)
            for h in timer:
                h.cancel()
            log.info("%s: %s; counts %s", self.name, reason, self.counts)

    def _start(self, loop: asyncio.AbstractEventLoop, ev: StepEvent, slots: asyncio.Semaphore | None) -> None:
        self._counts.polled += 1
        t = loop.create_task(self._handle(ev))
        self._running.add(t)

        def done(t: asyncio.Task[None]) -> None:
            self._running.discard(t)
            if slots is not None:
                slots.release()

        t.add_done_callback(done)

    async def _handle(self, ev: StepEvent) -> None:
        ender, counts = self._ender, self._counts
        fn = self.handlers.get(ev.handler)
        if fn is None:
            ender._fail(ev, f"no handler registered for {ev.handler!r}", "handler_not_found", False, None, counts,
                        "not_found")
            return
        try:
            result = fn(ev)
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                done, _ = await asyncio.wait({task}, timeout=ev.timeout_ms / 1000.0)
                if not done:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    log.warning("%s: handler %r for event %s did not finish within its %d ms: cancelled",
                                self.name, ev.handler, ev.event_id, ev.timeout_ms)
                    ender._fail(ev, f"handler {ev.handler!r} did not finish within {ev.timeout_ms} ms",
                                "handler_timeout", True, None, counts)
                    return
                result = task.result()
        except asyncio.CancelledError:
            ender._fail(ev, "the worker was cancelled while the handler ran", "worker_killed", True, None, counts)
            raise
        except BaseException as exc:  # noqa: BLE001 - fails this event only, as in Worker
            ender._crashed(ev, exc, counts)
            return
        ender._complete(ev, result, counts)
