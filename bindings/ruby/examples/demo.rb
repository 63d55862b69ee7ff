# frozen_string_literal: true

# libtasker demo: 20,000 steps through a Channel, handled by a 4-thread Ruby
# Worker -- the Ruby twin of bindings/python/examples/demo.py.
#
# Handlers: "fast" (computes at once), "slow" (sleeps a few ms), "flaky"
# (raises), and "hang" (sleeps past its 200 ms per-event timeout, so the
# library's reaper ends it as a timeout and the worker's late complete is
# counted, not fatal). A producer thread dispatches, the main thread consumes
# completions and draws a progress bar, then prints a summary and checks that
# every dispatched event got exactly one completion (the exit status says
# whether it did).
#
# Run from the repository root:
#   ruby -Ibindings/ruby/lib bindings/ruby/examples/demo.rb      (or: make demo-ruby)
# TASKER_DEMO_STEPS=2000 runs a shorter demo.

require "tasker"

TOTAL = Integer(ENV.fetch("TASKER_DEMO_STEPS", "20000"))
THREADS = 4
SLOW_SECONDS = 0.002
HANG_SECONDS = 0.4 # longer than HANG_TIMEOUT_MS + cleanup_interval_ms: always expires first
HANG_TIMEOUT_MS = 200
DEADLINE_SECONDS = 55.0 # a 'did not hang' limit, not a performance goal
STATUSES = %w[completed failed timeout cancelled].freeze

# ---- handlers ----

class FlakyError < RuntimeError
  def retryable?
    false
  end
end

HANDLERS = {
  "fast" => ->(ev) { n = ev.payload["n"]; { "square" => n * n } },
  "slow" => ->(_ev) { sleep SLOW_SECONDS; { "slept_ms" => SLOW_SECONDS * 1000 } },
  "flaky" => ->(ev) { raise FlakyError, "step #{ev.payload['n']} failed on purpose" },
  # the event times out meanwhile; this result arrives late
  "hang" => ->(_ev) { sleep HANG_SECONDS; { "too" => "late" } }
}.freeze

def plan(i)
  return "hang" if i % 1000 == 500 # 20, spread out so they never occupy every worker thread at once
  return "flaky" if i % 10 == 3
  return "slow" if i % 5 == 1

  "fast"
end

# ---- progress ----

class Progress
  def initialize(total)
    @total = total
    @tty = $stdout.tty?
    @t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    @last = 0.0
  end

  def update(done, statuses, force: false)
    now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    return if !force && now - @last < (@tty ? 0.1 : 1.0)

    @last = now
    elapsed = now - @t0
    rate = elapsed.positive? ? done / elapsed : 0.0
    frac = done.fdiv(@total)
    tail = format("%6s/%s %6.1f%%  %7s/s  ok %s failed %s timeout %s", commas(done), commas(@total), frac * 100,
                  commas(rate.round), commas(statuses["completed"]), commas(statuses["failed"]),
                  commas(statuses["timeout"]))
    if @tty
      width = 30
      filled = (width * frac).to_i
      $stdout.write("\r  [#{'█' * filled}#{'░' * (width - filled)}] #{tail}  ")
      $stdout.write("\n") if force
    else
      $stdout.write(format("  progress %s  (%.1fs)\n", tail, elapsed))
    end
    $stdout.flush
  end
end

# ---- report ----

def commas(n)
  n.to_s.reverse.scan(/\d{1,3}/).join(",").reverse.then { |s| n.negative? ? "-#{s}" : s }
end

def pct(values, q)
  return Float::NAN if values.empty?

  s = values.sort
  s[[s.size - 1, (q * s.size).to_i].min]
end

def table(title, header, rows)
  widths = header.each_index.map { |i| ([header] + rows).map { |r| r[i].length }.max }
  just = ->(cells) { cells.each_with_index.map { |c, i| i.zero? ? c.ljust(widths[i]) : c.rjust(widths[i]) }.join("  ") }
  puts "\n#{title}"
  puts "  #{just.call(header)}"
  puts "  #{widths.map { |w| '-' * w }.join('  ')}"
  rows.each { |r| puts "  #{just.call(r)}" }
end

def main
  ch = Tasker::Channel.new(
    dispatch_buffer_size: 1000,
    completion_buffer_size: 2000,
    max_concurrent_handlers: 16,
    handler_timeout_ms: 10_000,
    cleanup_interval_ms: 100,
    worker_id: "ruby-demo"
  )
  puts "tasker demo: #{commas(TOTAL)} steps, Ruby Worker with #{THREADS} threads " \
       "(#{Tasker.library_version}, binding #{Tasker::VERSION}, ruby #{RUBY_VERSION})"
  puts "  handlers: fast, slow (#{(SLOW_SECONDS * 1000).round} ms), flaky (raises), " \
       "hang (#{(HANG_SECONDS * 1000).round} ms vs a #{HANG_TIMEOUT_MS} ms timeout)"

  dispatched = []
  producer_error = nil
  producer = Thread.new do
    TOTAL.times do |i|
      name = plan(i)
      dispatched << if name == "hang"
                      ch.dispatch(name, { "n" => i }, timeout_ms: HANG_TIMEOUT_MS, wait: nil)
                    else
                      ch.dispatch(name, { "n" => i }, wait: nil)
                    end
    end
  rescue StandardError => e
    producer_error = e
  end

  worker = Tasker::Worker.new(ch, HANDLERS, threads: THREADS)
  progress = Progress.new(TOTAL)
  seen = Hash.new(0)
  statuses = Hash.new(0)
  completions = []
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  deadline = t0 + DEADLINE_SECONDS
  worker.start
  take = lambda do |c|
    completions << c
    seen[c.event_id] += 1
    statuses[c.status] += 1
  end
  while completions.size < TOTAL && Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
    break if producer_error

    c = ch.next_completion(timeout: 0.1)
    take.call(c) if c
    progress.update(completions.size, statuses)
  end
  elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
  progress.update(completions.size, statuses, force: true)
  producer.join(5)
  # Shut down: nothing should be left; anything that still arrives would be a duplicate.
  ch.shutdown(drain: 2.0)
  worker.stop(5)
  ch.each_completion(timeout: 2.0) { |c2| take.call(c2) }
  stats = ch.stats
  ch.close

  # ---- summary ----
  by_status = STATUSES.map do |s|
    [s, commas(statuses[s]), format("%.1f%%", 100.0 * statuses[s] / [1, completions.size].max)]
  end
  by_status << ["total", commas(completions.size), ""]
  table("Completions by status", %w[status count share], by_status)

  per_handler = Hash.new { |h, k| h[k] = Hash.new(0) }
  errors = Hash.new(0)
  completions.each do |c|
    per_handler[c.handler][c.status] += 1
    errors[[c.status, c.error_type]] += 1 if c.error
  end
  table("By handler", %w[handler] + STATUSES,
        per_handler.sort.map { |h, cnt| [h] + STATUSES.map { |s| commas(cnt[s]) } })
  table("Error types", ["status / error_type", "count"],
        errors.sort.map { |(s, t), n| ["#{s} / #{t}", commas(n)] })

  queue_ms = []
  e2e_ms = []
  exec_ms = []
  completions.each do |c|
    dispatched_ns = Tasker.timestamp_ns(c.dispatched_at)
    queue_ms << (Tasker.timestamp_ns(c.polled_at) - dispatched_ns) / 1e6 if c.polled_at
    e2e_ms << (Tasker.timestamp_ns(c.completed_at) - dispatched_ns) / 1e6
    exec_ms << c.execution_time_ms if c.execution_time_ms
  end
  fmt = ->(v) { format("%.2f", v) }
  table("Throughput: #{commas((completions.size / elapsed).round)} steps/s (#{commas(completions.size)} completions in " \
        "#{format('%.2f', elapsed)} s)\n\nLatency (ms)", ["", "p50", "p99", "max"],
        [["dispatch -> poll", queue_ms], ["end to end", e2e_ms], ["execution (poll -> end)", exec_ms]].map do |name, v|
          [name, fmt.call(pct(v, 0.5)), fmt.call(pct(v, 0.99)), fmt.call(v.max || Float::NAN)]
        end)

  table("Worker", %w[counter value], worker.counts.map { |k, v| [k.to_s, commas(v)] })

  keys = %i[dispatched polled completed failed timed_out cancelled late_completions rejected_full queued pending
            undelivered delivered discarded oldest_pending_age_ms starvation_detected starving_event_count state
            worker_id]
  keys += stats.keys - keys
  table("Channel stats (final)", %w[stat value], keys.map { |k| [k.to_s, stats[k].to_s] })

  # ---- exactly once ----
  ids = dispatched.uniq
  missing = dispatched.count { |e| seen[e].zero? }
  doubled = seen.count { |_, n| n > 1 }
  known = ids.to_h { |e| [e, true] }
  strangers = seen.keys.count { |e| !known[e] }
  ok = producer_error.nil? && dispatched.size == TOTAL && ids.size == TOTAL && missing.zero? &&
       doubled.zero? && strangers.zero? && completions.size == TOTAL && stats[:dispatched] == TOTAL
  puts
  puts "producer failed: #{producer_error.inspect}" if producer_error
  puts "worker error: #{worker.last_error.inspect}" if worker.last_error
  puts "Exactly once: #{ok ? 'OK' : 'FAILED'}: #{commas(dispatched.size)} dispatched, " \
       "#{commas(completions.size)} completions, #{missing} missing, #{doubled} duplicated, #{strangers} unknown"
  ok ? 0 : 1
end

if $PROGRAM_NAME == __FILE__
  begin
    exit main
  rescue Interrupt
    puts "\ninterrupted"
    exit 130
  rescue Tasker::LibraryError => e
    warn "demo: #{e.message}"
    exit 2
  end
end
