# frozen_string_literal: true

# Tests run against the real libtasker.so: $TASKER_LIBRARY if set (the
# Makefile sets it), else the repository's build/libtasker.so.

require "minitest/autorun"
require "rbconfig"
require "open3"
require "etc"
require "tasker"

module TaskerTestHelper
  RUBY = RbConfig.ruby
  LIB_DIR = File.expand_path("../lib", __dir__)
  ROOT = File.expand_path("..", __dir__)

  # Yields a new channel and closes it afterwards.
  def with_channel(**config)
    ch = Tasker::Channel.new(**config)
    yield ch
  ensure
    ch&.close
  end

  # Dispatches one event, polls it and returns [channel-side event id, StepEvent].
  def dispatch_and_poll(ch, handler = "h", payload = nil, **opts)
    id = ch.dispatch(handler, payload, **opts)
    ev = ch.poll(timeout: 5)
    refute_nil ev, "event #{id} was not polled"
    assert_equal id, ev.event_id
    ev
  end

  def monotonic
    Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # Runs +code+ in a fresh `ruby -I lib` process (with this process's
  # environment: TASKER_LIBRARY and the rest). Returns [Process::Status,
  # stdout, stderr]; fails the test if it runs longer than +timeout+ seconds.
  def run_ruby(code, timeout: 30, env: {})
    cmd = [RUBY, "-I", LIB_DIR, "-e", code]
    out = err = status = nil
    Open3.popen3(env, *cmd, chdir: ROOT) do |stdin, stdout, stderr, wait|
      stdin.close
      readers = [Thread.new { stdout.read }, Thread.new { stderr.read }]
      unless wait.join(timeout)
        Process.kill(:KILL, wait.pid)
        wait.join
        flunk "ruby subprocess did not finish within #{timeout} s: #{code[0, 200]}"
      end
      out, err = readers.map(&:value)
      status = wait.value
    end
    [status, out, err]
  end

  # Forks a child that runs the block and sends back its value (Marshal) over
  # a pipe; waits at most +timeout+ seconds for it (then kills it and fails).
  # Returns [Process::Status, value].
  def fork_child(timeout: 20)
    $stdout.flush
    $stderr.flush
    rd, wr = IO.pipe
    pid = fork do
      rd.close
      value = begin
        yield
      rescue Exception => e # rubocop:disable Lint/RescueException
        { crashed: "#{e.class}: #{e.message}\n#{e.backtrace&.first(5)&.join("\n")}" }
      end
      wr.write(Marshal.dump(value))
      wr.close
      # a normal exit: at_exit handlers and finalizers run in the child
    end
    wr.close
    data = nil
    reader = Thread.new { data = rd.read }
    status = wait_pid(pid, timeout)
    reader.join(5)
    rd.close
    value = data && !data.empty? ? Marshal.load(data) : nil # rubocop:disable Security/MarshalLoad
    [status, value]
  end

  def wait_pid(pid, timeout)
    deadline = monotonic + timeout
    loop do
      _, status = Process.wait2(pid, Process::WNOHANG)
      return status if status

      if monotonic > deadline
        Process.kill(:KILL, pid)
        Process.wait(pid)
        flunk "child #{pid} did not exit within #{timeout} s"
      end
      sleep 0.01
    end
  end

  # Resident set size of this process in bytes (/proc/self/statm).
  def rss_bytes
    File.read("/proc/self/statm").split[1].to_i * Etc.sysconf(Etc::SC_PAGESIZE)
  end
end

Minitest::Test.include(TaskerTestHelper)

# Fail once, clearly, if the library cannot be loaded at all (instead of an
# error from every test).
begin
  Tasker::Native.load!
rescue Tasker::LibraryError => e
  warn "tasker tests: #{e.message}"
  exit! 1
end
