"""Checkpoints (ABI minor 1) and tasker_config, through the binding."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from typing import Any

import tasker
from tasker import _native

from ._util import REPO_ROOT


def take(ch: tasker.Channel, limit: float = 30.0) -> tasker.Completion:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        c = ch.next_completion(0.2)
        if c is not None:
            return c
    raise AssertionError("no completion within the limit")


class CheckpointTest(unittest.TestCase):
    def test_round_trip_1000_checkpoints_then_complete(self) -> None:
        """A handler walks a cursor over 1,000 items, one per run, checkpointing after each, and
        completes with a result built from accumulated_results."""
        n = 1000
        runs: list[int] = []

        def walk(ev: tasker.StepEvent) -> Any:
            cp = ev.checkpoint
            offset = 0 if cp is None else cp.cursor["offset"]
            acc = {"sum": 0, "seen": 0} if cp is None else cp.accumulated_results
            runs.append(offset)
            if cp is not None:
                self.assertEqual(cp.count, offset)  # one checkpoint per item so far
                self.assertEqual(cp.items_processed, offset)
            if offset == n:
                return {"total": acc["sum"], "items": acc["seen"]}
            item = ev.payload["items"][offset]
            acc = {"sum": acc["sum"] + item, "seen": acc["seen"] + 1}
            return tasker.Checkpoint(cursor={"offset": offset + 1}, items_processed=offset + 1, accumulated_results=acc)

        with tasker.Channel(handler_timeout_ms=10_000) as ch:
            items = list(range(1, n + 1))
            eid = ch.dispatch("walk", {"items": items})
            with tasker.Worker(ch, {"walk": walk}, threads=2) as w:
                comp = take(ch)
            self.assertEqual(comp.event_id, eid)
            self.assertEqual(comp.status, "completed")
            self.assertEqual(comp.result, {"total": sum(items), "items": n})
            self.assertEqual(comp.checkpoints, n)
            self.assertEqual(runs, list(range(n + 1)))
            counts = w.counts
            self.assertEqual((counts["polled"], counts["checkpointed"], counts["completed"]), (n + 1, n, 1))
            self.assertEqual(counts["failed"] + counts["late"] + counts["errors"], 0)
            self.assertIsNone(ch.next_completion(0))  # exactly one completion
            stats = ch.stats()
            self.assertEqual((stats["checkpoints"], stats["polled"], stats["dispatched"]), (n, n + 1, 1))

    def test_channel_checkpoint_and_event_checkpoint(self) -> None:
        with tasker.Channel(cleanup_interval_ms=0) as ch:
            eid = ch.dispatch("h", {"rows": 3})
            ev = ch.poll(1.0)
            assert ev is not None
            self.assertIsNone(ev.checkpoint)
            ch.checkpoint(ev.event_id, {"after": "row-1"}, 1, accumulated_results=[12345678901234567890])
            self.assertIsNone(ch.next_completion(0), "a checkpoint is not a completion")
            with self.assertRaises(tasker.EventNotPending):
                ch.checkpoint(eid, 1, 1)  # queued again, not pending
            with self.assertRaises(tasker.EventNotPending):
                ch.complete(eid, 1)
            ev = ch.poll(1.0)
            assert ev is not None and ev.checkpoint is not None
            self.assertEqual(ev.event_id, eid)
            self.assertEqual(ev.checkpoint, tasker.Checkpoint({"after": "row-1"}, 1, [12345678901234567890], 1))
            ch.checkpoint(eid, None, 2)
            ev = ch.poll(1.0)
            assert ev is not None and ev.checkpoint is not None
            self.assertEqual((ev.checkpoint.cursor, ev.checkpoint.accumulated_results, ev.checkpoint.count), (None, None, 2))
            ch.complete(eid, "done")
            comp = ch.next_completion(1.0)
            assert comp is not None
            self.assertEqual((comp.status, comp.checkpoints), ("completed", 2))
            with self.assertRaises(tasker.EventNotPending):
                ch.checkpoint(eid, 1, 1)

    def test_checkpoint_value_checks(self) -> None:
        for bad in (-1, 1.5, "3", True, None, 2**63):
            with self.subTest(items_processed=bad), self.assertRaises(tasker.InvalidArgument) as cm:
                tasker.Checkpoint(cursor=1, items_processed=bad)  # type: ignore[arg-type]
            self.assertIn("items_processed", cm.exception.message)

    def test_max_checkpoints_fails_the_step(self) -> None:
        with tasker.Channel(max_checkpoints=3, handler_timeout_ms=10_000) as ch:
            ch.dispatch("forever")
            with tasker.Worker(ch, {"forever": lambda ev: tasker.Checkpoint(cursor=0, items_processed=0)}) as w:
                comp = take(ch)
            assert comp.error is not None
            self.assertEqual((comp.status, comp.error.error_type, comp.error.retryable, comp.checkpoints),
                             ("failed", "too_many_checkpoints", False, 3))
            # the worker handed the library 4 checkpoints; the library ended the step at the 4th
            self.assertEqual((w.counts["polled"], w.counts["checkpointed"]), (4, 4))

    def test_library_without_checkpoints(self) -> None:
        """Against a library older than ABI minor 1: Channel.checkpoint raises LibraryError and the
        Worker fails the event with checkpoint_unsupported (not retryable)."""
        with tasker.Channel(handler_timeout_ms=10_000) as ch:
            lib = _native.load()
            real = lib.minor
            lib.minor = 0
            try:
                eid = ch.dispatch("h")
                self.assertIsNotNone(ch.poll(1.0))
                with self.assertRaises(tasker.LibraryError) as cm:
                    ch.checkpoint(eid, 1, 1)
                self.assertIn("1.1", cm.exception.message)
                ch.complete(eid, None)
                take(ch)
                ch.dispatch("h")
                with tasker.Worker(ch, {"h": lambda ev: tasker.Checkpoint(cursor=1, items_processed=1)}) as w:
                    comp = take(ch)
                assert comp.error is not None
                self.assertEqual((comp.status, comp.error.error_type, comp.error.retryable),
                                 ("failed", "checkpoint_unsupported", False))
                self.assertEqual(w.counts["checkpointed"], 0)
            finally:
                lib.minor = real
            # the library is at least the minor that added checkpoints (2 added the readiness descriptors)
            self.assertGreaterEqual(tasker.abi_minor(), _native.CHECKPOINT_MINOR)


OLD_LIBRARY_C = """
#include <stddef.h>
#include <stdint.h>
uint32_t tasker_abi_version(void) { return 1; }
const char *tasker_version(void) { return "libtasker 0.0.9 (abi 1)"; }
const char *tasker_strerror(int s) { (void)s; return "?"; }
size_t tasker_last_error(char *b, size_t c) { if (b && c) b[0] = 0; return 0; }
void tasker_free(void *p) { (void)p; }
int tasker_new(const char *c, uint64_t *o) { (void)c; *o = 1; return 0; }
int tasker_destroy(uint64_t h) { (void)h; return 0; }
int tasker_dispatch(uint64_t h, const char *e, size_t n, int32_t t, char *id) { (void)h; (void)e; (void)n; (void)t; (void)id; return 0; }
int tasker_poll(uint64_t h, int32_t t, char **e, size_t *n) { (void)h; (void)t; *e = 0; *n = 0; return 1; }
int tasker_poll_batch(uint64_t h, uint32_t m, int32_t t, char **e, size_t *n, uint32_t *c) { (void)h; (void)m; (void)t; *e = 0; *n = 0; *c = 0; return 1; }
int tasker_complete(uint64_t h, const char *i, const char *r, size_t n) { (void)h; (void)i; (void)r; (void)n; return 0; }
int tasker_cleanup_timeouts(uint64_t h, uint32_t *x) { (void)h; if (x) *x = 0; return 0; }
int tasker_next_completion(uint64_t h, int32_t t, char **c, size_t *n) { (void)h; (void)t; *c = 0; *n = 0; return 1; }
int tasker_shutdown(uint64_t h, int32_t d) { (void)h; (void)d; return 0; }
int tasker_stats(uint64_t h, char **s, size_t *n) { (void)h; *s = 0; *n = 0; return 0; }
"""


class OldLibraryTest(unittest.TestCase):
    @unittest.skipUnless(shutil.which("gcc"), "gcc builds the stand-in for an ABI 1.0 library")
    def test_a_library_older_than_the_binding_is_refused_with_what_it_lacks(self) -> None:
        """An ABI 1.0 library (no tasker_abi_minor, tasker_checkpoint or tasker_*_into, which this
        binding's poll and next_completion use) is refused when it is opened, with LibraryError naming
        the library, the first missing function and the fix, instead of an AttributeError or a call
        into a missing symbol. (Against a library whose minor is too low for one call, that call
        refuses: test_library_without_checkpoints above.)"""
        with tempfile.TemporaryDirectory() as d:
            src, so = os.path.join(d, "old.c"), os.path.join(d, "libtasker-old.so")
            with open(src, "w") as f:
                f.write(OLD_LIBRARY_C)
            subprocess.run(["gcc", "-shared", "-fPIC", "-o", so, src], check=True)
            with self.assertRaises(tasker.LibraryError) as cm:
                _native.Lib(ctypes.CDLL(so), so)
            self.assertIn(so, cm.exception.message)
            self.assertIn("lacks tasker_", cm.exception.message)
            self.assertIn("make build", cm.exception.message)


class TaskerConfigTest(unittest.TestCase):
    merged = os.path.join(REPO_ROOT, "internal", "tomlconfig", "testdata", "merged", "complete-worker.toml")

    def test_path_and_json_wins(self) -> None:
        with tasker.Channel(tasker_config={"path": self.merged}, dispatch_buffer_size=7) as ch:
            s = ch.stats()
            self.assertEqual((s["max_concurrent_handlers"], s["dispatch_buffer_size"]), (32, 7))
            self.assertEqual(s["config_sources"]["dispatch_buffer_size"], "json")
            self.assertEqual(s["config_sources"]["max_concurrent_handlers"],
                             self.merged + ":worker.mpsc_channels.handler_dispatch.max_concurrent_handlers")

    def test_env_follows_os_environ(self) -> None:
        """tasker_config="env" reads TASKER_CONFIG_PATH / _ROOT / TASKER_ENV as os.environ has them
        now (set after the library was loaded)."""
        tasker.load_library()
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "base"))
            os.makedirs(os.path.join(d, "environments", "test"))
            with open(os.path.join(d, "base", "worker.toml"), "w") as f:
                f.write("[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = 9\n")
            with open(os.path.join(d, "environments", "test", "worker.toml"), "w") as f:
                f.write('[worker.mpsc_channels.handler_dispatch]\nmax_concurrent_handlers = "${PY_T_HANDLERS:-5}"\n')
            saved = {k: os.environ.get(k) for k in ("TASKER_CONFIG_PATH", "TASKER_CONFIG_ROOT", "TASKER_ENV", "PY_T_HANDLERS")}
            try:
                os.environ.pop("TASKER_CONFIG_PATH", None)
                os.environ["TASKER_CONFIG_ROOT"] = d
                os.environ["TASKER_ENV"] = "test"
                os.environ["PY_T_HANDLERS"] = "6"
                with tasker.Channel(tasker_config="env") as ch:
                    self.assertEqual(ch.stats()["max_concurrent_handlers"], 6)
                os.environ.pop("TASKER_CONFIG_ROOT")
                with self.assertRaises(tasker.InvalidArgument) as cm:
                    tasker.Channel(tasker_config="env")
                self.assertIn("TASKER_CONFIG_ROOT", cm.exception.message)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v

    def test_bad_tasker_config(self) -> None:
        for bad in ("ENV", 5, {"file": "x"}, {"path": "/nonexistent/tasker.toml"}):
            with self.subTest(tasker_config=bad), self.assertRaises(tasker.InvalidArgument) as cm:
                tasker.Channel(tasker_config=bad)
            self.assertIn("tasker_config", cm.exception.message)


if __name__ == "__main__":
    unittest.main()
