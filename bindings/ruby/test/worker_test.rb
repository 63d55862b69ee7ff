# frozen_string_literal: true

require_relative "test_helper"

class WorkerTest < Minitest::Test
  class NotRetryable < StandardError
    def retryable?
      false
    end
  end

  class Doubler
    def call(event)
      event.payload * 2
    end
  end

  def collect(ch, n, timeout: 10)
    out = {}
    deadline = monotonic + timeout
    while out.size < n && monotonic < deadline
      c = ch.next_completion(timeout: 0.2)
      out[c.event_id] = c if c
    end
    assert_equal n, out.size, "expected #{n} completions"
    out
  end

  def test_succeeding_raising_and_unknown_handlers
    with_channel do |ch|
      handlers = {
        "double" => Doubler.new,
        echo: ->(ev) { { "got" => ev.payload, "handler" => ev.handler } },
        "boom" => ->(_ev) { raise ArgumentError, "bad input" },
        "fatal" => ->(_ev) { raise NotRetryable, "never again" }
      }
      ids = {
        double: ch.dispatch("double", 21),
        echo: ch.dispatch("echo", [1, "a"]),
        boom: ch.dispatch("boom"),
        fatal: ch.dispatch("fatal"),
        missing: ch.dispatch("nobody_home", 1)
      }
      worker = Tasker::Worker.new(ch, handlers, threads: 2).start
      got = collect(ch, ids.size)
      assert worker.stop(5), "worker threads stopped"

      assert_equal 42, got[ids[:double]].result
      assert_equal({ "got" => [1, "a"], "handler" => "echo" }, got[ids[:echo]].result)

      boom = got[ids[:boom]]
      assert_equal "failed", boom.status
      assert_equal "ArgumentError", boom.error_type
      assert_equal "bad input", boom.error_message
      assert_equal true, boom.retryable?
      assert_kind_of Array, boom.metadata["backtrace"]
      assert(boom.metadata["backtrace"].any? { |l| l.include?("worker_test.rb") })

      fatal = got[ids[:fatal]]
      assert_equal "WorkerTest::NotRetryable", fatal.error_type
      assert_equal false, fatal.retryable?

      missing = got[ids[:missing]]
      assert_equal "handler_not_found", missing.error_type
      assert_equal false, missing.retryable?
      assert_match(/nobody_home/, missing.error_message)

      s = worker.counts
      assert_equal 5, s[:polled]
      assert_equal 2, s[:completed]
      assert_equal 3, s[:failed]
      assert_equal 1, s[:not_found]
      assert_equal 0, s[:late]
      assert_equal "WorkerTest::NotRetryable", fatal.metadata["exception"]
    end
  end

  def test_batch_mode_processes_everything
    with_channel do |ch|
      ids = Array.new(50) { |i| ch.dispatch("sq", i) }
      worker = Tasker::Worker.new(ch, { "sq" => ->(ev) { ev.payload**2 } }, threads: 3, batch: 8).start
      got = collect(ch, 50)
      worker.stop(5)
      ids.each_with_index { |id, i| assert_equal i * i, got[id].result }
      assert_equal 50, worker.counts[:completed]
    end
  end

  def test_stop_acts_quickly_and_run_returns
    with_channel do |ch|
      worker = Tasker::Worker.new(ch, { "x" => ->(_) {} }, threads: 4)
      runner = Thread.new { worker.run }
      sleep 0.2
      assert worker.running?
      t0 = monotonic
      assert worker.stop(5)
      refute_nil runner.join(5), "run returned after stop"
      assert_operator monotonic - t0, :<, 3, "stop did not hang"
      refute worker.running?
    end
  end

  def test_run_returns_when_the_channel_shuts_down
    with_channel do |ch|
      3.times { |i| ch.dispatch("x", i) }
      worker = Tasker::Worker.new(ch, { "x" => ->(ev) { ev.payload } }, threads: 2)
      runner = Thread.new { worker.run }
      collect(ch, 3)
      ch.shutdown(drain: 1)
      refute_nil runner.join(5), "run returned once the channel was closed"
      assert_equal 3, worker.counts[:completed]
    end
  end

  def test_late_result_is_counted_not_fatal
    with_channel(cleanup_interval_ms: 20) do |ch|
      slow = ch.dispatch("slow", nil, timeout_ms: 50)
      fast = ch.dispatch("fast", 7)
      handlers = { "slow" => ->(_) { sleep 0.3; "too late" }, "fast" => ->(ev) { ev.payload } }
      worker = Tasker::Worker.new(ch, handlers, threads: 1).start
      got = collect(ch, 2)
      deadline = monotonic + 5
      sleep 0.02 until worker.stats[:late] == 1 || monotonic > deadline
      assert worker.stop(5)
      assert_equal "timeout", got[slow].status
      assert_equal "ffi_timeout", got[slow].error_type
      assert_equal 7, got[fast].result
      assert_equal 1, worker.stats[:late]
      assert_equal 0, worker.stats[:errors]
      assert_equal 1, ch.stats[:late_completions]
    end
  end

  def test_killed_worker_thread_ends_its_event_at_once
    with_channel do |ch|
      started = Queue.new
      id = ch.dispatch("hang")
      worker = Tasker::Worker.new(ch, { "hang" => ->(_) { started << true; sleep 30 } }, threads: 1).start
      started.pop
      worker.instance_variable_get(:@threads).each(&:kill)
      c = ch.next_completion(timeout: 5)
      refute_nil c, "the killed handler's event was ended, not left to time out"
      assert_equal id, c.event_id
      assert_equal "worker_killed", c.error_type
      worker.stop(1)
    end
  end

  def test_result_problems_become_failures
    with_channel(max_payload_bytes: 512) do |ch|
      big = ch.dispatch("big")
      nan = ch.dispatch("nan")
      worker = Tasker::Worker.new(ch, { "big" => ->(_) { "z" * 5000 }, "nan" => ->(_) { Float::NAN } }, threads: 1).start
      got = collect(ch, 2)
      worker.stop(5)
      assert_equal "result_too_large", got[big].error_type
      assert_equal "result_not_json", got[nan].error_type
    end
  end

  def test_binary_exception_message_is_sent_as_utf8
    with_channel do |ch|
      id = ch.dispatch("bin")
      worker = Tasker::Worker.new(ch, { "bin" => ->(_) { raise "bad \xff\xfe bytes".b } }, threads: 1).start
      got = collect(ch, 1)
      worker.stop(5)
      assert_equal "RuntimeError", got[id].error_type
      assert_match(/bad .* bytes/, got[id].error_message)
    end
  end

  def test_arguments_are_checked
    with_channel do |ch|
      assert_raises(ArgumentError) { Tasker::Worker.new(ch, { "x" => 42 }) }
      assert_raises(ArgumentError) { Tasker::Worker.new(ch, {}, threads: 0) }
      assert_raises(ArgumentError) { Tasker::Worker.new(ch, {}, batch: 0) }
    end
  end
end

class WorkerProcessTest < Minitest::Test
  def test_ctrl_c_stops_run_within_a_fraction_of_a_second
    code = <<~'RUBY'
      trap("INT", "DEFAULT") # raise Interrupt, even if this test run was started with SIGINT ignored
      require "tasker"
      $stdout.sync = true
      ch = Tasker::Channel.new
      worker = Tasker::Worker.new(ch, { "x" => ->(_) {} }, threads: 4)
      Thread.new { sleep 0.3; puts "ready" }
      begin
        worker.run
      rescue Interrupt
        puts "interrupted; running=#{worker.running?}"
        exit 42
      end
    RUBY
    Open3.popen2(RUBY, "-I", LIB_DIR, "-e", code) do |stdin, stdout, wait|
      stdin.close
      assert_equal "ready", stdout.gets&.chomp
      t0 = monotonic
      Process.kill(:INT, wait.pid)
      unless wait.join(10)
        Process.kill(:KILL, wait.pid)
        flunk "worker.run did not react to SIGINT"
      end
      assert_operator monotonic - t0, :<, 5, "did not hang"
      assert_equal "interrupted; running=false", stdout.gets&.chomp
      assert_equal 42, wait.value.exitstatus
    end
  end

  def test_process_exits_promptly_with_a_running_worker_and_open_channel
    status, out, err = run_ruby(<<~'RUBY', timeout: 20)
      require "tasker"
      ch = Tasker::Channel.new
      5.times { |i| ch.dispatch("x", i) }
      Tasker::Worker.new(ch, { "x" => ->(_) { sleep 0.01 } }, threads: 4).start
      consumer = Thread.new { loop { ch.next_completion(timeout: nil) } }
      sleep 0.3
      puts "exiting"
      # no stop, no close: Ruby kills the threads (blocked in sliced waits)
      # and the finalizer destroys the channel
    RUBY
    assert status.success?, err
    assert_equal "exiting", out.strip
  end

  def test_start_in_a_forked_child_raises_forked_error
    with_channel do |ch|
      worker = Tasker::Worker.new(ch, { "x" => ->(_) {} }, threads: 1)
      status, res = fork_child do
        worker.start
        :started
      rescue Tasker::ForkedError => e
        [e.class.name, ch.closed?, ch.close, ch.closed?]
      end
      assert status.success?
      # close in the child marks the channel closed and never raises (SPEC.md, "Fork")
      assert_equal ["Tasker::ForkedError", false, nil, true], res
    end
  end
end

class WorkerBatchKillTest < Minitest::Test
  def test_killed_batch_worker_ends_the_rest_of_its_batch_at_once
    with_channel do |ch|
      started = Queue.new
      ids = Array.new(4) { ch.dispatch("hang") }
      worker = Tasker::Worker.new(ch, { "hang" => ->(_) { started << true; sleep 30 } }, threads: 1, batch: 4).start
      started.pop
      sleep 0.05 until ch.stats[:pending] == 4
      worker.instance_variable_get(:@threads).each(&:kill)
      got = ch.each_completion(timeout: 5).first(4)
      assert_equal ids.sort, got.map(&:event_id).sort
      assert(got.all? { |c| c.error_type == "worker_killed" })
      worker.stop(1)
    end
  end
end
