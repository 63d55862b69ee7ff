from __future__ import annotations

import json
import threading
import time
import unittest
import uuid
from datetime import timedelta

import tasker
from tasker import Completion, StepEvent


class RoundTripTest(unittest.TestCase):
    def setUp(self) -> None:
        self.ch = tasker.Channel(handler_timeout_ms=10_000)

    def tearDown(self) -> None:
        self.ch.close()

    def test_decoded_round_trip(self) -> None:
        ch = self.ch
        task, step = uuid.uuid4(), str(uuid.uuid4())
        eid = ch.dispatch("resize", {"w": 640, "name": "é✓"}, task_uuid=task, step_uuid=step,
                          trace_id="t-1", span_id="s-1", timeout_ms=5000)
        self.assertEqual(len(eid), 36)
        ev = ch.poll(timeout=1.0)
        self.assertIsInstance(ev, StepEvent)
        assert ev is not None
        self.assertEqual(ev.event_id, eid)
        self.assertEqual(ev.task_uuid, str(task))
        self.assertEqual(ev.step_uuid, step)
        self.assertEqual(ev.handler, "resize")
        self.assertEqual(ev.payload, {"w": 640, "name": "é✓"})
        self.assertEqual(ev.timeout_ms, 5000)
        self.assertEqual((ev.trace_id, ev.span_id), ("t-1", "s-1"))
        self.assertEqual(len(ev.correlation_id), 36)
        self.assertLessEqual(ev.dispatched_datetime, ev.polled_datetime)
        ch.complete(ev.event_id, {"ok": [1, 2.5, None, "ü"]}, metadata={"host": "a"})
        c = ch.next_completion(timeout=1.0)
        self.assertIsInstance(c, Completion)
        assert c is not None
        self.assertEqual((c.event_id, c.status, c.success), (eid, "completed", True))
        self.assertEqual(c.result, {"ok": [1, 2.5, None, "ü"]})
        self.assertEqual(c.metadata, {"host": "a"})
        self.assertIsNone(c.error)
        self.assertEqual((c.task_uuid, c.step_uuid, c.correlation_id), (str(task), step, ev.correlation_id))
        self.assertIsInstance(c.execution_time_ms, float)
        self.assertEqual(c.polled_at, ev.polled_at)
        self.assertGreaterEqual(c.end_to_end_ms, c.queue_ms)  # type: ignore[operator]
        self.assertIsNone(ch.next_completion())
        self.assertIsNone(ch.poll())

    def test_fail_fields(self) -> None:
        ch = self.ch
        eid = ch.dispatch("x")
        ev = ch.poll(1.0)
        assert ev is not None
        self.assertIsNone(ev.payload)
        ch.fail(eid, "disk full", error_type="io_error", retryable=False, metadata={"disk": "/"})
        c = ch.next_completion(1.0)
        assert c is not None and c.error is not None
        self.assertEqual((c.status, c.success), ("failed", False))
        self.assertEqual((c.error.message, c.error.error_type, c.error.retryable), ("disk full", "io_error", False))
        self.assertEqual(c.metadata, {"disk": "/"})

    def test_raw_round_trip_and_numbers_as_written(self) -> None:
        ch = self.ch
        doc = ('{"task_uuid":"%s","step_uuid":"%s","handler":"raw","payload":{"big":12345678901234567890123,'
               '"f":1.10}}' % (uuid.uuid4(), uuid.uuid4())).encode()
        eid = ch.dispatch_raw(doc)
        raw = ch.poll_raw(1.0)
        assert raw is not None
        self.assertIsInstance(raw, bytes)
        self.assertIn(b'"big":12345678901234567890123', raw)
        self.assertIn(b'"f":1.10', raw)
        self.assertEqual(json.loads(raw)["event_id"], eid)
        ch.complete_raw(eid, b'{"success":true,"result":1.000000000000000000001}')
        craw = ch.next_completion_raw(1.0)
        assert craw is not None
        self.assertIn(b'"result":1.000000000000000000001', craw)

    def test_payload_json_passthrough(self) -> None:
        ch = self.ch
        ch.dispatch("p", payload_json=b'{"n":3.14159265358979323846}')
        raw = ch.poll_raw(1.0)
        assert raw is not None
        self.assertIn(b'"payload":{"n":3.14159265358979323846}', raw)
        with self.assertRaises(TypeError):
            ch.dispatch("p", 1, payload_json="1")

    def test_explicit_ids(self) -> None:
        ch = self.ch
        eid, corr = str(uuid.uuid4()), str(uuid.uuid4())
        self.assertEqual(ch.dispatch("h", event_id=eid, correlation_id=corr), eid)
        ev = ch.poll(1.0)
        assert ev is not None
        self.assertEqual((ev.event_id, ev.correlation_id), (eid, corr))

    def test_poll_batch(self) -> None:
        ch = self.ch
        ids = [ch.dispatch("b", i) for i in range(5)]
        evs = ch.poll_batch(3, timeout=1.0)
        self.assertEqual([e.event_id for e in evs], ids[:3])
        self.assertEqual([e.payload for e in evs], [0, 1, 2])
        raw = ch.poll_batch_raw(10, timeout=1.0)
        assert raw is not None
        self.assertEqual([d["event_id"] for d in json.loads(raw)], ids[3:])
        self.assertEqual(ch.poll_batch(10), [])
        for e in ids:
            ch.complete(e)
        got = [ch.next_completion(1.0) for _ in ids]
        self.assertEqual([c.event_id for c in got if c], ids)
        self.assertTrue(all(c is not None and c.result is None for c in got))

    def test_stats(self) -> None:
        ch = self.ch
        ch.dispatch("s")
        st = ch.stats()
        for key in ("dispatched", "polled", "completed", "failed", "timed_out", "cancelled", "late_completions",
                    "rejected_full", "queued", "pending", "undelivered", "max_concurrent_handlers",
                    "oldest_pending_age_ms", "oldest_pending_event_id", "oldest_queued_age_ms",
                    "starvation_detected", "starving_event_count"):
            self.assertIn(key, st)
        self.assertEqual((st["dispatched"], st["queued"]), (1, 1))
        self.assertIsInstance(ch.stats_raw(), bytes)

    def test_completions_iterator_ends_when_closed_and_drained(self) -> None:
        ch = self.ch
        ids = [ch.dispatch("i", i) for i in range(3)]
        for _ in ids:
            ev = ch.poll(1.0)
            assert ev is not None
            ch.complete(ev.event_id, ev.payload)
        ch.dispatch("never-polled")
        threading.Timer(0.2, ch.shutdown).start()
        got = list(ch.completions())  # would block forever without the shutdown
        self.assertEqual([c.event_id for c in got[:3]], ids)
        self.assertEqual([c.status for c in got], ["completed"] * 3 + ["cancelled"])
        self.assertEqual(got[3].error.error_type if got[3].error else None, "shutdown")
        self.assertIsNone(got[3].polled_at)
        self.assertIsNone(got[3].execution_time_ms)

    def test_completions_iterator_with_timeout_ends_when_idle(self) -> None:
        self.assertEqual(list(self.ch.completions(timeout=0.05)), [])

    def test_shutdown_with_drain_lets_pending_finish(self) -> None:
        ch = self.ch
        eid = ch.dispatch("d")
        ev = ch.poll(1.0)
        assert ev is not None
        threading.Timer(0.1, lambda: ch.complete(eid, "done")).start()
        ch.shutdown(drain=5.0)  # returns once every event has ended
        c = ch.next_completion(1.0)
        assert c is not None
        self.assertEqual((c.status, c.result), ("completed", "done"))
        with self.assertRaises(tasker.ChannelClosed):
            ch.next_completion(1.0)


class LifecycleTest(unittest.TestCase):
    def test_context_manager_and_idempotent_close(self) -> None:
        with tasker.Channel() as ch:
            self.assertFalse(ch.closed)
            self.assertGreater(ch.handle, 0)
            self.assertIn("open", repr(ch))
        self.assertTrue(ch.closed)
        ch.close()
        ch.close()
        self.assertIn("closed", repr(ch))

    def test_handles_are_not_reused(self) -> None:
        a = tasker.Channel()
        a.close()
        b = tasker.Channel()
        self.addCleanup(b.close)
        self.assertNotEqual(a.handle, b.handle)

    def test_blocked_poll_wakes_on_shutdown(self) -> None:
        ch = tasker.Channel()
        self.addCleanup(ch.close)
        threading.Timer(0.2, ch.shutdown).start()
        t0 = time.monotonic()
        with self.assertRaises(tasker.ChannelClosed):
            ch.poll(timeout=None)
        self.assertLess(time.monotonic() - t0, 10.0)  # did not hang

    def test_blocked_poll_wakes_on_close(self) -> None:
        ch = tasker.Channel()
        threading.Timer(0.2, ch.close).start()
        with self.assertRaises((tasker.ChannelClosed, tasker.BadHandle)):
            ch.poll(timeout=10.0)

    def test_garbage_collected_channel_is_destroyed(self) -> None:
        import gc

        ch = tasker.Channel()
        h = ch.handle
        del ch
        gc.collect()
        # the handle is gone: a Channel-less raw call with it reports EBADF
        from tasker import _native
        from tasker._errors import EBADF

        self.assertEqual(_native.load().destroy(h), EBADF)

    def test_version_info(self) -> None:
        self.assertIn("abi 1", tasker.library_version())
        self.assertEqual(tasker.ABI_VERSION, 1)
        self.assertTrue(tasker.__version__)



class TimestampTest(unittest.TestCase):
    def test_timestamp_ns_and_parse(self) -> None:
        from tasker import parse_timestamp, timestamp_ns

        self.assertEqual(timestamp_ns("1970-01-01T00:00:01.000000001Z"), 1_000_000_001)
        self.assertEqual(timestamp_ns("2026-11-27T04:31:45.66Z"), timestamp_ns("2026-11-27T04:31:45.660000000Z"))
        self.assertEqual(timestamp_ns("2026-11-27T06:31:45.5+02:00"), timestamp_ns("2026-11-27T04:31:45.500Z"))
        self.assertEqual(timestamp_ns("2026-11-27T04:31:45Z") % 1_000_000_000, 0)
        dt = parse_timestamp("2026-11-27T04:31:45.123456789Z")
        assert dt is not None
        self.assertEqual((dt.year, dt.second, dt.microsecond, dt.utcoffset()), (2026, 45, 123456, timedelta(0)))
        self.assertIsNone(parse_timestamp(None))


if __name__ == "__main__":
    unittest.main()
