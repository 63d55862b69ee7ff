"""The shared case table of bindings/spec/cases.json (bindings/SPEC.md), checked against the
Python binding. bindings/ruby/test/spec_test.rb checks the same table against the Ruby binding."""

from __future__ import annotations

import json
import math
import os
import sys
import time
import unittest
from typing import Any, Callable

import tasker
from tasker import _errors
from tasker.channel import _ms

from ._util import PKG_ROOT

CASES_PATH = os.path.join(PKG_ROOT, "..", "spec", "cases.json")
with open(CASES_PATH) as _f:
    CASES: dict[str, Any] = json.load(_f)


class SpecError(Exception):
    """The exception the table's "raise*" actions raise (error_type "SpecError")."""

    def __init__(self, message: str, *, retryable: bool = True, error_type: str | None = None,
                 unprintable: bool = False, bad_retryable: bool = False) -> None:
        super().__init__(message)
        self._retryable = retryable
        self._unprintable = unprintable
        self._bad_retryable = bad_retryable
        if error_type is not None:
            self.error_type = error_type

    def __str__(self) -> str:
        if self._unprintable:
            raise RuntimeError("__str__ is broken")
        return super().__str__()

    @property
    def retryable(self) -> bool:
        if self._bad_retryable:
            raise RuntimeError("retryable is broken")
        return self._retryable


class RaisingList(list):  # type: ignore[type-arg]
    def __iter__(self) -> Any:
        raise RuntimeError("this list cannot be iterated")


def build(value: Any) -> Any:
    """A table value with its {"$": name} placeholders made into Python objects."""
    if isinstance(value, dict):
        if "$" in value:
            name = value["$"]
            if name == "nan":
                return math.nan
            if name == "not_json":
                return {1, 2}
            if name == "basic_object":
                return object()
            if name == "cyclic":
                cyc: list[Any] = []
                cyc.append(cyc)
                return cyc
            if name == "raising_encoding":
                return RaisingList([1])
            if name == "string":
                return "x" * value["length"]
            raise AssertionError(f"unknown placeholder {name}")
        return {k: build(v) for k, v in value.items()}
    if isinstance(value, list):
        return [build(v) for v in value]
    return value


class SharedTableTest(unittest.TestCase):
    def test_exception_classes(self) -> None:
        for row in CASES["exceptions"]:
            cls = getattr(tasker, row["class"])
            self.assertIs(_errors.ERRORS[row["status"]], cls, row)
            self.assertIs(type(_errors.error_for(row["status"], "m")), cls)

    def test_counter_names(self) -> None:
        with tasker.Channel() as ch:
            w = tasker.Worker(ch, {})
            self.assertEqual(list(w.counts), CASES["counters"])
            self.assertEqual(list(tasker.worker.COUNTERS), CASES["counters"])

    def test_timeouts(self) -> None:
        for row in CASES["timeouts"]:
            self.assertEqual(_ms(row["seconds"]), row["ms"], row)
        self.assertEqual(tasker.channel.SLICE_MS, CASES["slice_ms"])

    def run_bad_input(self, case: dict[str, Any]) -> None:
        call, args = case["call"], build(case["args"])
        expected = getattr(tasker, case["raises"])
        if call == "new":
            with self.assertRaises(expected) as cm:
                tasker.Channel(**args["config"])
            self.check_error(cm.exception, case)
            return
        with tasker.Channel(**case.get("config", {})) as ch:
            eid = ch.dispatch("setup")
            if call in ("complete", "complete_raw", "fail", "checkpoint"):
                self.assertIsNotNone(ch.poll(1.0))
            before = ch.stats()
            calls: dict[str, Callable[[], object]] = {
                "poll": lambda: ch.poll(args["timeout"]),
                "poll_batch": lambda: ch.poll_batch(args["max"], args["timeout"]),
                "next_completion": lambda: ch.next_completion(args["timeout"]),
                "dispatch": lambda: ch.dispatch(
                    args["handler"], args.get("payload"),
                    **{k: v for k, v in args.items() if k not in ("handler", "payload")}),
                "shutdown": lambda: ch.shutdown(args["drain"]),
                "complete_raw": lambda: ch.complete_raw(eid, args["json"]),
                "complete": lambda: ch.complete(eid, args["result"]),
                "fail": lambda: ch.fail(eid, args["message"], metadata=args.get("metadata")),
                "checkpoint": lambda: ch.checkpoint(eid, build(args["cursor"]), args["items_processed"],
                                                    build(args.get("accumulated_results"))),
            }
            with self.assertRaises(expected) as cm:
                calls[call]()
            self.check_error(cm.exception, case)
            after = ch.stats()
            for key in ("dispatched", "queued", "pending", "completed", "failed", "state"):
                self.assertEqual(before[key], after[key], f"{case}: {key} changed")

    def check_error(self, exc: BaseException, case: dict[str, Any]) -> None:
        assert isinstance(exc, tasker.TaskerError)
        self.assertEqual(type(exc).__name__, case["raises"])
        status = next(r["status"] for r in CASES["exceptions"] if r["class"] == case["raises"])
        self.assertEqual(exc.status, status, case)
        if "message_includes" in case:
            self.assertIn(case["message_includes"], exc.message, case)

    def test_bad_inputs(self) -> None:
        for case in CASES["bad_inputs"]:
            with self.subTest(call=case["call"], args=json.dumps(case["args"])):
                self.run_bad_input(case)

    def test_worker_run(self) -> None:
        spec = CASES["worker_run"]
        cases = spec["cases"]
        with tasker.Channel(**spec["config"]) as ch:
            def handler(ev: tasker.StepEvent) -> Any:
                c = cases[ev.payload]
                action = c["action"]
                if action == "return":
                    return build(c["value"])
                if action == "raise":
                    raise SpecError(c["message"])
                if action == "raise_not_retryable":
                    raise SpecError(c["message"], retryable=False)
                if action == "raise_with_error_type":
                    raise SpecError(c["message"], error_type=c["error_type"])
                if action == "raise_unprintable":
                    raise SpecError("hidden", unprintable=True)
                if action == "raise_bad_retryable":
                    raise SpecError(c["message"], bad_retryable=True)
                if action == "exit":
                    sys.exit(3)
                if action == "sleep":
                    time.sleep(c["seconds"])
                    return "too late"
                if action == "checkpoint":
                    cp = ev.checkpoint
                    if cp is None:
                        return tasker.Checkpoint(cursor=build(c["cursor"]), items_processed=c["items_processed"],
                                                 accumulated_results=build(c.get("accumulated_results")))
                    return {"resumed_from": cp.cursor, "items_processed": cp.items_processed,
                            "accumulated_results": cp.accumulated_results, "count": cp.count}
                raise AssertionError(action)

            ids = []
            for i, c in enumerate(cases):
                name = "spec_nobody" if c["action"] == "unregistered" else "spec"
                ids.append(ch.dispatch(name, i, timeout_ms=c.get("timeout_ms")))
            expected = {k: 0 for k in CASES["counters"]}
            expected["polled"] = sum(c.get("polls", 1) for c in cases)
            for c in cases:
                for k in c["counts"]:
                    expected[k] += 1
            with tasker.Worker(ch, {"spec": handler}, threads=spec["threads"]) as w:
                got: dict[str, tasker.Completion] = {}
                deadline = time.monotonic() + 30
                while len(got) < len(ids) and time.monotonic() < deadline:
                    comp = ch.next_completion(0.2)
                    if comp is not None:
                        self.assertNotIn(comp.event_id, got)
                        got[comp.event_id] = comp
                while w.counts != expected and time.monotonic() < deadline:
                    time.sleep(0.02)  # the late result arrives after its timeout completion
            for c, eid in zip(cases, ids):
                with self.subTest(case=c["name"]):
                    self.assertIn(eid, got)
                    self.check_completion(got[eid], c["expect"])
            self.assertEqual(w.counts, expected)
            self.assertIsNone(w.last_error)

    def check_completion(self, comp: tasker.Completion, exp: dict[str, Any]) -> None:
        self.assertEqual(comp.status, exp["status"])
        if "checkpoints" in exp:
            self.assertEqual(comp.checkpoints, exp["checkpoints"])
        if "result" in exp:
            self.assertEqual(comp.result, exp["result"])
        if exp["status"] == "completed":
            self.assertIsNone(comp.error)
            return
        assert comp.error is not None
        self.assertEqual(comp.error.error_type, exp["error_type"], comp.error)
        self.assertEqual(comp.error.retryable, exp["retryable"], comp.error)
        if "message" in exp:
            self.assertEqual(comp.error.message, exp["message"])
        if "message_includes" in exp:
            self.assertIn(exp["message_includes"], comp.error.message)
        if exp["error_type"] in CASES["binding_error_types"]:
            self.assertEqual(CASES["binding_error_types"][exp["error_type"]], exp["retryable"])
        if exp["error_type"] == "SpecError" or "metadata_exception_ends_with" in exp:
            self.assertEqual(sorted(comp.metadata), CASES["failure_metadata_keys"])
            self.assertTrue(comp.metadata["exception"].endswith("SpecError"))
            bt = comp.metadata["backtrace"]
            self.assertTrue(0 < len(bt) <= CASES["backtrace_max_frames"], bt)
            self.assertTrue(all(isinstance(line, str) for line in bt))


if __name__ == "__main__":
    unittest.main()
