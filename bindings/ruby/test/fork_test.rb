# frozen_string_literal: true

require_relative "test_helper"

class ForkTest < Minitest::Test
  def test_child_forked_after_load_gets_forked_error_and_exits_cleanly
    with_channel do |ch|
      ev_id = ch.dispatch("parent", 1)
      status, res = fork_child do
        out = {}
        calls = {
          stats: -> { ch.stats },
          dispatch: -> { ch.dispatch("child") },
          poll: -> { ch.poll },
          poll_wait: -> { ch.poll(timeout: 1) },
          poll_batch: -> { ch.poll_batch(2) },
          complete: -> { ch.complete(ev_id, 1) },
          fail: -> { ch.fail(ev_id, "x") },
          next_completion: -> { ch.next_completion },
          cleanup_timeouts: -> { ch.cleanup_timeouts },
          shutdown: -> { ch.shutdown },
          new_channel: -> { Tasker::Channel.new }
        }
        calls.each do |name, call|
          call.call
          out[name] = "no error"
        rescue Tasker::Error => e
          out[name] = [e.class.name, e.status, e.message]
        end
        # close never raises in the child: it only marks the channel closed there
        out[:closed] = [ch.close, ch.closed?]
        out[:forked?] = Tasker::Native.forked?
        out[:version] = Tasker::Native.tasker_version # static functions still work
        out
      end
      assert status.success?, "child exited cleanly (#{status.inspect})"
      refute res.key?(:crashed), res[:crashed]
      assert res[:forked?]
      assert_equal [nil, true], res[:closed]
      assert_match(/libtasker/, res[:version])
      (res.keys - %i[forked? version closed]).each do |name|
        cls, st, msg = res[name]
        assert_equal "Tasker::ForkedError", cls, "#{name} in the child: #{res[name].inspect}"
        assert_equal(-7, st)
        assert_match(/fork/, msg)
        assert_match(/on_worker_boot/, msg, "the message says what to do")
        assert_match(/process #{Process.pid}/, msg, "the message names the process that loaded it")
      end
      # the parent is unaffected
      ev = ch.poll(timeout: 5)
      assert_equal ev_id, ev.event_id
      ch.complete(ev.event_id, "parent ok")
      assert_equal "parent ok", ch.next_completion(timeout: 5).result
    end
  end

  def test_gc_in_child_never_tears_down_the_parents_channel
    ch = Tasker::Channel.new(worker_id: "parent")
    3.times { |i| ch.dispatch("p", i) }
    pending = ch.poll(timeout: 5)
    before = ch.stats
    handle = ch.handle
    parent = Process.pid

    status, res = fork_child do
      # the finalizer proc is a no-op outside the creating process...
      Tasker::Channel.finalizer(handle, parent).call
      # ...and so is dropping every reference, GC, and exiting (which runs
      # all remaining finalizers)
      ch = nil # rubocop:disable Lint/UselessAssignment
      pending = nil # rubocop:disable Lint/UselessAssignment
      GC.start(full_mark: true, immediate_sweep: true)
      GC.start
      :ok
    end
    assert status.success?, status.inspect
    assert_equal :ok, res

    # parent's channel works and its stats are intact
    after = ch.stats
    %i[dispatched polled queued pending completed cancelled].each do |k|
      assert_equal before[k], after[k], "stats[#{k}] unchanged by the child"
    end
    assert_equal "running", after[:state]
    assert_equal "parent", after[:worker_id]
    refute ch.closed?, "the parent's channel is still open"
    ch.complete(pending.event_id, "done")
    assert_equal "done", ch.next_completion(timeout: 5).result
    2.times { ch.complete(ch.poll(timeout: 5).event_id) }
    assert_equal 3, ch.stats[:completed]
  ensure
    ch&.close
  end

  def test_child_of_a_parent_that_only_required_tasker_can_use_the_library
    # A fresh process, so that this test process's loaded library does not
    # matter: the parent requires tasker (as a preloading Puma master would),
    # forks, and the child makes and uses a channel; then the parent can too.
    code = <<~'RUBY'
      require "tasker"
      abort "loaded at require" if Tasker.loaded?
      abort "libtasker mapped at require" if File.read("/proc/self/maps").include?("libtasker")
      pids = Array.new(2) do |n|
        fork do
          ch = Tasker::Channel.new(worker_id: "child-#{n}")
          ch.dispatch("double", 21)
          ev = ch.poll(timeout: 5)
          ch.complete(ev.event_id, ev.payload * 2)
          c = ch.next_completion(timeout: 5)
          ch.close
          exit!(c.result == 42 && Tasker::Native.loaded_pid == Process.pid ? 0 : 3)
        end
      end
      statuses = pids.map { |pid| Process.wait2(pid)[1] }
      abort "children failed: #{statuses.inspect}" unless statuses.all?(&:success?)
      abort "parent loaded by its children" if Tasker.loaded?
      Tasker::Channel.open do |ch|
        ch.dispatch("p", 1)
        ch.complete(ch.poll(timeout: 5).event_id, 2)
        puts "parent result #{ch.next_completion(timeout: 5).result}"
      end
      puts "children ok"
    RUBY
    status, out, err = run_ruby(code, timeout: 40)
    assert status.success?, "subprocess failed: #{out}\n#{err}"
    assert_match(/children ok/, out)
    assert_match(/parent result 2/, out)
  end

  def test_require_does_not_load_the_library
    status, out, err = run_ruby(<<~'RUBY')
      require "tasker"
      maps = -> { File.read("/proc/self/maps").include?("libtasker") }
      puts "after require: loaded=#{Tasker.loaded?} mapped=#{maps.call} " \
           "attached=#{Tasker::Native.respond_to?(:tasker_poll)}"
      Tasker::Channel.new.close
      puts "after new: loaded=#{Tasker.loaded?} mapped=#{maps.call} " \
           "attached=#{Tasker::Native.respond_to?(:tasker_poll)}"
    RUBY
    assert status.success?, err
    assert_match(/after require: loaded=false mapped=false attached=false/, out)
    assert_match(/after new: loaded=true mapped=true attached=true/, out)
  end
end
