# frozen_string_literal: true

require_relative "test_helper"

class LeakTest < Minitest::Test
  ROUND_TRIPS = 20_000 # 5 library calls each: 100,000 calls

  # dispatch, poll, complete, next_completion and cleanup_timeouts. Mostly
  # the raw variants (the same native calls, buffers and frees as the decoded
  # ones, at a fraction of the Ruby-side cost), with every 10th round trip
  # decoded and every 100th also taking the error path (tasker_last_error)
  # and stats.
  def round_trips(ch, n)
    event = JSON.generate("task_uuid" => SecureRandom.uuid, "step_uuid" => SecureRandom.uuid,
                          "handler" => "leak", "payload" => { "n" => 1 })
    result = '{"success":true,"result":{"ok":true}}'
    n.times do |i|
      if (i % 10).zero?
        id = ch.dispatch("leak", i)
        ch.complete(ch.poll.event_id, i)
        ch.next_completion
      else
        id = ch.dispatch_raw(event)
        ch.poll_raw
        ch.complete_raw(id, result)
        ch.next_completion_raw
      end
      ch.cleanup_timeouts
      next unless (i % 100).zero?

      begin
        ch.complete(id, i)
      rescue Tasker::EventNotPending
        nil
      end
      ch.stats
    end
  end

  def test_no_native_leak_over_100_000_calls
    with_channel do |ch|
      round_trips(ch, 3_000) # warm up: Ruby heap, Go heap, caches
      GC.start
      before = rss_bytes
      round_trips(ch, ROUND_TRIPS)
      GC.start
      growth = rss_bytes - before
      s = ch.stats
      assert_equal 23_000, s[:completed]
      assert_equal 0, s[:pending] + s[:queued] + s[:undelivered]
      assert_operator growth, :<, 32 * 1024 * 1024,
                      "RSS grew by #{growth / 1024} KiB over #{ROUND_TRIPS * 5} calls"
    end
  end

  def test_channels_are_released
    GC.start
    before = rss_bytes
    2_000.times { Tasker::Channel.new.close }
    200.times { Tasker::Channel.new } # left to the finalizer
    GC.start
    assert_operator rss_bytes - before, :<, 32 * 1024 * 1024
  end
end
