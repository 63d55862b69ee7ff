# frozen_string_literal: true

require_relative "test_helper"

class TimeoutTest < Minitest::Test
  def test_cleanup_timeouts_ends_overdue_events
    with_channel(cleanup_interval_ms: 0) do |ch| # reaper off: only our call ends them
      ids = Array.new(3) { ch.dispatch("slow", nil, timeout_ms: 30) }
      keep = ch.dispatch("slow", nil, timeout_ms: 60_000)
      events = Array.new(4) { ch.poll(timeout: 5) }
      assert_equal 0, ch.cleanup_timeouts, "nothing is overdue yet"
      sleep 0.1
      assert_equal 3, ch.cleanup_timeouts
      assert_equal 0, ch.cleanup_timeouts
      got = ch.each_completion(timeout: 0.2).to_a
      assert_equal ids.sort, got.map(&:event_id).sort
      got.each do |c|
        assert_equal "timeout", c.status
        assert c.timeout?
        assert_equal "ffi_timeout", c.error_type
        assert_equal true, c.retryable?
        refute_nil c.polled_at
      end
      e = assert_raises(Tasker::EventNotPending) { ch.complete(ids.first, "too late") }
      assert_match(/pending|not/i, e.message)
      ch.complete(keep, "in time")
      assert_equal "in time", ch.next_completion(timeout: 5).result
      assert_equal 3, ch.stats[:timed_out]
      assert_equal 4, events.compact.size
    end
  end

  def test_reaper_expires_events_without_help
    with_channel(cleanup_interval_ms: 20) do |ch|
      id = ch.dispatch("slow", nil, timeout_ms: 50)
      ev = ch.poll(timeout: 5)
      assert_equal 50, ev.timeout_ms
      assert_in_delta 0.05, ev.timeout, 1e-9
      c = ch.next_completion(timeout: 5)
      refute_nil c, "the reaper produced a timeout completion"
      assert_equal id, c.event_id
      assert_equal "timeout", c.status
    end
  end

  def test_handler_timeout_ms_config_is_the_default
    with_channel(handler_timeout_ms: 1234) do |ch|
      ch.dispatch("x")
      assert_equal 1234, ch.poll.timeout_ms
    end
  end

  def test_poll_waits_for_its_timeout_then_returns_nil
    with_channel do |ch|
      t0 = monotonic
      assert_nil ch.poll(timeout: 0.25) # longer than one wait slice
      elapsed = monotonic - t0
      assert_operator elapsed, :>=, 0.2
      assert_operator elapsed, :<, 5, "did not hang"
      assert_nil ch.next_completion(timeout: 0.05)
      assert_equal [], ch.poll_batch(3, timeout: 0.05)
    end
  end

  def test_nil_timeout_waits_until_something_arrives
    with_channel do |ch|
      Thread.new { sleep 0.3; ch.dispatch("later", "x") }
      ev = ch.poll(timeout: nil)
      assert_equal "x", ev.payload
      Thread.new { sleep 0.3; ch.complete(ev.event_id, "y") }
      assert_equal "y", ch.next_completion(timeout: nil).result
    end
  end

  def test_blocked_waits_wake_at_shutdown
    with_channel do |ch|
      poller = Thread.new do
        ch.poll(timeout: nil)
      rescue Tasker::ChannelClosed => e
        e
      end
      consumer = Thread.new do
        ch.next_completion(timeout: nil)
      rescue Tasker::ChannelClosed => e
        e
      end
      sleep 0.2
      ch.shutdown
      assert_instance_of Tasker::ChannelClosed, poller.join(5)&.value
      assert_instance_of Tasker::ChannelClosed, consumer.join(5)&.value
    end
  end

  def test_blocked_waits_wake_at_close
    ch = Tasker::Channel.new
    poller = Thread.new do
      ch.poll(timeout: nil)
    rescue Tasker::Error => e
      e
    end
    sleep 0.2
    ch.close
    refute_nil poller.join(5), "a poll blocked on a closed channel woke up"
    assert_kind_of Tasker::Error, poller.value
  end
end
