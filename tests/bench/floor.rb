# The cost of one no-op ffi call into Go and back (tests/bench/floor).
# Prints one JSON line. Run in its own process.
require "ffi"
require "json"

module Floor
  extend FFI::Library
  ffi_lib ARGV[0]
  attach_function :bench_noop, [], :int
  attach_function :bench_noop_args, %i[uint64 pointer size_t], :int
end

n = (ARGV[1] || 1_000_000).to_i
buf = FFI::MemoryPointer.from_string("x")
(n / 10).times { Floor.bench_noop }
clock = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC) }
t0 = clock.call
i = 0
while i < n
  Floor.bench_noop
  i += 1
end
t1 = clock.call
i = 0
while i < n
  Floor.bench_noop_args(1, buf, 1)
  i += 1
end
t2 = clock.call
puts JSON.generate(bench: "rb_floor", calls: n, ns_per_call: (t1 - t0) / n * 1e9, ns_per_call_args: (t2 - t1) / n * 1e9)
