# frozen_string_literal: true

require_relative "test_helper"
require "stringio"

# Tasker.logger, Worker's stats_callback, and trace ids on completions.
class ObserveTest < Minitest::Test
  def setup
    @old_logger = Tasker.logger
    @log = StringIO.new
    Tasker.logger = Logger.new(@log, level: Logger::INFO)
  end

  def teardown
    Tasker.logger = @old_logger
  end

  def wait_until(timeout = 10)
    deadline = monotonic + timeout
    until yield
      return false if monotonic > deadline

      sleep 0.005
    end
    true
  end

  def test_stats_callback_gets_channel_stats_and_counts_then_stops_with_the_worker
    snapshots = Queue.new
    with_channel(cleanup_interval_ms: 0) do |ch|
      ch.dispatch("x", 1)
      w = Tasker::Worker.new(ch, { "x" => ->(ev) { ev.payload } }, threads: 1,
                                                                    stats_callback: ->(s) { snapshots << s },
                                                                    stats_interval: 0.02)
      w.start
      assert wait_until { snapshots.size >= 3 }
      w.stop(5)
      assert wait_until { Thread.list.none? { |t| t.name == "tasker-worker-stats" } }, "the stats thread ends"
      n = snapshots.size
      sleep 0.08
      assert_equal n, snapshots.size, "no callback after stop"
      last = nil
      last = snapshots.pop until snapshots.empty?
      assert_equal Tasker::Worker::COUNTERS.sort, last[:worker].keys.sort
      assert_equal 1, last[:dispatched]
      assert_equal 1, last[:worker][:completed]
    end
  end

  def test_bad_stats_options
    with_channel do |ch|
      assert_raises(ArgumentError) { Tasker::Worker.new(ch, {}, stats_interval: 0) }
      assert_raises(ArgumentError) { Tasker::Worker.new(ch, {}, stats_interval: Float::INFINITY) }
      assert_raises(ArgumentError) { Tasker::Worker.new(ch, {}, stats_callback: "puts") }
    end
  end

  def test_start_stop_crash_and_late_are_logged
    with_channel(cleanup_interval_ms: 0) do |ch|
      handlers = {
        "boom" => ->(_ev) { raise KeyError, "nope" },
        "late" => lambda do |ev|
          ch.fail(ev.event_id, "ended elsewhere first")
          1
        end
      }
      ch.dispatch("boom")
      ch.dispatch("late")
      w = Tasker::Worker.new(ch, handlers, threads: 1).start
      assert wait_until { w.counts[:failed] == 1 && w.counts[:late] == 1 }
      w.stop(5)
    end
    text = @log.string
    assert_match(/INFO -- : Tasker::Worker: started/, text)
    assert_match(/ERROR -- : Tasker::Worker: handler "boom" raised KeyError/, text)
    assert_match(/WARN -- : Tasker::Worker: late completion for event/, text)
    assert_match(/INFO -- : Tasker::Worker: tasker-worker-0 stopped/, text)
  end

  def test_a_callback_that_raises_is_logged_not_fatal
    with_channel(cleanup_interval_ms: 0) do |ch|
      w = Tasker::Worker.new(ch, {}, threads: 1, stats_callback: ->(_s) { raise "callback broke" },
                                     stats_interval: 0.01).start
      assert wait_until { @log.string.include?("stats_callback raised") }
      assert w.running?
      w.stop(5)
    end
  end

  def test_default_logger_is_silent
    status, out, err = run_ruby(<<~RUBY)
      require "tasker"
      Tasker::Channel.open(cleanup_interval_ms: 0) do |ch|
        ch.dispatch("boom")
        w = Tasker::Worker.new(ch, { "boom" => ->(_ev) { raise "x" } }, threads: 1).start
        ch.next_completion(timeout: 5)
        w.stop(5)
      end
    RUBY
    assert status.success?, err
    assert_equal ["", ""], [out, err], "nothing written by default"
  end

  def test_completion_carries_trace_span_and_correlation
    corr = SecureRandom.uuid
    with_channel(cleanup_interval_ms: 0) do |ch|
      a = ch.dispatch("h", trace_id: "trace-a", span_id: "span-a", correlation_id: corr)
      b = ch.dispatch("h")
      2.times { ch.complete(ch.poll(timeout: 1).event_id) }
      got = Array.new(2) { ch.next_completion(timeout: 1) }.to_h { |c| [c.event_id, c] }
      assert_equal ["trace-a", "span-a", corr], [got[a].trace_id, got[a].span_id, got[a].correlation_id]
      assert_equal [nil, nil], [got[b].trace_id, got[b].span_id]
    end
  end
end
