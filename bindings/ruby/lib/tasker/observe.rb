# frozen_string_literal: true

require "logger"

module Tasker
  # The default logger: a null logger, silent until the application sets
  # one (Tasker.logger = Logger.new($stderr)) -- the same default as the
  # Python binding's NullHandler, so that a library never writes to a
  # program's stderr uninvited. Every failure also reaches the completion
  # stream, so nothing is lost by staying quiet.
  def self.default_logger
    Logger.new(File::NULL, progname: "tasker")
  end

  @logger = nil
  LOGGER_LOCK = Mutex.new
  private_constant :LOGGER_LOCK

  # The Logger the workers write to (see Tasker.logger=).
  def self.logger
    @logger || LOGGER_LOCK.synchronize { @logger ||= default_logger }
  end

  # Sets the Logger (anything with #debug/#info/#warn/#error) the workers
  # write to: INFO worker start/stop; WARN starvation detected
  # (starvation_detected turning true) and late completions (a result for an
  # event that had already ended); ERROR a handler that raised. nil silences
  # them (a null logger). Default: Tasker.default_logger (a null logger).
  def self.logger=(logger)
    unless logger.nil? || %i[debug info warn error].all? { |m| logger.respond_to?(m) }
      raise ArgumentError, "Tasker.logger= takes a Logger (or nil), got #{logger.inspect}"
    end

    @logger = logger || Logger.new(File::NULL)
  end

  # One worker's periodic look at its channel: calls the stats callback with
  # the channel's stats (Symbol keys) plus worker: the worker's counters, and
  # logs when starvation_detected turns true. Used by Worker (from a thread)
  # and AsyncWorker (from a fiber).
  class StatsMonitor
    DEFAULT_INTERVAL = 5.0

    attr_reader :interval, :ticks

    # Raises ArgumentError for a callback that does not respond to #call or
    # an interval that is not a number > 0. Returns the interval.
    def self.check(callback, interval)
      raise ArgumentError, "stats_callback must respond to #call" unless callback.nil? || callback.respond_to?(:call)

      interval = DEFAULT_INTERVAL if interval.nil?
      unless interval.is_a?(Numeric) && interval.positive? && interval.finite?
        raise ArgumentError, "stats_interval must be a number of seconds > 0, got #{interval.inspect}"
      end

      interval.to_f
    end

    def initialize(name, channel, callback, interval, &counters)
      @name = name
      @channel = channel
      @callback = callback
      @interval = StatsMonitor.check(callback, interval)
      @counters = counters
      @starving = false
      @ticks = 0
    end

    def tick
      stats = begin
        @channel.stats
      rescue Error
        return # closed or gone: nothing to report
      end
      @ticks += 1
      starving = stats[:starvation_detected] ? true : false
      if starving && !@starving
        Tasker.logger.warn(
          "#{@name}: starvation detected: #{stats[:starving_event_count]} event(s) older than " \
          "starvation_warning_threshold_ms (oldest pending #{stats[:oldest_pending_age_ms]} ms, event " \
          "#{stats[:oldest_pending_event_id]}; oldest queued #{stats[:oldest_queued_age_ms]} ms)"
        )
      elsif @starving && !starving
        Tasker.logger.info("#{@name}: starvation cleared")
      end
      @starving = starving
      return unless @callback

      begin
        @callback.call(stats.merge(worker: @counters.call))
      rescue StandardError => e
        Tasker.logger.error("#{@name}: stats_callback raised #{e.class}: #{e.message}")
      end
    end

    # Ticks every interval until the block returns false; sleeps in short
    # slices so that it ends soon after. Runs in a thread or a fiber (sleep
    # is scheduler-aware).
    def run_while
      next_at = Process.clock_gettime(Process::CLOCK_MONOTONIC) + @interval
      while yield
        now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
        if now >= next_at
          tick
          next_at = now + @interval
        end
        sleep([0.05, [next_at - now, 0.001].max].min)
      end
    end
  end
end
