"""The cost of one no-op ctypes call into Go and back (tests/bench/floor).

Prints one JSON line. Run in its own process: a process must not load two
Go c-shared libraries. ns_per_call(_args) are through PyDLL, which keeps the
GIL, and ns_per_call_args without argtypes on arguments made once: the way the
binding makes the calls of a round trip, so the cheapest honest floor
(ns_per_call_args_declared: the same call declared with argtypes). The *_cdll figures release and
retake the GIL around the call (the binding's waiting calls).
"""
import ctypes
import json
import sys
import time

n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
cdll = ctypes.CDLL(sys.argv[1])
pydll = ctypes.PyDLL(sys.argv[1], handle=cdll._handle)


def measure(lib, unchecked=False):
    noop = lib.bench_noop
    noop.argtypes = []
    noop.restype = ctypes.c_int
    buf = b"x"
    if unchecked:  # no argtypes, arguments prepared once: how the binding makes a round trip's calls
        noop_args = lib._FuncPtr(("bench_noop_args", lib))
        args = (ctypes.c_uint64(1), buf, ctypes.c_size_t(1))
    else:
        noop_args = lib.bench_noop_args
        noop_args.argtypes = [ctypes.c_uint64, ctypes.c_char_p, ctypes.c_size_t]
        args = (1, buf, 1)
    noop_args.restype = ctypes.c_int
    for _ in range(n // 10):
        noop()
    t0 = time.perf_counter()
    for _ in range(n):
        noop()
    t1 = time.perf_counter()
    for _ in range(n):
        noop_args(*args)
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e9, (t2 - t1) / n * 1e9


py_plain, py_args = measure(pydll, unchecked=True)
_, py_args_declared = measure(pydll)
c_plain, c_args = measure(cdll)
print(json.dumps({"bench": "py_floor", "calls": n, "ns_per_call": py_plain, "ns_per_call_args": py_args,
                  "ns_per_call_args_declared": py_args_declared,
                  "ns_per_call_cdll": c_plain, "ns_per_call_args_cdll": c_args}))
