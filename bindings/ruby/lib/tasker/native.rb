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

    # The ABI minor version that added tasker_checkpoint (and tasker_abi_minor).
    CHECKPOINT_MINOR = 1
    # The ABI minor version that added tasker_event_fd and tasker_completion_fd.
    READINESS_MINOR = 2

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

    # The library's SONAME: the name the dynamic linker knows it by (the ABI
    # major is in the name).
    SONAME = "libtasker.so.#{ABI_VERSION}"

    # The library a platform gem carries (and a source gem builds at install
    # time): lib/tasker/libtasker.so.1, next to this file.
    BUNDLED_LIBRARY = File.expand_path(SONAME, __dir__)

    # The root of the libtasker checkout this file sits in
    # (bindings/ruby/lib/tasker/native.rb), if it does.
    REPO_ROOT = File.expand_path("../../../..", __dir__)

    # The repository's build output (the dev symlink to build/libtasker.so.1).
    REPO_LIBRARY = File.join(REPO_ROOT, "build", "libtasker.so")

    # How to get a library, for the errors of Native.load!.
    INSTALL_ADVICE =
      "To fix it, install the platform gem that carries the library " \
      "(`gem install tasker-<version>-x86_64-linux.gem`; `make gem` in a libtasker checkout builds it " \
      "into dist/), or the source gem with Go on PATH (it builds the library at install time), or " \
      "install libtasker system-wide (`sudo make install` in a checkout, which runs ldconfig), or " \
      "set TASKER_LIBRARY to the path of a #{SONAME}."

    # The library this process will load (or has loaded), the first of: the
    # one bundled in the gem (BUNDLED_LIBRARY), $TASKER_LIBRARY, the
    # repository's build/libtasker.so when running from a checkout, else
    # SONAME, which the dynamic linker looks up (LD_LIBRARY_PATH, the
    # ldconfig cache, /lib, /usr/lib).
    def self.library_path
      return @library_path if @library_path

      env = ENV["TASKER_LIBRARY"]
      if File.file?(BUNDLED_LIBRARY)
        BUNDLED_LIBRARY
      elsif env && !env.empty?
        env
      elsif in_checkout? && File.file?(REPO_LIBRARY)
        REPO_LIBRARY
      else
        SONAME
      end
    end

    def self.in_checkout?
      File.file?(File.join(REPO_ROOT, "include", "tasker.h"))
    end
    private_class_method :in_checkout?

    # Every place library_path looked before settling on +path+, with what
    # it found there, for an error message.
    def self.places_looked(path, error)
      places = ["#{BUNDLED_LIBRARY} (the library a platform gem carries): no such file"]
      env = ENV["TASKER_LIBRARY"]
      if env && !env.empty?
        places << "TASKER_LIBRARY=#{env.inspect}: #{error.message}"
        return places
      end
      places << "$TASKER_LIBRARY: not set"
      places << "#{REPO_LIBRARY} (this checkout's build): no such file; `make` in #{REPO_ROOT} builds it" if in_checkout?
      places << "#{path} through the dynamic linker (LD_LIBRARY_PATH, the ldconfig cache, /lib, /usr/lib): #{error.message}"
      places
    end
    private_class_method :places_looked

    # ==== Loading (lazy, once per process) ==================================

    LOAD_LOCK = Mutex.new
    @loaded = false
    @loaded_pid = nil
    @library_path = nil

    @abi_minor = 0

    class << self
      # The pid of the process that loaded the library, nil before loading.
      attr_reader :loaded_pid

      # The loaded library's ABI minor version (tasker_abi_minor; 0 for a
      # library older than that function, or before loading).
      attr_accessor :abi_minor
    end

    # Raises Tasker::LibraryError unless the loaded library's ABI minor is at
    # least +minor+ (+what+ names the feature that needs it).
    def self.require_minor!(minor, what)
      return if @abi_minor >= minor

      raise Tasker::LibraryError,
            "#{what} needs libtasker ABI #{ABI_VERSION}.#{minor} or newer, but #{@library_path || library_path} " \
            "is ABI #{ABI_VERSION}.#{@abi_minor}; use a newer libtasker (set TASKER_LIBRARY)"
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
        begin
          attach_all
        rescue FFI::NotFoundError => e
          missing = e.message[/tasker_\w+/] || e.message
          raise Tasker::LibraryError,
                "#{path} lacks #{missing}: it is older than this tasker binding (ABI #{ABI_VERSION}, with " \
                "tasker_poll_into and tasker_next_completion_into); rebuild it (make build) or install " \
                "the tasker gem, which carries its own library"
        end
        @abi_minor = attach_optional
        @library_path = path == SONAME ? loaded_file(path) : path
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
      missing = path == SONAME || (path == ENV["TASKER_LIBRARY"] && !File.exist?(path))
      if missing
        lines = places_looked(path, error).each_with_index.map { |place, i| "  #{i + 1}. #{place}" }
        return "cannot load libtasker from #{path.inspect} (ABI #{ABI_VERSION}). Looked in, in this order:\n" \
               "#{lines.join("\n")}\n#{INSTALL_ADVICE}"
      end
      msg = +"cannot load libtasker from #{path.inspect}: #{error.message}"
      if error.message.include?("static TLS")
        msg << " -- the library needs more static TLS than glibc reserves for dlopen() " \
               "(a libtasker build problem: its thread-local data is too large). " \
               "Workaround until it is fixed: start Ruby with " \
               "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384"
      elsif error.message.include?("GLIBC_")
        msg << " -- this libtasker was built against a newer glibc than this system has; install the " \
               "source gem (it builds the library here with Go) or `make install` in a libtasker checkout"
      end
      msg
    end
    private_class_method :load_failure_message

    # The file the dynamic linker loaded for +name+ (from /proc/self/maps),
    # else +name+.
    def self.loaded_file(name)
      File.foreach("/proc/self/maps") do |line|
        file = line.split(" ", 6)[5]&.strip
        return file if file&.start_with?("/") && File.basename(file) == name
      end
      name
    rescue SystemCallError
      name
    end
    private_class_method :loaded_file

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

      # -- single documents into the caller's buffer (Scratch#buf) --
      attach_function :tasker_poll_into, [:uint64, :int32, :pointer, :size_t, :pointer], :int
      attach_function :tasker_poll_into_blocking, :tasker_poll_into,
                      [:uint64, :int32, :pointer, :size_t, :pointer], :int, blocking: true
      attach_function :tasker_next_completion_into, [:uint64, :int32, :pointer, :size_t, :pointer], :int
      attach_function :tasker_next_completion_into_blocking, :tasker_next_completion_into,
                      [:uint64, :int32, :pointer, :size_t, :pointer], :int, blocking: true

      # -- shutdown and observation --
      attach_function :tasker_shutdown, [:uint64, :int32], :int
      attach_function :tasker_shutdown_blocking, :tasker_shutdown, [:uint64, :int32], :int, blocking: true
      attach_function :tasker_stats, [:uint64, :pointer, :pointer], :int
    end
    private_class_method :attach_all

    # The functions added by ABI minor versions: attached when the library
    # has them. Returns the library's minor version (0 when it predates
    # tasker_abi_minor; then tasker_checkpoint is not attached either and
    # callers check Native.abi_minor first).
    def self.attach_optional
      begin
        attach_function :tasker_abi_minor, [], :uint32
      rescue FFI::NotFoundError
        return 0
      end
      minor = tasker_abi_minor
      attach_function :tasker_checkpoint, [:uint64, :string, :pointer, :size_t], :int if minor >= CHECKPOINT_MINOR
      if minor >= READINESS_MINOR # readiness descriptors (never wait; Tasker::FiberWait waits on them)
        attach_function :tasker_event_fd, [:uint64, :pointer], :int
        attach_function :tasker_completion_fd, [:uint64, :pointer], :int
      end
      minor
    end
    private_class_method :attach_optional

    # ==== Per-thread scratch memory =========================================
    #
    # Out-parameters (char **, size_t *, uint32_t *, the 37-byte event id)
    # live in MemoryPointers that each thread (strictly: each fiber, via
    # Thread#[]) allocates once and reuses for every call, so a call
    # allocates no native memory of its own. Reuse is safe: a thread uses its
    # scratch for one library call at a time and reads it before making
    # another call.
    class Scratch
      attr_reader :out, :len, :count, :id, :buf

      # First size of the buffer poll and next_completion take single
      # documents into (tasker_*_into); it grows to the largest one seen.
      INTO_BUF_SIZE = 16_384

      def initialize
        @out = FFI::MemoryPointer.new(:pointer)
        @len = FFI::MemoryPointer.new(:size_t)
        @count = FFI::MemoryPointer.new(:uint32)
        @id = FFI::MemoryPointer.new(:char, EVENT_ID_BYTES)
        @buf = FFI::MemoryPointer.new(:char, INTO_BUF_SIZE, false)
        @input = nil
      end

      # Replaces the into-buffer by one of at least +cap+ bytes.
      def grow(cap)
        @buf = FFI::MemoryPointer.new(:char, [cap, @buf.size * 2].max, false)
      end

      # The document a tasker_*_into call wrote: one copy, no tasker_free.
      def read_into
        @buf.read_bytes(@len.read_ulong).force_encoding(Encoding::UTF_8)
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
