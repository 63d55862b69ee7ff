"""The round trip's calls go through unchecked ctypes views (no argtypes, _native.UNCHECKED): ctypes
then passes a Python int as a 32-bit C int, which would cut a handle, a length or a timeout without
any error. These tests watch every unchecked call the binding makes, on every path that reaches
one, and fail if an argument is anything but what the C function takes."""
from __future__ import annotations

import ctypes
import threading
import unittest
import uuid
from typing import Any, Callable

import tasker
from tasker import _native

_CArg = type(ctypes.byref(ctypes.c_int()))


def _accepts(declared: Any) -> Callable[[Any], bool]:
    """What an unchecked call must be given for a parameter the library declares as ``declared``
    (_native.SIGNATURES): an instance of that very integer type, bytes or a ctypes array for a
    char pointer, byref() for any other pointer (an out-variable)."""
    if declared in (ctypes.c_char_p, ctypes.POINTER(ctypes.c_char)):
        return lambda a: type(a) is bytes or isinstance(a, ctypes.Array)
    if isinstance(declared, type) and issubclass(declared, ctypes._Pointer):
        return lambda a: type(a) is _CArg
    return lambda a: type(a) is declared


SHAPES = {name: [(_accepts(t), getattr(t, "__name__", str(t))) for t in _native.SIGNATURES[cname][1]]
          for name, cname in _native.UNCHECKED.items()}


class UncheckedCallsTest(unittest.TestCase):
    def setUp(self) -> None:
        self.lib = _native.load()
        self.calls: list[str] = []
        self.bad: list[str] = []
        self.saved = {name: getattr(self.lib, name) for name in _native.UNCHECKED}
        lock = threading.Lock()

        for name, fn in self.saved.items():
            def watch(*args: Any, _name: str = name, _fn: Any = fn) -> int:
                shape = SHAPES[_name]
                with lock:
                    self.calls.append(_name)
                    if len(args) != len(shape):
                        self.bad.append(f"{_name}: {len(args)} arguments, the C function takes {len(shape)}")
                    for i, ((ok, want), arg) in enumerate(zip(shape, args)):
                        if not ok(arg):
                            self.bad.append(f"{_name} argument {i}: {type(arg).__name__}, want {want}")
                return int(_fn(*args))
            setattr(self.lib, name, watch)

    def tearDown(self) -> None:
        for name, fn in self.saved.items():
            setattr(self.lib, name, fn)

    def test_every_unchecked_function_is_declared_without_argtypes(self) -> None:
        for name, fn in self.saved.items():
            self.assertIsNone(fn.argtypes, name)
            self.assertIs(fn.restype, ctypes.c_int, name)
            self.assertIsNot(fn, getattr(self.lib, "complete"), name)  # the declared view keeps its argtypes

    def test_raw_and_decoded_round_trips_pass_only_c_typed_arguments(self) -> None:
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            eid = ch.dispatch_raw(tasker.dumps({"task_uuid": str(uuid.uuid4()), "step_uuid": str(uuid.uuid4()),
                                                "handler": "h", "payload": {"n": 1}}))
            raw = ch.poll_raw()
            assert raw is not None
            ch.complete_raw(eid, b'{"success":true,"result":1}')
            self.assertIsNotNone(ch.next_completion_raw())
            ch.dispatch("h", {"n": 2})
            ev = ch.poll()
            assert ev is not None
            ch.complete(ev.event_id, {"ok": True})
            self.assertIsNotNone(ch.next_completion(0.0))
            for i in range(3):
                ch.dispatch("h", {"i": i})
            self.assertEqual(len(ch.poll_batch(8)), 3)
            ch.dispatch("h", {"i": 3})
            batch = ch.poll_batch_raw(8)
            assert batch is not None
            self.assertIsNone(ch.poll_raw())  # EMPTY through the same call
        self.assertEqual(self.bad, [])
        self.assertEqual(set(self.calls), set(SHAPES), "every unchecked function was exercised")

    def test_a_waiting_take_tries_unchecked_first(self) -> None:
        # the first try of a waiting poll keeps the GIL (unchecked); the wait itself is declared
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            t = threading.Timer(0.05, lambda: ch.dispatch("h", {}))
            t.start()
            ev = ch.poll(5.0)
            t.join()
            assert ev is not None
            ch.complete(ev.event_id)
        self.assertEqual(self.bad, [])
        self.assertIn("u_poll_into_now", self.calls)


if __name__ == "__main__":
    unittest.main()
