# frozen_string_literal: true

require_relative "test_helper"

# Rules of docs/ABI.md / tasker.h seen through the binding.
class AbiTest < Minitest::Test
  def test_bounds_max_concurrent_handlers
    with_channel(max_concurrent_handlers: 2, completion_buffer_size: 2) do |ch|
      3.times { ch.dispatch("b") }
      a = ch.poll
      b = ch.poll
      refute_nil a
      refute_nil b
      assert_nil ch.poll, "at max_concurrent_handlers poll hands out nothing"
      assert_nil ch.poll(timeout: 0.05)
      ch.complete(a.event_id)
      assert_nil ch.poll, "running + not-yet-taken completions are bounded by completion_buffer_size"
      refute_nil ch.next_completion
      refute_nil ch.poll(timeout: 1)
    end
  end

  def test_duplicate_live_event_id_and_reuse_after_end
    with_channel do |ch|
      eid = SecureRandom.uuid
      ch.dispatch("x", 1, event_id: eid)
      e = assert_raises(Tasker::InvalidArgument) { ch.dispatch("x", 2, event_id: eid) }
      assert_match(/event_id/, e.message)
      ch.complete(ch.poll.event_id, 1)
      assert_equal eid, ch.dispatch("x", 3, event_id: eid), "an ended event's id may be reused"
    end
  end

  def test_strict_documents
    with_channel do |ch|
      t = SecureRandom.uuid
      s = SecureRandom.uuid
      dup = %({"task_uuid":"#{t}","step_uuid":"#{s}","handler":"a","handler":"b"})
      assert_raises(Tasker::InvalidArgument) { ch.dispatch_raw(dup) }
      bad_utf8 = %({"task_uuid":"#{t}","step_uuid":"#{s}","handler":"\xff"}).b
      assert_raises(Tasker::InvalidArgument) { ch.dispatch_raw(bad_utf8) }
      e = assert_raises(Tasker::InvalidArgument) { ch.dispatch_raw(%({"task_uuid":"#{t}","step_uuid":"#{s}","handler":"a","bogus":1})) }
      assert_match(/bogus/, e.message)
      assert_raises(Tasker::InvalidArgument) { ch.dispatch_raw(%({"task_uuid":"#{t}","step_uuid":"#{s}","handler":"a","timeout_ms":0})) }
      assert_raises(Tasker::InvalidArgument) { ch.dispatch_raw("") }
      assert_equal 0, ch.stats[:dispatched]

      ev = dispatch_and_poll(ch)
      assert_raises(Tasker::InvalidArgument) { ch.complete_raw(ev.event_id, '{"result":1}') } # success missing
      assert_raises(Tasker::InvalidArgument) { ch.complete_raw(ev.event_id, '{"success":false}') }
      assert_raises(Tasker::InvalidArgument) { ch.complete_raw(ev.event_id, '{"success":true,"error":{"message":"m"}}') }
      assert_raises(Tasker::InvalidArgument) { ch.complete_raw(ev.event_id, '{"success":true,"metadata":[1]}') }
      assert_raises(Tasker::InvalidArgument) { ch.complete_raw("not-a-uuid", '{"success":true}') }
      ch.complete_raw(ev.event_id, '{"success":true}')
      c = ch.next_completion
      assert_nil c.result
      assert_nil c.metadata
    end
  end

  def test_config_limits
    assert_raises(Tasker::InvalidArgument) { Tasker::Channel.new(max_payload_bytes: 0) }
    assert_raises(Tasker::InvalidArgument) { Tasker::Channel.new(dispatch_buffer_size: 0) }
    assert_raises(Tasker::InvalidArgument) { Tasker::Channel.new(worker_id: 5) }
    Tasker::Channel.new(max_payload_bytes: 64).close
  end

  def test_second_shutdown_brings_the_deadline_closer
    with_channel do |ch|
      ch.dispatch("x")
      ev = ch.poll
      t = Thread.new { ch.shutdown(drain: 30) }
      sleep 0.1
      t0 = monotonic
      ch.shutdown(drain: 0)
      refute_nil t.join(10), "the first shutdown returned once the second cancelled the rest"
      assert_operator monotonic - t0, :<, 10
      c = ch.next_completion
      assert_equal ev.event_id, c.event_id
      assert_equal "cancelled", c.status
      assert_equal "shutdown", c.error_type
      assert_raises(Tasker::ChannelClosed) { ch.next_completion }
    end
  end

  def test_close_wakes_a_blocked_consumer_and_discards_the_stream
    ch = Tasker::Channel.new
    2.times { ch.dispatch("x") }
    ch.complete(ch.poll.event_id) # one completion left untaken, one event queued
    consumer = Thread.new do
      ch.next_completion(timeout: nil) && ch.next_completion(timeout: nil)
    rescue Tasker::Error => e
      e.class
    end
    sleep 0.2
    ch.close
    refute_nil consumer.join(5), "a consumer blocked on a closed channel woke up"
    assert_raises(Tasker::BadHandle) { ch.next_completion }
  end

  def test_last_error_is_kept_across_successful_calls
    with_channel do |ch|
      assert_raises(Tasker::EventNotPending) { ch.complete(SecureRandom.uuid) }
      msg = Tasker::Native.last_error
      refute_empty msg
      ch.dispatch("x")
      ch.poll
      assert_nil ch.poll
      assert_equal msg, Tasker::Native.last_error, "OK and EMPTY leave the last error as it was"
    end
  end
end
