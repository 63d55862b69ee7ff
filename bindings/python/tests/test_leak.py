from __future__ import annotations

import gc
import unittest

import tasker

from ._util import rss_bytes

N = 100_000
LIMIT = 32 * 1024 * 1024


class NoLeakTest(unittest.TestCase):
    def test_rss_stays_flat_over_100k_round_trips(self) -> None:
        # tracemalloc cannot see malloc'd native buffers: measure the resident set instead.
        with tasker.Channel(handler_timeout_ms=60_000) as ch:
            ev = tasker.dumps({"task_uuid": "0190d2e5-0000-7000-8000-000000000001",
                               "step_uuid": "0190d2e5-0000-7000-8000-000000000002",
                               "handler": "leak", "payload": {"data": "x" * 200}})
            result = b'{"success":true,"result":{"data":"' + b"y" * 200 + b'"}}'

            def round_trips(n: int) -> None:
                dispatch, poll, complete, take = ch.dispatch_raw, ch.poll_raw, ch.complete_raw, ch.next_completion_raw
                for i in range(n):
                    eid = dispatch(ev)
                    assert poll() is not None  # a native buffer, copied and freed
                    complete(eid, result)
                    assert take() is not None  # another one
                    if i % 1000 == 0:
                        ch.stats()  # and a third kind
                        ch.poll_batch(4)  # EMPTY: nothing to free

            round_trips(2_000)  # warm up: allocator pools, Go heap
            gc.collect()
            before = rss_bytes()
            round_trips(N)
            gc.collect()
            growth = rss_bytes() - before
            st = ch.stats()
        self.assertEqual(st["completed"], N + 2_000)
        self.assertLess(growth, LIMIT, f"RSS grew by {growth / 1e6:.1f} MB over {N} round trips")


if __name__ == "__main__":
    unittest.main()
