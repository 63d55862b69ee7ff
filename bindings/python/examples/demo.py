#!/usr/bin/env python3
"""libtasker demo: 20,000 steps through a Channel, handled by a 4-thread Python Worker.

Handlers: "fast" (computes at once), "slow" (sleeps a few ms), "flaky" (raises), and "hang" (sleeps
past its 200 ms per-event timeout, so the library's reaper ends it as a timeout and the worker's late
complete is counted, not fatal). A producer thread dispatches, the main thread consumes completions
and draws a progress bar, then prints a summary and checks that every dispatched event got exactly
one completion (the exit status says whether it did).

Run from the repository root:  python3 bindings/python/examples/demo.py   (or: make demo)
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tasker  # noqa: E402
from tasker import Completion, StepEvent, timestamp_ns  # noqa: E402

TOTAL = 20_000
THREADS = 4
SLOW_SECONDS = 0.002
HANG_SECONDS = 0.4  # longer than HANG_TIMEOUT_MS + cleanup_interval_ms: always expires first
HANG_TIMEOUT_MS = 200
DEADLINE_SECONDS = 55.0  # a 'did not hang' limit, not a performance goal


# ---- handlers ----

class FlakyError(RuntimeError):
    retryable = False


def fast(ev: StepEvent) -> Any:
    n = ev.payload["n"]
    return {"square": n * n}


def slow(ev: StepEvent) -> Any:
    time.sleep(SLOW_SECONDS)
    return {"slept_ms": SLOW_SECONDS * 1000}


def flaky(ev: StepEvent) -> Any:
    raise FlakyError(f"step {ev.payload['n']} failed on purpose")


def hang(ev: StepEvent) -> Any:
    time.sleep(HANG_SECONDS)  # the event times out meanwhile; this result arrives late
    return {"too": "late"}


HANDLERS = {"fast": fast, "slow": slow, "flaky": flaky, "hang": hang}


def plan(i: int) -> str:
    if i % 1000 == 500:
        return "hang"  # 20, spread out so they never occupy every worker thread at once
    if i % 10 == 3:
        return "flaky"
    if i % 5 == 1:
        return "slow"
    return "fast"


# ---- progress ----

class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stdout.isatty()
        self.t0 = time.monotonic()
        self.last = 0.0

    def update(self, done: int, statuses: Counter[str], force: bool = False) -> None:
        now = time.monotonic()
        every = 0.1 if self.tty else 1.0
        if not force and now - self.last < every:
            return
        self.last = now
        elapsed = now - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        frac = done / self.total
        tail = (f"{done:>6,}/{self.total:,} {frac:6.1%}  {rate:7,.0f}/s  "
                f"ok {statuses['completed']:,} failed {statuses['failed']:,} timeout {statuses['timeout']:,}")
        if self.tty:
            width = 30
            filled = int(width * frac)
            full, empty = ("█", "░") if "utf" in (sys.stdout.encoding or "").lower() else ("#", "-")
            bar = full * filled + empty * (width - filled)
            sys.stdout.write(f"\r  [{bar}] {tail}  ")
            if force:
                sys.stdout.write("\n")
        else:
            sys.stdout.write(f"  progress {tail}  ({elapsed:.1f}s)\n")
        sys.stdout.flush()


# ---- report ----

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    print(f"\n{title}")
    line = "  " + "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))
    print(line)
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))


def main() -> int:
    ch = tasker.Channel(
        dispatch_buffer_size=500,
        completion_buffer_size=2000,
        max_concurrent_handlers=16,
        handler_timeout_ms=10_000,
        cleanup_interval_ms=100,
        worker_id="python-demo",
    )
    print(f"tasker demo: {TOTAL:,} steps, Python Worker with {THREADS} threads "
          f"({tasker.library_version()}, binding {tasker.__version__})")
    print(f"  handlers: fast, slow ({SLOW_SECONDS * 1000:g} ms), flaky (raises), "
          f"hang ({HANG_SECONDS * 1000:g} ms vs a {HANG_TIMEOUT_MS} ms timeout)")

    dispatched: list[str] = []
    producer_error: list[BaseException] = []

    def produce() -> None:
        try:
            for i in range(TOTAL):
                name = plan(i)
                if name == "hang":
                    eid = ch.dispatch(name, {"n": i}, timeout_ms=HANG_TIMEOUT_MS, wait=None)
                else:
                    eid = ch.dispatch(name, {"n": i}, wait=None)
                dispatched.append(eid)
        except BaseException as exc:  # noqa: BLE001
            producer_error.append(exc)

    worker = tasker.Worker(ch, HANDLERS, threads=THREADS)
    progress = Progress(TOTAL)
    seen: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    completions: list[Completion] = []
    t0 = time.monotonic()
    producer = threading.Thread(target=produce, name="producer", daemon=True)
    producer.start()
    worker.start()
    deadline = t0 + DEADLINE_SECONDS
    try:
        while len(completions) < TOTAL and time.monotonic() < deadline:
            if producer_error:
                break
            c = ch.next_completion(timeout=0.1)
            if c is not None:
                completions.append(c)
                seen[c.event_id] += 1
                statuses[c.status] += 1
            progress.update(len(completions), statuses)
        elapsed = time.monotonic() - t0
        progress.update(len(completions), statuses, force=True)
        producer.join(5)
        # Shut down: nothing should be left; anything that still arrives would be a duplicate.
        ch.shutdown(drain=2.0)
        worker.stop(timeout=5.0)
        for c in ch.completions(timeout=2.0):
            completions.append(c)
            seen[c.event_id] += 1
            statuses[c.status] += 1
        stats = ch.stats()
    except KeyboardInterrupt:
        print("\ninterrupted")
        worker.stop(timeout=2.0)
        ch.close()
        return 130
    finally:
        worker.stop(timeout=2.0)
    ch.close()

    # ---- summary ----
    by_status = [[s, f"{statuses[s]:,}", f"{statuses[s] / max(1, len(completions)):.1%}"]
                 for s in ("completed", "failed", "timeout", "cancelled")]
    by_status.append(["total", f"{len(completions):,}", ""])
    table("Completions by status", ["status", "count", "share"], by_status)

    per_handler: dict[str, Counter[str]] = {}
    errors: Counter[tuple[str, str]] = Counter()
    for c in completions:
        per_handler.setdefault(c.handler, Counter())[c.status] += 1
        if c.error is not None:
            errors[(c.status, c.error.error_type)] += 1
    table("By handler", ["handler", "completed", "failed", "timeout", "cancelled"],
          [[h] + [f"{cnt[s]:,}" for s in ("completed", "failed", "timeout", "cancelled")]
           for h, cnt in sorted(per_handler.items())])
    table("Error types", ["status / error_type", "count"],
          [[f"{s} / {t}", f"{n:,}"] for (s, t), n in sorted(errors.items())])

    queue_ms = [(timestamp_ns(c.polled_at) - timestamp_ns(c.dispatched_at)) / 1e6
                for c in completions if c.polled_at is not None]
    e2e_ms = [(timestamp_ns(c.completed_at) - timestamp_ns(c.dispatched_at)) / 1e6 for c in completions]
    exec_ms = [c.execution_time_ms for c in completions if c.execution_time_ms is not None]
    table(f"Throughput: {len(completions) / elapsed:,.0f} steps/s ({len(completions):,} completions in "
          f"{elapsed:.2f} s)\n\nLatency (ms)", ["", "p50", "p99", "max"],
          [[name, f"{pct(v, 0.5):.2f}", f"{pct(v, 0.99):.2f}", f"{max(v, default=float('nan')):.2f}"]
           for name, v in (("dispatch -> poll", queue_ms), ("end to end", e2e_ms),
                           ("execution (poll -> end)", exec_ms))])

    wc = worker.counts
    table("Worker", ["counter", "value"], [[k, f"{v:,}"] for k, v in wc.items()])

    keys = ["dispatched", "polled", "completed", "failed", "timed_out", "cancelled", "late_completions",
            "rejected_full", "queued", "pending", "undelivered", "delivered", "discarded",
            "oldest_pending_age_ms", "starvation_detected", "starving_event_count", "state", "worker_id"]
    keys += [k for k in stats if k not in keys]
    table("Channel stats (final)", ["stat", "value"], [[k, str(stats[k])] for k in keys])

    # ---- exactly once ----
    ids = set(dispatched)
    missing = [e for e in dispatched if seen[e] == 0]
    doubled = [e for e, n in seen.items() if n > 1]
    strangers = [e for e in seen if e not in ids]
    ok = (not producer_error and len(dispatched) == TOTAL and len(ids) == TOTAL and not missing
          and not doubled and not strangers and len(completions) == TOTAL
          and stats.get("dispatched") == TOTAL)
    print()
    if producer_error:
        print(f"producer failed: {producer_error[0]!r}")
    if worker.last_error is not None:
        print(f"worker error ({worker.counts['errors']}): {worker.last_error!r}")
    verdict = "OK" if ok else "FAILED"
    print(f"Exactly once: {verdict}: {len(dispatched):,} dispatched, {len(completions):,} completions, "
          f"{len(missing)} missing, {len(doubled)} duplicated, {len(strangers)} unknown")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except tasker.LibraryError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        sys.exit(2)
