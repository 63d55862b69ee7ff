# frozen_string_literal: true

require "tmpdir"
require "fileutils"
require_relative "test_helper"

# Checkpoints (ABI minor 1) and tasker_config, through the binding.
class CheckpointTest < Minitest::Test
  include TaskerTestHelper

  def take(ch, limit = 30)
    deadline = monotonic + limit
    while monotonic < deadline
      c = ch.next_completion(timeout: 0.2)
      return c if c
    end
    flunk "no completion within #{limit} s"
  end

  # A handler walks a cursor over 1,000 items, one per run, checkpointing
  # after each, and completes with a result built from accumulated_results.
  def test_round_trip_1000_checkpoints_then_complete
    n = 1000
    runs = Queue.new
    walk = lambda do |ev|
      cp = ev.checkpoint
      offset = cp ? cp.cursor["offset"] : 0
      acc = cp ? cp.accumulated_results : { "sum" => 0, "seen" => 0 }
      runs << [offset, cp&.count, cp&.items_processed]
      next { "total" => acc["sum"], "items" => acc["seen"] } if offset == n

      item = ev.payload["items"][offset]
      Tasker::Checkpoint.new(cursor: { "offset" => offset + 1 }, items_processed: offset + 1,
                             accumulated_results: { "sum" => acc["sum"] + item, "seen" => acc["seen"] + 1 })
    end
    with_channel(handler_timeout_ms: 10_000) do |ch|
      items = (1..n).to_a
      id = ch.dispatch("walk", { "items" => items })
      worker = Tasker::Worker.new(ch, { "walk" => walk }, threads: 2).start
      comp = take(ch)
      assert worker.stop(10)
      assert_equal id, comp.event_id
      assert_equal "completed", comp.status
      assert_equal({ "total" => items.sum, "items" => n }, comp.result)
      assert_equal n, comp.checkpoints
      seen = Array.new(runs.size) { runs.pop }
      assert_equal (0..n).to_a, seen.map(&:first)
      seen.each { |offset, count, done| assert_equal [offset, offset], [count, done] if offset.positive? }
      counts = worker.counts
      assert_equal [n + 1, n, 1], counts.values_at(:polled, :checkpointed, :completed)
      assert_equal 0, counts[:failed] + counts[:late] + counts[:errors]
      assert_nil ch.next_completion(timeout: 0)
      stats = ch.stats
      assert_equal [n, n + 1, 1], stats.values_at(:checkpoints, :polled, :dispatched)
    end
  end

  def test_channel_checkpoint_and_event_checkpoint
    with_channel(cleanup_interval_ms: 0) do |ch|
      id = ch.dispatch("h", { "rows" => 3 })
      ev = ch.poll(timeout: 1)
      assert_nil ev.checkpoint
      ch.checkpoint(ev.event_id, cursor: { "after" => "row-1" }, items_processed: 1,
                                 accumulated_results: [12_345_678_901_234_567_890])
      assert_nil ch.next_completion(timeout: 0), "a checkpoint is not a completion"
      assert_raises(Tasker::EventNotPending) { ch.checkpoint(id, cursor: 1, items_processed: 1) }
      assert_raises(Tasker::EventNotPending) { ch.complete(id, 1) }
      ev = ch.poll(timeout: 1)
      assert_equal id, ev.event_id
      assert_equal Tasker::Checkpoint.new(cursor: { "after" => "row-1" }, items_processed: 1,
                                          accumulated_results: [12_345_678_901_234_567_890], count: 1), ev.checkpoint
      ch.checkpoint(id, cursor: nil, items_processed: 2)
      ev = ch.poll(timeout: 1)
      assert_equal [nil, nil, 2], [ev.checkpoint.cursor, ev.checkpoint.accumulated_results, ev.checkpoint.count]
      ch.complete(id, "done")
      comp = ch.next_completion(timeout: 1)
      assert_equal ["completed", 2], [comp.status, comp.checkpoints]
      assert_raises(Tasker::EventNotPending) { ch.checkpoint(id, cursor: 1, items_processed: 1) }
    end
  end

  def test_checkpoint_value_checks
    [-1, 1.5, "3", true, nil, 2**63].each do |bad|
      e = assert_raises(Tasker::InvalidArgument, bad.inspect) { Tasker::Checkpoint.new(cursor: 1, items_processed: bad) }
      assert_includes e.message, "items_processed"
    end
    assert_raises(ArgumentError) { Tasker::Checkpoint.new(items_processed: 1) } # cursor is required
    assert Tasker::Checkpoint.new(cursor: 1, items_processed: 0).frozen?
  end

  def test_max_checkpoints_fails_the_step
    with_channel(max_checkpoints: 3, handler_timeout_ms: 10_000) do |ch|
      ch.dispatch("forever")
      forever = ->(_ev) { Tasker::Checkpoint.new(cursor: 0, items_processed: 0) }
      worker = Tasker::Worker.new(ch, { "forever" => forever }, threads: 1).start
      comp = take(ch)
      assert worker.stop(10)
      assert_equal ["failed", "too_many_checkpoints", false, 3],
                   [comp.status, comp.error_type, comp.retryable?, comp.checkpoints]
      # the worker handed the library 4 checkpoints; the library ended the step at the 4th
      assert_equal [4, 4], worker.counts.values_at(:polled, :checkpointed)
    end
  end

  # Against a library older than ABI minor 1: Channel#checkpoint raises
  # LibraryError and the Worker fails the event with checkpoint_unsupported.
  def test_library_without_checkpoints
    with_channel(handler_timeout_ms: 10_000) do |ch|
      real = Tasker::Native.abi_minor
      Tasker::Native.abi_minor = 0
      begin
        id = ch.dispatch("h")
        refute_nil ch.poll(timeout: 1)
        e = assert_raises(Tasker::LibraryError) { ch.checkpoint(id, cursor: 1, items_processed: 1) }
        assert_includes e.message, "1.1"
        ch.complete(id, nil)
        take(ch)
        ch.dispatch("h")
        worker = Tasker::Worker.new(ch, { "h" => ->(_ev) { Tasker::Checkpoint.new(cursor: 1, items_processed: 1) } },
                                    threads: 1).start
        comp = take(ch)
        assert worker.stop(10)
        assert_equal ["failed", "checkpoint_unsupported", false], [comp.status, comp.error_type, comp.retryable?]
        assert_equal 0, worker.counts[:checkpointed]
      ensure
        Tasker::Native.abi_minor = real
      end
      # at least the minor that added checkpoints (2 added the readiness descriptors)
      assert_operator Tasker::Native.abi_minor, :>=, Tasker::Native::CHECKPOINT_MINOR
    end
  end

  MERGED = File.join(TaskerTestHelper::ROOT, "..", "..", "internal", "tomlconfig", "testdata", "merged",
                     "complete-worker.toml")

  def test_tasker_config_path_and_json_wins
    path = File.expand_path(MERGED)
    with_channel(tasker_config: { path: path }, dispatch_buffer_size: 7) do |ch|
      s = ch.stats
      assert_equal [32, 7], s.values_at(:max_concurrent_handlers, :dispatch_buffer_size)
      assert_equal "json", s[:config_sources][:dispatch_buffer_size]
      assert_equal "#{path}:worker.mpsc_channels.handler_dispatch.max_concurrent_handlers",
                   s[:config_sources][:max_concurrent_handlers]
    end
  end

  # tasker_config: "env" reads TASKER_CONFIG_ROOT / TASKER_ENV as ENV has
  # them now (set after the library was loaded).
  def test_tasker_config_env_follows_ENV
    Tasker::Channel.new.close # the library is loaded before ENV changes
    keys = %w[TASKER_CONFIG_PATH TASKER_CONFIG_ROOT TASKER_ENV RB_T_HANDLERS]
    saved = keys.to_h { |k| [k, ENV.fetch(k, nil)] }
    Dir.mktmpdir do |d|
      FileUtils.mkdir_p(File.join(d, "base"))
      FileUtils.mkdir_p(File.join(d, "environments", "test"))
      File.write(File.join(d, "base", "worker.toml"),
                 "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = 9\n")
      File.write(File.join(d, "environments", "test", "worker.toml"),
                 "[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = \"${RB_T_HANDLERS:-5}\"\n")
      ENV.delete("TASKER_CONFIG_PATH")
      ENV["TASKER_CONFIG_ROOT"] = d
      ENV["TASKER_ENV"] = "test"
      ENV["RB_T_HANDLERS"] = "6"
      with_channel(tasker_config: "env") { |ch| assert_equal 6, ch.stats[:max_concurrent_handlers] }
      ENV.delete("TASKER_CONFIG_ROOT")
      e = assert_raises(Tasker::InvalidArgument) { Tasker::Channel.new(tasker_config: "env") }
      assert_includes e.message, "TASKER_CONFIG_ROOT"
    end
  ensure
    saved&.each { |k, v| v.nil? ? ENV.delete(k) : ENV[k] = v }
  end

  def test_bad_tasker_config
    ["ENV", 5, { file: "x" }, { path: "/nonexistent/tasker.toml" }].each do |bad|
      e = assert_raises(Tasker::InvalidArgument, bad.inspect) { Tasker::Channel.new(tasker_config: bad) }
      assert_includes e.message, "tasker_config"
    end
  end
end
