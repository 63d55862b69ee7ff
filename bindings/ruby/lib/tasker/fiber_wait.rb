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
      !Fiber.scheduler.nil? && !Fiber.current.blocking?
    end

    ATTACH_LOCK = Mutex.new
    private_constant :ATTACH_LOCK

    # Attaches tasker_event_fd and tasker_completion_fd (they never wait).
    def self.attach!
      return if Native.respond_to?(:tasker_event_fd)

      ATTACH_LOCK.synchronize do
        return if Native.respond_to?(:tasker_event_fd)

        Native.attach_function :tasker_completion_fd, [:uint64, :pointer], :int
        Native.attach_function :tasker_event_fd, [:uint64, :pointer], :int
      end
    end

    # The Channel side: the descriptors and the wait. Prepended to Channel,
    # so that the waiting calls take the fiber path when a scheduler runs.
    module ChannelMethods
      STREAMS = { events: :tasker_event_fd, completions: :tasker_completion_fd }.freeze

      # The library's readiness descriptor (an Integer) for +stream+
      # (:events or :completions): readable exactly while a zero-timeout
      # #poll (resp. #next_completion) would return something or raise
      # ChannelClosed (level-triggered; include/tasker.h, "Readiness
      # descriptors"). The library owns it and closes it in #close: only wait
      # on it (never read or close it), or on your own IO#dup of it.
      def readiness_fd(stream)
        function = STREAMS.fetch(stream) do
          raise InvalidArgument, "stream must be :events or :completions, got #{stream.inspect}"
        end
        raise ForkedError if Native.forked?

        FiberWait.attach!
        out = FFI::MemoryPointer.new(:int)
        st = Native.public_send(function, @handle, out)
        raise Native.error_for(st, function.to_s) unless st == Native::OK

        out.read_int
      end

      def close
        super
      ensure
        fiber_io_close_all if @closed
      end

      private

      def take_raw(timeout, kind, now, blocking, *args)
        return super if timeout == 0 || !FiberWait.active?

        Channel.check_timeout(timeout)
        stream = kind == :next_completion ? :completions : :events
        deadline = timeout && monotonic + timeout
        loop do
          json = super(0, kind, now, blocking, *args)
          return json if json

          left = deadline && deadline - monotonic
          return nil if left && left <= 0

          fiber_wait_readable(stream, left)
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

      def fiber_io_close_all
        fiber_io_lock.synchronize do
          (@fiber_ios || {}).each_value { |ios| ios.each { |io| io.close unless io.closed? } }
          @fiber_ios = nil
        end
      end
    end
  end

  Channel.prepend(FiberWait::ChannelMethods)
end
