"""tasker.aio: asyncio through the readiness descriptors — no thread per waiter, nothing lost."""

from __future__ import annotations

import asyncio
import logging
import os
import select
import threading
import unittest

import tasker
from tasker.aio import AsyncChannel, AsyncWorker, readiness_fd

from ._util import wait_child


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 60))


def readable(fd: int) -> bool:
    r, _, _ = select.select([fd], [], [], 0)
    return bool(r)


class ReadinessFdTest(unittest.TestCase):
    def test_fd_is_readable_exactly_while_poll_would_succeed(self) -> None:
        with tasker.Channel(max_concurrent_handlers=1, cleanup_interval_ms=0) as ch:
            efd = readiness_fd(ch, "events")
            cfd = readiness_fd(ch, "completions")
            self.assertEqual(efd, readiness_fd(ch, "events"))
            self.assertEqual(efd, ch.readiness_fd("events"))
            self.assertEqual(cfd, ch.readiness_fd("completions"))
            self.assertFalse(readable(efd))
            ch.dispatch("h")
            ch.dispatch("h")
            self.assertTrue(readable(efd))
            ev = ch.poll(0)
            self.assertIsNotNone(ev)
            self.assertFalse(readable(efd), "the running bound (1) is reached: poll would be EMPTY")
            self.assertIsNone(ch.poll(0))
            ch.complete(ev.event_id, 1)  # type: ignore[union-attr]
            self.assertTrue(readable(efd) and readable(cfd))
            self.assertIsNotNone(ch.next_completion(0))
            self.assertFalse(readable(cfd))
            ch.shutdown(0)
            self.assertTrue(readable(efd) and readable(cfd), "CLOSED is readable")
        with self.assertRaises(tasker.BadHandle):
            readiness_fd(ch, "events")
        with self.assertRaises(ValueError):
            readiness_fd(ch, "nope")

    def test_forked_child_gets_forked_error(self) -> None:
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            readiness_fd(ch, "events")
            pid = os.fork()
            if pid == 0:  # the child: never touch the parent's descriptor
                try:
                    readiness_fd(ch, "events")
                except tasker.ForkedError:
                    os._exit(0)
                except BaseException:  # noqa: BLE001
                    os._exit(2)
                os._exit(1)
            self.assertEqual(wait_child(pid), 0, "readiness_fd in a forked child raises ForkedError")


class AsyncChannelTest(unittest.TestCase):
    def test_thousand_waiters_on_one_loop_no_threads_exactly_once(self) -> None:
        n = 1000

        async def main() -> None:
            async with AsyncChannel(dispatch_buffer_size=n, completion_buffer_size=n, max_concurrent_handlers=n,
                                    cleanup_interval_ms=0) as ach:
                threads = threading.active_count()
                got: list[str] = []

                async def worker() -> None:
                    ev = await ach.poll(timeout=30)
                    assert ev is not None
                    got.append(ev.event_id)
                    ach.complete(ev.event_id, {"n": ev.payload})

                seen: list[str] = []

                async def consumer() -> None:
                    c = await ach.next_completion(timeout=30)
                    assert c is not None
                    seen.append(c.event_id)

                tasks = [asyncio.create_task(worker()) for _ in range(n)]
                tasks += [asyncio.create_task(consumer()) for _ in range(n)]
                for _ in range(5):
                    await asyncio.sleep(0)
                self.assertEqual(len(ach._gates["events"].waiters), n, "every poller waits on the one descriptor")
                self.assertEqual(len(ach._gates["completions"].waiters), n)
                self.assertLessEqual(threading.active_count(), threads, "no thread per waiter")
                ids = [await ach.dispatch("h", i) for i in range(n)]
                await asyncio.gather(*tasks)
                self.assertLessEqual(threading.active_count(), threads, "no thread per waiter")
                self.assertEqual(sorted(got), sorted(ids), "each event handed to exactly one waiter")
                self.assertEqual(sorted(seen), sorted(ids), "each completion handed to exactly one waiter")
                st = ach.stats()
                self.assertEqual((st["completed"], st["pending"], st["undelivered"]), (n, 0, 0))

        run(main())

    def test_timeout_returns_none_and_zero_does_not_wait(self) -> None:
        async def main() -> None:
            async with AsyncChannel(cleanup_interval_ms=0) as ach:
                self.assertIsNone(await ach.poll(0))
                self.assertIsNone(await ach.poll(0.05))
                self.assertIsNone(await ach.next_completion(0.05))
                self.assertEqual(await ach.poll_batch(5, 0.01), [])
                self.assertFalse(ach._gates["events"].live())

        run(main())

    def test_cancelled_waiter_loses_nothing(self) -> None:
        async def main() -> None:
            async with AsyncChannel(cleanup_interval_ms=0) as ach:
                t = asyncio.create_task(ach.poll(10))
                await asyncio.sleep(0)
                eid = await ach.dispatch("h")
                ach._gates["events"]._ready()  # the event is handed to t's future now...
                t.cancel()  # ...and t is cancelled before it resumes
                with self.assertRaises(asyncio.CancelledError):
                    await t
                ev = await ach.poll(0)
                self.assertIsNotNone(ev, "the event handed to the cancelled waiter is kept for the next poll")
                self.assertEqual(ev.event_id, eid)  # type: ignore[union-attr]
                ach.complete(eid)
                c = await ach.next_completion(5)
                self.assertEqual(c.status, "completed")  # type: ignore[union-attr]

        run(main())

    def test_shutdown_wakes_waiters_and_async_for_ends(self) -> None:
        async def main() -> None:
            async with AsyncChannel(cleanup_interval_ms=0) as ach:
                eid = await ach.dispatch("h")
                events = [ev async for ev in ach.events(timeout=0.05)]
                self.assertEqual([e.event_id for e in events], [eid])
                ach.complete(eid, "r")
                pollers = [asyncio.create_task(ach.poll()) for _ in range(3)]
                comps = asyncio.create_task(self._collect(ach))
                await asyncio.sleep(0.05)
                await ach.shutdown(0)
                for p in pollers:
                    with self.assertRaises(tasker.ChannelClosed):
                        await p
                done = await comps
                self.assertEqual([c.event_id for c in done], [eid])
                self.assertEqual([e async for e in ach.events()], [])

        run(main())

    async def _collect(self, ach: AsyncChannel) -> list[tasker.Completion]:
        return [c async for c in ach.completions()]

    def test_close_wakes_waiters_and_releases_descriptors(self) -> None:
        async def main() -> None:
            ach = AsyncChannel(cleanup_interval_ms=0)
            waiter = asyncio.create_task(ach.next_completion())
            await asyncio.sleep(0.01)
            gate = ach._gates["completions"]
            ach.close()
            with self.assertRaises(tasker.BadHandle):
                await waiter
            self.assertFalse(gate.registered)
            with self.assertRaises(OSError):
                os.fstat(gate.fd)  # our dup is closed
            self.assertEqual([c async for c in ach.completions()], [])

        run(main())

    def test_shutdown_with_drain_keeps_the_loop_running(self) -> None:
        async def main() -> None:
            async with AsyncChannel(cleanup_interval_ms=0) as ach:
                eid = await ach.dispatch("h")
                ev = await ach.poll(1)
                drain = asyncio.create_task(ach.shutdown(10.0))
                await asyncio.sleep(0.05)
                self.assertFalse(drain.done(), "drain waits for the pending event")
                ach.complete(ev.event_id, 7)  # type: ignore[union-attr]
                await drain
                self.assertEqual((await ach.next_completion(1)).event_id, eid)  # type: ignore[union-attr]

        run(main())

    def test_dispatch_waits_for_room_without_blocking(self) -> None:
        async def main() -> None:
            async with AsyncChannel(dispatch_buffer_size=1, cleanup_interval_ms=0) as ach:
                await ach.dispatch("h")
                with self.assertRaises(tasker.QueueFull):
                    await ach.dispatch("h", wait=0.02)
                later = asyncio.create_task(ach.dispatch("h", wait=5))
                await asyncio.sleep(0.02)
                self.assertFalse(later.done())
                await ach.poll(0)
                await later

        run(main())


class AsyncWorkerTest(unittest.TestCase):
    def test_handlers_concurrency_failures_and_counts(self) -> None:
        async def main() -> None:
            async with AsyncChannel(max_concurrent_handlers=50, cleanup_interval_ms=0) as ach:
                live = 0
                peak = 0

                async def slow(ev: tasker.StepEvent) -> dict[str, int]:
                    nonlocal live, peak
                    live += 1
                    peak = max(peak, live)
                    await asyncio.sleep(0.01)
                    live -= 1
                    return {"x": ev.payload * 2}

                class Nope(Exception):
                    retryable = False

                async def boom(ev: tasker.StepEvent) -> None:
                    raise Nope("no way")

                async def hang(ev: tasker.StepEvent) -> None:
                    await asyncio.sleep(60)

                def sync(ev: tasker.StepEvent) -> str:
                    return "plain"

                ids = {await ach.dispatch("slow", i): i for i in range(30)}
                boom_id = await ach.dispatch("boom")
                hang_id = await ach.dispatch("hang", timeout_ms=50)
                lost_id = await ach.dispatch("missing")
                sync_id = await ach.dispatch("sync")
                threads = threading.active_count()
                with self.assertLogs("tasker", level="INFO") as logs:
                    async with AsyncWorker(ach, {"slow": slow, "boom": boom, "hang": hang, "sync": sync},
                                           concurrency=4) as w:
                        comps = {}
                        while len(comps) < 34:
                            c = await ach.next_completion(10)
                            self.assertIsNotNone(c)
                            comps[c.event_id] = c  # type: ignore[union-attr]
                        self.assertLessEqual(threading.active_count(), threads, "no thread per handler")
                self.assertEqual(peak, 4, "at most `concurrency` handlers at once, and it is used")
                for eid, i in ids.items():
                    self.assertEqual((comps[eid].status, comps[eid].result), ("completed", {"x": i * 2}))
                self.assertEqual((comps[boom_id].status, comps[boom_id].error.error_type,  # type: ignore[union-attr]
                                  comps[boom_id].error.retryable), ("failed", "Nope", False))  # type: ignore[union-attr]
                self.assertEqual(comps[boom_id].metadata["exception"], "tests.test_aio.Nope")
                self.assertIn("in boom", comps[boom_id].metadata["backtrace"][0])
                self.assertEqual(comps[hang_id].error.error_type, "handler_timeout")  # type: ignore[union-attr]
                self.assertEqual(comps[lost_id].error.error_type, "handler_not_found")  # type: ignore[union-attr]
                self.assertEqual(comps[sync_id].result, "plain")
                self.assertEqual(w.counts, dict.fromkeys(tasker.worker.COUNTERS, 0) | {
                    "polled": 34, "completed": 31, "failed": 3, "not_found": 1})
                text = "\n".join(logs.output)
                self.assertIn("started", text)
                self.assertIn("handler 'boom' raised Nope", text)
                self.assertIn("did not finish", text)
                self.assertIn("stopped", text)

        run(main())

    def test_late_completion_is_counted_and_logged(self) -> None:
        async def main() -> None:
            async with AsyncChannel(cleanup_interval_ms=0) as ach:
                async def ends_itself(ev: tasker.StepEvent) -> int:
                    ach.fail(ev.event_id, "ended elsewhere first")
                    return 1

                await ach.dispatch("x")
                with self.assertLogs("tasker", level="WARNING") as logs:
                    async with AsyncWorker(ach, {"x": ends_itself}) as w:
                        c = await ach.next_completion(5)
                self.assertEqual(c.status, "failed")  # type: ignore[union-attr]
                self.assertEqual(w.counts["late"], 1)
                self.assertIn("late completion", "\n".join(logs.output))

        run(main())

    def test_stats_callback_and_starvation_warning(self) -> None:
        async def main() -> None:
            async with AsyncChannel(starvation_warning_threshold_ms=20, cleanup_interval_ms=0) as ach:
                await ach.dispatch("held")
                held = await ach.poll(1)  # pending and never completed: it starves
                snapshots: list[dict] = []
                with self.assertLogs("tasker.aio", level="WARNING") as logs:
                    async with AsyncWorker(ach, {}, stats_callback=snapshots.append, stats_interval=0.03):
                        while len(snapshots) < 3:
                            await asyncio.sleep(0.01)
                self.assertIn("starvation detected", "\n".join(logs.output))
                self.assertEqual(sum("starvation detected" in line for line in logs.output), 1,
                                 "logged once when it turns true, not on every tick")
                self.assertTrue(snapshots[-1]["starvation_detected"])
                self.assertEqual(snapshots[-1]["oldest_pending_event_id"], held.event_id)  # type: ignore[union-attr]
                self.assertEqual(set(snapshots[-1]["worker"]), set(tasker.worker.COUNTERS))

        run(main())

    def test_stop_while_idle_and_closed_channel_end_run(self) -> None:
        async def main() -> None:
            ach = AsyncChannel(cleanup_interval_ms=0)
            w = AsyncWorker(ach, {})
            t = asyncio.create_task(w.run())
            await asyncio.sleep(0.02)
            w.stop()
            await asyncio.wait_for(t, 5)
            t = asyncio.create_task(AsyncWorker(ach, {}).run())
            await asyncio.sleep(0.02)
            await ach.shutdown(0)
            await asyncio.wait_for(t, 5)  # ChannelClosed ends it
            ach.close()

        run(main())

    def test_bad_options(self) -> None:
        with tasker.Channel() as ch:
            with self.assertRaises(ValueError):
                AsyncWorker(ch, {}, concurrency=0)
            with self.assertRaises(TypeError):
                AsyncWorker(ch, {"x": 3})  # type: ignore[dict-item]
            with self.assertRaises(ValueError):
                AsyncWorker(ch, {}, stats_interval=0)
            with self.assertRaises(TypeError):
                AsyncWorker(ch, {}, stats_callback=5)  # type: ignore[arg-type]


if __name__ == "__main__":
    logging.basicConfig()
    unittest.main()
