# `make bench` from Ruby, through the tasker gem. One JSON line per figure.
#
#   bench.rb jsonfloor N               the JSON work Ruby must do per event
#   bench.rb roundtrip N MODE BATCH    MODE decoded|raw, BATCH 1|64; MODE bare (BATCH 1): the four
#                                      library calls made directly, as the binding makes them
#   bench.rb latency N MODE            MODE block (poll waits) | sleep (poll(0) + sleep 10 ms)
#                                      | fd (a fiber in an Async reactor waiting on the readiness fd)
#                                      | bare (block, the library calls made directly, no binding)
#                                      | bare_release (bare, but dispatch releases the GVL: what the
#                                        GVL's hand-off costs the woken worker)
#   bench.rb peer_roundtrip N          the same round trip through Thread::Queue (the peer)
#   bench.rb peer_latency N            dispatch -> pop returns through Thread::Queue + a thread
#   bench.rb ffi_latency N LIB         the same protocol through a C condvar (tests/bench/wakefloor.c,
#                                      built as LIB) called through ffi: the wake-up floor of any
#                                      library that waits in native code
#   bench.rb breakdown N               where a raw round trip's time goes, call by call
require "json"
require "tasker"
require "async" if ARGV[0] == "latency" && ARGV[2] == "fd"

EVENT = ENV.fetch("BENCH_EVENT").b.freeze
RESULT = ENV.fetch("BENCH_RESULT").b.freeze
EV = JSON.parse(EVENT)
TASK, STEP, PAYLOAD = EV["task_uuid"], EV["step_uuid"], EV["payload"]
RESULT_VALUE = { "ok" => true, "total" => 42.5 }.freeze
META = { "worker" => "rb" }.freeze
CFG = { cleanup_interval_ms: 0, max_concurrent_handlers: 64, completion_buffer_size: 128 }.freeze
ID_KEY = '"event_id":"'.b.freeze

def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
def emit(**kw) = (puts JSON.generate(kw); $stdout.flush)

# The producer's side of every latency protocol: 50 ms for the worker to start
# waiting, then events 0...n one at a time, each after a 200 µs pause (none
# with pause: false) so that the worker is idle when it comes. The block
# notes sent[i] itself, after the pause.
def paced(n, pause: true)
  sleep 0.05
  n.times do |i|
    sleep 0.0002 if pause
    yield i
  end
end

# later[i] - earlier[i] for every i, in µs, sorted.
def gaps(later, earlier) = later.zip(earlier).map { |a, b| (a - b) * 1e6 }.sort

# The latency figures of a sorted array of µs.
def percentiles(lat)
  n = lat.size
  { p50_us: lat[n / 2], p90_us: lat[n * 9 / 10], p99_us: lat[n * 99 / 100], max_us: lat[-1] }
end

def jsonfloor(n)
  event_doc = completion_doc = nil
  Tasker::Channel.open(cleanup_interval_ms: 0) do |ch|
    ch.dispatch_raw(EVENT)
    event_doc = ch.poll_raw
    ch.complete_raw(JSON.parse(event_doc)["event_id"], RESULT)
    completion_doc = ch.next_completion_raw
  end
  dispatch_doc = { "task_uuid" => TASK, "step_uuid" => STEP, "handler" => "bench", "payload" => PAYLOAD }
  result_doc = { "success" => true, "result" => RESULT_VALUE, "metadata" => META }
  t0 = now
  n.times do
    JSON.generate(dispatch_doc)
    JSON.parse(event_doc)
    JSON.generate(result_doc)
    JSON.parse(completion_doc)
  end
  dt = now - t0
  emit(bench: "rb_json_floor", iterations: n, ns_per_op: dt / n * 1e9)
end

def roundtrip(n, mode, batch)
  done = dt = nil
  Tasker::Channel.open(**CFG) do |ch|
    once_decoded = lambda do
      ch.dispatch("bench", PAYLOAD, task_uuid: TASK, step_uuid: STEP)
      ev = ch.poll
      ch.complete(ev.event_id, RESULT_VALUE, metadata: META)
      ch.next_completion
    end
    once_raw = lambda do
      ch.dispatch_raw(EVENT)
      raw = ch.poll_raw
      ch.complete_raw(raw.byteslice(13, 36), RESULT) # {"event_id":"<36>" comes first
      ch.next_completion_raw
    end
    batch_decoded = lambda do
      batch.times { ch.dispatch("bench", PAYLOAD, task_uuid: TASK, step_uuid: STEP) }
      evs = ch.poll_batch(batch)
      evs.each { |ev| ch.complete(ev.event_id, RESULT_VALUE, metadata: META) }
      evs.size.times { ch.next_completion }
    end
    batch_raw = lambda do
      batch.times { ch.dispatch_raw(EVENT) }
      raw = ch.poll_batch_raw(batch)
      k = 0
      i = raw.index(ID_KEY)
      while i
        ch.complete_raw(raw.byteslice(i + 12, 36), RESULT)
        k += 1
        i = raw.index(ID_KEY, i + 48)
      end
      k.times { ch.next_completion_raw }
    end
    # the four library calls made bare, as the binding makes them, nothing else: what any ffi
    # binding doing four calls per event could reach
    nat = Tasker::Native
    scratch = nat.scratch
    h = ch.handle
    buf = scratch.buf
    len = scratch.len
    id = scratch.id
    once_bare = lambda do
      raise "dispatch failed" unless nat.tasker_dispatch(h, EVENT, EVENT.bytesize, 0, id).zero?

      id.read_bytes(36).force_encoding(Encoding::UTF_8)
      nat.tasker_poll_into(h, 0, buf, buf.size, len)
      raw = buf.read_bytes(len.read_ulong).force_encoding(Encoding::UTF_8)
      nat.tasker_complete(h, raw.byteslice(13, 36), RESULT, RESULT.bytesize)
      nat.tasker_next_completion_into(h, 0, buf, buf.size, len)
      buf.read_bytes(len.read_ulong).force_encoding(Encoding::UTF_8)
    end
    fn = if batch == 1
           { "decoded" => once_decoded, "raw" => once_raw, "bare" => once_bare }[mode]
         elsif batch > 1
           { "decoded" => batch_decoded, "raw" => batch_raw }[mode]
         end
    abort "roundtrip: MODE decoded|raw with BATCH >= 1, or bare with BATCH 1; not #{mode} #{batch}" unless fn
    per = batch
    [1, n / 10 / per].max.times { fn.call }
    t0 = now
    (n / per).times { fn.call }
    dt = now - t0
    done = n / per * per
  end
  emit(bench: "rb_roundtrip", mode: mode, batch: batch, events: done, seconds: dt.round(4),
       events_per_s: done / dt, us_per_event: dt / done * 1e6)
end

def latency(n, mode)
  modes = %w[block sleep fd bare bare_release]
  abort "latency: MODE #{modes.join("|")}; not #{mode}" unless modes.include?(mode)
  sleep_mode = mode == "sleep"
  bare = mode.start_with?("bare")
  release = mode == "bare_release"
  got = Array.new(n, 0.0)
  sent = Array.new(n, 0.0)
  dret = Array.new(n, 0.0)
  Tasker::Channel.open(cleanup_interval_ms: 0) do |ch|
    # bare: the calls the gem makes, made directly (the waits attached `blocking: true`,
    # the rest keeping the GVL), nothing else
    nat = Tasker::Native
    h = ch.handle
    worker = Thread.new do
      if bare
        s = nat.scratch
        n.times do |i|
          raise "poll_into failed" unless nat.tasker_poll_into_blocking(h, -1, s.buf, s.buf.size, s.len).zero?

          raw = s.buf.read_bytes(s.len.read_ulong).force_encoding(Encoding::UTF_8)
          got[i] = now
          nat.tasker_complete(h, raw.byteslice(13, 36), RESULT, RESULT.bytesize)
        end
        next
      end
      if mode == "fd"
        # a fiber under the reactor: poll_raw waits with IO#wait_readable on tasker_event_fd
        Async do
          n.times do |i|
            raw = ch.poll_raw(timeout: nil)
            got[i] = now
            ch.complete_raw(raw.byteslice(13, 36), RESULT)
          end
        end.wait
        next
      end
      i = 0
      while i < n
        raw = ch.poll_raw(timeout: sleep_mode ? 0 : nil)
        if raw.nil?
          sleep 0.010
          next
        end
        got[i] = now
        ch.complete_raw(raw.byteslice(13, 36), RESULT)
        i += 1
      end
    end
    if bare
      s = nat.scratch
      # bare_release: the document in native memory (a call without the GVL must not read a
      # Ruby string, Scratch#input), dispatched through the binding that releases the GVL
      input = release && s.input(EVENT)
      paced(n) do |i|
        sent[i] = now
        st = if release
               nat.tasker_dispatch_blocking(h, input, EVENT.bytesize, 0, s.id)
             else
               nat.tasker_dispatch(h, EVENT, EVENT.bytesize, 0, s.id)
             end
        raise "dispatch failed" unless st.zero?

        dret[i] = now
        nat.tasker_next_completion_into_blocking(h, -1, s.buf, s.buf.size, s.len)
      end
    else
      paced(n, pause: !sleep_mode) do |i| # the pause lets the worker park in poll
        sent[i] = now
        ch.dispatch_raw(EVENT)
        dret[i] = now
        ch.next_completion_raw(timeout: nil)
      end
    end
    worker.join
  end
  # where it goes: the dispatch call, and the worker's return counted from the dispatch's
  disp = gaps(dret, sent)
  back = gaps(got, dret)
  emit(bench: "rb_latency", mode: { "block" => "blocking", "sleep" => "sleep10ms" }.fetch(mode, mode), samples: n,
       **percentiles(gaps(got, sent)),
       dispatch_p50_us: disp[n / 2], dispatch_p99_us: disp[n * 99 / 100],
       after_dispatch_p50_us: back[n / 2], after_dispatch_p99_us: back[n * 99 / 100])
end

# What a Ruby user writes instead for in-process dispatch between threads:
# Thread::Queue, carrying the same documents both ways.
def peer_roundtrip(n)
  work = Thread::Queue.new
  done = Thread::Queue.new
  once = lambda do
    work.push(EVENT)
    work.pop
    done.push(RESULT)
    done.pop
  end
  [1, n / 10].max.times { once.call }
  t0 = now
  n.times { once.call }
  dt = now - t0
  emit(bench: "rb_peer_roundtrip", events: n, seconds: dt.round(4), events_per_s: n / dt, us_per_event: dt / n * 1e6)
end

# The protocol of #latency: one event at a time, the worker idle (blocked in pop) when it comes.
def peer_latency(n)
  work = Thread::Queue.new
  done = Thread::Queue.new
  got = Array.new(n, 0.0)
  sent = Array.new(n, 0.0)
  worker = Thread.new do
    n.times do |i|
      work.pop
      got[i] = now
      done.push(RESULT)
    end
  end
  paced(n) do |i|
    sent[i] = now
    work.push(EVENT)
    done.pop
  end
  worker.join
  emit(bench: "rb_peer_latency", mode: "blocking", samples: n, **percentiles(gaps(got, sent)))
end

# The protocol of #latency through tests/bench/wakefloor.c, no Go: the waits with
# `blocking: true` (GVL released), post and finish keeping the GVL, as the gem
# calls libtasker.
module WakeFloor
  extend FFI::Library

  def self.load(path)
    ffi_lib path
    attach_function :wake_new, [], :pointer
    attach_function :wake_free, [:pointer], :void
    attach_function :wake_post, [:pointer], :int
    attach_function :wake_finish, [:pointer], :int
    attach_function :wake_wait, [:pointer], :int, blocking: true
    attach_function :wake_wait_done, [:pointer], :int, blocking: true
  end
end

def ffi_latency(n, path)
  WakeFloor.load(path)
  w = WakeFloor.wake_new
  raise NoMemoryError, "wake_new" if w.null?
  got = Array.new(n, 0.0)
  sent = Array.new(n, 0.0)
  dret = Array.new(n, 0.0)
  worker = Thread.new do
    n.times do |i|
      WakeFloor.wake_wait(w)
      got[i] = now
      WakeFloor.wake_finish(w)
    end
  end
  paced(n) do |i|
    sent[i] = now
    WakeFloor.wake_post(w)
    dret[i] = now
    WakeFloor.wake_wait_done(w)
  end
  worker.join
  WakeFloor.wake_free(w)
  disp = gaps(dret, sent)
  emit(bench: "rb_ffi_latency", mode: "blocking", samples: n, **percentiles(gaps(got, sent)),
       post_p50_us: disp[n / 2], post_p99_us: disp[n * 99 / 100])
end

# Each raw method beside the bare FFI call it makes, in phases of K events
# so that the channel is in the same state for both; the difference is the
# binding's own work.
def breakdown(n)
  k = 1000
  acc = Hash.new(0)
  pc = -> { Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) }
  cfg = { cleanup_interval_ms: 0, dispatch_buffer_size: k, max_concurrent_handlers: k, completion_buffer_size: k }
  rounds = [1, n / k].max
  Tasker::Channel.open(**cfg) do |ch|
    h = ch.handle
    nat = Tasker::Native
    sc = nat.scratch
    out, len, id = sc.out, sc.len, sc.id
    (rounds + 1).times do |r|
      t = pc.call
      k.times { ch.dispatch_raw(EVENT) }
      t1 = pc.call
      evs = Array.new(k) { ch.poll_raw }
      t2 = pc.call
      evs.each { |ev| ch.complete_raw(ev.byteslice(13, 36), RESULT) }
      t3 = pc.call
      k.times { ch.next_completion_raw }
      t4 = pc.call
      if r.positive?
        acc["dispatch_raw"] += t1 - t; acc["poll_raw"] += t2 - t1
        acc["complete_raw"] += t3 - t2; acc["next_completion_raw"] += t4 - t3
      end
      ids = []
      t = pc.call
      k.times { nat.tasker_dispatch(h, EVENT, EVENT.bytesize, 0, id) }
      t1 = pc.call
      buf = sc.buf
      k.times do
        nat.tasker_poll_into(h, 0, buf, buf.size, len)
        ids << buf.read_bytes(len.read_ulong).byteslice(13, 36)
      end
      t2 = pc.call
      ids.each { |i| nat.tasker_complete(h, i, RESULT, RESULT.bytesize) }
      t3 = pc.call
      k.times do
        nat.tasker_next_completion_into(h, 0, buf, buf.size, len)
        buf.read_bytes(len.read_ulong)
      end
      t3b = pc.call
      # what the malloc'ing calls add instead: read_pointer, read_bytes and tasker_free
      k.times do
        nat.tasker_dispatch(h, EVENT, EVENT.bytesize, 0, id)
        nat.tasker_poll(h, 0, out, len)
        ptr = out.read_pointer
        nat.tasker_complete(h, ptr.read_bytes(len.read_ulong).byteslice(13, 36), RESULT, RESULT.bytesize)
        nat.tasker_free(ptr)
      end
      ptrs = Array.new(k) do
        nat.tasker_next_completion(h, 0, out, len)
        [out.read_pointer, len.read_ulong]
      end
      t4 = pc.call
      ptrs.each { |pt, m| pt.read_bytes(m) }
      t5 = pc.call
      ptrs.each { |pt, _| nat.tasker_free(pt) }
      t6 = pc.call
      k.times { id.read_bytes(36).force_encoding(Encoding::UTF_8) }
      t7 = pc.call
      k.times { nat.tasker_poll(h, 0, out, len) } # EMPTY: a crossing with almost no Go work
      t8 = pc.call
      k.times { nat.last_error }
      t9 = pc.call
      next unless r.positive?

      acc["ffi dispatch"] += t1 - t; acc["ffi poll_into + read_bytes"] += t2 - t1
      acc["ffi complete"] += t3 - t2; acc["ffi next_completion_into + read_bytes"] += t3b - t3
      acc["read_bytes (copy out of a library buffer)"] += t5 - t4; acc["tasker_free"] += t6 - t5
      acc["id read_bytes"] += t7 - t6; acc["ffi poll, EMPTY"] += t8 - t7; acc["last_error"] += t9 - t8
    end
  end
  events = rounds * k
  emit(bench: "rb_breakdown", events: events, ns: acc.transform_values { |v| (v.to_f / events).round(1) })
end

what, n = ARGV[0], ARGV[1].to_i
case what
when "jsonfloor" then jsonfloor(n)
when "roundtrip" then roundtrip(n, ARGV[2], ARGV[3].to_i)
when "latency" then latency(n, ARGV[2])
when "peer_roundtrip" then peer_roundtrip(n)
when "peer_latency" then peer_latency(n)
when "ffi_latency" then ffi_latency(n, ARGV.fetch(2))
when "breakdown" then breakdown(n)
else abort "unknown benchmark #{what}"
end
