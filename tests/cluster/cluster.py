#!/usr/bin/env python3
"""A cluster run of the PostgreSQL source (docs/QUEUE.md), checked from the database.

Starts a throwaway PostgreSQL (tests/pg/pg.sh), several worker processes (tests/cluster/worker.py
on the Python binding, worker.rb on the Ruby one, each a tasker.Channel with
source={"postgres": ...} run by a tasker.Worker), produces step messages with plain SQL, kills
workers with SIGKILL (at a moment they hold leases: see freeze_and_kill) and restarts PostgreSQL
part-way if asked, waits until every message has left
the queue, stops the workers, and then counts from the database:

    every produced msg_id has exactly one result in q_<queue>_results, and is in a_<queue>;
    no result for a msg_id that was never produced; q_<queue> is empty; each result's read_ct is
    the read_ct of the archived row (the result was written by the lease that retired it).

Exit status 0 when every check holds, 1 when one fails (the numbers are printed), 2 on a bad
command line, 130 on Ctrl-C. The server, every worker and the temporary folder are removed in
every case (and, should this process itself be killed, the server by pg.sh's watchdog and the
workers because they stop when their parent is gone).

The producer records every msg_id it inserted in a table of its own (public.produced), in the
same statement as the insert, so "missing" is counted against what was really produced, not
against what the source's tables say.

    cluster.py [--messages N] [--python P] [--ruby R] [--threads T] [--kill K] [--restart]
               [--layout library|pgmq] [--invalid M] [--rate R] [--sleep-ms MS]
               [--fail-every K] [--vt MS] [--timeout S] [--table] [--title TEXT]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PG_SH = os.path.join(ROOT, "tests", "pg", "pg.sh")
HERE = os.path.join(ROOT, "tests", "cluster")
SCHEMA = "pgmq"


class Failure(Exception):
    """A check that did not hold, or a run that could not be completed."""


def log(msg: str) -> None:
    print(msg, flush=True)


def fmt(n: int) -> str:
    return f"{n:,}"


# ---- the database, through psql ----

class DB:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"

    def run(self, sql: str, timeout: float = 60) -> str:
        """Runs sql (one or more statements, stopping at the first error); returns psql's
        unaligned, tuples-only output. Raises Failure naming the SQL's first line."""
        p = subprocess.run([self.psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.dsn],
                           input=sql, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            first = sql.strip().splitlines()[0] if sql.strip() else ""
            raise Failure(f"psql failed on {first!r}: {p.stderr.strip()}")
        return p.stdout

    def retry(self, sql: str, deadline: float) -> str:
        """run, retried while the server is away (a restart), until deadline."""
        while True:
            try:
                return self.run(sql)
            except (Failure, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def value(self, sql: str) -> Any:
        return json.loads(self.run(sql).strip())


# ---- queues made the way pgmq makes them (plain SQL; no pgmq installation) ----

def pgmq_shaped_ddl(queue: str) -> str:
    """The schema, the meta table and one queue's q_/a_ tables with pgmq's layout (1.5+:
    with headers) and indexes, and no notify trigger (pgmq's is opt-in), so that the source
    finds the messages by polling alone."""
    return f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.meta (
    queue_name varchar UNIQUE NOT NULL,
    is_partitioned boolean NOT NULL,
    is_unlogged boolean NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE {SCHEMA}.q_{queue} (
    msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
    read_ct int DEFAULT 0 NOT NULL,
    enqueued_at timestamptz DEFAULT now() NOT NULL,
    vt timestamptz NOT NULL,
    message jsonb,
    headers jsonb);
CREATE TABLE {SCHEMA}.a_{queue} (
    msg_id bigint PRIMARY KEY,
    read_ct int DEFAULT 0 NOT NULL,
    enqueued_at timestamptz DEFAULT now() NOT NULL,
    archived_at timestamptz DEFAULT now() NOT NULL,
    vt timestamptz NOT NULL,
    message jsonb,
    headers jsonb);
CREATE INDEX q_{queue}_vt_idx ON {SCHEMA}.q_{queue} (vt ASC);
CREATE INDEX archived_at_idx_{queue} ON {SCHEMA}.a_{queue} (archived_at);
INSERT INTO {SCHEMA}.meta (queue_name, is_partitioned, is_unlogged) VALUES ('{queue}', false, false);
"""


# ---- worker processes ----

@dataclass
class Proc:
    name: str
    lang: str
    popen: subprocess.Popen
    errlog: str
    last: dict = field(default_factory=dict)
    killed: bool = False
    reader: threading.Thread | None = None

    def follow(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            try:
                self.last = json.loads(line)
            except ValueError:
                pass


def start_worker(name: str, lang: str, source: dict, threads: int, logdir: str) -> Proc:
    script = os.path.join(HERE, "worker.py" if lang == "python" else "worker.rb")
    exe = [sys.executable] if lang == "python" else [os.environ.get("RUBY", "ruby")]
    errlog = os.path.join(logdir, name + ".err")
    with open(errlog, "w") as err:
        p = subprocess.Popen(exe + [script, name, json.dumps(source), str(threads)],
                             stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
    w = Proc(name, lang, p, errlog)
    w.reader = threading.Thread(target=w.follow, daemon=True)
    w.reader.start()
    return w


# ---- the run ----

@dataclass
class Timeline:
    events: list[str] = field(default_factory=list)

    def add(self, t0: float, text: str) -> None:
        self.events.append(f"{time.monotonic() - t0:6.1f} s  {text}")


def produce(db: DB, queue: str, a: int, b: int, sleep_ms: int, fail_every: int, deadline: float) -> None:
    fail = f"g % {fail_every} = 0" if fail_every > 0 else "false"
    db.retry(f"""
WITH ins AS (
  INSERT INTO {SCHEMA}.q_{queue} (vt, message)
  SELECT now(), jsonb_build_object(
      'task_uuid', gen_random_uuid(), 'step_uuid', gen_random_uuid(), 'handler', 'charge',
      'payload', jsonb_build_object('i', g, 'sleep_ms', {sleep_ms}, 'fail', {fail}))
  FROM generate_series({a}, {b}) g
  RETURNING msg_id)
INSERT INTO public.produced (msg_id, valid) SELECT msg_id, true FROM ins;
""", deadline)


def produce_invalid(db: DB, queue: str, n: int, deadline: float) -> None:
    # not dispatch documents: an unknown key, a missing handler, a JSON string, SQL NULL
    db.retry(f"""
WITH ins AS (
  INSERT INTO {SCHEMA}.q_{queue} (vt, message)
  SELECT now(), CASE g % 4
      WHEN 0 THEN jsonb_build_object('task_uuid', gen_random_uuid(), 'step_uuid', gen_random_uuid(),
                                     'handler', 'charge', 'bogus', g)
      WHEN 1 THEN jsonb_build_object('task_uuid', gen_random_uuid(), 'step_uuid', gen_random_uuid())
      WHEN 2 THEN to_jsonb('not a document'::text)
      ELSE NULL END
  FROM generate_series(1, {n}) g
  RETURNING msg_id)
INSERT INTO public.produced (msg_id, valid) SELECT msg_id, false FROM ins;
""", deadline)


def run(args: argparse.Namespace) -> int:
    queue = args.queue
    results_q, dlq = queue + "_results", queue + "_dlq"
    pid = os.getpid()
    pgdir = os.path.join(ROOT, "build", f"cluster-{pid}")
    logdir = os.path.join(ROOT, "build", f"cluster-logs-{pid}")
    os.makedirs(logdir, exist_ok=True)
    os.environ.setdefault("TASKER_LIBRARY", os.path.join(ROOT, "build", "libtasker.so"))
    if not os.path.exists(os.environ["TASKER_LIBRARY"]):
        raise Failure(f"{os.environ['TASKER_LIBRARY']} is missing: run `make` first")
    procs: list[Proc] = []
    tl = Timeline()
    ok = False
    pg_started = False
    try:
        if subprocess.run(["bash", PG_SH, "check"]).returncode != 0:
            raise Failure("PostgreSQL server binaries not found (install: apt-get install -y postgresql)")
        out = subprocess.run(["bash", PG_SH, "start", pgdir, str(pid)], capture_output=True, text=True)
        pg_started = True
        if out.returncode != 0:
            raise Failure(f"starting PostgreSQL failed: {out.stderr.strip()}")
        db = DB(out.stdout.strip())
        t0 = time.monotonic()
        deadline = t0 + args.timeout
        tl.add(t0, f"PostgreSQL started in {pgdir}")
        db.run("CREATE TABLE public.produced (msg_id bigint PRIMARY KEY, valid boolean NOT NULL)")
        if args.layout == "pgmq":
            db.run(pgmq_shaped_ddl(queue) + pgmq_shaped_ddl(results_q) + pgmq_shaped_ddl(dlq))
            tl.add(t0, f"queues {queue}, {results_q}, {dlq} made with pgmq's layout (no notify trigger)")

        source = {"postgres": {
            "dsn": db.dsn, "queue": queue, "schema": SCHEMA, "create_queues": args.layout == "library",
            "visibility_timeout_ms": args.vt, "batch_size": args.batch, "poll_interval_ms": args.poll_ms,
            "max_attempts": 5}}
        names = [("py-%d" % (i + 1), "python") for i in range(args.python)] + \
                [("rb-%d" % (i + 1), "ruby") for i in range(args.ruby)]
        for name, lang in names:
            procs.append(start_worker(name, lang, source, args.threads, logdir))
        tl.add(t0, "started " + ", ".join(p.name for p in procs) + f" ({args.threads} threads each)")

        if args.layout == "library":  # the first worker to connect creates the queues
            while db.run(f"SELECT to_regclass('{SCHEMA}.q_{dlq}') IS NOT NULL").strip() != "t":
                check_alive(procs)
                if time.monotonic() > deadline:
                    raise Failure("the workers did not create the queues in time")
                time.sleep(0.05)
            tl.add(t0, "the workers created the queues")

        # the producer: batches of plain SQL inserts, at a rate (0: as fast as it can)
        prod_err: list[BaseException] = []
        produced_done = threading.Event()

        def producer() -> None:
            try:
                if args.invalid:
                    produce_invalid(db, queue, args.invalid, deadline)
                step = 500 if args.rate <= 0 else max(1, min(1000, args.rate // 10))
                start = time.monotonic()
                for a in range(1, args.messages + 1, step):
                    b = min(args.messages, a + step - 1)
                    produce(db, queue, a, b, args.sleep_ms, args.fail_every, deadline)
                    if args.rate > 0:
                        ahead = start + b / args.rate - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                prod_err.append(exc)
            finally:
                produced_done.set()

        t_prod = time.monotonic()
        threading.Thread(target=producer, daemon=True).start()
        total = args.messages + args.invalid
        killed = restarted = False
        timed_out = ""
        kill_hit = False
        last_progress = time.monotonic()
        victims = [p for p in procs][: args.kill]
        while True:
            if prod_err:
                raise Failure(f"producer: {prod_err[0]}")
            check_alive(procs)
            try:
                done = int(db.run(f"SELECT count(*) FROM {SCHEMA}.a_{queue}", timeout=10).strip())
            except (Failure, subprocess.TimeoutExpired):
                done = -1  # the server is restarting
            if victims and not killed and done >= args.kill_at * total:
                kill_hit = freeze_and_kill(db, victims, queue, args.vt, tl, t0, done, total)
                killed = True
            if args.progress and time.monotonic() - last_progress >= args.progress:
                last_progress = time.monotonic()
                log(f"  {last_progress - t0:6.1f} s  {fmt(max(done, 0))} of {fmt(total)} retired")
            if args.restart and not restarted and done >= args.restart_at * total:
                r0 = time.monotonic()
                out = subprocess.run(["bash", PG_SH, "restart", pgdir], capture_output=True, text=True)
                if out.returncode != 0:
                    raise Failure(f"restarting PostgreSQL failed: {out.stderr.strip()}")
                restarted = True
                tl.add(t0, f"PostgreSQL restarted ({fmt(done)} of {fmt(total)} retired; down and up in "
                       f"{time.monotonic() - r0:.1f} s)")
            if produced_done.is_set() and done >= total:
                break
            if time.monotonic() > deadline:
                timed_out = f"timed out after {args.timeout:g} s with {fmt(done)} of {fmt(total)} messages retired"
                tl.add(t0, timed_out)
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t_prod
        if not timed_out:
            tl.add(t0, f"all {fmt(total)} messages retired")

        # stop the workers that are left: SIGTERM, they release and exit 0
        for p in procs:
            if not p.killed:
                p.popen.send_signal(signal.SIGTERM)
        for p in procs:
            if p.killed:
                continue
            try:
                rc = p.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise Failure(f"worker {p.name} did not stop within 30 s of SIGTERM")
            if p.reader:
                p.reader.join(5)
            if rc != 0:
                raise Failure(f"worker {p.name} exited with status {rc}:\n{tail(p.errlog)}")
        tl.add(t0, "workers stopped")

        report = verify(db, queue, results_q, dlq)
        report["elapsed"] = elapsed
        report["kill_hit"] = kill_hit
        ok = print_report(args, report, procs, tl, queue) and not timed_out
        if timed_out:
            log(f"  FAILED: {timed_out}")
        return 0 if ok else 1
    finally:
        for p in procs:
            if p.popen.poll() is None:
                p.popen.kill()
                p.popen.wait()
        if not ok:
            for p in procs:
                text = tail(p.errlog)
                if text:
                    log(f"--- stderr of {p.name} ---\n{text}")
        if pg_started:
            subprocess.run(["bash", PG_SH, "stop", pgdir], capture_output=True)
        shutil.rmtree(logdir, ignore_errors=True)


def tail(path: str, n: int = 30) -> str:
    try:
        with open(path) as f:
            return "".join(f.readlines()[-n:]).rstrip()
    except OSError:
        return ""


def freeze_and_kill(db: DB, victims: list[Proc], queue: str, vt_ms: int, tl: Timeline, t0: float,
                    done: int, total: int) -> bool:
    """kill -9 the victims at a moment they hold leases, proven from the database: SIGSTOP them,
    wait until their leases expire and another worker reads one of those messages (a message
    read more than once appears), then SIGKILL. If no message is taken over within the
    visibility timeout (they held none), SIGCONT and try again, up to 3 times; then kill anyway.
    Returns whether the kill hit leases."""
    sql = (f"SELECT (SELECT count(*) FROM {SCHEMA}.q_{queue} WHERE read_ct > 1)"
           f" + (SELECT count(*) FROM {SCHEMA}.a_{queue} WHERE read_ct > 1)")
    names = ", ".join(v.name for v in victims)
    for attempt in range(1, 4):
        base = int(db.run(sql).strip())
        for v in victims:
            v.popen.send_signal(signal.SIGSTOP)
        hit = False
        until = time.monotonic() + vt_ms / 1000 + 2
        while not hit and time.monotonic() < until:
            time.sleep(0.2)
            hit = int(db.run(sql).strip()) > base
        if hit or attempt == 3:
            for v in victims:
                v.killed = True
                v.popen.send_signal(signal.SIGKILL)
                v.popen.wait()
            tl.add(t0, f"kill -9 {names} ({fmt(done)} of {fmt(total)} retired; stopped first, "
                   + ("its leases expired and other workers took them over" if hit else "it held no lease in 3 tries")
                   + (f"; try {attempt})" if attempt > 1 else ")"))
            return hit
        for v in victims:
            v.popen.send_signal(signal.SIGCONT)
        time.sleep(0.5)
    return False


def check_alive(procs: list[Proc]) -> None:
    for p in procs:
        rc = p.popen.poll()
        if rc is not None and not p.killed:
            raise Failure(f"worker {p.name} ended unexpectedly with status {rc}:\n{tail(p.errlog)}")


def verify(db: DB, queue: str, results_q: str, dlq: str) -> dict[str, Any]:
    """Every count the report and the verdict need, from the database, in one snapshot."""
    q, a, r, d = (f"{SCHEMA}.q_{queue}", f"{SCHEMA}.a_{queue}", f"{SCHEMA}.q_{results_q}", f"{SCHEMA}.q_{dlq}")
    sql = f"""
WITH res AS (
  SELECT (message->>'msg_id')::bigint AS msg_id, (message->>'read_ct')::int AS read_ct,
         message->>'queue' AS queue, message->'completion' AS c, enqueued_at
  FROM {r}),
per AS (SELECT msg_id, count(*) AS n FROM res GROUP BY msg_id),
who AS (
  SELECT coalesce(c->'result'->>'worker',
                  substring(c->'error'->>'message' from '\\[worker=([^]]+)\\]'),
                  '(source)') AS worker,
         c->>'status' AS status, read_ct
  FROM res),
lat AS (
  SELECT extract(epoch FROM res.enqueued_at - a.enqueued_at) * 1000 AS ms
  FROM res JOIN {a} a ON a.msg_id = res.msg_id)
SELECT json_build_object(
  'produced',      (SELECT count(*) FROM public.produced),
  'produced_bad',  (SELECT count(*) FROM public.produced WHERE NOT valid),
  'results',       (SELECT count(*) FROM res),
  'missing',       (SELECT count(*) FROM public.produced p WHERE NOT EXISTS (SELECT 1 FROM per WHERE per.msg_id = p.msg_id)),
  'duplicated',    (SELECT coalesce(sum(n - 1), 0) FROM per WHERE n > 1),
  'dup_ids',       (SELECT count(*) FROM per WHERE n > 1),
  'stray',         (SELECT count(*) FROM per WHERE NOT EXISTS (SELECT 1 FROM public.produced p WHERE p.msg_id = per.msg_id)),
  'not_archived',  (SELECT count(*) FROM public.produced p WHERE NOT EXISTS (SELECT 1 FROM {a} WHERE {a}.msg_id = p.msg_id)),
  'still_queued',  (SELECT count(*) FROM {q}),
  'wrong_queue',   (SELECT count(*) FROM res WHERE queue IS DISTINCT FROM '{queue}'),
  'lease_mismatch',(SELECT count(*) FROM res JOIN {a} a ON a.msg_id = res.msg_id WHERE a.read_ct <> res.read_ct),
  'dead_letters',  (SELECT count(*) FROM {d}),
  'bad_results',   (SELECT count(*) FROM res JOIN public.produced p USING (msg_id)
                    WHERE NOT p.valid AND c->'error'->>'error_type' = 'invalid_message'),
  'redelivered',   (SELECT count(*) FROM {a} WHERE read_ct > 1),
  'status',        (SELECT coalesce(json_object_agg(status, n), '{{}}') FROM (SELECT status, count(*) n FROM who GROUP BY 1) s),
  'workers',       (SELECT coalesce(json_object_agg(worker, json_build_object('steps', n, 'failed', f, 'redelivered', rd)), '{{}}')
                    FROM (SELECT worker, count(*) n, count(*) FILTER (WHERE status <> 'completed') f,
                                 count(*) FILTER (WHERE read_ct > 1) rd FROM who GROUP BY 1) w),
  'latency',       (SELECT json_build_object('p50', percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                                             'p90', percentile_cont(0.9) WITHIN GROUP (ORDER BY ms),
                                             'p99', percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),
                                             'max', max(ms)) FROM lat))
"""
    return db.value(sql)


def print_report(args: argparse.Namespace, rep: dict[str, Any], procs: list[Proc], tl: Timeline, queue: str) -> bool:
    produced, results = rep["produced"], rep["results"]
    missing, duplicated = rep["missing"], rep["duplicated"]
    problems, notes = [], []
    for key, what in (("stray", "results for a msg_id never produced"),
                      ("not_archived", "produced messages not in the archive"),
                      ("still_queued", f"messages still in q_{queue}"),
                      ("wrong_queue", "results naming another queue"),
                      ("lease_mismatch", "results whose read_ct is not the archived read_ct")):
        if rep[key]:
            problems.append(f"{fmt(rep[key])} {what}")
    if rep["dead_letters"] != rep["produced_bad"]:
        problems.append(f"{fmt(rep['dead_letters'])} dead letters for {fmt(rep['produced_bad'])} invalid messages")
    if rep["bad_results"] != rep["produced_bad"]:
        problems.append(f"{fmt(rep['bad_results'])} invalid_message results for {fmt(rep['produced_bad'])} invalid messages")
    if args.kill and not rep["kill_hit"]:
        # the victim happened to hold nothing each time it was stopped (a worker whose reader
        # waits on the database often holds no lease): not the library's fault, but then this
        # run did not prove redelivery after a crash; --require-kill-hit makes that a failure
        what = "the killed worker held no lease in 3 tries: this run did not exercise redelivery"
        (problems if args.require_kill_hit else notes).append(what)
    exact = missing == 0 and duplicated == 0 and results == produced and produced == args.messages + args.invalid
    ok = exact and not problems

    if args.title:
        log("")
        log(args.title)
    log("")
    log("timeline:")
    for e in tl.events:
        log("  " + e)
    if args.table:
        log("")
        hdr = f"  {'worker':<10} {'pid':>7}  {'steps done':>10} {'failed':>7} {'redelivered':>11} {'leases lost':>11}" \
              f" {'read':>8} {'released':>8}  end"
        log(hdr)
        log("  " + "-" * (len(hdr) - 2))
        for p in procs:
            w = rep["workers"].get(p.name, {"steps": 0, "failed": 0, "redelivered": 0})
            src = p.last.get("source", {})
            pre = "≥" if p.killed else ""  # a killed worker's last report is a lower bound
            end = "kill -9" if p.killed else f"exit {p.popen.returncode}"
            log(f"  {p.name:<10} {p.popen.pid:>7}  {fmt(w['steps']):>10} {fmt(w['failed']):>7} {fmt(w['redelivered']):>11}"
                f" {pre + fmt(src.get('source_lease_lost', 0)):>11} {pre + fmt(src.get('source_read', 0)):>8}"
                f" {pre + fmt(src.get('source_released', 0)):>8}  {end}")
        for name, w in sorted(rep["workers"].items()):
            if name == "(source)":  # results the source wrote itself: invalid and poisoned messages
                log(f"  {name:<10} {'':>7}  {fmt(w['steps']):>10} {fmt(w['failed']):>7} {fmt(w['redelivered']):>11}"
                    "                                dead letters")
        log("")
        log("  results per status: " + ", ".join(f"{k} {fmt(v)}" for k, v in sorted(rep["status"].items())))
        log(f"  dead letters: {fmt(rep['dead_letters'])}; messages read more than once: {fmt(rep['redelivered'])}")
        lat = rep["latency"]
        if lat and lat.get("p50") is not None:
            log("  end-to-end latency (enqueued -> result committed): " +
                ", ".join(f"{k} {lat[k]:.1f} ms" for k in ("p50", "p90", "p99", "max")))
        log(f"  throughput: {fmt(produced)} messages in {rep['elapsed']:.1f} s from the first insert ({produced / rep['elapsed']:,.0f}/s)")
    log("")
    verdict = "OK" if ok else "FAILED"
    log(f"exactly one result per message: {verdict} ({fmt(produced)} messages, {fmt(results)} results, "
        f"{fmt(missing)} missing, {fmt(duplicated)} duplicated)")
    if produced != args.messages + args.invalid:
        log(f"  FAILED: {fmt(produced)} messages produced, {fmt(args.messages + args.invalid)} intended")
    for pr in problems:
        log(f"  FAILED: {pr}")
    for nt in notes:
        log(f"  note: {nt}")
    return ok


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=3000, help="valid step messages to produce")
    ap.add_argument("--invalid", type=int, default=0, help="invalid messages to produce as well (dead letters)")
    ap.add_argument("--python", type=int, default=2, help="Python worker processes")
    ap.add_argument("--ruby", type=int, default=1, help="Ruby worker processes")
    ap.add_argument("--threads", type=int, default=4, help="threads per worker process")
    ap.add_argument("--kill", type=int, default=0, help="kill -9 this many workers (the first ones) part-way")
    ap.add_argument("--kill-at", type=float, default=0.3, help="... when this fraction of the messages is retired")
    ap.add_argument("--restart", action="store_true", help="restart PostgreSQL part-way")
    ap.add_argument("--restart-at", type=float, default=0.6, help="... when this fraction is retired")
    ap.add_argument("--layout", choices=("library", "pgmq"), default="library",
                    help="library: the workers create the queues; pgmq: made with plain SQL the way pgmq makes them")
    ap.add_argument("--rate", type=int, default=0, help="messages per second the producer inserts (0: all at once)")
    ap.add_argument("--sleep-ms", type=int, default=1, help="what each step's handler sleeps")
    ap.add_argument("--fail-every", type=int, default=50, help="every K-th step's handler raises (0: none)")
    ap.add_argument("--vt", type=int, default=3000, help="visibility_timeout_ms")
    ap.add_argument("--batch", type=int, default=20, help="batch_size")
    ap.add_argument("--poll-ms", type=int, default=200, help="poll_interval_ms")
    ap.add_argument("--timeout", type=float, default=120, help="seconds before the run counts as failed")
    ap.add_argument("--queue", default="steps")
    ap.add_argument("--table", action="store_true", help="print the per-worker table")
    ap.add_argument("--title", default="")
    ap.add_argument("--require-kill-hit", action="store_true",
                    help="fail when the killed worker held no lease (the run would not prove redelivery)")
    ap.add_argument("--progress", type=float, default=0, help="print the count retired every this many seconds")
    args = ap.parse_args(argv)
    if args.python + args.ruby < 1 or args.kill >= args.python + args.ruby:
        ap.error("need at least one worker, and one more than --kill")
    def on_term(*_: object) -> None:
        raise KeyboardInterrupt  # the same cleanup as Ctrl-C

    signal.signal(signal.SIGTERM, on_term)
    try:
        return run(args)
    except Failure as exc:
        log(f"\nFAILED: {exc}")
        return 1
    except KeyboardInterrupt:
        log("\ninterrupted: workers and server stopped")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
