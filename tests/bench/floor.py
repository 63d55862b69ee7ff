"""The cost of one no-op ctypes call into Go and back (tests/bench/floor).

Prints one JSON line. Run in its own process: a process must not load two
Go c-shared libraries.
"""
import ctypes
import json
import sys
import time

n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
lib = ctypes.CDLL(sys.argv[1])
noop = lib.bench_noop
noop.argtypes = []
noop.restype = ctypes.c_int
noop_args = lib.bench_noop_args
noop_args.argtypes = [ctypes.c_uint64, ctypes.c_char_p, ctypes.c_size_t]
noop_args.restype = ctypes.c_int
for _ in range(n // 10):
    noop()
t0 = time.perf_counter()
for _ in range(n):
    noop()
t1 = time.perf_counter()
buf = b"x"
for i in range(n):
    noop_args(1, buf, 1)
t2 = time.perf_counter()
print(json.dumps({"bench": "py_floor", "calls": n, "ns_per_call": (t1 - t0) / n * 1e9,
                  "ns_per_call_args": (t2 - t1) / n * 1e9}))
