# frozen_string_literal: true

module Tasker
  # Waiting under a fiber scheduler (Ruby 3's Fiber.scheduler: the async
  # gem's reactor, or any other).
  #
  # When the calling fiber runs under a non-blocking fiber scheduler, the
  # waiting calls of Tasker::Channel (#poll, #poll_batch, #next_completion
  # and their raw variants, and #each_event / #each_completion) do not block
  # the thread inside the library: they wait with IO#wait_readable on the
  # channel's readiness descriptor (tasker_event_fd / tasker_completion_fd),
  # so the scheduler runs other fibers meanwhile, then take the work with the
  # ordinary non-blocking call. Without a scheduler (or in a blocking fiber)
  # nothing changes: the call waits inside the library with the GVL
  # released.
  #
  #   require "async"
  #   Async do |task|
  #     100.times { task.async { channel.poll(timeout: 5) } }   # one thread, 100 waiting fibers
  #   end
  #
  # Each waiting fiber waits on its own dup(2) of the descriptor, taken from
  # a small per-channel pool (schedulers such as async 1.x allow one waiter
  # per IO object), so every waiter wakes when work arrives and all but the
  # one that gets it wait again. Tasker::AsyncWorker has a single fiber wait
  # and so never wakes a crowd.
  module FiberWait
    # True when the current fiber runs under a fiber scheduler that handles
    # IO waits (Fiber.scheduler set and the fiber non-blocking).
    def self.active?
      !Fiber.scheduler.nil? && !Fiber.current.blocking? && Native.abi_minor >= Native::READINESS_MINOR
    end
  end

  # The Channel side of FiberWait: the descriptors and the wait.
  class Channel
    READINESS_FUNCTIONS = { events: :tasker_event_fd, completions: :tasker_completion_fd }.freeze
    private_constant :READINESS_FUNCTIONS

    # The library's readiness descriptor (an Integer) for +stream+ (:events
    # or :completions): readable when a zero-timeout #poll (resp.
    # #next_completion) would return something or raise ChannelClosed,
    # updated right after each change (level-triggered; include/tasker.h,
    # "Readiness descriptors"). The
    # library owns it and closes it in #close: only wait on it (never read or
    # close it), or on your own IO#dup of it. ForkedError in a forked child.
    def readiness_fd(stream)
      function = READINESS_FUNCTIONS.fetch(stream) do
        raise InvalidArgument, "stream must be :events or :completions, got #{stream.inspect}"
      end
      raise ForkedError if Native.forked?

      Native.require_minor!(Native::READINESS_MINOR, "Channel#readiness_fd")
      out = FFI::MemoryPointer.new(:int)
      st = Native.public_send(function, @handle, out)
      raise Native.error_for(st, function.to_s) unless st == Native::OK

      out.read_int
    end

    private

    # take_raw under a fiber scheduler: the block is the non-blocking take
    # (JSON or nil; raises on CLOSED and errors); between tries the fiber
    # waits on the descriptor until it is readable or the timeout passes.
    def fiber_take(timeout, kind)
      stream = kind == :next_completion ? :completions : :events
      deadline = timeout && monotonic + timeout
      loop do
        left = deadline && deadline - monotonic
        return nil if left && left <= 0

        fiber_wait_readable(stream, left)
        json = yield
        return json if json
      end
    end

    # dispatch with a wait under a fiber scheduler: there is no descriptor
    # for room in the dispatch queue, so it retries the non-waiting dispatch
    # with sleeps (1 ms doubling to 50 ms; sleep lets other fibers run) until
    # it is taken or +total_ms+ (nil: no limit) has passed. Each full try
    # counts once in rejected_full. Returns the last status.
    def fiber_dispatch(json, scratch, total_ms)
      deadline = total_ms && monotonic + total_ms / 1000.0
      delay = 0.001
      loop do
        st = Native.tasker_dispatch(@handle, json, json.bytesize, 0, scratch.id)
        return st unless st == Native::EFULL

        left = deadline && deadline - monotonic
        return st if left && left <= 0

        sleep(left ? [delay, left].min : delay)
        delay = [delay * 2, 0.05].min
      end
    end

    # Waits (letting the scheduler run other fibers) until the stream's
    # descriptor is readable or +left+ seconds pass (nil: no limit).
    def fiber_wait_readable(stream, left)
      io = fiber_io_checkout(stream)
      begin
        io.wait_readable(left)
      ensure
        fiber_io_checkin(stream, io)
      end
    end

    def fiber_io_lock
      @fiber_io_lock ||= Mutex.new
    end

    # An IO on a dup of the descriptor, from the pool (made on demand).
    def fiber_io_checkout(stream)
      fiber_io_lock.synchronize do
        @fiber_ios ||= { events: [], completions: [] }
        pooled = @fiber_ios[stream].pop
        return pooled if pooled

        # A view of the library's descriptor that never closes it, and a
        # dup(2) of it (close-on-exec) that the new IO owns and closes.
        IO.for_fd(readiness_fd(stream), autoclose: false).dup
      end
    end

    def fiber_io_checkin(stream, io)
      fiber_io_lock.synchronize do
        if @closed || @fiber_ios.nil?
          io.close unless io.closed?
        else
          @fiber_ios[stream] << io
        end
      end
    end

    # Closes the pooled dups (Channel#close); dups in use are closed when
    # their fiber returns them.
    def fiber_io_close_all
      return unless @fiber_ios

      fiber_io_lock.synchronize do
        @fiber_ios&.each_value { |ios| ios.each { |io| io.close unless io.closed? } }
        @fiber_ios = nil
      end
    end
  end
end
