# frozen_string_literal: true

require "json"

module Tasker
  # Runs handlers for a channel's events on a pool of Ruby threads.
  #
  #   worker = Tasker::Worker.new(channel, {
  #     "resize" => ->(event) { Image.resize(event.payload["url"]) },
  #     "email"  => EmailHandler.new,            # anything with #call(event)
  #   }, threads: 4)
  #   worker.start
  #   ...
  #   worker.stop(5)
  #
  # The rules are those of bindings/SPEC.md, shared with the Python binding:
  #
  # - A handler's return value (JSON: Hash, Array, String, Symbol, Integer,
  #   finite Float, true, false, nil) completes the event. Any exception
  #   (SystemExit and Interrupt included) fails it: error_type is the
  #   exception's #error_type when it has a non-empty one, else its class
  #   name; message its message; metadata {"exception" => class name,
  #   "backtrace" => [...]}; retryable its #retryable? (default true). The
  #   thread goes on with the next event.
  # - An unregistered handler name fails with "handler_not_found"; a result
  #   that is not JSON with "result_not_json", one larger than
  #   max_payload_bytes with "result_too_large" (none retryable). A thread
  #   killed while a handler runs fails its event(s) with "worker_killed".
  # - A result that arrives after its event ended (EventNotPending) counts in
  #   counts[:late]; an error of the worker loop itself in counts[:errors]
  #   (kept in #last_error), and the thread goes on after +poll_interval+.
  # - A handler that returns a Tasker::Checkpoint yields: the event goes back
  #   to the queue with that progress (counts[:checkpointed]) and runs again
  #   later with StepEvent#checkpoint set; a library without checkpoints (ABI
  #   minor < 1) fails it with "checkpoint_unsupported".
  #
  # Threads wait for events in short slices (+poll_interval+, 50 ms by
  # default), so #stop, Thread#kill and Ctrl-C act within a fraction of a
  # second. A worker thread ends when the channel is shut down and drained,
  # or closed.
  class Worker
    DEFAULT_POLL_INTERVAL = 0.05
    # Seconds #run waits for running handlers after Ctrl-C (stop_timeout:).
    DEFAULT_STOP_TIMEOUT = 30
    # Frames of an exception's backtrace kept in the failure's metadata.
    BACKTRACE_LINES = 30

    # The counters of #counts, in the order of bindings/SPEC.md.
    COUNTERS = %i[polled completed failed late not_found result_errors errors checkpointed].freeze

    # Per-thread counters (only their thread writes them); #counts adds them up.
    Counters = Struct.new(*COUNTERS) do
      def self.zero
        new(*Array.new(COUNTERS.size, 0))
      end
    end

    attr_reader :channel, :handlers, :thread_count, :batch, :stop_timeout

    # +handlers+: a Hash of handler name (String or Symbol) => callable.
    # +threads+: worker threads; +batch+: events taken per poll (1 uses
    # tasker_poll, more uses tasker_poll_batch); +stop_timeout+: seconds #run
    # waits for running handlers after Ctrl-C.
    # +stats_callback+ (anything with #call) gets the channel's #stats plus
    # worker: #counts every +stats_interval+ seconds (default 5), from a
    # thread of the worker; the same tick logs starvation (Tasker.logger).
    def initialize(channel, handlers, threads: 4, batch: 1, poll_interval: DEFAULT_POLL_INTERVAL,
                   stop_timeout: DEFAULT_STOP_TIMEOUT, stats_callback: nil, stats_interval: nil)
      raise ArgumentError, "threads must be an Integer >= 1" unless threads.is_a?(Integer) && threads >= 1
      raise ArgumentError, "batch must be an Integer >= 1" unless batch.is_a?(Integer) && batch >= 1
      raise ArgumentError, "poll_interval must be > 0" unless poll_interval.is_a?(Numeric) && poll_interval.positive?
      raise ArgumentError, "stop_timeout must be >= 0" unless stop_timeout.is_a?(Numeric) && stop_timeout >= 0

      @channel = channel
      @handlers = handlers.each_with_object({}) do |(name, callable), h|
        raise ArgumentError, "handler #{name.inspect} does not respond to #call" unless callable.respond_to?(:call)

        h[name.to_s] = callable
      end.freeze
      @thread_count = threads
      @batch = batch
      @poll_interval = poll_interval
      @stop_timeout = stop_timeout
      @threads = []
      @counters = []
      @running = false
      @lock = Mutex.new
      @last_error = nil
      @monitor = StatsMonitor.new(self.class.name, channel, stats_callback, stats_interval) { counts }
    end

    # Starts the worker threads; returns self. Raises ForkedError in a child
    # forked after the library was loaded, Tasker::Error if already running.
    def start
      raise ForkedError if Native.forked?

      @lock.synchronize do
        raise Error, "worker is already running" if @running

        @running = true
        @threads = Array.new(@thread_count) do |i|
          counters = Counters.zero
          @counters << counters
          Thread.new(counters) do |c|
            Thread.current.name = "tasker-worker-#{i}"
            work(c)
          end
        end
        start_monitor
      end
      Tasker.logger.info("#{self.class.name}: started (#{@thread_count} threads, handlers #{@handlers.keys.sort})")
      self
    end

    # Asks the threads to stop after their current event and waits up to
    # +timeout+ seconds (nil: until they have) for them to end. Returns true
    # if every thread has ended. Events not yet polled stay queued.
    def stop(timeout = nil)
      @running = false
      deadline = timeout && Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @threads.all? do |t|
        next true if t == Thread.current # stop from a handler: ends after it returns

        left = deadline && [deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max
        !t.join(left).nil?
      end
    end

    # Starts the threads (unless running) and waits until they end: when the
    # channel is shut down and drained or closed, or #stop is called from
    # another thread. On Ctrl-C (Interrupt) it stops the threads, waits up to
    # +stop_timeout+ seconds for running handlers, and re-raises. Returns self.
    def run
      start unless @running
      @threads.each(&:join)
      self
    rescue Interrupt
      stop(@stop_timeout)
      raise
    ensure
      @running = false
    end

    # True while the worker has been started and not stopped.
    def running?
      @running && @threads.any?(&:alive?)
    end

    # {polled:, completed:, failed:, late:, not_found:, result_errors:,
    # errors:, checkpointed:} summed over the threads (bindings/SPEC.md, "Worker counters").
    def counts
      totals = Counters.zero
      @counters.each do |c|
        COUNTERS.each { |k| totals[k] += c[k] }
      end
      totals.to_h
    end

    # Old name of #counts.
    alias stats counts

    # The last unexpected error of a worker thread's loop (counted in
    # counts[:errors]), or nil.
    attr_reader :last_error

    # (message, error_type, retryable, metadata) for a handler's exception,
    # as bindings/SPEC.md says. Never raises, whatever the exception's own
    # methods (#message, #retryable?, #error_type) do.
    def self.describe_exception(error)
      name = begin
        error.class.name
      rescue Exception # rubocop:disable Lint/RescueException
        nil
      end
      name ||= "handler_error" # an anonymous exception class
      error_type = name
      begin
        custom = error.respond_to?(:error_type) ? error.error_type : nil
        error_type = custom if custom.is_a?(String) && !custom.empty?
      rescue Exception # rubocop:disable Lint/RescueException
        nil
      end
      message = begin
        error.message.to_s
      rescue Exception => e # rubocop:disable Lint/RescueException
        "<#{name}: its message could not be read (#{e.class})>"
      end
      retryable = begin
        error.respond_to?(:retryable?) ? (error.retryable? ? true : false) : true
      rescue Exception # rubocop:disable Lint/RescueException
        true
      end
      backtrace = begin
        (error.backtrace || []).first(BACKTRACE_LINES).map { |l| utf8(l) }
      rescue Exception # rubocop:disable Lint/RescueException
        []
      end
      message = name if message.empty?
      [utf8(message), utf8(error_type), retryable, { "exception" => utf8(name), "backtrace" => backtrace }]
    end

    private

    # The stats thread: ticks the StatsMonitor until the worker stops.
    def start_monitor
      @monitor_thread = Thread.new do
        Thread.current.name = "tasker-worker-stats"
        @monitor.run_while { @running && @threads.any?(&:alive?) }
      end
    end

    def work(counters)
      channel = @channel
      interval = @poll_interval
      batch = @batch
      while @running
        begin
          if batch == 1
            json = channel.poll_raw(timeout: interval)
            next unless json

            counters.polled += 1
            process(StepEvent.from_hash(JSON.parse(json, freeze: true)), counters)
          else
            events = channel.poll_batch(batch, timeout: interval)
            counters.polled += events.size
            process_batch(events, counters)
          end
        rescue ChannelClosed, ForkedError
          break
        rescue BadHandle => e
          record(e, counters) unless channel.closed?
          break
        rescue StandardError => e
          record(e, counters)
          sleep(interval)
        end
      end
    ensure
      Tasker.logger.info("#{self.class.name}: #{Thread.current.name} stopped; #{counters.to_h}")
    end

    # A result for an event that had already ended (timed out, cancelled).
    def late(event, counters)
      counters.late += 1
      Tasker.logger.warn("#{self.class.name}: late completion for event #{event.event_id} " \
                         "(handler #{event.handler.inspect}): it had already ended (timed out or cancelled); " \
                         "the result was dropped")
    end

    def record(error, counters)
      counters.errors += 1
      @last_error = error
    end

    # Runs a batch's events in order. If the thread is killed, the events
    # not yet started are ended as failed at once instead of waiting for
    # their timeout.
    def process_batch(events, counters)
      done = 0
      events.each do |ev|
        done += 1
        process(ev, counters)
      end
    ensure
      if done < events.size
        events.drop(done).each do |ev|
          finish_failure(ev, "worker thread stopped before running the handler", "worker_killed", true, nil, counters)
        rescue StandardError
          nil
        end
      end
    end

    # Runs one event's handler and ends the event, whatever happens: every
    # exception fails it (the thread goes on); a Thread#kill still ends it,
    # as "worker_killed", before the thread goes.
    def process(event, counters)
      ended = false
      handler = @handlers[event.handler]
      if handler.nil?
        ended = true
        finish_failure(event, "no handler registered for #{event.handler.inspect}",
                       "handler_not_found", false, nil, counters, :not_found)
        return
      end
      begin
        value = handler.call(event)
      rescue Exception => e # rubocop:disable Lint/RescueException -- SystemExit too: fails this event only
        ended = true
        message, error_type, retryable, metadata = Worker.describe_exception(e)
        Tasker.logger.error("#{self.class.name}: handler #{event.handler.inspect} raised #{error_type} for event " \
                            "#{event.event_id}: #{message}\n  #{metadata['backtrace'].first(5).join("\n  ")}")
        finish_failure(event, message, error_type, retryable, metadata, counters)
        return
      end
      ended = true
      if Checkpoint === value # rubocop:disable Style/CaseEquality -- a BasicObject has no is_a?
        finish_checkpoint(event, value, counters)
      else
        finish_success(event, value, counters)
      end
    ensure
      unless ended
        begin
          finish_failure(event, "worker thread was killed while the handler ran", "worker_killed", true, nil,
                         counters)
        rescue StandardError
          nil # the event times out instead; never mask what is ending the thread
        end
      end
    end

    def finish_success(event, value, counters)
      json = begin
        "{\"success\":true,\"result\":#{Channel.encode(value, 'result')}}"
      rescue StandardError, SystemStackError => e
        return finish_failure(event, "handler #{event.handler.inspect} returned a result that is not JSON: " \
                                     "#{Worker.describe_exception(e)[0]}",
                              "result_not_json", false, nil, counters, :result_errors)
      end
      counters.completed += 1 if deliver(event, "result", counters) { @channel.complete_raw(event.event_id, json) }
    end

    # The handler returned a Checkpoint: send the event back to the queue
    # with it (bindings/SPEC.md, "Checkpoints").
    def finish_checkpoint(event, cp, counters)
      sent = deliver(event, "checkpoint", counters) do
        @channel.checkpoint(event.event_id, cursor: cp.cursor, items_processed: cp.items_processed,
                                            accumulated_results: cp.accumulated_results)
      end
      counters.checkpointed += 1 if sent
    end

    # Hands a handler's result or checkpoint (+what+) to the library with
    # the block; true when it took it. A refusal ends the event as
    # bindings/SPEC.md, "Worker" says (late, result_too_large,
    # result_not_json, checkpoint_unsupported) or is recorded; never raises.
    def deliver(event, what, counters)
      yield
      true
    rescue EventNotPending
      late(event, counters)
      false
    rescue TooLarge => e
      finish_failure(event, "handler #{event.handler.inspect} returned a #{what} larger than " \
                            "max_payload_bytes: #{e.message}", "result_too_large", false, nil, counters, :result_errors)
      false
    rescue InvalidArgument => e
      finish_failure(event, "handler #{event.handler.inspect} returned a #{what} the library refused: #{e.message}",
                     "result_not_json", false, nil, counters, :result_errors)
      false
    rescue LibraryError => e # a checkpoint against a library older than ABI minor 1
      finish_failure(event, "handler #{event.handler.inspect} returned a #{what}: #{e.message}",
                     "checkpoint_unsupported", false, nil, counters)
      false
    rescue BadHandle => e
      @channel.closed? ? counters.late += 1 : record(e, counters)
      false
    rescue StandardError, SystemStackError => e
      record(e, counters)
      false
    end

    # Fails +event+; if the library refuses the document (too large for
    # max_payload_bytes), retries with less, so that the event still ends now
    # rather than at its timeout. +reason+ names the counter (:not_found,
    # :result_errors) that also counts this failure.
    def finish_failure(event, message, error_type, retryable, metadata, counters, reason = nil)
      message = Worker.utf8(message.to_s)
      error_type = Worker.utf8(error_type.to_s)[0, 200]
      message = error_type if message.empty?
      attempts = [[message, metadata], [message[0, 200], nil], [error_type[0, 64], nil]]
      attempts.each do |msg, md|
        begin
          @channel.fail(event.event_id, msg, error_type: error_type, retryable: retryable, metadata: md)
        rescue EventNotPending
          late(event, counters)
          return
        rescue BadHandle => e
          @channel.closed? ? counters.late += 1 : record(e, counters)
          return
        rescue StandardError
          next # TooLarge, metadata that is not JSON: try with less
        end
        counters.failed += 1
        counters[reason] += 1 if reason
        return
      end
      # Nothing could be sent (max_payload_bytes below the smallest failure):
      # the event ends at its timeout.
      record(TooLarge.new("could not fail event #{event.event_id}: even the shortest failure is too large"), counters)
    end

    # A UTF-8 copy of +str+ with invalid bytes replaced (exception messages
    # can carry binary data; the library only takes valid UTF-8).
    def self.utf8(str)
      str = str.to_s
      return str if str.encoding == Encoding::UTF_8 && str.valid_encoding?

      s = str.dup
      if s.encoding == Encoding::BINARY || s.encoding == Encoding::UTF_8 || s.encoding == Encoding::US_ASCII
        s.force_encoding(Encoding::UTF_8).scrub("?")
      else
        s.encode(Encoding::UTF_8, invalid: :replace, undef: :replace, replace: "?")
      end
    end
  end
end
