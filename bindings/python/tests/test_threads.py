from __future__ import annotations

import threading
import time
import unittest

import tasker


class GilTest(unittest.TestCase):
    def test_blocking_poll_lets_other_threads_run(self) -> None:
        with tasker.Channel() as ch:
            progress = [0]
            stop = threading.Event()

            def spin() -> None:
                while not stop.is_set():
                    progress[0] += 1

            t = threading.Thread(target=spin)
            t.start()
            try:
                time.sleep(0.05)
                before = progress[0]
                t0 = time.monotonic()
                self.assertIsNone(ch.poll(timeout=0.5))
                waited = time.monotonic() - t0
                during = progress[0] - before
            finally:
                stop.set()
                t.join()
            self.assertGreaterEqual(waited, 0.45)  # it really waited
            # with the GIL held during the wait the other thread would make (almost) no progress
            self.assertGreater(during, 10_000, f"other thread advanced only {during} steps in {waited:.2f}s")

    def test_cdll_not_pydll(self) -> None:
        import ctypes

        from tasker import _native

        lib = _native.load()
        self.assertIsInstance(lib.cdll, ctypes.CDLL)
        self.assertNotIsInstance(lib.cdll, ctypes.PyDLL)

    def test_every_function_is_declared(self) -> None:
        from tasker import _native

        lib = _native.load()
        for cname, (restype, argtypes) in _native.SIGNATURES.items():
            fn = getattr(lib.cdll, cname)
            self.assertEqual(fn.restype, restype, cname)
            self.assertEqual(fn.argtypes, argtypes, cname)

    def test_many_threads_one_channel(self) -> None:
        n_threads, per = 4, 250
        with tasker.Channel(dispatch_buffer_size=2000, completion_buffer_size=2000) as ch:
            errors: list[BaseException] = []

            def producer() -> None:
                try:
                    for i in range(per):
                        ch.dispatch("t", i, wait=5.0)
                except BaseException as e:  # noqa: BLE001
                    errors.append(e)

            def worker() -> None:
                try:
                    while True:
                        ev = ch.poll(0.05)
                        if ev is None:
                            if ch.stats()["queued"] == 0 and done.is_set():
                                return
                            continue
                        ch.complete(ev.event_id, ev.payload)
                except BaseException as e:  # noqa: BLE001
                    errors.append(e)

            done = threading.Event()
            ps = [threading.Thread(target=producer) for _ in range(n_threads)]
            ws = [threading.Thread(target=worker) for _ in range(n_threads)]
            for t in ps + ws:
                t.start()
            seen: set[str] = set()
            deadline = time.monotonic() + 30
            while len(seen) < n_threads * per and time.monotonic() < deadline:
                c = ch.next_completion(0.1)
                if c is not None:
                    self.assertNotIn(c.event_id, seen)
                    seen.add(c.event_id)
            done.set()
            for t in ps + ws:
                t.join(10)
            self.assertEqual(errors, [])
            self.assertEqual(len(seen), n_threads * per)


if __name__ == "__main__":
    unittest.main()
