# frozen_string_literal: true

require_relative "test_helper"
require "json"
require "set"

# The shared case table of bindings/spec/cases.json (bindings/SPEC.md),
# checked against the Ruby binding. bindings/python/tests/test_spec.py checks
# the same table against the Python binding.
class SpecTest < Minitest::Test
  CASES = JSON.parse(File.read(File.expand_path("../../spec/cases.json", __dir__)))

  # The exception the table's "raise*" actions raise (error_type "SpecError").
  class ::SpecError < StandardError
    def initialize(message, retryable: true, error_type: nil, unprintable: false, bad_retryable: false)
      super(message)
      @retryable = retryable
      @error_type = error_type
      @unprintable = unprintable
      @bad_retryable = bad_retryable
    end

    def message
      raise "message is broken" if @unprintable

      super
    end

    def retryable?
      raise "retryable? is broken" if @bad_retryable

      @retryable
    end

    def error_type
      @error_type
    end
  end

  # An object whose to_json raises (never called: not a JSON type).
  class RaisingEncoding
    def to_json(*)
      raise "to_json is broken"
    end
  end

  # A table value with its {"$" => name} placeholders made into Ruby objects.
  def self.build(value)
    case value
    when Hash
      if value.key?("$")
        case value["$"]
        when "nan" then Float::NAN
        when "not_json" then Object.new
        when "basic_object" then BasicObject.new
        when "cyclic" then [].tap { |a| a << a }
        when "raising_encoding" then RaisingEncoding.new
        when "string" then "x" * value["length"]
        else raise "unknown placeholder #{value['$']}"
        end
      else
        value.transform_values { |v| build(v) }
      end
    when Array then value.map { |v| build(v) }
    else value
    end
  end

  def test_exception_classes
    CASES["exceptions"].each do |row|
      cls = Tasker.const_get(row["class"])
      assert_equal cls, Tasker::Error.class_for(row["status"]), row.inspect
      assert_equal row["status"], cls.new("m").status
    end
  end

  def test_counter_names
    with_channel do |ch|
      w = Tasker::Worker.new(ch, {})
      assert_equal CASES["counters"], w.counts.keys.map(&:to_s)
      assert_equal CASES["counters"], Tasker::Worker::COUNTERS.map(&:to_s)
    end
  end

  def test_timeouts
    CASES["timeouts"].each do |row|
      assert_equal row["ms"], Tasker::Channel.ms(row["seconds"]), row.inspect
    end
    assert_equal CASES["slice_ms"], Tasker::Channel::WAIT_SLICE_MS
  end

  def test_bad_inputs
    CASES["bad_inputs"].each { |c| run_bad_input(c) }
  end

  def run_bad_input(c)
    args = SpecTest.build(c["args"])
    expected = Tasker.const_get(c["raises"])
    if c["call"] == "new"
      e = assert_raises(expected, c.inspect) { Tasker::Channel.new(**args["config"].transform_keys(&:to_sym)) }
      check_error(e, c)
      return
    end
    with_channel(**(c["config"] || {}).transform_keys(&:to_sym)) do |ch|
      id = ch.dispatch("setup")
      refute_nil ch.poll(timeout: 1) if %w[complete complete_raw fail checkpoint].include?(c["call"])
      before = ch.stats
      e = assert_raises(expected, c.inspect) do
        case c["call"]
        when "poll" then ch.poll(timeout: args["timeout"])
        when "poll_batch" then ch.poll_batch(args["max"], timeout: args["timeout"])
        when "next_completion" then ch.next_completion(timeout: args["timeout"])
        when "dispatch"
          opts = args.reject { |k, _| %w[handler payload].include?(k) }.transform_keys(&:to_sym)
          ch.dispatch(args["handler"], args["payload"], **opts)
        when "shutdown" then ch.shutdown(drain: args["drain"])
        when "complete_raw" then ch.complete_raw(id, args["json"])
        when "complete" then ch.complete(id, args["result"])
        when "fail" then ch.fail(id, args["message"], metadata: args["metadata"])
        when "checkpoint"
          ch.checkpoint(id, cursor: args["cursor"], items_processed: args["items_processed"],
                            accumulated_results: args["accumulated_results"])
        else flunk "unknown call #{c['call']}"
        end
      end
      check_error(e, c)
      after = ch.stats
      %i[dispatched queued pending completed failed state].each do |k|
        assert_equal before[k], after[k], "#{c.inspect}: #{k} changed"
      end
    end
  end

  def check_error(error, c)
    assert_equal "Tasker::#{c['raises']}", error.class.name
    status = CASES["exceptions"].find { |r| r["class"] == c["raises"] }["status"]
    assert_equal status, error.status, c.inspect
    assert_includes error.message, c["message_includes"], c.inspect if c["message_includes"]
  end

  def test_worker_run
    spec = CASES["worker_run"]
    cases = spec["cases"]
    with_channel(**spec["config"].transform_keys(&:to_sym)) do |ch|
      handler = lambda do |ev|
        c = cases[ev.payload]
        case c["action"]
        when "return" then SpecTest.build(c["value"])
        when "raise" then raise SpecError, c["message"]
        when "raise_not_retryable" then raise SpecError.new(c["message"], retryable: false)
        when "raise_with_error_type" then raise SpecError.new(c["message"], error_type: c["error_type"])
        when "raise_unprintable" then raise SpecError.new("hidden", unprintable: true)
        when "raise_bad_retryable" then raise SpecError.new(c["message"], bad_retryable: true)
        when "exit" then exit(3)
        when "sleep"
          sleep c["seconds"]
          "too late"
        when "checkpoint"
          cp = ev.checkpoint
          if cp.nil?
            Tasker::Checkpoint.new(cursor: SpecTest.build(c["cursor"]), items_processed: c["items_processed"],
                                   accumulated_results: SpecTest.build(c["accumulated_results"]))
          else
            { "resumed_from" => cp.cursor, "items_processed" => cp.items_processed,
              "accumulated_results" => cp.accumulated_results, "count" => cp.count }
          end
        else raise "unknown action #{c['action']}"
        end
      end
      ids = cases.each_with_index.map do |c, i|
        ch.dispatch(c["action"] == "unregistered" ? "spec_nobody" : "spec", i, timeout_ms: c["timeout_ms"])
      end
      expected = CASES["counters"].to_h { |k| [k.to_sym, 0] }
      expected[:polled] = cases.sum { |c| c["polls"] || 1 }
      cases.each { |c| c["counts"].each { |k| expected[k.to_sym] += 1 } }
      worker = Tasker::Worker.new(ch, { "spec" => handler }, threads: spec["threads"]).start
      got = {}
      deadline = monotonic + 30
      while got.size < ids.size && monotonic < deadline
        c = ch.next_completion(timeout: 0.2)
        next unless c

        refute got.key?(c.event_id), "a second completion for #{c.event_id}"
        got[c.event_id] = c
      end
      sleep 0.02 while worker.counts != expected && monotonic < deadline
      assert worker.stop(10)
      cases.zip(ids).each do |c, id|
        refute_nil got[id], "no completion for #{c['name']}"
        check_completion(got[id], c["expect"], c["name"])
      end
      assert_equal expected, worker.counts
      assert_nil worker.last_error
    end
  end

  def check_completion(comp, exp, name)
    assert_equal exp["status"], comp.status, name
    assert_equal exp["checkpoints"], comp.checkpoints, name if exp.key?("checkpoints")
    if exp.key?("result")
      exp["result"].nil? ? assert_nil(comp.result, name) : assert_equal(exp["result"], comp.result, name)
    end
    if exp["status"] == "completed"
      assert_nil comp.error, name
      return
    end
    assert_equal exp["error_type"], comp.error_type, name
    assert_equal exp["retryable"], comp.retryable?, name
    assert_equal exp["message"], comp.error_message, name if exp.key?("message")
    assert_includes comp.error_message, exp["message_includes"], name if exp.key?("message_includes")
    if CASES["binding_error_types"].key?(exp["error_type"])
      assert_equal CASES["binding_error_types"][exp["error_type"]], exp["retryable"], name
    end
    return unless exp["error_type"] == "SpecError" || exp.key?("metadata_exception_ends_with")

    assert_equal CASES["failure_metadata_keys"], comp.metadata.keys.sort, name
    assert comp.metadata["exception"].end_with?("SpecError"), name
    bt = comp.metadata["backtrace"]
    assert_operator bt.size, :>, 0, name
    assert_operator bt.size, :<=, CASES["backtrace_max_frames"], name
    assert(bt.all? { |l| l.is_a?(String) }, name)
  end
end
