# frozen_string_literal: true

require_relative "test_helper"

# Waiting calls release the GVL, and waits are sliced so that threads blocked
# in them stay interruptible.
class GvlTest < Minitest::Test
  # Runs the block while a Ruby thread counts; returns how far it got.
  def count_during
    count = 0
    go = true
    counter = Thread.new { count += 1 while go }
    sleep 0.05
    start = count
    yield
    progress = count - start
    go = false
    counter.join
    progress
  end

  def test_blocking_poll_leaves_other_threads_running
    with_channel do |ch|
      t0 = monotonic
      progress = count_during { assert_nil ch.poll(timeout: 0.5) }
      assert_operator monotonic - t0, :>=, 0.4
      # With the GVL held for the whole wait the counter would barely move;
      # released, it runs for ~0.5 s (millions of increments on any machine).
      assert_operator progress, :>, 10_000, "other threads ran during the 0.5 s poll"

      progress = count_during { assert_nil ch.next_completion(timeout: 0.5) }
      assert_operator progress, :>, 10_000, "other threads ran during the 0.5 s next_completion"
      progress = count_during { assert_equal [], ch.poll_batch(8, timeout: 0.5) }
      assert_operator progress, :>, 10_000, "other threads ran during the 0.5 s poll_batch"
    end
  end

  def test_blocking_native_call_releases_the_gvl
    # The raw blocking binding itself (one 0.5 s call, no slicing) releases it.
    with_channel do |ch|
      s = Tasker::Native::Scratch.new
      progress = count_during do
        assert_equal Tasker::Native::EMPTY, Tasker::Native.tasker_poll_blocking(ch.handle, 500, s.out, s.len)
      end
      assert_operator progress, :>, 10_000
    end
  end

  def test_blocked_dispatch_releases_the_gvl
    with_channel(dispatch_buffer_size: 1) do |ch|
      ch.dispatch("fill")
      progress = count_during { assert_raises(Tasker::QueueFull) { ch.dispatch("x", wait: 0.5) } }
      assert_operator progress, :>, 10_000
    end
  end

  def test_thread_kill_ends_an_unbounded_poll_promptly
    with_channel do |ch|
      t = Thread.new { ch.poll(timeout: nil) }
      sleep 0.2
      t0 = monotonic
      t.kill
      refute_nil t.join(5), "killed poller ended"
      assert_operator monotonic - t0, :<, 3, "did not hang"
      # the channel is fine and nothing was taken
      id = ch.dispatch("after")
      assert_equal id, ch.poll(timeout: 1).event_id
    end
  end

  def test_thread_raise_interrupts_an_unbounded_next_completion
    with_channel do |ch|
      t = Thread.new do
        ch.next_completion(timeout: nil)
      rescue RuntimeError => e
        e.message
      end
      sleep 0.2
      t.raise("wake up")
      assert_equal "wake up", t.join(5)&.value
    end
  end

  def test_no_event_is_lost_when_pollers_are_interrupted
    # Threads blocked in poll are killed while events arrive; every event is
    # either handed to a surviving poll or still queued -- none vanishes into
    # a killed thread (which would leave it pending until its timeout).
    with_channel do |ch|
      n = 200
      pollers = Array.new(4) { Thread.new { loop { (ev = ch.poll(timeout: nil)) && ch.complete(ev.event_id) } } }
      n.times do |i|
        ch.dispatch("x", i)
        pollers[i % 4].kill if i % 50 == 25
        pollers[i % 4] = Thread.new { loop { (ev = ch.poll(timeout: nil)) && ch.complete(ev.event_id) } } unless pollers[i % 4].alive?
      end
      got = 0
      deadline = monotonic + 10
      got += 1 while got < n && monotonic < deadline && ch.next_completion(timeout: 0.5)
      pollers.each(&:kill).each { |t| t.join(5) }
      assert_equal n, got
      assert_equal 0, ch.stats[:pending]
    end
  end

  # What a wait takes while its thread is being interrupted: simulated
  # deterministically with the wait's own machinery (a slice that takes 0.3 s
  # and then hands out something the library really handed out).
  def interrupted_wait(ch, kind, json)
    started = Queue.new
    t = Thread.new do
      ch.send(:sliced_wait, 5, "test", kind) do |_ms|
        started << true
        sleep 0.3
        json
      end
    rescue RuntimeError => e
      e.message
    end
    started.pop
    t.raise("interrupt")
    t.join(5)&.value
  end

  def test_event_taken_by_an_interrupted_wait_is_failed_at_once
    with_channel do |ch|
      id = ch.dispatch("x")
      raw = ch.poll_raw
      assert_equal "interrupt", interrupted_wait(ch, :poll, raw), "the interrupt still acts"
      c = ch.next_completion(timeout: 2)
      refute_nil c, "the event was ended at once, not left pending until its timeout"
      assert_equal id, c.event_id
      assert_equal "failed", c.status
      assert_equal "interrupted", c.error_type
      assert_equal true, c.retryable?
    end
  end

  def test_completion_taken_by_an_interrupted_wait_is_handed_out_again
    with_channel do |ch|
      id = ch.dispatch("x")
      ch.complete(ch.poll.event_id, "r")
      raw = ch.next_completion_raw
      assert_equal "interrupt", interrupted_wait(ch, :next_completion, raw)
      c = ch.next_completion
      refute_nil c, "the completion was kept for the next next_completion"
      assert_equal id, c.event_id
      assert_equal "r", c.result
      assert_nil ch.next_completion
    end
  end

  def test_no_completion_is_lost_when_consumers_are_interrupted
    with_channel do |ch|
      n = 200
      got = Queue.new
      consumer = -> { Thread.new { loop { (c = ch.next_completion(timeout: nil)) && got << c.event_id } } }
      consumers = Array.new(3) { consumer.call }
      ids = Array.new(n) do |i|
        id = ch.dispatch("x", i)
        ch.complete(ch.poll.event_id, i)
        if i % 40 == 20
          consumers[i % 3].kill.join(5)
          consumers[i % 3] = consumer.call
        end
        id
      end
      deadline = monotonic + 10
      sleep 0.01 while got.size < n && monotonic < deadline
      consumers.each(&:kill).each { |t| t.join(5) }
      # what killed consumers took is handed out again
      while (c = ch.next_completion)
        got << c.event_id
      end
      seen = []
      seen << got.pop until got.empty?
      assert_equal ids.sort, seen.sort
    end
  end
end
