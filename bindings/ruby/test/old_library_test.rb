# frozen_string_literal: true

require "tmpdir"
require_relative "test_helper"

# bindings/SPEC.md, "Loading": a library older than the binding (one without
# the functions this binding calls, such as tasker_poll_into) is refused
# when it is loaded, with Tasker::LibraryError naming the library, the first
# missing function and the fix; never FFI::NotFoundError or a call into a
# missing symbol. The twin of Python's
# test_a_library_older_than_the_binding_is_refused_with_what_it_lacks.
class OldLibraryTest < Minitest::Test
  include TaskerTestHelper

  OLD_LIBRARY_C = <<~C
    #include <stdint.h>
    uint32_t tasker_abi_version(void) { return 1; }
    const char *tasker_version(void) { return "libtasker 0.0.1 (stand-in)"; }
  C

  def test_a_library_older_than_the_binding_is_refused_with_what_it_lacks
    skip "gcc builds the stand-in for an older library" unless system("command -v gcc >/dev/null 2>&1")
    Dir.mktmpdir do |d|
      src = File.join(d, "old.c")
      so = File.join(d, "libtasker-old.so")
      File.write(src, OLD_LIBRARY_C)
      assert system("gcc", "-shared", "-fPIC", "-o", so, src), "gcc failed"
      code = <<~RUBY
        require "tasker"
        begin
          Tasker::Channel.open { |_| }
          puts "loaded"
        rescue Tasker::LibraryError => e
          puts "LibraryError: \#{e.message}"
        end
      RUBY
      status, out, err = run_ruby(code, env: { "TASKER_LIBRARY" => so })
      assert status.success?, err
      assert_match(/\ALibraryError: /, out)
      assert_includes out, so
      assert_match(/lacks tasker_\w+/, out)
      assert_includes out, "make build"
    end
  end
end
