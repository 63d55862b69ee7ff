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
  # A handler's return value (any JSON-encodable value) becomes the event's
  # result. An exception becomes a failure: error_type is the exception's
  # class name, message its message, metadata {"backtrace" => [...]};
  # retryable is the exception's #retryable? when it responds to it, else
  # true. An event whose handler is not registered fails with error_type
  # "handler_not_found", not retryable.
  #
  # Threads wait for events in short slices (+poll_interval+, 50 ms by
  # default), so #stop, Thread#kill and Ctrl-C act within a fraction of a
  # second. A worker thread ends when the channel is shut down and drained,
  # or closed. A result that arrives after its event timed out
  # (EventNotPending) is counted in stats[:late], not fatal.
  class Worker
    DEFAULT_POLL_INTERVAL = 0.05
    # Lines of an exception's backtrace kept in the failure's metadata.
    BACKTRACE_LINES = 30

    # Per-thread counters; #stats adds them up.
    Counters = Struct.new(:processed, :succeeded, :failed, :late, :errors) do
      def self.zero
        new(0, 0, 0, 0, 0)
      end
    end

    attr_reader :channel, :handlers, :thread_count, :batch

    # +handlers+: a Hash of handler name (String or Symbol) => callable.
    # +threads+: worker threads; +batch+: events taken per poll (1 uses
    # tasker_poll, more uses tasker_poll_batch).
    def initialize(channel, handlers, threads: 4, batch: 1, poll_interval: DEFAULT_POLL_INTERVAL)
      raise ArgumentError, "threads must be >= 1" unless threads.is_a?(Integer) && threads >= 1
      raise ArgumentError, "batch must be >= 1" unless batch.is_a?(Integer) && batch >= 1

      @channel = channel
      @handlers = handlers.each_with_object({}) do |(name, callable), h|
        raise ArgumentError, "handler #{name.inspect} does not respond to #call" unless callable.respond_to?(:call)

        h[name.to_s] = callable
      end.freeze
      @thread_count = threads
      @batch = batch
      @poll_interval = poll_interval
      @threads = []
      @counters = []
      @running = false
      @lock = Mutex.new
      @last_error = nil
    end

    # Starts the worker threads; returns self. Raises if already running.
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
      end
      self
    end

    # Asks the threads to stop after their current event and waits up to
    # +timeout+ seconds (nil: until they have) for them to end. Returns true
    # if every thread has ended. Events not yet polled stay queued.
    def stop(timeout = nil)
      @running = false
      deadline = timeout && Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @threads.all? do |t|
        left = deadline && [deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max
        !t.join(left).nil?
      end
    end

    # Starts the threads (unless running) and waits until they end: when the
    # channel is shut down and drained or closed, or #stop is called from
    # another thread. On Ctrl-C (Interrupt) it stops the threads and
    # re-raises. Returns self.
    def run
      start unless @running
      @threads.each(&:join)
      self
    rescue Interrupt
      stop(5)
      raise
    ensure
      @running = false
    end

    # True while the worker has been started and not stopped.
    def running?
      @running && @threads.any?(&:alive?)
    end

    # {processed:, succeeded:, failed:, late:, errors:}: events handled,
    # ended as success, ended as failure, results that came too late
    # (EventNotPending), and unexpected errors of the worker loop itself.
    def stats
      totals = Counters.zero
      @counters.each do |c|
        totals.processed += c.processed
        totals.succeeded += c.succeeded
        totals.failed += c.failed
        totals.late += c.late
        totals.errors += c.errors
      end
      totals.to_h
    end

    # The last unexpected error of a worker thread, or nil.
    attr_reader :last_error

    private

    def work(counters)
      channel = @channel
      interval = @poll_interval
      batch = @batch
      while @running
        begin
          if batch == 1
            event = channel.poll(timeout: interval)
            process(event, counters) if event
          else
            process_batch(channel.poll_batch(batch, timeout: interval), counters)
          end
        rescue ChannelClosed, BadHandle, ForkedError
          break
        rescue StandardError => e
          counters.errors += 1
          @last_error = e
          sleep(interval)
        end
      end
    end

    # Runs a batch's events in order. If the thread is killed (or a
    # non-StandardError escapes a handler), the events not yet started are
    # ended as failed at once instead of waiting for their timeout.
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

    # Runs one event's handler and ends the event, whatever happens: an
    # exception that is not a StandardError (or a Thread#kill) still ends
    # the event, as a failure, before the thread goes.
    def process(event, counters)
      counters.processed += 1
      ended = false
      handler = @handlers[event.handler]
      if handler.nil?
        ended = true
        finish_failure(event, "no handler registered for #{event.handler.inspect}",
                       "handler_not_found", false, nil, counters)
        return
      end
      begin
        value = handler.call(event)
      rescue StandardError => e
        ended = true
        finish_exception(event, e, counters)
        return
      end
      ended = true
      finish_success(event, value, counters)
    ensure
      unless ended
        # Thread#kill, or an Exception that is not a StandardError (Interrupt,
        # SystemExit, NoMemoryError...) left the handler.
        e = $!
        begin
          if e.is_a?(Exception)
            finish_exception(event, e, counters)
          else
            finish_failure(event, "worker thread was killed while the handler ran", "worker_killed", true, nil,
                           counters)
          end
        rescue StandardError
          nil # the event times out instead; never mask what is ending the thread
        end
      end
    end

    def finish_success(event, value, counters)
      json = begin
        "{\"success\":true,\"result\":#{JSON.generate(value)}}"
      rescue JSON::GeneratorError, JSON::NestingError, Encoding::UndefinedConversionError => e
        return finish_failure(event, "handler result is not JSON-encodable: #{e.message}",
                              "result_not_json", false, nil, counters)
      end
      @channel.complete_raw(event.event_id, json)
      counters.succeeded += 1
    rescue EventNotPending
      counters.late += 1
    rescue TooLarge => e
      finish_failure(event, "handler result is too large: #{e.message}", "result_too_large", false, nil, counters)
    end

    def finish_exception(event, error, counters)
      retryable = error.respond_to?(:retryable?) ? (error.retryable? ? true : false) : true
      backtrace = error.backtrace ? error.backtrace.first(BACKTRACE_LINES).map { |l| Worker.utf8(l) } : []
      finish_failure(event, error.message, error.class.name || "handler_error", retryable,
                     { "backtrace" => backtrace }, counters)
    end

    def finish_failure(event, message, error_type, retryable, metadata, counters)
      message = Worker.utf8(message.to_s)
      message = error_type if message.empty?
      begin
        @channel.fail(event.event_id, message, error_type: Worker.utf8(error_type), retryable: retryable,
                                               metadata: metadata)
      rescue TooLarge
        # message or backtrace too large for max_payload_bytes: send it short
        @channel.fail(event.event_id, message[0, 200], error_type: Worker.utf8(error_type), retryable: retryable)
      end
      counters.failed += 1
    rescue EventNotPending
      counters.late += 1
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
