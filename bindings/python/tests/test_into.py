"""Single documents reach Python through the thread's reused buffer (tasker_poll_into,
tasker_next_completion_into). A document larger than the buffer is kept by the library and
taken again into a grown buffer: nothing is lost or cut."""
from __future__ import annotations

import json
import threading
import unittest

import tasker
from tasker import _native


class IntoBufferTest(unittest.TestCase):
    def test_documents_larger_than_the_buffer_arrive_whole(self) -> None:
        big = "x" * (_native.INTO_BUF_SIZE * 3)
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            small_id = ch.dispatch("h", {"n": 1})
            big_id = ch.dispatch("h", {"s": big})
            ev = ch.poll()
            assert ev is not None
            self.assertEqual(ev.event_id, small_id)
            cap_before = _native.outs().cap
            ev = ch.poll()
            assert ev is not None
            self.assertEqual(ev.event_id, big_id)
            self.assertEqual(ev.payload, {"s": big})
            self.assertGreater(_native.outs().cap, cap_before, "the buffer grew to the document")
            ch.complete(big_id, {"echo": big})
            ch.complete(small_id, 1)
            c = ch.next_completion()
            assert c is not None
            self.assertEqual((c.event_id, c.result), (big_id, {"echo": big}))
            raw = ch.next_completion_raw()
            assert raw is not None
            self.assertEqual(json.loads(raw)["event_id"], small_id)
            self.assertIsNone(ch.next_completion_raw())
            stats = ch.stats()
            self.assertEqual((stats["polled"], stats["completed"], stats["delivered"]), (2, 2, 2))

    def test_a_new_thread_starts_with_a_small_buffer_and_still_gets_a_big_document(self) -> None:
        big = "y" * (_native.INTO_BUF_SIZE * 2)
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            eid = ch.dispatch("h", {"s": big})
            got: list[bytes | None] = []
            t = threading.Thread(target=lambda: got.append(ch.poll_raw(timeout=5.0)))
            t.start()
            t.join()
            self.assertEqual(len(got), 1)
            raw = got[0]
            assert raw is not None
            doc = json.loads(raw)
            self.assertEqual((doc["event_id"], doc["payload"]), (eid, {"s": big}))

    def test_an_interrupted_take_leaves_its_document_to_the_next(self) -> None:
        # What _settle finds when an exception struck after the library wrote a completion into
        # the buffer but before it was copied out: the next take on the thread hands it out.
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            eid = ch.dispatch("h", 1)
            ch.complete_raw(json.loads(ch.poll_raw() or b"{}")["event_id"], b'{"success":true}')
            o = _native.outs()
            lib = ch._lib
            o.owner, o.kind = ch, 2  # as _take_into sets them for a completion
            rc = lib.next_completion_into_now(ch.handle, 0, o.buf, o.cap, o.binn)
            self.assertEqual(rc, 0)
            # ... interrupted here: nothing copied out yet
            c = ch.next_completion()
            assert c is not None
            self.assertEqual(c.event_id, eid)


if __name__ == "__main__":
    unittest.main()
