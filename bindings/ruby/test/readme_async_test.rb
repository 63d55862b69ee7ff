# frozen_string_literal: true

require_relative "test_helper"

# The README's Async (fiber) example runs as written and prints what it says.
class ReadmeAsyncTest < Minitest::Test
  README = File.expand_path("../README.md", __dir__)

  def test_async_example_runs_as_written
    section = File.read(README).split("\n## Fibers (Async)\n", 2)[1]
    refute_nil section, "README.md has a Fibers (Async) section"
    code = section[/```ruby\n(.*?)```/m, 1]
    expected = section[/prints\n\n```\n(.*?)```/m, 1]
    refute_nil code
    refute_nil expected
    assert_includes code, "AsyncWorker"
    status, out, err = run_ruby(code, timeout: 60)
    assert status.success?, "README Async example failed:\n#{out}\n#{err}"
    assert_equal expected, out
  end
end
