# frozen_string_literal: true

# Ruby binding of libtasker, a step-dispatch channel (see README.md).
#
# Requiring this file does not load libtasker.so: the library (and the Go
# runtime inside it) is loaded when the first Tasker::Channel is made. So a
# preforking server (Puma, Unicorn, a Sidekiq-style supervisor) may require
# "tasker" in its master and make channels in each forked worker.

require_relative "tasker/version"
require_relative "tasker/errors"
require_relative "tasker/native"
require_relative "tasker/values"
require_relative "tasker/channel"
require_relative "tasker/worker"
require_relative "tasker/observe"
require_relative "tasker/fiber_wait"
require_relative "tasker/async_worker"

module Tasker
  # At exit, shut down (drain 0) the channels this process left open, before
  # Ruby kills the remaining threads: a thread blocked inside the library
  # then returns at once instead of keeping the process from exiting.
  # Registered at require time, so it runs after the application's own
  # at_exit hooks (which may still drain their channels).
  at_exit { Tasker::Channel.shutdown_all_at_exit }

  # The loaded library's version string, e.g. "libtasker 0.1.0 (abi 1)".
  # Loads the library (see Native.load!).
  def self.library_version
    Native.load!
    Native.tasker_version
  end

  # The loaded library's ABI version. Loads the library.
  def self.abi_version
    Native.load!
    Native.tasker_abi_version
  end

  # The path libtasker is (or will be) loaded from.
  def self.library_path
    Native.library_path
  end

  # True once this process has loaded libtasker.
  def self.loaded?
    Native.loaded?
  end
end
