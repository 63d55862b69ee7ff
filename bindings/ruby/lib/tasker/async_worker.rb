# frozen_string_literal: true

module Tasker
  # Runs handlers for a channel's events as fibers under the current fiber
  # scheduler (the async gem's reactor, or any Fiber.scheduler): at most
  # +concurrency+ handlers at once, one thread.
  #
  #   require "async"
  #   Async do
  #     worker = Tasker::AsyncWorker.new(channel, { "fetch" => ->(ev) { fetch(ev.payload) } }, concurrency: 50)
  #     worker.run            # until the channel is shut down and drained, closed, or #stop
  #   end
  #
  # One fiber polls, waiting on the channel's readiness descriptor (see
  # Tasker::FiberWait), so the reactor runs the handlers and anything else
  # while the worker is idle; each event's handler runs in a fiber of its own
  # (Fiber.schedule). Handlers that do IO through the scheduler (sockets,
  # sleep, Async::HTTP...) overlap; a handler that computes blocks the
  # reactor while it runs, as any fiber would.
  #
  # Handlers, results, failures, counters (#counts) and logging follow
  # Tasker::Worker exactly. +stats_callback+ (anything with #call) gets the
  # channel's stats plus worker: counters every +stats_interval+ seconds
  # (default 5); the same tick logs starvation.
  class AsyncWorker < Worker
    # Raised in a handler still running at its event's timeout_ms (under the
    # async gem's reactor): the event fails with error_type
    # "handler_timeout", retryable, and the handler's slot is freed.
    class HandlerTimeout < StandardError
      def error_type
        "handler_timeout"
      end

      def retryable?
        true
      end
    end

    attr_reader :concurrency

    def initialize(channel, handlers, concurrency: 10, poll_interval: DEFAULT_POLL_INTERVAL,
                   stats_callback: nil, stats_interval: nil)
      raise ArgumentError, "concurrency must be an Integer >= 1" unless concurrency.is_a?(Integer) && concurrency >= 1

      super(channel, handlers, threads: 1, poll_interval: poll_interval, stats_callback: stats_callback,
                               stats_interval: stats_interval)
      @concurrency = concurrency
      @inflight = 0
      @handlers = @handlers.transform_values { |h| AsyncWorker.timed(h) }.freeze
    end

    # +handler+ bounded by its event's timeout_ms when it runs as a task of
    # the async gem's reactor (Async::Reactor#with_timeout raises
    # HandlerTimeout in the fiber at its next wait); under another scheduler
    # the handler runs unbounded and the library ends the event at its
    # timeout.
    def self.timed(handler)
      lambda do |event|
        task = defined?(::Async::Task) && ::Async::Task.current?
        return handler.call(event) unless task

        begin
          task.reactor.with_timeout(event.timeout_ms / 1000.0, HandlerTimeout) { handler.call(event) }
        rescue HandlerTimeout
          raise HandlerTimeout, "handler #{event.handler.inspect} did not finish within #{event.timeout_ms} ms"
        end
      end
    end

    # Not available: an AsyncWorker runs in the caller's fiber (#run).
    def start
      raise Error, "#{self.class}#start: call #run inside a fiber scheduler (e.g. in Async { ... })"
    end

    # Asks #run to take no more events; it returns once the running handlers
    # have finished (within poll_interval when idle).
    def stop(_timeout = nil)
      @running = false
      true
    end

    # Handlers running now.
    def running_handlers
      @inflight
    end

    def running?
      @running
    end

    # Polls and runs handlers until the channel is shut down and drained or
    # closed, or #stop is called; then waits for the running handlers.
    # Must run in a non-blocking fiber under a fiber scheduler. Returns self.
    def run
      unless FiberWait.active?
        raise Error, "#{self.class}#run needs a fiber scheduler: call it inside Async { ... } " \
                     "(or use Tasker::Worker, which runs handlers on threads)"
      end
      raise ForkedError if Native.forked?

      @lock.synchronize do
        raise Error, "worker is already running" if @running

        @running = true
      end
      counters = Counters.zero
      @counters << counters
      Tasker.logger.info("#{self.class.name}: started (concurrency #{@concurrency}, handlers #{@handlers.keys.sort})")
      Fiber.schedule { @monitor.run_while { @running } }
      reason = poll_loop(counters)
      self
    ensure
      @running = false
      @done&.pop while @inflight.positive?
      Tasker.logger.info("#{self.class.name}: #{reason || 'stopped'}; #{counts}")
    end

    private

    def poll_loop(counters)
      slots = Thread::SizedQueue.new(@concurrency)
      @done = Thread::Queue.new
      while @running
        slots.push(true) # waits (as a fiber) while `concurrency` handlers run
        break slots.pop unless @running

        event = begin
          @channel.poll(timeout: @poll_interval)
        rescue ChannelClosed
          slots.pop
          return "channel shut down and drained"
        rescue BadHandle
          slots.pop
          return "channel closed"
        end
        if event.nil?
          slots.pop
          next
        end
        counters.polled += 1
        @inflight += 1
        Fiber.schedule do
          process(event, counters)
        ensure
          @inflight -= 1
          slots.pop
          @done.push(true)
        end
      end
      "stopped"
    end
  end
end
