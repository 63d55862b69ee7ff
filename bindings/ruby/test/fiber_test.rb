# frozen_string_literal: true

require_relative "test_helper"
require "async"
require "stringio"

# Fiber schedulers: waiting calls wait on the readiness descriptor with
# IO#wait_readable, so an Async reactor runs other fibers meanwhile.
class FiberTest < Minitest::Test
  # Runs the block in an Async reactor and re-raises what failed in it (a
  # bare Async { } only logs a failed task).
  def reactor(&block)
    Async(&block).wait
  end

  # The class of what the block raised (nil if nothing): an Async task that
  # returns an exception object counts as failed, so return its class.
  def caught
    yield
    nil
  rescue StandardError => e
    e.class
  end

  def readable?(io)
    !IO.select([io], nil, nil, 0).nil?
  end

  def test_readiness_fd_is_readable_exactly_while_poll_would_succeed
    with_channel(max_concurrent_handlers: 1, cleanup_interval_ms: 0) do |ch|
      fd = ch.readiness_fd(:events)
      assert_equal fd, ch.readiness_fd(:events)
      refute_equal fd, ch.readiness_fd(:completions)
      ev_io = IO.for_fd(fd, autoclose: false).dup
      co_io = IO.for_fd(ch.readiness_fd(:completions), autoclose: false).dup
      refute readable?(ev_io)
      2.times { ch.dispatch("h") }
      assert readable?(ev_io)
      ev = ch.poll
      refute readable?(ev_io), "running bound reached: a poll would be EMPTY"
      assert_nil ch.poll
      ch.complete(ev.event_id, 1)
      assert readable?(ev_io) && readable?(co_io)
      refute_nil ch.next_completion
      refute readable?(co_io)
      ch.shutdown
      assert readable?(ev_io) && readable?(co_io), "CLOSED is readable"
      ch.close
      assert readable?(co_io), "a dup stays readable after close"
      ev_io.close
      co_io.close
      assert_raises(Tasker::BadHandle) { ch.readiness_fd(:events) }
    end
    with_channel { |ch| assert_raises(Tasker::InvalidArgument) { ch.readiness_fd(:nope) } }
  end

  def test_readiness_fd_in_a_forked_child_raises
    with_channel do |ch|
      ch.readiness_fd(:events)
      status, value = fork_child do
        ch.readiness_fd(:events)
        :no_error
      rescue Tasker::ForkedError
        :forked
      end
      assert status.success?
      assert_equal :forked, value
    end
  end

  def test_hundred_fibers_wait_in_one_reactor_and_each_event_goes_to_one
    with_channel(cleanup_interval_ms: 0) do |ch|
      threads = Thread.list.size
      got = []
      ticks_while_waiting = nil
      reactor do |task|
        ticks = 0
        ticker = task.async do
          loop do
            ticks += 1
            task.sleep 0.005
          end
        end
        waiters = Array.new(100) do
          task.async do
            ev = ch.poll(timeout: 20)
            got << ev.event_id
            ch.complete(ev.event_id, ev.payload)
          end
        end
        task.sleep 0.1
        ticks_while_waiting = ticks
        # <=: a thread an earlier test left may end meanwhile; a thread per fiber would be 100 more
        assert_operator Thread.list.size, :<=, threads, "no thread per waiting fiber"
        ids = Array.new(100) { |i| ch.dispatch("h", i) }
        waiters.each(&:wait)
        ticker.stop
        assert_equal ids.sort, got.sort, "each event handed to exactly one fiber"
        completions = Array.new(100) { ch.next_completion(timeout: 5) }
        assert_equal ids.sort, completions.map(&:event_id).sort
        assert_nil ch.next_completion(timeout: 0.05), "exactly once: nothing more"
      end
      assert_operator ticks_while_waiting, :>=, 3, "the reactor ran another fiber while 100 fibers waited"
      assert_operator Thread.list.size, :<=, threads, "no thread left behind by the fibers"
    end
  end

  def test_timeouts_closed_and_close_wake_fibers
    with_channel(cleanup_interval_ms: 0) do |ch|
      reactor do |task|
        t0 = monotonic
        assert_nil ch.poll(timeout: 0.05)
        assert_nil ch.next_completion(timeout: 0.05)
        assert_operator monotonic - t0, :>=, 0.09, "a fiber timeout waits its time"
        pollers = Array.new(3) { task.async { caught { ch.poll(timeout: 20) } } }
        comps = task.async { ch.each_completion.to_a }
        task.sleep 0.02
        ch.shutdown
        pollers.each { |p| assert_equal Tasker::ChannelClosed, p.wait }
        assert_equal [], comps.wait
      end
    end
    ch = Tasker::Channel.new(cleanup_interval_ms: 0)
    reactor do |task|
      waiter = task.async { caught { ch.next_completion(timeout: 20) } }
      task.sleep 0.02
      ch.close
      assert_equal Tasker::BadHandle, waiter.wait
    end
  end

  def test_dispatch_waiting_for_room_lets_other_fibers_run
    with_channel(dispatch_buffer_size: 1, cleanup_interval_ms: 0) do |ch|
      ch.dispatch("h")
      reactor do |task|
        assert_raises(Tasker::QueueFull) { ch.dispatch("h", wait: 0.02) }
        # `later` waits for room as a fiber: this fiber goes on and makes the
        # room (a thread-blocking wait would keep it from running: QueueFull)
        later = task.async { ch.dispatch("h", wait: 5) }
        refute_nil ch.poll
        refute_nil later.wait
      end
    end
  end

  def test_without_a_scheduler_nothing_changes
    with_channel(cleanup_interval_ms: 0) do |ch|
      refute Tasker::FiberWait.active?
      Thread.new { sleep 0.05; ch.dispatch("h") }
      refute_nil ch.poll(timeout: 5)
      reactor { assert Tasker::FiberWait.active? }
      reactor { Fiber.new(blocking: true) { refute Tasker::FiberWait.active? }.resume }
    end
  end

  def test_async_worker_bound_results_failures_and_stats_callback
    with_channel(max_concurrent_handlers: 100, cleanup_interval_ms: 0) do |ch|
      live = 0
      peak = 0
      snapshots = []
      handlers = {
        "slow" => lambda do |ev|
          live += 1
          peak = [peak, live].max
          sleep 0.02 # scheduler-aware: other fibers run
          live -= 1
          { "x" => ev.payload * 2 }
        end,
        "boom" => ->(_ev) { raise ArgumentError, "no way" }
      }
      ids = Array.new(40) { |i| [ch.dispatch("slow", i), i] }.to_h
      boom = ch.dispatch("boom")
      missing = ch.dispatch("missing")
      threads = Thread.list.size
      log = StringIO.new
      old = Tasker.logger
      Tasker.logger = Logger.new(log, level: Logger::INFO)
      worker = Tasker::AsyncWorker.new(ch, handlers, concurrency: 5, stats_callback: ->(s) { snapshots << s },
                                                     stats_interval: 0.02)
      comps = {}
      reactor do |task|
        run = task.async { worker.run }
        42.times do
          c = ch.next_completion(timeout: 10)
          comps[c.event_id] = c
        end
        assert_operator Thread.list.size, :<=, threads, "one thread (none per handler fiber)"
        task.sleep 0.05 until snapshots.size >= 2
        worker.stop
        run.wait
      end
      assert_equal 5, peak, "at most `concurrency` handlers at once, and all of it used"
      ids.each { |id, i| assert_equal({ "x" => i * 2 }, comps[id].result) }
      assert_equal %w[failed ArgumentError], [comps[boom].status, comps[boom].error_type]
      assert_equal "handler_not_found", comps[missing].error_type
      assert_equal({ polled: 42, completed: 40, failed: 2, late: 0, not_found: 1, result_errors: 0, errors: 0,
                     checkpointed: 0 },
                   worker.counts)
      assert_equal worker.counts.keys.sort, snapshots.last[:worker].keys.sort
      assert snapshots.last.key?(:dispatched)
      assert_match(/started/, log.string)
      assert_match(/stopped/, log.string)
      refute worker.running?
    ensure
      Tasker.logger = old
    end
  end

  def test_async_worker_fails_a_handler_still_running_at_its_timeout_and_frees_the_slot
    with_channel(cleanup_interval_ms: 0) do |ch|
      hung = ch.dispatch("hang", timeout_ms: 50)
      quick = ch.dispatch("quick")
      worker = Tasker::AsyncWorker.new(ch, { "hang" => ->(_ev) { sleep 30 }, "quick" => ->(_ev) { :ok } },
                                       concurrency: 1)
      comps = {}
      reactor do |task|
        run = task.async { worker.run }
        2.times do
          c = ch.next_completion(timeout: 10)
          comps[c.event_id] = c
        end
        worker.stop
        run.wait
      end
      assert_equal ["failed", "handler_timeout", true],
                   [comps[hung].status, comps[hung].error_type, comps[hung].error["retryable"]]
      assert_match(/did not finish within 50 ms/, comps[hung].error_message)
      assert_equal "completed", comps[quick].status, "the one slot was freed for the next event"
    end
  end

  def test_async_worker_needs_a_scheduler_and_ends_when_the_channel_closes
    with_channel(cleanup_interval_ms: 0) do |ch|
      w = Tasker::AsyncWorker.new(ch, {})
      assert_raises(Tasker::Error) { w.run }
      assert_raises(Tasker::Error) { w.start }
      assert_raises(ArgumentError) { Tasker::AsyncWorker.new(ch, {}, concurrency: 0) }
      assert_raises(ArgumentError) { Tasker::AsyncWorker.new(ch, {}, stats_interval: 0) }
      assert_raises(ArgumentError) { Tasker::AsyncWorker.new(ch, {}, stats_callback: 5) }
      reactor do |task|
        run = task.async { w.run }
        task.sleep 0.02
        ch.shutdown
        run.wait # ChannelClosed ends it
      end
      refute w.running?
    end
  end

  def test_logger_default_and_assignment
    old = Tasker.logger
    refute_nil Tasker.default_logger
    assert_raises(ArgumentError) { Tasker.logger = Object.new }
    Tasker.logger = nil
    Tasker.logger.error("goes nowhere")
    io = StringIO.new
    Tasker.logger = Logger.new(io)
    Tasker.logger.warn("here")
    assert_match(/here/, io.string)
  ensure
    Tasker.logger = old
  end

  def test_starvation_is_logged_once_when_it_turns_true
    with_channel(starvation_warning_threshold_ms: 10, cleanup_interval_ms: 0) do |ch|
      ch.dispatch("held")
      held = ch.poll
      io = StringIO.new
      old = Tasker.logger
      Tasker.logger = Logger.new(io)
      m = Tasker::StatsMonitor.new("w", ch, nil, 1) { {} }
      m.tick
      sleep 0.03
      3.times { m.tick }
      assert_equal 1, io.string.scan("starvation detected").size, io.string
      assert_includes io.string, held.event_id
      ch.complete(held.event_id, nil)
      m.tick
      assert_equal 5, m.ticks
    ensure
      Tasker.logger = old
    end
  end
end
