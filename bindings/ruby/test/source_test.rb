# frozen_string_literal: true

# A channel with a PostgreSQL source (docs/QUEUE.md), end to end from Ruby: a throwaway server
# (tests/pg/pg.sh), steps inserted with plain SQL (psql), Tasker::Worker running them, one result per
# message in the results queue, nothing in the local completion stream. Skipped without the server
# binaries unless TASKER_PG_REQUIRED=1 (make test), where that is a failure.

require_relative "test_helper"
require "json"
require "securerandom"

class SourceTest < Minitest::Test
  include TaskerTestHelper

  REPO = File.expand_path("../../..", __dir__)
  PG_SH = File.join(REPO, "tests", "pg", "pg.sh")

  def psql_path
    found = ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).map { |d| File.join(d, "psql") }.find { |p| File.executable?(p) }
    found || Dir["/usr/lib/postgresql/*/bin/psql"].max
  end

  # One server for the class, started by the first test and stopped when minitest is done (and by
  # pg.sh's watchdog should this process die first).
  def self.server
    @server ||= begin
      dir = File.join(REPO, "build", "pgtest-rb-#{Process.pid}")
      out, err, st = Open3.capture3("bash", PG_SH, "start", dir, Process.pid.to_s)
      raise "pg.sh start: #{err}" unless st.success?

      Minitest.after_run { system("bash", PG_SH, "stop", dir) }
      out.strip
    end
  end

  def setup
    @psql = psql_path
    unless system("bash", PG_SH, "check") && @psql
      flunk "PostgreSQL server binaries or psql missing and TASKER_PG_REQUIRED=1" if ENV["TASKER_PG_REQUIRED"] == "1"
      skip "PostgreSQL server binaries not installed"
    end
    @dsn = self.class.server
  end

  def sql(query)
    out, err, st = Open3.capture3(@psql, @dsn, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query)
    assert st.success?, err
    out.strip
  end

  def wait_for(what, limit = 30)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + limit
    until yield
      flunk "timed out waiting for #{what}" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.02
    end
  end

  def test_worker_runs_steps_from_a_queue
    source = { postgres: { dsn: @dsn, queue: "rb_orders", poll_interval_ms: 100 } }
    stats = nil
    with_channel(source: source, max_concurrent_handlers: 4) do |ch|
      worker = Tasker::Worker.new(ch, { "add" => ->(ev) { { "sum" => ev.payload["a"] + 1 } } }, threads: 3)
      worker.start
      wait_for("the source to connect") { ch.stats[:source_state] == "connected" }
      values = 20.times.map do |i|
        step = JSON.generate(task_uuid: SecureRandom.uuid, step_uuid: SecureRandom.uuid, handler: "add", payload: { a: i })
        "(now(), '#{step}'::jsonb)"
      end
      sql("INSERT INTO pgmq.q_rb_orders (vt, message) VALUES #{values.join(",")}")
      wait_for("20 acks") { ch.stats[:source_acked] == 20 }
      worker.stop
      stats = ch.stats
      assert_nil ch.next_completion(timeout: 0.05), "a source event reached the local stream"
    end
    assert_equal 20, stats[:source_read]
    assert_equal 0, stats[:source_lease_lost]
    results = sql("SELECT message FROM pgmq.q_rb_orders_results").lines.map { |l| JSON.parse(l) }
    assert_equal 20, results.size
    assert_equal 20, results.map { |r| r["msg_id"] }.uniq.size, "a message has two results"
    assert_equal (1..20).to_a, results.map { |r| r["completion"]["result"]["sum"] }.sort
    assert_equal "0", sql("SELECT count(*) FROM pgmq.q_rb_orders")
    assert_equal "20", sql("SELECT count(*) FROM pgmq.a_rb_orders")
  end

  def test_bad_source_config_names_the_key
    err = assert_raises(Tasker::InvalidArgument) do
      Tasker::Channel.new(source: { postgres: { dsn: @dsn, queue: "Bad-Name" } })
    end
    assert_includes err.message, '"queue"'
  end
end
