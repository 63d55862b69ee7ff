"""Assemble `make bench` results: a table on the terminal, build/bench.json
and BENCHMARKS.md. Reads the JSON lines the benchmark programs printed and
the output of `go test -bench`. Reports only; asserts nothing."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys


def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def machine() -> dict:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "go": sh("go version"),
        "gcc": sh("gcc --version | head -1"),
        "python": platform.python_version(),
        "ruby": sh("ruby -e 'print RUBY_VERSION'"),
        "load_before": sh("cut -d' ' -f1-3 /proc/loadavg"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("gobench")
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--command", default="make bench")
    a = ap.parse_args()

    rows = [json.loads(l) for l in open(a.results) if l.strip().startswith("{")]

    def find(bench: str, **kw):
        for r in rows:
            if r.get("bench") == bench and all(r.get(k) == v for k, v in kw.items()):
                return r
        return None

    out: list[str] = []
    data: dict = {"machine": machine(), "command": a.command, "raw": rows}
    summary: dict = {}

    def table(title: str, header: list[str], body: list[list[str]]) -> None:
        out.append(f"### {title}\n")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" for _ in header) + "|")
        for b in body:
            out.append("| " + " | ".join(b) + " |")
        out.append("")

    f = lambda x, d=0: "n/a" if x is None else f"{x:,.{d}f}"

    # 1. floor
    floors = {lang: find(f"{lang}_floor") for lang in ("c", "py", "rb")}
    table("1. Floor: one no-op call into Go and back",
          ["from", "ns/call", "ns/call (3 args)"],
          [[name, f(r and r["ns_per_call"], 1), f(r and r["ns_per_call_args"], 1)]
           for name, r in (("C", floors["c"]), ("Python ctypes", floors["py"]), ("Ruby ffi", floors["rb"]))])
    summary["floor_ns"] = {k: v and v["ns_per_call_args"] for k, v in floors.items()}
    cf = floors["c"]
    if cf and "after_sleep_p50_us" in cf:
        out.append(f"A no-op call into Go from a C thread that slept 1 ms first: p50 {cf['after_sleep_p50_us']:.1f} µs, "
                   f"p99 {cf['after_sleep_p99_us']:.1f} µs (the Go runtime hands the thread a processor again). "
                   "Every wakeup of an idle worker or producer pays this before any work: it is the floor under "
                   "the latency figures of section 3.\n")

    # 2. round trip
    gojson = find("go_json_floor")
    go_ns = gojson["ns_per_op"] if gojson else None
    body = []
    rt_summary = []

    def add(label: str, eps: float | None, lang: str, lang_json_ns: float | None):
        fl = floors.get(lang)
        floor_ns = None
        if fl and go_ns is not None:
            floor_ns = 4 * fl["ns_per_call_args"] + go_ns + (lang_json_ns or 0)
        floor_eps = 1e9 / floor_ns if floor_ns else None
        ratio = eps / floor_eps if eps and floor_eps else None
        body.append([label, f(eps), f(floor_eps), f(ratio, 2) if ratio else "n/a",
                     "yes" if ratio and ratio >= 0.6 else "no"])
        rt_summary.append({"case": label, "events_per_s": eps, "work_floor_events_per_s": floor_eps, "ratio": ratio})

    for batch in (1, 64):
        r = find("c_roundtrip", batch=batch)
        add(f"C, {'poll' if batch == 1 else 'poll_batch(64)'}", r and r["events_per_s"], "c", None)
    for lang, name in (("py", "Python"), ("rb", "Ruby")):
        jf = find(f"{lang}_json_floor")
        for mode in ("decoded", "raw"):
            for batch in (1, 64):
                r = find(f"{lang}_roundtrip", mode=mode, batch=batch)
                add(f"{name}, {mode}, {'poll' if batch == 1 else 'poll_batch(64)'}",
                    r and r["events_per_s"], lang, jf["ns_per_op"] if (jf and mode == "decoded") else None)
    table("2. Round trip, one thread: dispatch + poll + complete + next_completion",
          ["case", "events/s", "work floor events/s", "ratio", ">= 0.6"], body)
    out.append(f"Work floor = 4 no-op crossings from that language + the Go JSON work "
               f"({f(go_ns)} ns/event: parse dispatch, build event, parse result, build completion, same codec)"
               " + for *decoded* cases that language's own JSON work (encode dispatch, decode event, encode result,"
               " decode completion).\n")
    lang_json = {lang: (find(f"{lang}_json_floor") or {}).get("ns_per_op") for lang in ("py", "rb")}
    out.append(f"JSON work per event: Go {f(go_ns)} ns, Python {f(lang_json['py'])} ns, Ruby {f(lang_json['rb'])} ns.\n")
    batch_ratio = []
    for lang, name in (("py", "Python"), ("rb", "Ruby")):
        for mode in ("decoded", "raw"):
            s, b = find(f"{lang}_roundtrip", mode=mode, batch=1), find(f"{lang}_roundtrip", mode=mode, batch=64)
            if s and b:
                batch_ratio.append(f"{name} {mode}: poll_batch(64) / poll = {b['events_per_s'] / s['events_per_s']:.2f}x")
    if batch_ratio:
        out.append("Batch vs single poll: " + "; ".join(batch_ratio) + ".\n")
    summary["roundtrip"] = rt_summary

    # 3. latency
    body = []
    for lang, name, target in (("c", "C", 100), ("py", "Python", 500), ("rb", "Ruby", 500)):
        blk, slp = find(f"{lang}_latency", mode="blocking"), find(f"{lang}_latency", mode="sleep10ms")
        if not blk:
            continue
        body.append([name, f(blk["p50_us"], 1), f(blk["p90_us"], 1), f(blk["p99_us"], 1), f(blk["max_us"], 1),
                     str(blk["samples"]),
                     f(slp and slp["p50_us"], 0), f(slp and slp["p99_us"], 0),
                     f(slp["p50_us"] / blk["p50_us"], 0) + "x" if slp else "n/a",
                     f"<= {target}: " + ("yes" if blk["p99_us"] <= target else "no")])
    table("3. Latency: dispatch -> poll returns (µs), idle worker",
          ["from", "blocking p50", "p90", "p99", "max", "samples", "poll(0)+sleep 10ms p50", "p99",
           "p50 ratio", "p99 target"], body)

    # 4. scaling
    body = [[str(r["threads"]), f(r["events_per_s"]), str(r["cores"])] for r in rows if r.get("bench") == "c_scaling"]
    table("4. Scaling: C round trips on one handle", ["threads", "events/s (total)", "cores"], body)

    # 5. memory, 6. cleanup
    m, c = find("c_memory"), find("c_cleanup")
    body = []
    if m:
        body += [[f"RSS growth over {m['round_trips']:,} round trips", f"{m['rss_growth_kb'] / 1024:.1f} MB",
                  f"< 5 MB: {'yes' if m['rss_growth_kb'] < 5 * 1024 else 'no'}"],
                 [f"RSS with {m['pending']:,} events pending", f"{m['rss_with_pending_kb'] / 1024:.1f} MB "
                  f"({m['bytes_per_pending_event']:,.0f} B/event over idle {m['rss_idle_kb'] / 1024:.1f} MB)", ""],
                 ["peak RSS (VmHWM)", f"{m['peak_rss_kb'] / 1024:.1f} MB", ""]]
    if c:
        body.append([f"tasker_cleanup_timeouts expiring {c['expired']:,} events", f"{c['ms']:.1f} ms",
                     f"< 100 ms: {'yes' if c['ms'] < 100 else 'no'}"])
    table("5-6. Memory and cleanup (C)", ["what", "figure", "target"], body)

    # 7. go bench
    gob = [l for l in open(a.gobench) if l.startswith("Benchmark")] if os.path.exists(a.gobench) else []
    out.append("### 7. Go core: go test -bench\n")
    out.append("```")
    out.extend(l.rstrip() for l in gob)
    out.append("```\n")
    data["go_bench"] = [l.rstrip() for l in gob]

    # 8. PostgreSQL source
    tp = [r for r in rows if r.get("bench") == "pg_throughput"]
    if tp:
        body, pg_summary = [], []
        def median(kind: str, procs: int):
            xs = sorted(r["msgs_per_s"] for r in tp if r["kind"] == kind and r["procs"] == procs)
            return (xs[len(xs) // 2], xs) if xs else (None, [])

        def span(xs: list) -> str:
            return f"{f(xs[len(xs) // 2])}" + (f" ({f(xs[0])}-{f(xs[-1])})" if len(xs) > 1 else "")

        for procs in sorted({r["procs"] for r in tp}):
            (sm, sxs), (fm, fxs) = median("source", procs), median("floor", procs)
            ratio = sm / fm if sm and fm else None
            body.append([str(procs), span(sxs) if sxs else "n/a", span(fxs) if fxs else "n/a",
                         f(ratio, 2) if ratio else "n/a", "yes" if ratio and ratio >= 0.8 else "no",
                         f(tp[0]["messages"]), str(len(sxs))])
            pg_summary.append({"procs": procs, "source_msgs_per_s": sm, "floor_msgs_per_s": fm, "ratio": ratio,
                               "source_runs": sxs, "floor_runs": fxs})
        table("8. PostgreSQL source: messages/s, C worker processes vs the raw SQL floor",
              ["worker processes", "source msgs/s, median (min-max)", "raw SQL floor msgs/s, median (min-max)",
               "ratio of medians", ">= 0.8", "messages per run", "runs"], body)
        out.append("Each run: N step messages inserted in one statement once every worker process is connected; the "
                   "time from that commit until all N are in `a_<queue>` (every result written). *source*: the C "
                   "worker (`tests/bench/pgworker.c`, 2 threads, `poll_batch(20)`, each event completed at once) "
                   "on libtasker's source, batch_size 20. *floor*: `tests/bench/pgsource floorworker`, a plain pgx "
                   "loop doing the same reads (the source's own statement, batch 20) and the same one-statement "
                   "acks (same result document size), one after the other, with no channel in between. The source "
                   "reads and acks on separate connections at once, which the plain loop does not: a ratio above 1 "
                   "is that overlap. Floor and source runs alternate (one of each per process count, repeated), so that both see the same machine; on a shared machine single runs vary by 2x, hence the medians.\n")
        summary["pg_throughput"] = pg_summary
        body = []
        for r in rows:
            if r.get("bench") == "pg_latency":
                what = "LISTEN/NOTIFY" if r["mode"] == "notify" else f"polling only (poll_interval_ms {r['poll_interval_ms']})"
                body.append([what, f(r["p50_ms"], 2), f(r["p90_ms"], 2), f(r["p99_ms"], 2), f(r["max_ms"], 2), str(r["samples"])])
        if body:
            table("8b. Wake-up latency: INSERT sent -> tasker_poll returns in the C worker (ms)",
                  ["wake-up by", "p50", "p90", "p99", "max", "samples"], body)
            out.append("One message at a time into an idle worker; the clock starts just before the INSERT (its commit "
                       "is included). Polling only: the queue without its notify trigger (as pgmq makes queues by default), "
                       "sends at random moments.\n")
        body = []
        for r in rows:
            if r.get("bench") == "pg_idle_cpu":
                body.append([{"c": "C (pgworker, 2 threads blocked in poll_batch)",
                              "python": "Python (tests/cluster/worker.py: tasker.Worker, 4 threads, stats line every 200 ms)"}
                             .get(r["worker"], r["worker"]), f"{r['cpu_seconds']:.2f} s", f"{r['seconds']:.1f} s",
                             f"{r['cpu_percent']:.2f} %"])
        sz = find("lib_size")
        if sz:
            body.append([f"build/libtasker.so size: {sz['before_commit']} (before the source) -> {sz['after_commit']}",
                         f"{sz['before_bytes'] / 1e6:.2f} MB -> {sz['after_bytes'] / 1e6:.2f} MB",
                         f"+{(sz['after_bytes'] - sz['before_bytes']) / 1e6:.2f} MB", ""])
        if body:
            table("8c. Idle worker process with a source (empty queue), and the library's size",
                  ["what", "CPU time / size", "over", "CPU"], body)
    data["summary"] = summary

    text = "\n".join(out)
    print("\n" + text)
    mc = data["machine"]
    md = (f"# Benchmarks\n\nThe latest `{a.command}` run. Reproduce with `make test && {a.command}` "
          f"(`make bench-quick` for a first look in under a minute).\n\n"
          f"Machine: {mc['cpu']}, {mc['cores']} cores, Linux {mc['kernel']}; {mc['go']}; {mc['gcc']}; "
          f"Python {mc['python']}; Ruby {mc['ruby']}. Run at {mc['date']}; load average before: {mc['load_before']}.\n\n"
          + text)
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump(data, fh, indent=2)
    with open(a.markdown, "w") as fh:
        fh.write(md)
    print(f"\nwrote {a.json} and {a.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
