# frozen_string_literal: true

# One Ruby worker process of the cluster runs (tests/cluster/cluster.py); the twin of worker.py:
#
#   ruby worker.rb NAME SOURCE_JSON [THREADS]
#
# Same handler ("charge"), same JSON status lines on stdout every 200 ms, same stop on
# SIGTERM (SIGINT ignored) or when the parent process is gone.

$LOAD_PATH.unshift File.expand_path("../../bindings/ruby/lib", __dir__)
require "json"
require "tasker"

class Declined < StandardError
  def retryable? = false
end

name = ARGV.fetch(0)
source = JSON.parse(ARGV.fetch(1))
threads = Integer(ARGV.fetch(2, "4"))
parent = Process.ppid
stop = false
trap("TERM") { stop = true }
trap("INT", "IGNORE") # Ctrl-C reaches the whole process group: the orchestrator stops us

charge = lambda do |ev|
  p = ev.payload || {}
  ms = p.fetch("sleep_ms", 0)
  sleep(ms / 1000.0) if ms.positive?
  raise Declined, "card declined [worker=#{name}]" if p["fail"]

  { "worker" => name, "i" => p["i"] }
end

# handler slots beyond the thread count let the source read ahead (see worker.py)
channel = Tasker::Channel.new(source: source, worker_id: name, dispatch_buffer_size: threads * 4,
                              max_concurrent_handlers: threads * 4, handler_timeout_ms: 60_000)
worker = Tasker::Worker.new(channel, { "charge" => charge }, threads: threads, poll_interval: 0.05)

report = lambda do
  src = channel.stats.select { |k, _| k.to_s.start_with?("source_") }
  $stdout.puts JSON.generate({ worker: name, pid: Process.pid, counts: worker.stats, source: src })
  $stdout.flush
end

worker.start
begin
  until stop || Process.ppid != parent
    report.call
    sleep 0.2
  end
ensure
  worker.stop(10)
  channel.shutdown(drain: 0) # the threads have stopped: release what is still queued at once
  report.call
  channel.close
end
