# frozen_string_literal: true

require_relative "test_helper"

# Each error class from a real bad call against the library.
class ErrorsTest < Minitest::Test
  def test_invalid_argument_bad_config
    e = assert_raises(Tasker::InvalidArgument) { Tasker::Channel.new(no_such_key: 1) }
    assert_equal(-1, e.status)
    assert_match(/no_such_key/, e.message)

    e = assert_raises(Tasker::InvalidArgument) { Tasker::Channel.new(max_concurrent_handlers: 10, completion_buffer_size: 5) }
    assert_match(/completion_buffer_size/, e.message)

    e = assert_raises(Tasker::InvalidArgument) { Tasker::Channel.new(dispatch_buffer_size: "big") }
    assert_match(/dispatch_buffer_size/, e.message)
  end

  def test_invalid_argument_unknown_result_key_keeps_event_pending
    with_channel do |ch|
      ev = dispatch_and_poll(ch)
      e = assert_raises(Tasker::InvalidArgument) do
        ch.complete_raw(ev.event_id, '{"success":false,"retryable":false,"error":{"message":"m"}}')
      end
      assert_equal(-1, e.status)
      assert_match(/retryable/, e.message, "the message names the misplaced key")
      assert_equal 1, ch.stats[:pending], "a rejected complete leaves its event pending"
      ch.fail(ev.event_id, "m", retryable: false) # the corrected call succeeds
      assert_equal false, ch.next_completion(timeout: 5).retryable?
    end
  end

  def test_invalid_argument_from_ruby_side_checks
    with_channel do |ch|
      ch.dispatch("h") # an event is available: a bad timeout is still refused, and takes nothing
      assert_raises(Tasker::InvalidArgument) { ch.poll(timeout: -1) }
      assert_raises(Tasker::InvalidArgument) { ch.poll_batch(2, timeout: "1") }
      assert_raises(Tasker::InvalidArgument) { ch.dispatch("h", wait: -1) }
      assert_raises(Tasker::InvalidArgument) { ch.shutdown(drain: -2) }
      assert_equal 0, ch.stats[:pending]
      ch.complete(ch.poll.event_id)
      assert_raises(Tasker::InvalidArgument) { ch.next_completion(timeout: -0.5) }
      e = assert_raises(Tasker::InvalidArgument) { ch.dispatch("h", Float::NAN) }
      assert_match(/JSON/, e.message)
      assert_raises(Tasker::InvalidArgument) { ch.dispatch("", 1) } # library: empty handler
      assert_raises(Tasker::InvalidArgument) { ch.dispatch("h", 1, task_uuid: "not-a-uuid") }
      assert_raises(Tasker::InvalidArgument) { ch.poll_batch(0) }
      assert_equal 1, ch.stats[:dispatched], "rejected dispatches queue nothing"
    end
  end

  def test_bad_handle_after_close
    ch = Tasker::Channel.new
    ch.close
    %i[stats cleanup_timeouts poll next_completion].each do |m|
      e = assert_raises(Tasker::BadHandle) { ch.public_send(m) }
      assert_equal(-2, e.status)
      assert_match(/handle/, e.message)
    end
    assert_raises(Tasker::BadHandle) { ch.dispatch("h") }
    assert_raises(Tasker::BadHandle) { ch.complete(SecureRandom.uuid) }
    assert_raises(Tasker::BadHandle) { ch.shutdown }
  end

  def test_event_not_pending_complete_twice
    with_channel do |ch|
      ev = dispatch_and_poll(ch)
      ch.complete(ev.event_id, 1)
      e = assert_raises(Tasker::EventNotPending) { ch.complete(ev.event_id, 2) }
      assert_equal(-3, e.status)
      assert_raises(Tasker::EventNotPending) { ch.fail(ev.event_id, "late") }
      assert_raises(Tasker::EventNotPending) { ch.complete(SecureRandom.uuid) }
      assert_equal 3, ch.stats[:late_completions]
      c = ch.next_completion(timeout: 5)
      assert_equal 1, c.result, "the first end stands"
      assert_nil ch.next_completion
    end
  end

  def test_queue_full
    with_channel(dispatch_buffer_size: 1) do |ch|
      ch.dispatch("a")
      e = assert_raises(Tasker::QueueFull) { ch.dispatch("b") }
      assert_equal(-4, e.status)
      t0 = monotonic
      assert_raises(Tasker::QueueFull) { ch.dispatch("b", wait: 0.1) }
      assert_operator monotonic - t0, :>=, 0.05, "waited for room before giving up"
      s = ch.stats
      assert_equal 1, s[:dispatched]
      assert_equal 2, s[:rejected_full]
      # room appears while waiting: the dispatch succeeds
      Thread.new { sleep 0.1; ch.poll }
      assert_kind_of String, ch.dispatch("c", wait: 5)
      Thread.new { sleep 0.1; ch.poll }
      assert_kind_of String, ch.dispatch("d", wait: nil)
    end
  end

  def test_shutdown_error
    with_channel do |ch|
      ch.shutdown
      e = assert_raises(Tasker::ShutdownError) { ch.dispatch("h") }
      assert_equal(-5, e.status)
      assert_match(/shut/, e.message)
    end
  end

  def test_too_large
    with_channel(max_payload_bytes: 256) do |ch|
      e = assert_raises(Tasker::TooLarge) { ch.dispatch("h", "x" * 1000) }
      assert_equal(-6, e.status)
      assert_match(/max_payload_bytes/, e.message)
      ev = dispatch_and_poll(ch, "h", "small")
      assert_raises(Tasker::TooLarge) { ch.complete(ev.event_id, "y" * 1000) }
      ch.complete(ev.event_id, "ok")
      assert_equal "ok", ch.next_completion(timeout: 5).result
    end
  end

  def test_channel_closed
    with_channel do |ch|
      ch.shutdown
      e = assert_raises(Tasker::ChannelClosed) { ch.poll }
      assert_equal 2, e.status
      assert_kind_of Tasker::Error, e
      assert_raises(Tasker::ChannelClosed) { ch.poll(timeout: 1) }
      assert_raises(Tasker::ChannelClosed) { ch.poll_batch(5) }
      assert_raises(Tasker::ChannelClosed) { ch.next_completion }
      assert_raises(Tasker::ChannelClosed) { ch.next_completion_raw(timeout: nil) }
    end
  end

  def test_status_to_class_mapping
    expected = {
      -1 => Tasker::InvalidArgument, -2 => Tasker::BadHandle, -3 => Tasker::EventNotPending,
      -4 => Tasker::QueueFull, -5 => Tasker::ShutdownError, -6 => Tasker::TooLarge,
      -7 => Tasker::ForkedError, -8 => Tasker::InternalError, 2 => Tasker::ChannelClosed
    }
    expected.each do |status, klass|
      assert_equal klass, Tasker::Error.class_for(status)
      e = Tasker::Error.for_status(status, "detail #{status}")
      assert_instance_of klass, e
      assert_equal status, e.status
      assert_includes e.message, "detail #{status}"
      assert_operator klass, :<, Tasker::Error
      assert_equal status, klass.new("x").status
    end
    assert_operator Tasker::Error, :<, StandardError
    assert_equal Tasker::Error, Tasker::Error.class_for(-99)
  end

  def test_internal_error_through_error_for
    # EINTERNAL cannot be provoked from outside (it is a recovered panic);
    # check the path a real one would take: status -> class, message from
    # tasker_last_error (falling back to strerror when there is none).
    e = Tasker::Native.error_for(Tasker::Native::EINTERNAL, "tasker_poll")
    assert_instance_of Tasker::InternalError, e
    assert_equal(-8, e.status)
    refute_empty e.message
  end

  def test_last_error_is_read_on_the_calling_thread_with_blocking_calls
    # tasker_last_error is per OS thread. Many Ruby threads make failing
    # *blocking* calls (GVL released) with distinct bad timeouts at once;
    # each must read back the message of its own call.
    with_channel do |ch|
      threads = Array.new(6) do |i|
        Thread.new do
          s = Tasker::Native::Scratch.new
          bad = -(i + 2)
          Array.new(200) do
            st = Tasker::Native.tasker_poll_blocking(ch.handle, bad, s.out, s.len)
            msg = Tasker::Native.last_error
            [st, msg.include?("timeout_ms = #{bad}")]
          end
        end
      end
      threads.each do |t|
        t.value.each do |st, own|
          assert_equal Tasker::Native::EINVAL, st
          assert own, "a thread read another thread's last error"
        end
      end
    end
  end

  def test_abi_mismatch_is_refused_naming_both_versions
    e = assert_raises(Tasker::LibraryError) { Tasker::Native.check_abi!(2, "/x/libtasker.so") }
    assert_match(/ABI version 2/, e.message)
    assert_match(/ABI version 1/, e.message)
    assert_nil e.status
    assert_nil Tasker::Native.check_abi!(1)
  end

  def test_bad_library_path_is_a_library_error
    status, out, err = run_ruby(<<~RUBY, env: { "TASKER_LIBRARY" => "/nonexistent/libtasker.so" })
      require "tasker"
      begin
        Tasker::Channel.new
      rescue Tasker::LibraryError => e
        puts "LibraryError: " + e.message
      end
      puts Tasker.loaded?
    RUBY
    assert status.success?, err
    assert_match(%r{LibraryError: cannot load libtasker from "/nonexistent/libtasker.so"}, out)
    assert_match(/^false$/, out)
  end
end
