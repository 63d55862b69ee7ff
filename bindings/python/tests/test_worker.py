from __future__ import annotations

import threading
import time
import unittest

import tasker
from tasker import StepEvent


class NotNow(Exception):
    retryable = False


def collect(ch: tasker.Channel, ids: list[str], limit: float = 20.0) -> dict[str, tasker.Completion]:
    """Take completions until every id has one (generous 'did not hang' limit)."""
    got: dict[str, tasker.Completion] = {}
    deadline = time.monotonic() + limit
    while len(got) < len(ids) and time.monotonic() < deadline:
        c = ch.next_completion(0.2)
        if c is not None:
            assert c.event_id not in got, "a second completion for one event"
            got[c.event_id] = c
    return got


class WorkerTest(unittest.TestCase):
    def setUp(self) -> None:
        self.ch = tasker.Channel(handler_timeout_ms=10_000)

    def tearDown(self) -> None:
        self.ch.close()

    def handlers(self) -> dict[str, tasker.Handler]:
        def double(ev: StepEvent) -> object:
            return {"doubled": ev.payload * 2, "thread": threading.current_thread().name}

        def boom(ev: StepEvent) -> object:
            raise ValueError(f"bad input {ev.payload}")

        def not_now(ev: StepEvent) -> object:
            raise NotNow("try elsewhere")

        def unserialisable(ev: StepEvent) -> object:
            return {1, 2}

        return {"double": double, "boom": boom, "not_now": not_now, "unserialisable": unserialisable}

    def run_mix(self, **worker_kw: object) -> None:
        ch = self.ch
        ok = [ch.dispatch("double", i) for i in range(20)]
        bad = [ch.dispatch("boom", i) for i in range(5)]
        nn = ch.dispatch("not_now")
        missing = [ch.dispatch("nobody_home") for _ in range(3)]
        unser = ch.dispatch("unserialisable")
        ids = ok + bad + [nn] + missing + [unser]
        with tasker.Worker(ch, self.handlers(), **worker_kw) as w:  # type: ignore[arg-type]
            got = collect(ch, ids)
        self.assertFalse(w.running)
        self.assertEqual(set(got), set(ids))
        for i, eid in enumerate(ok):
            c = got[eid]
            self.assertEqual((c.status, c.result["doubled"]), ("completed", i * 2))
        for i, eid in enumerate(bad):
            c = got[eid]
            assert c.error is not None
            self.assertEqual((c.status, c.error.error_type, c.error.retryable), ("failed", "ValueError", True))
            self.assertEqual(c.error.message, f"bad input {i}")
            self.assertEqual(c.metadata["exception"], "builtins.ValueError")
            self.assertTrue(any("in boom" in line for line in c.metadata["backtrace"]), c.metadata)
        c = got[nn]
        assert c.error is not None
        self.assertEqual((c.error.error_type, c.error.retryable), ("NotNow", False))
        for eid in missing:
            c = got[eid]
            assert c.error is not None
            self.assertEqual((c.status, c.error.error_type, c.error.retryable), ("failed", "handler_not_found", False))
            self.assertIn("nobody_home", c.error.message)
        c = got[unser]
        assert c.error is not None
        self.assertEqual((c.status, c.error.error_type, c.error.retryable), ("failed", "result_not_json", False))
        counts = w.counts
        self.assertEqual(counts["polled"], len(ids))
        self.assertEqual(counts["completed"], 20)
        self.assertEqual(counts["failed"], 10)  # 5 boom + not_now + 3 not found + 1 result error
        self.assertEqual(counts["not_found"], 3)
        self.assertEqual(counts["result_errors"], 1)
        self.assertEqual((counts["late"], counts["errors"]), (0, 0))

    def test_succeeding_raising_and_unknown_handlers(self) -> None:
        self.run_mix(threads=3)

    def test_batch(self) -> None:
        self.run_mix(threads=2, batch=8)

    def test_run_returns_when_channel_closes(self) -> None:
        ch = self.ch
        ids = [ch.dispatch("double", i) for i in range(10)]
        w = tasker.Worker(ch, self.handlers(), threads=2)
        threading.Timer(0.3, lambda: ch.shutdown(drain=5.0)).start()
        t0 = time.monotonic()
        w.run()  # blocks until the channel is shut down and drained
        self.assertLess(time.monotonic() - t0, 15.0)
        self.assertEqual(len(collect(ch, ids)), 10)
        self.assertIsNone(w.error)

    def test_stop_is_prompt(self) -> None:
        w = tasker.Worker(self.ch, {}, threads=4).start()
        time.sleep(0.1)
        self.assertTrue(w.running)
        t0 = time.monotonic()
        self.assertTrue(w.stop(timeout=10.0))
        self.assertLess(time.monotonic() - t0, 10.0)  # did not hang
        self.assertFalse(w.running)
        with self.assertRaises(RuntimeError):
            w.start()

    def test_run_returns_on_stop_from_another_thread(self) -> None:
        w = tasker.Worker(self.ch, {}, threads=2)
        threading.Timer(0.2, w.stop).start()
        w.run()
        self.assertFalse(w.running)

    def test_worker_ends_when_channel_is_closed(self) -> None:
        w = tasker.Worker(self.ch, {}, threads=2).start()
        time.sleep(0.1)
        self.ch.close()
        self.assertTrue(w.join(timeout=10.0))
        self.assertIsNone(w.error)

    def test_arguments_are_checked(self) -> None:
        with self.assertRaises(ValueError):
            tasker.Worker(self.ch, {}, threads=0)
        with self.assertRaises(TypeError):
            tasker.Worker(self.ch, {"x": 42})  # type: ignore[dict-item]


class TimeoutTest(unittest.TestCase):
    def test_cleanup_timeouts_makes_timeout_completions(self) -> None:
        with tasker.Channel(cleanup_interval_ms=0) as ch:  # reaper off: only our call expires it
            eid = ch.dispatch("slow", timeout_ms=30)
            ev = ch.poll(1.0)
            assert ev is not None
            self.assertEqual(ev.timeout_ms, 30)
            self.assertEqual(ch.cleanup_timeouts(), 0)
            time.sleep(0.1)
            self.assertEqual(ch.cleanup_timeouts(), 1)
            c = ch.next_completion(1.0)
            assert c is not None and c.error is not None
            self.assertEqual((c.event_id, c.status, c.success), (eid, "timeout", False))
            self.assertEqual((c.error.error_type, c.error.retryable), ("ffi_timeout", True))
            with self.assertRaises(tasker.EventNotPending):
                ch.complete(eid, "too late")
            st = ch.stats()
            self.assertEqual((st["timed_out"], st["late_completions"]), (1, 1))

    def test_reaper_and_worker_late_complete_is_counted(self) -> None:
        with tasker.Channel(cleanup_interval_ms=20) as ch:
            def hang(ev: StepEvent) -> str:
                time.sleep(0.3)
                return "finished after the deadline"

            ids = [ch.dispatch("hang", timeout_ms=50) for _ in range(2)] + [ch.dispatch("fast", 1)]
            with tasker.Worker(ch, {"hang": hang, "fast": lambda ev: ev.payload}, threads=3) as w:
                got = collect(ch, ids)
                deadline = time.monotonic() + 10
                while w.counts["late"] < 2 and time.monotonic() < deadline:
                    time.sleep(0.02)
            self.assertEqual([got[i].status for i in ids], ["timeout", "timeout", "completed"])
            self.assertEqual(w.counts["late"], 2)
            self.assertIsNone(w.error)
            self.assertIsNone(ch.next_completion(0.1))  # exactly one completion each


class WorkerStopFromHandlerTest(unittest.TestCase):
    def test_handler_may_stop_its_worker(self) -> None:
        with tasker.Channel() as ch:
            holder: list[tasker.Worker] = []

            def stopper(ev: StepEvent) -> str:
                holder[0].stop(timeout=5.0)
                return "stopping"

            w = tasker.Worker(ch, {"stop": stopper}, threads=2)
            holder.append(w)
            eid = ch.dispatch("stop")
            w.run()  # returns because the handler stopped the worker
            c = ch.next_completion(5.0)
            self.assertEqual((c.event_id, c.result) if c else None, (eid, "stopping"))
            self.assertIsNone(w.error)


if __name__ == "__main__":
    unittest.main()
