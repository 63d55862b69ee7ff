# frozen_string_literal: true

require "ffi"

module Tasker
  # The raw C ABI of libtasker (include/tasker.h), bound with the ffi gem.
  #
  # Nothing here touches the shared library at `require` time. Loading
  # libtasker starts the Go runtime, and the Go runtime does not survive
  # fork(): a process that forks after loading it leaves its children unable
  # to use the library. So `ffi_lib` and every `attach_function` run in
  # Native.load!, which Tasker::Channel.new calls (the first channel made in
  # a process loads the library). A Puma/Unicorn master that preloads an app
  # requiring "tasker" therefore forks freely, and each worker loads its own
  # copy when it makes its first channel.
  #
  # Application code should use Tasker::Channel; this module is the thin,
  # unchecked layer underneath it.
  module Native
    extend FFI::Library

    # ==== ABI constants (include/tasker.h) ==================================

    # The ABI version this binding is written for.
    ABI_VERSION = 1

    OK         = 0
    EMPTY      = 1
    CLOSED     = 2
    EINVAL     = -1
    EBADF      = -2
    ENOENT     = -3
    EFULL      = -4
    ESHUTDOWN  = -5
    ETOOBIG    = -6
    EFORKED    = -7
    EINTERNAL  = -8

    # Symbolic names of the status codes, for messages.
    STATUS_NAMES = {
      OK => "TASKER_OK", EMPTY => "TASKER_EMPTY", CLOSED => "TASKER_CLOSED",
      EINVAL => "TASKER_EINVAL", EBADF => "TASKER_EBADF", ENOENT => "TASKER_ENOENT",
      EFULL => "TASKER_EFULL", ESHUTDOWN => "TASKER_ESHUTDOWN", ETOOBIG => "TASKER_ETOOBIG",
      EFORKED => "TASKER_EFORKED", EINTERNAL => "TASKER_EINTERNAL"
    }.freeze

    # tasker_dispatch writes the event id (36 characters and a NUL) here.
    EVENT_ID_BYTES = 37

    # Longest wait (milliseconds) handed to the library in one call by the
    # sliced waits of Tasker::Channel; see Channel#poll.
    MAX_TIMEOUT_MS = 2_147_483_647

    # ==== Locating the library ==============================================

    # The repository's build output, relative to this file
    # (bindings/ruby/lib/tasker/native.rb -> build/libtasker.so).
    REPO_LIBRARY = File.expand_path("../../../../build/libtasker.so", __dir__)

    # The library this process will load (or has loaded): $TASKER_LIBRARY if
    # set, else the repository's build/libtasker.so if it exists, else
    # "tasker" (the system's libtasker.so, found by the dynamic loader).
    def self.library_path
      return @library_path if @library_path

      env = ENV["TASKER_LIBRARY"]
      if env && !env.empty?
        env
      elsif File.file?(REPO_LIBRARY)
        REPO_LIBRARY
      else
        "tasker"
      end
    end

    # ==== Loading (lazy, once per process) ==================================

    LOAD_LOCK = Mutex.new
    @loaded = false
    @loaded_pid = nil
    @library_path = nil

    class << self
      # The pid of the process that loaded the library, nil before loading.
      attr_reader :loaded_pid
    end

    # True once this process (or the parent it was forked from) has loaded
    # the library.
    def self.loaded?
      @loaded
    end

    # True when the library was loaded by another process (this one is a
    # child forked after the parent loaded it): nothing but the static
    # functions works here. Costs a getpid(); not for hot paths.
    def self.forked?
      @loaded && Process.pid != @loaded_pid
    end

    # Loads the library and attaches every function; idempotent and
    # thread-safe. Raises Tasker::LibraryError if the library cannot be
    # loaded or its ABI version differs from ABI_VERSION. (In a child forked
    # after its parent loaded the library this is a no-op; the calls that
    # follow raise Tasker::ForkedError.)
    def self.load!
      return true if @loaded

      LOAD_LOCK.synchronize do
        return true if @loaded

        path = library_path
        begin
          ffi_lib(path)
        rescue LoadError => e
          raise Tasker::LibraryError, load_failure_message(path, e)
        end
        attach_function :tasker_abi_version, [], :uint32
        check_abi!(tasker_abi_version, path)
        attach_all
        @library_path = path
        @loaded_pid = Process.pid
        @loaded = true
      end
      true
    end

    # Raises Tasker::LibraryError unless +actual+ is the ABI version this
    # binding was written for; the message names both versions.
    def self.check_abi!(actual, path = library_path)
      return if actual == ABI_VERSION

      raise Tasker::LibraryError,
            "libtasker ABI version mismatch: #{path} has ABI version #{actual}, " \
            "but this Ruby binding (tasker gem #{Tasker::VERSION}) is written for ABI version " \
            "#{ABI_VERSION}; install a libtasker built for ABI #{ABI_VERSION} or a matching gem"
    end

    def self.load_failure_message(path, error)
      msg = +"cannot load libtasker from #{path.inspect}: #{error.message}"
      if error.message.include?("static TLS")
        msg << " -- the library needs more static TLS than glibc reserves for dlopen() " \
               "(a libtasker build problem: its thread-local data is too large). " \
               "Workaround until it is fixed: start Ruby with " \
               "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384"
      elsif path == "tasker"
        msg << " -- set TASKER_LIBRARY to the path of libtasker.so, or run `make build` in the repository"
      end
      msg
    end
    private_class_method :load_failure_message

    # ==== Functions =========================================================
    #
    # Every function of include/tasker.h. Calls that can wait (dispatch with
    # a timeout, poll, poll_batch, next_completion, shutdown, and destroy,
    # which shuts down) are attached with `blocking: true`, which releases
    # the GVL for the duration of the call so other Ruby threads keep
    # running. Each of them except destroy has a second, non-blocking binding
    # of the same symbol (no "_blocking" suffix) that Tasker::Channel uses
    # when the timeout is 0, so the common non-waiting call does not pay for
    # releasing and re-acquiring the GVL.
    #
    # A blocking call runs on the calling Ruby thread's own native thread
    # (rb_thread_call_without_gvl), so tasker_last_error, which is per OS
    # thread, read right after a failing call describes that call
    # (test/errors_test.rb checks this across threads).

    def self.attach_all
      # -- library information (never enter Go; work in a forked child too) --
      attach_function :tasker_version, [], :string
      attach_function :tasker_strerror, [:int], :string
      attach_function :tasker_last_error, [:pointer, :size_t], :size_t
      attach_function :tasker_free, [:pointer], :void

      # -- channel lifecycle --
      attach_function :tasker_new, [:string, :pointer], :int
      attach_function :tasker_destroy, [:uint64], :int, blocking: true

      # -- producing --
      attach_function :tasker_dispatch, [:uint64, :pointer, :size_t, :int32, :pointer], :int
      attach_function :tasker_dispatch_blocking, :tasker_dispatch,
                      [:uint64, :pointer, :size_t, :int32, :pointer], :int, blocking: true

      # -- working --
      attach_function :tasker_poll, [:uint64, :int32, :pointer, :pointer], :int
      attach_function :tasker_poll_blocking, :tasker_poll,
                      [:uint64, :int32, :pointer, :pointer], :int, blocking: true
      attach_function :tasker_poll_batch, [:uint64, :uint32, :int32, :pointer, :pointer, :pointer], :int
      attach_function :tasker_poll_batch_blocking, :tasker_poll_batch,
                      [:uint64, :uint32, :int32, :pointer, :pointer, :pointer], :int, blocking: true
      attach_function :tasker_complete, [:uint64, :string, :pointer, :size_t], :int
      attach_function :tasker_cleanup_timeouts, [:uint64, :pointer], :int

      # -- consuming --
      attach_function :tasker_next_completion, [:uint64, :int32, :pointer, :pointer], :int
      attach_function :tasker_next_completion_blocking, :tasker_next_completion,
                      [:uint64, :int32, :pointer, :pointer], :int, blocking: true

      # -- shutdown and observation --
      attach_function :tasker_shutdown, [:uint64, :int32], :int
      attach_function :tasker_shutdown_blocking, :tasker_shutdown, [:uint64, :int32], :int, blocking: true
      attach_function :tasker_stats, [:uint64, :pointer, :pointer], :int
    end
    private_class_method :attach_all

    # ==== Per-thread scratch memory =========================================
    #
    # Out-parameters (char **, size_t *, uint32_t *, the 37-byte event id)
    # live in MemoryPointers that each thread (strictly: each fiber, via
    # Thread#[]) allocates once and reuses for every call, so a call
    # allocates no native memory of its own. Reuse is safe: a thread uses its
    # scratch for one library call at a time and reads it before making
    # another call.
    class Scratch
      attr_reader :out, :len, :count, :id

      def initialize
        @out = FFI::MemoryPointer.new(:pointer)
        @len = FFI::MemoryPointer.new(:size_t)
        @count = FFI::MemoryPointer.new(:uint32)
        @id = FFI::MemoryPointer.new(:char, EVENT_ID_BYTES)
        @input = nil
      end

      # A copy of +str+ in native memory. Used for inputs of calls that
      # release the GVL: while another thread holds the GVL, GC compaction
      # may move a Ruby string's bytes, so a blocking call must not read them
      # in place.
      def input(str)
        n = str.bytesize
        @input = FFI::MemoryPointer.new(:char, [n, 256].max * 2) if @input.nil? || @input.size < n
        @input.put_bytes(0, str)
        @input
      end
    end

    def self.scratch
      Thread.current[:__tasker_native_scratch] ||= Scratch.new
    end

    # Reads the library-allocated buffer in scratch.out (scratch.len bytes)
    # into a UTF-8 String and frees it with tasker_free, whatever happens.
    def self.take(scratch)
      ptr = scratch.out.read_pointer
      begin
        ptr.read_bytes(scratch.len.read_ulong).force_encoding(Encoding::UTF_8)
      ensure
        tasker_free(ptr)
      end
    end

    # ==== Errors ============================================================

    # The message of the most recent failed call on this OS thread ("" if
    # none). Call it right after the failing call, on the same thread.
    def self.last_error
      n = tasker_last_error(nil, 0)
      return +"" if n.zero?

      buf = FFI::MemoryPointer.new(:char, n + 1)
      tasker_last_error(buf, n + 1)
      buf.read_bytes(n).force_encoding(Encoding::UTF_8).scrub
    end

    # The exception for a status the caller did not expect (anything but OK
    # and, where the call allows it, EMPTY). Reads tasker_last_error, so call
    # it right after the failing call on the same thread.
    def self.error_for(status, function)
      if status == CLOSED
        Tasker::ChannelClosed.new("#{function}: the channel is shut down and drained; nothing more will arrive")
      elsif status.negative?
        msg = last_error
        msg = "#{function}: #{tasker_strerror(status)}" if msg.empty?
        Tasker::Error.for_status(status, msg)
      else
        Tasker::Error.for_status(status, "#{function}: unexpected status #{status} (#{tasker_strerror(status)})")
      end
    end
  end
end
