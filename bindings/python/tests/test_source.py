"""A channel with a PostgreSQL source (docs/QUEUE.md), end to end from Python: a throwaway server
(tests/pg/pg.sh), steps inserted with plain SQL (psql), tasker.Worker running them, one result per
message in the results queue, nothing in the local completion stream.

Needs the PostgreSQL server binaries; skipped without them unless TASKER_PG_REQUIRED=1 (make test),
where a missing server is a failure."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import uuid

import tasker

from ._util import REPO_ROOT

PG_SH = os.path.join(REPO_ROOT, "tests", "pg", "pg.sh")


def _psql() -> str | None:
    found = shutil.which("psql")
    if found:
        return found
    for d in sorted(os.listdir("/usr/lib/postgresql"), reverse=True) if os.path.isdir("/usr/lib/postgresql") else []:
        p = os.path.join("/usr/lib/postgresql", d, "bin", "psql")
        if os.access(p, os.X_OK):
            return p
    return None


class SourceTest(unittest.TestCase):
    dir: str
    dsn: str
    psql: str

    @classmethod
    def setUpClass(cls) -> None:
        psql = _psql()
        if subprocess.run(["bash", PG_SH, "check"]).returncode != 0 or psql is None:
            if os.environ.get("TASKER_PG_REQUIRED") == "1":
                raise RuntimeError("PostgreSQL server binaries or psql not found and TASKER_PG_REQUIRED=1")
            raise unittest.SkipTest("PostgreSQL server binaries not installed")
        cls.psql = psql
        cls.dir = os.path.join(REPO_ROOT, "build", f"pgtest-py-{os.getpid()}")
        out = subprocess.run(["bash", PG_SH, "start", cls.dir, str(os.getpid())], capture_output=True, text=True, check=True)
        cls.dsn = out.stdout.strip()

    @classmethod
    def tearDownClass(cls) -> None:
        subprocess.run(["bash", PG_SH, "stop", cls.dir], check=False)

    def sql(self, query: str) -> str:
        res = subprocess.run([self.psql, self.dsn, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", query],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        return res.stdout.strip()

    def test_worker_runs_steps_from_a_queue(self) -> None:
        source = {"postgres": {"dsn": self.dsn, "queue": "py_orders", "poll_interval_ms": 100}}
        with tasker.Channel(source=source, max_concurrent_handlers=4) as ch:
            with tasker.Worker(ch, {"add": lambda ev: {"sum": ev.payload["a"] + 1}}, threads=3):
                deadline = time.monotonic() + 30
                while ch.stats()["source_state"] != "connected":
                    self.assertLess(time.monotonic(), deadline, ch.stats()["source_last_error"])
                    time.sleep(0.02)
                steps = [json.dumps({"task_uuid": str(uuid.uuid4()), "step_uuid": str(uuid.uuid4()),
                                     "handler": "add", "payload": {"a": i}}) for i in range(20)]
                values = ",".join("(now(), '%s'::jsonb)" % s for s in steps)
                self.sql(f"INSERT INTO pgmq.q_py_orders (vt, message) VALUES {values}")
                while ch.stats()["source_acked"] < 20:
                    self.assertLess(time.monotonic(), deadline, ch.stats())
                    time.sleep(0.02)
            stats = ch.stats()
            self.assertEqual(stats["undelivered"], 0)
            self.assertIsNone(ch.next_completion(timeout=0.05), "a source event reached the local stream")
        self.assertEqual(stats["source_read"], 20)
        self.assertEqual(stats["source_lease_lost"], 0)
        rows = self.sql("SELECT message FROM pgmq.q_py_orders_results").splitlines()
        results = [json.loads(r) for r in rows]
        self.assertEqual(len(results), 20)
        self.assertEqual(len({r["msg_id"] for r in results}), 20, "a message has two results")
        sums = sorted(r["completion"]["result"]["sum"] for r in results)
        self.assertEqual(sums, list(range(1, 21)))
        self.assertEqual(self.sql("SELECT count(*) FROM pgmq.q_py_orders"), "0")
        self.assertEqual(self.sql("SELECT count(*) FROM pgmq.a_py_orders"), "20")

    def wait_connected(self, ch: tasker.Channel) -> None:
        deadline = time.monotonic() + 30
        while ch.stats()["source_state"] != "connected":
            self.assertLess(time.monotonic(), deadline, ch.stats()["source_last_error"])
            time.sleep(0.02)

    def test_checkpoints_are_saved_in_the_message(self) -> None:
        """A handler returning tasker.Checkpoint on a source event: each run sees the checkpoint the
        last one saved, the archived message holds the last checkpoint, the one result counts them."""
        seen: list[int] = []

        def walk(ev: tasker.StepEvent) -> object:
            cp = ev.checkpoint
            n = 0 if cp is None else cp.cursor
            if cp is not None:
                # the row already holds the checkpoint this run starts from
                row = json.loads(self.sql("SELECT message->'checkpoint' FROM pgmq.q_py_walk WHERE message->>'handler' = 'walk'"))
                self.assertEqual((row["cursor"], row["count"]), (n, cp.count))
            seen.append(n)
            acc = [] if cp is None else cp.accumulated_results
            if n == 5:
                return {"sum": sum(acc)}
            return tasker.Checkpoint(cursor=n + 1, items_processed=n + 1, accumulated_results=acc + [n + 1])

        source = {"postgres": {"dsn": self.dsn, "queue": "py_walk", "poll_interval_ms": 100}}
        with tasker.Channel(source=source) as ch:
            with tasker.Worker(ch, {"walk": walk}, threads=2):
                self.wait_connected(ch)
                step = json.dumps({"task_uuid": str(uuid.uuid4()), "step_uuid": str(uuid.uuid4()), "handler": "walk"})
                self.sql(f"INSERT INTO pgmq.q_py_walk (vt, message) VALUES (now(), '{step}'::jsonb)")
                deadline = time.monotonic() + 30
                while ch.stats()["source_acked"] < 1:
                    self.assertLess(time.monotonic(), deadline, ch.stats())
                    time.sleep(0.02)
            self.assertEqual(ch.stats()["source_lease_lost"], 0)
        self.assertEqual(seen, [0, 1, 2, 3, 4, 5])
        results = [json.loads(r) for r in self.sql("SELECT message FROM pgmq.q_py_walk_results").splitlines()]
        self.assertEqual(len(results), 1)
        self.assertEqual(results[0]["completion"]["checkpoints"], 5)
        self.assertEqual(results[0]["completion"]["result"], {"sum": 15})
        archived = json.loads(self.sql("SELECT message->'checkpoint' FROM pgmq.a_py_walk"))
        self.assertEqual((archived["cursor"], archived["count"]), (5, 5))

    def test_dsn_from_tasker_config(self) -> None:
        """tasker_config + a source without dsn: the dsn comes from tasker-core's TOML, and
        config_sources says from where; without one anywhere the error names the key."""
        with tempfile.TemporaryDirectory() as d:
            good = os.path.join(d, "tasker.toml")
            with open(good, "w") as f:
                f.write(f'[common.database]\nurl = "{self.dsn}"\n[worker.event_systems.worker.processing]\nbatch_size = 7\n')
            with tasker.Channel(tasker_config={"path": good}, source={"postgres": {"queue": "py_toml"}}) as ch:
                self.wait_connected(ch)
                cs = ch.stats()["config_sources"]
                self.assertEqual(cs["source.postgres.dsn"], good + ":common.database.url")
                self.assertEqual(cs["source.postgres.batch_size"], good + ":worker.event_systems.worker.processing.batch_size")
                self.assertEqual(cs["source.postgres.queue"], "json")
                self.assertEqual(cs["source.postgres.schema"], "default")
            bad = os.path.join(d, "nourl.toml")
            with open(bad, "w") as f:
                f.write("[common.queues]\ndefault_visibility_timeout_seconds = 5\n")
            with self.assertRaises(tasker.InvalidArgument) as cm:
                tasker.Channel(tasker_config={"path": bad}, source={"postgres": {"queue": "py_toml"}})
            self.assertIn('"dsn"', str(cm.exception))
            self.assertIn("[common.database] url", str(cm.exception))

    def test_bad_source_config_names_the_key(self) -> None:
        with self.assertRaises(tasker.InvalidArgument) as cm:
            tasker.Channel(source={"postgres": {"dsn": self.dsn, "queue": "Bad-Name"}})
        self.assertIn('"queue"', str(cm.exception))


if __name__ == "__main__":
    unittest.main()
