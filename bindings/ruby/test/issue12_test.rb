# frozen_string_literal: true

require_relative "test_helper"
require "set"

# One regression test per Ruby bug of issue 12; each failed before its fix.
class Issue12Test < Minitest::Test
  def collect(ch, n, timeout: 10)
    out = {}
    deadline = monotonic + timeout
    while out.size < n && monotonic < deadline
      c = ch.next_completion(timeout: 0.2)
      out[c.event_id] = c if c
    end
    out
  end

  # Bug 3: a result or payload that is not JSON was sent as its to_s
  # ("#<Object:0x...>") and completed as completed.
  def test_non_json_result_fails_and_non_json_payload_raises
    with_channel do |ch|
      e = assert_raises(Tasker::InvalidArgument) { ch.dispatch("h", Set[1, 2]) }
      assert_match(/payload/, e.message)
      assert_raises(Tasker::InvalidArgument) { ch.dispatch("h", { "a" => Object.new }) }
      assert_equal 0, ch.stats[:dispatched]
      ids = [ch.dispatch("object"), ch.dispatch("set"), ch.dispatch("ok")]
      handlers = { "object" => ->(_) { Object.new }, "set" => ->(_) { Set[1] }, "ok" => ->(_) { [1] } }
      worker = Tasker::Worker.new(ch, handlers, threads: 1).start
      got = collect(ch, 3)
      assert worker.stop(5)
      assert_equal %w[failed failed completed], ids.map { |i| got[i]&.status }
      assert_equal %w[result_not_json result_not_json], ids.first(2).map { |i| got[i].error_type }
      assert_equal [false, false], ids.first(2).map { |i| got[i].retryable? }
      assert_equal 2, worker.counts[:result_errors]
    end
  end

  # Bug 8: a result whose to_json raises, a BasicObject result, SystemExit
  # in a handler, or an exception whose message/retryable? raises ended the
  # event only at its timeout (or killed the thread).
  def test_whatever_a_handler_does_its_event_ends_at_once
    broken = Class.new(StandardError) do
      def message
        raise "no message"
      end

      def retryable?
        raise "no answer"
      end
    end
    raising = Object.new
    def raising.to_json(*)
      raise "to_json is broken"
    end
    handlers = {
      "to_json" => ->(_) { raising },
      "basic" => ->(_) { BasicObject.new },
      "exit" => ->(_) { exit 1 },
      "broken" => ->(_) { raise broken },
      "ok" => ->(ev) { ev.payload }
    }
    with_channel(handler_timeout_ms: 60_000) do |ch|
      ids = %w[to_json basic exit broken].map { |h| ch.dispatch(h) } + [ch.dispatch("ok", 5)]
      worker = Tasker::Worker.new(ch, handlers, threads: 1).start
      got = collect(ch, 5)
      assert worker.stop(5)
      assert_equal %w[failed failed failed failed completed], ids.map { |i| got[i]&.status }
      assert_equal %w[result_not_json result_not_json SystemExit handler_error], ids.first(4).map { |i| got[i].error_type }
      assert_match(/could not be read/, got[ids[3]].error_message)
      assert_equal true, got[ids[3]].retryable?
      assert_equal 5, got[ids[4]].result
      assert_equal 0, worker.counts[:errors]
    end
  end

  # Bug 5: while a thread waited in dispatch(wait: <finite>) on a full queue
  # or in shutdown(drain: nil), the process could not exit (Ruby's exit-time
  # thread kill spun until SIGKILL), and a main thread blocked there ignored
  # SIGINT.
  def test_process_exits_with_threads_blocked_in_dispatch_and_shutdown
    status, out, err = run_ruby(<<~'RUBY', timeout: 20)
      require "tasker"
      $stdout.sync = true
      full = Tasker::Channel.new(dispatch_buffer_size: 1)
      full.dispatch("fill")
      Thread.new { full.dispatch("blocked", wait: 3600) }
      draining = Tasker::Channel.new
      draining.dispatch("pending")
      draining.poll # one pending event: the drain never ends by itself
      Thread.new { draining.shutdown(drain: nil) }
      sleep 0.3
      puts "exiting"
    RUBY
    assert status.success?, err
    assert_equal "exiting", out.strip
  end

  def test_sigint_interrupts_a_main_thread_blocked_in_dispatch_or_shutdown
    %w[dispatch shutdown].each do |what|
      code = <<~RUBY
        trap("INT", "DEFAULT") # raise Interrupt, even if this test run was started with SIGINT ignored
        require "tasker"
        $stdout.sync = true
        ch = Tasker::Channel.new(dispatch_buffer_size: 1)
        ch.dispatch("fill")
        ch.poll
        ch.dispatch("fill again")
        puts "ready"
        begin
          #{what == 'dispatch' ? 'ch.dispatch("blocked", wait: 3600)' : 'ch.shutdown(drain: nil)'}
          puts "returned"
        rescue Interrupt
          puts "interrupted"
        end
      RUBY
      Open3.popen2(RUBY, "-I", LIB_DIR, "-e", code) do |stdin, stdout, wait|
        stdin.close
        assert_equal "ready", stdout.gets&.chomp
        sleep 0.3
        Process.kill(:INT, wait.pid)
        unless wait.join(15)
          Process.kill(:KILL, wait.pid)
          flunk "#{what}: SIGINT did not interrupt the blocked main thread"
        end
        assert_equal "interrupted", stdout.gets&.chomp, what
      end
    end
  end

  def test_sigterm_ends_a_process_blocked_in_shutdown
    code = <<~'RUBY'
      require "tasker"
      $stdout.sync = true
      ch = Tasker::Channel.new
      ch.dispatch("x")
      ch.poll
      puts "ready"
      ch.shutdown(drain: nil)
    RUBY
    Open3.popen2(RUBY, "-I", LIB_DIR, "-e", code) do |stdin, stdout, wait|
      stdin.close
      assert_equal "ready", stdout.gets&.chomp
      sleep 0.3
      Process.kill(:TERM, wait.pid)
      unless wait.join(15)
        Process.kill(:KILL, wait.pid)
        flunk "SIGTERM did not end a process blocked in shutdown(drain: nil)"
      end
      assert_equal "TERM", Signal.signame(wait.value.termsig.to_i) if wait.value.signaled?
    end
  end

  # Bug 4: the two bindings disagreed on counter names (Ruby processed /
  # succeeded) and close in a forked child (Ruby raised).
  def test_counters_have_the_shared_names_and_close_in_a_child_is_quiet
    with_channel do |ch|
      w = Tasker::Worker.new(ch, {})
      assert_equal %i[polled completed failed late not_found result_errors errors checkpointed], w.counts.keys
      status, res = fork_child { [ch.close, ch.closed?] }
      assert status.success?
      assert_equal [nil, true], res
      refute ch.closed?
    end
  end
end

# Both bindings take a completion limit under the same name (Python
# completions(limit=), Ruby each_completion(limit:)).
class CompletionLimitTest < Minitest::Test
  def test_each_completion_limit
    with_channel do |ch|
      3.times do |i|
        ch.dispatch("x", i)
        ch.complete(ch.poll(timeout: 1).event_id, i)
      end
      assert_equal [0, 1], ch.each_completion(timeout: 1, limit: 2).map(&:result)
      assert_equal [2], ch.each_completion(timeout: 0.1, limit: 5).map(&:result)
      assert_raises(Tasker::InvalidArgument) { ch.each_completion(limit: -1) }
    end
  end
end
