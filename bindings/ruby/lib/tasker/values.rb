# frozen_string_literal: true

require "json"

module Tasker
  # Builds a frozen value class with the given fields: a Data class on Ruby
  # >= 3.2, otherwise a keyword_init Struct whose instances are frozen.
  # Either way: `Klass.new(field: value, ...)`, readers, #to_h, #==, #hash.
  def self.value_class(*fields, &block)
    if defined?(::Data) && ::Data.respond_to?(:define)
      ::Data.define(*fields, &block)
    else
      klass = ::Struct.new(*fields, keyword_init: true, &block)
      klass.class_eval do
        def initialize(**kwargs)
          super
          freeze
        end
      end
      klass
    end
  end

  # Defines Klass.from_hash(h) for a hash with string keys (JSON.parse
  # output), picking exactly the class's fields (keys the library may add
  # later are ignored, missing ones are nil). +convert+ maps a field to the
  # Ruby expression that computes it instead (`h` is the hash). Generated as
  # plain code: it runs once per event.
  def self.define_from_hash(klass, fields, convert = {})
    args = fields.map { |f| "#{f}: #{convert.fetch(f) { "h[#{f.to_s.dump}]" }}" }.join(", ")
    klass.singleton_class.class_eval(<<~RUBY, __FILE__, __LINE__ + 1)
      def from_hash(h)
        new(#{args})
      end
    RUBY
  end

  # A long step's progress (ABI minor 1). Return one from a handler to
  # yield: the Worker calls tasker_checkpoint, the event goes back to the
  # queue, and a later poll hands it out again with this progress as
  # StepEvent#checkpoint (its deadline restarting then).
  #
  #   Tasker::Checkpoint.new(cursor: { "offset" => 500 }, items_processed: 500,
  #                          accumulated_results: { "sum" => 1234 })
  #
  # cursor: any JSON value (where to resume; nil allowed); items_processed:
  # an Integer >= 0; accumulated_results: any JSON value (default nil). On a
  # polled event, count is the number of checkpoints so far (ignored when
  # you return one). Frozen; == compares the fields.
  class Checkpoint
    attr_reader :cursor, :items_processed, :accumulated_results, :count

    def initialize(cursor:, items_processed:, accumulated_results: nil, count: 0)
      unless items_processed.is_a?(Integer) && items_processed >= 0 && items_processed < 2**63
        raise InvalidArgument, "items_processed: must be an Integer in 0..2**63-1, not #{items_processed.inspect}"
      end

      @cursor = cursor
      @items_processed = items_processed
      @accumulated_results = accumulated_results
      @count = count
      freeze
    end

    def self.from_hash(h)
      new(cursor: h["cursor"], items_processed: h["items_processed"],
          accumulated_results: h["accumulated_results"], count: h["count"] || 0)
    end

    def to_h
      { cursor: cursor, items_processed: items_processed, accumulated_results: accumulated_results, count: count }
    end

    def ==(other)
      other.is_a?(Checkpoint) && to_h == other.to_h
    end
    alias eql? ==

    def hash
      to_h.hash
    end

    def inspect
      "#<Tasker::Checkpoint cursor=#{cursor.inspect} items_processed=#{items_processed} " \
        "accumulated_results=#{accumulated_results.inspect} count=#{count}>"
    end
    alias to_s inspect
  end

  # A step event as tasker_poll returns it (docs/ABI.md, "Polled event"). Frozen,
  # down to its payload (JSON.parse with freeze: true).
  #
  # Fields: event_id, task_uuid, step_uuid, correlation_id, handler,
  # payload (any JSON value), timeout_ms (the effective one), trace_id,
  # span_id (nil when not given), dispatched_at, polled_at (RFC 3339 UTC
  # strings with nanoseconds; see Tasker.parse_time), checkpoint (a
  # Tasker::Checkpoint: the progress saved by the event's last checkpoint;
  # nil on its first run).
  STEP_EVENT_FIELDS = %i[event_id task_uuid step_uuid correlation_id handler payload timeout_ms
                         trace_id span_id dispatched_at polled_at checkpoint].freeze

  StepEvent = value_class(*STEP_EVENT_FIELDS) do
    # Seconds the event may run after polled_at before it times out.
    def timeout
      timeout_ms && timeout_ms / 1000.0
    end
  end
  define_from_hash(StepEvent, STEP_EVENT_FIELDS,
                   checkpoint: '((c = h["checkpoint"]) && Tasker::Checkpoint.from_hash(c))')

  # A completion from the stream (docs/ABI.md, "Completion"). Frozen.
  #
  # Fields: event_id, task_uuid, step_uuid, correlation_id, handler,
  # status ("completed", "failed", "timeout", "cancelled"), success (true or
  # false), result, error (nil or {"message", "error_type", "retryable"}),
  # metadata, dispatched_at, polled_at (nil if never polled), completed_at
  # (RFC 3339 UTC strings), execution_time_ms (Float; nil if never polled),
  # checkpoints (how many checkpoints the event took; 0 without any),
  # trace_id, span_id (the event's, nil when it had none).
  COMPLETION_FIELDS = %i[event_id task_uuid step_uuid correlation_id handler status success result
                         error metadata dispatched_at polled_at completed_at execution_time_ms
                         checkpoints trace_id span_id].freeze

  Completion = value_class(*COMPLETION_FIELDS) do
    def success?
      success == true
    end

    def completed?
      status == "completed"
    end

    def failed?
      status == "failed"
    end

    def timeout?
      status == "timeout"
    end

    def cancelled?
      status == "cancelled"
    end

    def error_message
      error && error["message"]
    end

    def error_type
      error && error["error_type"]
    end

    # Whether a failure may be retried (nil for a success).
    def retryable?
      error && error["retryable"]
    end
  end
  define_from_hash(Completion, COMPLETION_FIELDS, checkpoints: '(h["checkpoints"] || 0)')

  # Parses one of the library's RFC 3339 timestamps
  # ("2026-01-02T03:04:05.123456789Z") into a Time with nanosecond
  # precision. nil for nil.
  def self.parse_time(str)
    return nil if str.nil?

    m = TIME_RE.match(str) or raise ArgumentError, "not an RFC 3339 UTC timestamp: #{str.inspect}"
    frac = m[7] ? Rational(m[7].to_i, 10**m[7].length) : 0
    Time.utc(m[1].to_i, m[2].to_i, m[3].to_i, m[4].to_i, m[5].to_i, m[6].to_i + frac)
  end

  # Nanoseconds since the epoch (an Integer, exact) for one of the
  # library's RFC 3339 UTC timestamps; nil for nil. Cheaper than parse_time
  # when only differences matter (latencies).
  def self.timestamp_ns(str)
    return nil if str.nil?

    m = TIME_RE.match(str) or raise ArgumentError, "not an RFC 3339 UTC timestamp: #{str.inspect}"
    day = (DAY_CACHE[str[0, 10]] ||= Time.utc(m[1].to_i, m[2].to_i, m[3].to_i).to_i)
    secs = day + m[4].to_i * 3600 + m[5].to_i * 60 + m[6].to_i
    frac = m[7] ? m[7].ljust(9, "0").to_i : 0
    secs * 1_000_000_000 + frac
  end

  DAY_CACHE = {} # rubocop:disable Style/MutableConstant -- "YYYY-MM-DD" => epoch seconds
  private_constant :DAY_CACHE

  TIME_RE = /\A(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z\z/.freeze
  private_constant :TIME_RE
end
