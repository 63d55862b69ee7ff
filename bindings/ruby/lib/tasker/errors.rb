# frozen_string_literal: true

module Tasker
  # Base class of every error this gem raises. #status is the library's
  # status code (a negative TASKER_E* value, or 2 for ChannelClosed; nil for
  # errors that do not come from a call, such as LibraryError) and #message
  # is tasker_last_error's description of the failed call.
  class Error < StandardError
    STATUS = nil

    attr_reader :status

    def initialize(message = nil, status: self.class::STATUS)
      @status = status
      super(message || self.class.name)
    end

    # The error class for a status code (Error itself for a code this
    # binding does not know).
    def self.class_for(status)
      STATUS_CLASSES.fetch(status, Error)
    end

    # A new error of the right class for +status+.
    def self.for_status(status, message)
      class_for(status).new(message, status: status)
    end
  end

  # TASKER_EINVAL: a bad argument (bad config, bad JSON, unknown key, bad
  # timeout...). Also raised by this binding for arguments it can reject
  # before the call (a negative timeout, a payload that is not
  # JSON-encodable).
  class InvalidArgument < Error
    STATUS = -1
  end

  # TASKER_EBADF: the channel was closed (destroyed), or the handle is unknown.
  class BadHandle < Error
    STATUS = -2
  end

  # TASKER_ENOENT: complete/fail for an event that is not pending (never
  # polled, already completed, timed out or cancelled). The first end stands.
  class EventNotPending < Error
    STATUS = -3
  end

  # TASKER_EFULL: the dispatch queue stayed full for the whole wait; nothing
  # was queued.
  class QueueFull < Error
    STATUS = -4
  end

  # TASKER_ESHUTDOWN: dispatch after shutdown began.
  class ShutdownError < Error
    STATUS = -5
  end

  # TASKER_ETOOBIG: an input larger than max_payload_bytes.
  class TooLarge < Error
    STATUS = -6
  end

  # TASKER_EFORKED, or any method of this gem called in a child process
  # forked after its parent loaded libtasker.
  class ForkedError < Error
    STATUS = -7

    # +message+, when given, is the library's own message; the exception's
    # message always explains the situation and what to do.
    def initialize(message = nil, status: STATUS)
      super(self.class.explain(message), status: status)
    end

    def self.explain(detail = nil)
      loaded = Native.loaded_pid
      who = loaded ? "process #{loaded}" : "the parent process"
      msg = +"libtasker was loaded by #{who} before it forked, and this is process #{Process.pid}: " \
             "the Go runtime inside libtasker does not survive fork(), so no channel can be used " \
             "in this process (channels made before the fork belong to the parent). " \
             "`require \"tasker\"` before forking is fine -- the library is loaded when the first " \
             "Tasker::Channel is made -- so make channels only after fork, e.g. in Puma's " \
             "on_worker_boot, Unicorn's after_fork or a Sidekiq-style server's startup hook, or " \
             "start workers with spawn/exec."
      msg << " (libtasker: #{detail})" if detail && !detail.empty?
      msg
    end
  end

  # TASKER_EINTERNAL: a bug inside libtasker (a recovered panic).
  class InternalError < Error
    STATUS = -8
  end

  # TASKER_CLOSED: the channel is shut down and drained; nothing more will
  # arrive. Raised by poll, poll_batch and next_completion (and their raw
  # variants); #each_event and #each_completion stop on it.
  class ChannelClosed < Error
    STATUS = 2
  end

  # The library could not be loaded, or its ABI version is not the one this
  # binding was written for. #status is nil.
  class LibraryError < Error
  end

  STATUS_CLASSES = {
    -1 => InvalidArgument, -2 => BadHandle, -3 => EventNotPending, -4 => QueueFull,
    -5 => ShutdownError, -6 => TooLarge, -7 => ForkedError, -8 => InternalError,
    2 => ChannelClosed
  }.freeze
end
