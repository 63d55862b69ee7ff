"""Logging (logger "tasker"), the stats callback of Worker, and trace ids on completions."""

from __future__ import annotations

import threading
import time
import unittest
import uuid

import tasker
from tasker.worker import COUNTERS


def wait_until(cond, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return False


class WorkerObservabilityTest(unittest.TestCase):
    def test_stats_callback_gets_channel_stats_and_counts_then_stops_with_the_worker(self) -> None:
        snapshots: list[dict] = []
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            threads = threading.active_count()
            ch.dispatch("x", 1)
            w = tasker.Worker(ch, {"x": lambda ev: ev.payload}, threads=1, stats_callback=snapshots.append,
                              stats_interval=0.02)
            with w:
                self.assertTrue(wait_until(lambda: len(snapshots) >= 3 and snapshots[-1]["worker"]["completed"] == 1))
            self.assertTrue(wait_until(lambda: threading.active_count() == threads), "the stats thread ends too")
            n = len(snapshots)
            time.sleep(0.08)
            self.assertEqual(len(snapshots), n, "no callback after stop")
        last = snapshots[-1]
        self.assertEqual(set(last["worker"]), set(COUNTERS))
        self.assertEqual(last["dispatched"], 1)
        self.assertIn("starvation_detected", last)

    def test_bad_stats_options(self) -> None:
        with tasker.Channel() as ch:
            with self.assertRaises(ValueError):
                tasker.Worker(ch, {}, stats_interval=0)
            with self.assertRaises(ValueError):
                tasker.Worker(ch, {}, stats_interval=float("nan"))
            with self.assertRaises(TypeError):
                tasker.Worker(ch, {}, stats_callback="print")  # type: ignore[arg-type]

    def test_a_callback_that_raises_is_logged_not_fatal(self) -> None:
        def bad(_stats: dict) -> None:
            raise RuntimeError("callback broke")

        with tasker.Channel(cleanup_interval_ms=0) as ch:
            with self.assertLogs("tasker.worker", level="ERROR") as logs:
                with tasker.Worker(ch, {}, threads=1, stats_callback=bad, stats_interval=0.01) as w:
                    time.sleep(0.05)
                    self.assertTrue(w.running)
        self.assertIn("stats_callback raised", "\n".join(logs.output))

    def test_start_stop_crash_and_late_are_logged(self) -> None:
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            def boom(ev: tasker.StepEvent) -> None:
                raise KeyError("nope")

            def ends_itself(ev: tasker.StepEvent) -> int:
                ch.fail(ev.event_id, "ended elsewhere first")
                return 1

            ch.dispatch("boom")
            ch.dispatch("late")
            with self.assertLogs("tasker", level="INFO") as logs:
                with tasker.Worker(ch, {"boom": boom, "late": ends_itself}, threads=1) as w:
                    self.assertTrue(wait_until(lambda: w.counts["failed"] == 1 and w.counts["late"] == 1))
        text = "\n".join(logs.output)
        self.assertRegex(text, r"INFO:tasker.worker:tasker-worker: started")
        self.assertRegex(text, r"ERROR:tasker.worker:.*handler 'boom' raised KeyError")
        self.assertIn("Traceback", text, "the handler's traceback is logged")
        self.assertRegex(text, r"WARNING:tasker.worker:.*late completion for event")
        self.assertRegex(text, r"INFO:tasker.worker:.*stopped")

    def test_starvation_logged_once_when_it_turns_true(self) -> None:
        with tasker.Channel(cleanup_interval_ms=0, starvation_warning_threshold_ms=10) as ch:
            ch.dispatch("held")
            held = ch.poll(1)
            assert held is not None
            ticks: list[dict] = []
            with self.assertLogs("tasker.worker", level="WARNING") as logs:
                with tasker.Worker(ch, {}, threads=1, stats_callback=ticks.append, stats_interval=0.02):
                    self.assertTrue(wait_until(lambda: len(ticks) >= 4))
            starving = [line for line in logs.output if "starvation detected" in line]
            self.assertEqual(len(starving), 1, logs.output)
            self.assertIn(held.event_id, starving[0])

    def test_the_tasker_logger_is_silent_by_default(self) -> None:
        import logging

        handlers = logging.getLogger("tasker").handlers
        self.assertTrue(any(isinstance(h, logging.NullHandler) for h in handlers))


class TraceIdsTest(unittest.TestCase):
    def test_completion_carries_trace_span_and_correlation(self) -> None:
        corr = str(uuid.uuid4())
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            a = ch.dispatch("h", trace_id="trace-a", span_id="span-a", correlation_id=corr)
            b = ch.dispatch("h")
            for _ in range(2):
                ev = ch.poll(1)
                assert ev is not None
                ch.complete(ev.event_id)
            got = {c.event_id: c for c in (ch.next_completion(1) for _ in range(2)) if c}
        self.assertEqual((got[a].trace_id, got[a].span_id, got[a].correlation_id), ("trace-a", "span-a", corr))
        self.assertEqual((got[b].trace_id, got[b].span_id), (None, None))


if __name__ == "__main__":
    unittest.main()
