# frozen_string_literal: true

require_relative "test_helper"

class RoundTripTest < Minitest::Test
  UUID_RE = /\A\h{8}-\h{4}-\h{4}-\h{4}-\h{12}\z/.freeze

  def test_dispatch_poll_complete_next_completion
    with_channel do |ch|
      task = SecureRandom.uuid
      step = SecureRandom.uuid
      id = ch.dispatch("resize", { "url" => "x.png", "n" => 3 }, task_uuid: task, step_uuid: step, timeout_ms: 5000)
      assert_match UUID_RE, id

      ev = ch.poll(timeout: 5)
      assert_instance_of Tasker::StepEvent, ev
      assert_equal id, ev.event_id
      assert_equal task, ev.task_uuid
      assert_equal step, ev.step_uuid
      assert_equal "resize", ev.handler
      assert_equal({ "url" => "x.png", "n" => 3 }, ev.payload)
      assert_equal 5000, ev.timeout_ms
      assert_match UUID_RE, ev.correlation_id
      assert_nil ev.trace_id
      refute_nil ev.dispatched_at
      refute_nil ev.polled_at

      assert_nil ch.complete(ev.event_id, { "width" => 100 }, metadata: { "host" => "a" })
      c = ch.next_completion(timeout: 5)
      assert_instance_of Tasker::Completion, c
      assert_equal id, c.event_id
      assert_equal task, c.task_uuid
      assert_equal step, c.step_uuid
      assert_equal ev.correlation_id, c.correlation_id
      assert_equal "resize", c.handler
      assert_equal "completed", c.status
      assert c.success?
      assert c.completed?
      assert_equal({ "width" => 100 }, c.result)
      assert_equal({ "host" => "a" }, c.metadata)
      assert_nil c.error
      assert_equal ev.dispatched_at, c.dispatched_at
      assert_equal ev.polled_at, c.polled_at
      refute_nil c.completed_at
      assert_kind_of Numeric, c.execution_time_ms
      assert_nil ch.next_completion
    end
  end

  def test_generated_and_explicit_ids
    with_channel do |ch|
      eid = SecureRandom.uuid
      cid = SecureRandom.uuid
      assert_equal eid, ch.dispatch("h", nil, event_id: eid, correlation_id: cid, trace_id: "t1", span_id: "s1")
      ev = ch.poll
      assert_equal cid, ev.correlation_id
      assert_equal "t1", ev.trace_id
      assert_equal "s1", ev.span_id
      assert_match UUID_RE, ev.task_uuid
      assert_match UUID_RE, ev.step_uuid
      refute_equal ev.task_uuid, ev.step_uuid
      assert_nil ev.payload
    end
  end

  def test_failure_round_trip
    with_channel do |ch|
      ev = dispatch_and_poll(ch, "h", [1, 2])
      ch.fail(ev.event_id, "disk full", error_type: "io_error", retryable: false, metadata: { "disk" => "/dev/x" })
      c = ch.next_completion(timeout: 5)
      assert_equal "failed", c.status
      assert c.failed?
      refute c.success?
      assert_equal "disk full", c.error_message
      assert_equal "io_error", c.error_type
      assert_equal false, c.retryable?
      assert_equal({ "disk" => "/dev/x" }, c.metadata)
      assert_nil c.result

      ev = dispatch_and_poll(ch)
      ch.fail(ev.event_id, "oops")
      c = ch.next_completion(timeout: 5)
      assert_equal "handler_error", c.error_type
      assert_equal true, c.retryable?
    end
  end

  def test_raw_variants
    with_channel do |ch|
      task = SecureRandom.uuid
      step = SecureRandom.uuid
      id = ch.dispatch_raw(%({"task_uuid":"#{task}","step_uuid":"#{step}","handler":"raw","payload":{"big":12345678901234567890123}}))
      assert_match UUID_RE, id
      raw = ch.poll_raw(timeout: 5)
      assert_instance_of String, raw
      assert_equal Encoding::UTF_8, raw.encoding
      doc = JSON.parse(raw)
      assert_equal id, doc["event_id"]
      assert_includes raw, "12345678901234567890123", "numbers are carried exactly"
      ch.complete_raw(id, '{"success":true,"result":1.50000000000000000001}')
      craw = ch.next_completion_raw(timeout: 5)
      assert_includes craw, "1.50000000000000000001"
      assert_equal "completed", JSON.parse(craw)["status"]
      assert_nil ch.poll_raw
      assert_nil ch.next_completion_raw
      assert_nil ch.poll_batch_raw(4)
      assert_instance_of Hash, JSON.parse(ch.stats_raw)
    end
  end

  def test_poll_batch
    with_channel do |ch|
      ids = Array.new(5) { |i| ch.dispatch("b", i) }
      first = ch.poll_batch(3, timeout: 5)
      assert_equal 3, first.size
      assert(first.all? { |e| e.is_a?(Tasker::StepEvent) })
      rest = ch.poll_batch(10, timeout: 5)
      assert_equal 2, rest.size
      assert_equal ids, (first + rest).map(&:event_id)
      assert_equal [], ch.poll_batch(10)
      raw = ch.poll_batch_raw(10)
      assert_nil raw
      (first + rest).each { |e| ch.complete(e.event_id, e.payload) }
      results = ch.each_completion(timeout: 1).first(5).map(&:result)
      assert_equal [0, 1, 2, 3, 4], results
    end
  end

  def test_each_event_and_each_completion
    with_channel do |ch|
      3.times { |i| ch.dispatch("e", i) }
      seen = []
      ret = ch.each_event(timeout: 0.2) do |ev|
        seen << ev.payload
        ch.complete(ev.event_id, ev.payload * 10)
      end
      assert_same ch, ret
      assert_equal [0, 1, 2], seen

      enum = ch.each_completion(timeout: 0.2)
      assert_kind_of Enumerator, enum
      assert_equal [0, 10, 20], enum.map(&:result)
      assert_kind_of Enumerator, ch.each_event

      # after shutdown the iterators end on their own (ChannelClosed)
      2.times { |i| ch.dispatch("late", i) }
      ch.shutdown
      cancelled = ch.each_completion.to_a
      assert_equal %w[cancelled cancelled], cancelled.map(&:status)
      assert(cancelled.all? { |c| c.polled_at.nil? && c.execution_time_ms.nil? && c.error_type == "shutdown" })
      assert_equal [], ch.each_event.to_a
    end
  end

  def test_values_are_frozen
    with_channel do |ch|
      ev = dispatch_and_poll(ch, "f", { "list" => [1, { "k" => "v" }] })
      assert ev.frozen?
      assert ev.payload.frozen?
      assert ev.payload["list"].frozen?
      assert ev.event_id.frozen?
      assert_raises(FrozenError, NoMethodError) { ev.instance_variable_set(:@x, 1) }
      assert_equal ev, Tasker::StepEvent.new(**ev.to_h)
      ch.complete(ev.event_id)
      c = ch.next_completion(timeout: 5)
      assert c.frozen?
      assert_nil c.result
      assert_equal Tasker::COMPLETION_FIELDS, c.to_h.keys
      assert_equal Tasker::STEP_EVENT_FIELDS, ev.to_h.keys
    end
  end

  def test_timestamps_parse
    with_channel do |ch|
      ev = dispatch_and_poll(ch)
      t = Tasker.parse_time(ev.polled_at)
      assert_instance_of Time, t
      assert t.utc?
      assert_in_delta Time.now.to_f, t.to_f, 60
      assert_equal t.to_r, Rational(Tasker.timestamp_ns(ev.polled_at), 1_000_000_000)
      assert_operator Tasker.timestamp_ns(ev.dispatched_at), :<=, Tasker.timestamp_ns(ev.polled_at)
      assert_equal 1_000_000_000_123_000_000, Tasker.timestamp_ns("2001-09-09T01:46:40.123Z")
      assert_nil Tasker.timestamp_ns(nil)
    end
  end

  def test_stats
    with_channel(worker_id: "w-1", dispatch_buffer_size: 7) do |ch|
      2.times { ch.dispatch("s") }
      ev = ch.poll
      ch.complete(ev.event_id)
      s = ch.stats
      %i[dispatched polled completed failed timed_out cancelled late_completions rejected_full queued pending
         undelivered max_concurrent_handlers oldest_pending_age_ms oldest_pending_event_id oldest_queued_age_ms
         starvation_detected starving_event_count].each { |k| assert s.key?(k), "stats lack #{k}" }
      assert_equal 2, s[:dispatched]
      assert_equal 1, s[:completed]
      assert_equal 1, s[:queued]
      assert_equal "w-1", s[:worker_id]
      assert_equal 7, s[:dispatch_buffer_size]
      assert_equal s[:dispatched], s[:queued] + s[:pending] + s[:completed] + s[:failed] + s[:timed_out] + s[:cancelled]
    end
  end

  def test_unicode_and_nested_payloads
    with_channel do |ch|
      payload = { "name" => "Zoë ✓ 漢字 🚀", "nested" => { "a" => [nil, true, false, 1.5, -2] } }
      ev = dispatch_and_poll(ch, "ünï", payload)
      assert_equal payload, ev.payload
      assert_equal "ünï", ev.handler
      ch.complete(ev.event_id, payload)
      assert_equal payload, ch.next_completion(timeout: 5).result
    end
  end

  def test_open_closes_after_block
    kept = nil
    value = Tasker::Channel.open(max_concurrent_handlers: 2) do |ch|
      kept = ch
      refute ch.closed?
      :block_value
    end
    assert_equal :block_value, value
    assert kept.closed?
    assert_raises(Tasker::BadHandle) { kept.stats }

    assert_raises(RuntimeError) do
      Tasker::Channel.open { |ch| kept = ch; raise "boom" }
    end
    assert kept.closed?, "closed when the block raises too"
  end

  def test_close_is_idempotent
    ch = Tasker::Channel.new
    assert_nil ch.close
    assert_nil ch.close
    assert ch.closed?
    assert_match(/closed/, ch.inspect)
  end

  def test_shutdown_with_drain_lets_workers_finish
    with_channel do |ch|
      ev = dispatch_and_poll(ch)
      queued = ch.dispatch("q")
      t = Thread.new do
        sleep 0.05
        e2 = ch.poll(timeout: 5)
        ch.complete(e2.event_id, "second")
        ch.complete(ev.event_id, "first")
      end
      ch.shutdown(drain: 5)
      t.join
      assert_raises(Tasker::ShutdownError) { ch.dispatch("x") }
      statuses = ch.each_completion.map { |c| [c.event_id, c.status] }
      assert_equal [[queued, "completed"], [ev.event_id, "completed"]], statuses
      assert_raises(Tasker::ChannelClosed) { ch.next_completion }
    end
  end

  def test_library_information
    assert_equal 1, Tasker.abi_version
    assert_match(/libtasker/, Tasker.library_version)
    assert Tasker.loaded?
    assert_equal Process.pid, Tasker::Native.loaded_pid
    refute Tasker::Native.forked?
    assert_match(/TASKER_EBADF/, Tasker::Native.tasker_strerror(-2))
  end
end
