# frozen_string_literal: true

require_relative "test_helper"

# The README's example runs as written.
class ReadmeTest < Minitest::Test
  README = File.expand_path("../README.md", __dir__)

  def test_readme_example_runs_as_written
    code = File.read(README)[/```ruby\n(.*?)```/m, 1]
    refute_nil code, "README.md has a ```ruby block"
    assert_operator code.lines.size, :<=, 16
    status, out, err = run_ruby(code)
    assert status.success?, "README example failed:\n#{out}\n#{err}"
    assert_equal ["boom: failed no", "greet: completed hello, Ruby"], out.lines.map(&:chomp).sort
  end

  def test_demo_runs_and_checks_exactly_once
    demo = File.expand_path("../examples/demo.rb", __dir__)
    status, out, err = run_ruby(File.read(demo).sub("if $PROGRAM_NAME == __FILE__", "if true"),
                                timeout: 60, env: { "TASKER_DEMO_STEPS" => "1000" })
    assert status.success?, "demo failed:\n#{out}\n#{err}"
    assert_match(/Exactly once: OK: 1,000 dispatched, 1,000 completions, 0 missing, 0 duplicated/, out)
    assert_match(/Completions by status/, out)
    assert_match(%r{timeout / ffi_timeout}, out)
  end
end
