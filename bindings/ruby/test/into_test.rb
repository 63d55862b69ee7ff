# frozen_string_literal: true

require_relative "test_helper"

# Single documents reach Ruby through the thread's reused buffer
# (tasker_poll_into, tasker_next_completion_into). One larger than the
# buffer is kept by the library and taken again into a grown buffer:
# nothing is lost or cut.
class IntoBufferTest < Minitest::Test
  def test_documents_larger_than_the_buffer_arrive_whole
    big = "x" * (Tasker::Native::Scratch::INTO_BUF_SIZE * 3)
    with_channel do |ch|
      small_id = ch.dispatch("h", { "n" => 1 })
      big_id = ch.dispatch("h", { "s" => big })
      assert_equal small_id, ch.poll.event_id
      before = Tasker::Native.scratch.buf.size
      ev = ch.poll
      assert_equal big_id, ev.event_id
      assert_equal({ "s" => big }, ev.payload)
      assert_operator Tasker::Native.scratch.buf.size, :>, before, "the buffer grew to the document"
      ch.complete(big_id, { "echo" => big })
      ch.complete(small_id, 1)
      c = ch.next_completion
      assert_equal [big_id, { "echo" => big }], [c.event_id, c.result]
      assert_equal small_id, JSON.parse(ch.next_completion_raw)["event_id"]
      assert_nil ch.next_completion_raw
      s = ch.stats
      assert_equal [2, 2, 2], [s[:polled], s[:completed], s[:delivered]]
    end
  end

  def test_a_new_thread_gets_a_big_document_through_a_wait
    big = "y" * (Tasker::Native::Scratch::INTO_BUF_SIZE * 2)
    with_channel do |ch|
      got = Thread.new { ch.poll_raw(timeout: 5) }
      sleep 0.05
      id = ch.dispatch("h", { "s" => big })
      doc = JSON.parse(got.value)
      assert_equal [id, { "s" => big }], [doc["event_id"], doc["payload"]]
    end
  end
end
