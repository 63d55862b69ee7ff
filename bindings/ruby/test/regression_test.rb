# frozen_string_literal: true

require_relative "test_helper"

# One test per bug met while writing this binding (library or binding).
class RegressionTest < Minitest::Test
  # Library bug: libtasker.so could not be dlopen()ed by Ruby (or Python, or a
  # plain C program) -- "cannot allocate memory in static TLS block". The
  # library is linked with the STATIC_TLS flag (the Go runtime's initial-exec
  # TLS) and ffi/shim.c adds a 4 KiB `static __thread char err_buf[4096]`, so
  # its TLS segment (0x1010 bytes) exceeds the static TLS surplus glibc keeps
  # for dlopen. Only a process started with
  # GLIBC_TUNABLES=glibc.rtld.optional_static_tls=... could load it.
  def test_library_loads_with_dlopen_without_glibc_tunables
    status, out, err = run_ruby(<<~'RUBY', env: { "GLIBC_TUNABLES" => nil })
      require "tasker"
      begin
        Tasker::Channel.open { |ch| ch.dispatch("x") }
        puts "loaded"
      rescue Tasker::LibraryError => e
        puts e.message
      end
    RUBY
    assert status.success?, err
    assert_equal "loaded", out.strip, "libtasker cannot be dlopen()ed without GLIBC_TUNABLES: #{out}"
  end

  # Binding bug: REPO_LIBRARY was resolved relative to native.rb itself
  # (File.expand_path(..., __FILE__)) instead of its directory, so without
  # TASKER_LIBRARY the binding looked for bindings/build/libtasker.so and fell
  # back to the system library.
  def test_default_library_path_is_the_repositorys_build
    expected = File.expand_path("../../../build/libtasker.so", __dir__)
    assert_equal expected, Tasker::Native::REPO_LIBRARY
    status, out, err = run_ruby(<<~'RUBY', env: { "TASKER_LIBRARY" => nil })
      require "tasker"
      puts Tasker.library_path
    RUBY
    assert status.success?, err
    if File.file?(expected)
      assert_equal expected, out.strip
    else
      assert_equal Tasker::Native::SONAME, out.strip
    end
  end

  # Binding bug: poll/poll_batch/next_completion checked the timeout only
  # when they had to wait, after a first non-waiting call, so a bad timeout
  # was accepted (and an event taken) whenever one was available.
  def test_bad_timeout_is_refused_before_anything_is_taken
    with_channel do |ch|
      ch.dispatch("x")
      assert_raises(Tasker::InvalidArgument) { ch.poll(timeout: -1) }
      assert_raises(Tasker::InvalidArgument) { ch.poll_batch(1, timeout: -1) }
      assert_equal 1, ch.stats[:queued]
      ch.complete(ch.poll.event_id)
      assert_raises(Tasker::InvalidArgument) { ch.next_completion(timeout: -1) }
      assert_equal 1, ch.stats[:undelivered]
    end
  end
end
