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
import statistics
import subprocess
import sys


def sh(cmd: str) -> str:
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:
        return ""


def machine(run: dict, results: str) -> dict:
    """The header facts. ``run`` is run.sh's first row: when the run started and the load average
    just before its first benchmark (read at the end, it would be the run's own load). The run
    ended when its results file was last written."""
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "started": run.get("started") or "n/a",
        "ended": dt.datetime.fromtimestamp(os.path.getmtime(results), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "go": sh("go version"),
        "gcc": sh("gcc --version | head -1"),
        "python": platform.python_version(),
        "ruby": sh("ruby -e 'print RUBY_VERSION'"),
        "load_before": run.get("load_before") or "n/a",
    }


# section 2's row of the one-slot floor (tests/bench/floor/slot.go)
SLOT = "C, one-slot floor: the same four calls and JSON work, no channel (not the library)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("gobench")
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown", required=True)
    ap.add_argument("--command", default="make bench")
    a = ap.parse_args()

    rows = [json.loads(l) for l in open(a.results) if l.strip().startswith("{")]

    # figures run.sh measures once per round (sections 1 and 2, and section 3's blocking-wait rows with
    # their peers): the report uses their medians
    in_rounds = {"c_floor", "py_floor", "rb_floor", "go_json_floor", "c_roundtrip", "c_roundtrip_into", "c_slot_floor",
                 "py_json_floor", "rb_json_floor", "py_roundtrip", "rb_roundtrip",
                 "c_latency", "c_peer_latency", "py_latency", "py_peer_latency", "rb_latency", "rb_peer_latency",
                 "py_ffi_latency", "rb_ffi_latency"}

    def find(bench: str, **kw):
        hits = [r for r in rows if r.get("bench") == bench and all(r.get(k) == v for k, v in kw.items())]
        if not hits:
            return None
        if len(hits) == 1 or bench not in in_rounds:
            return hits[0]
        med = dict(hits[0])
        for k, v in hits[0].items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                med[k] = statistics.median(h[k] for h in hits if k in h)
        med["rounds"] = len(hits)
        return med

    out: list[str] = []
    data: dict = {"machine": machine(next((r for r in rows if r.get("bench") == "run"), {}), a.results), "command": a.command,
                  "raw": rows}
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
    pf = floors["py"]
    if pf and "ns_per_call_args_declared" in pf:
        out.append(f"Python's 3-argument call is made as the binding makes a round trip's calls: no argtypes, "
                   f"arguments made once ({pf['ns_per_call_args']:.1f} ns); declared with argtypes, ctypes converts "
                   f"each argument: {pf['ns_per_call_args_declared']:.1f} ns.\n")
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
                     "(a floor, not a target)" if label == SLOT else "yes" if ratio and ratio >= 0.6 else "no"])
        rt_summary.append({"case": label, "events_per_s": eps, "work_floor_events_per_s": floor_eps, "ratio": ratio})

    for batch in (1, 64):
        r = find("c_roundtrip", batch=batch)
        add(f"C, {'poll' if batch == 1 else 'poll_batch(64)'}", r and r["events_per_s"], "c", None)
    r = find("c_roundtrip_into")
    if r:
        add("C, poll_into + next_completion_into", r["events_per_s"], "c", None)
    slot = find("c_slot_floor")
    if slot:
        add(SLOT, slot["events_per_s"], "c", None)
    for lang, name in (("py", "Python"), ("rb", "Ruby")):
        jf = find(f"{lang}_json_floor")
        for mode in ("decoded", "raw"):
            for batch in (1, 64):
                r = find(f"{lang}_roundtrip", mode=mode, batch=batch)
                add(f"{name}, {mode}, {'poll' if batch == 1 else 'poll_batch(64)'}",
                    r and r["events_per_s"], lang, jf["ns_per_op"] if (jf and mode == "decoded") else None)
        r = find(f"{lang}_roundtrip", mode="bare", batch=1)
        if r:
            add(f"{name}, the four calls made bare (no binding)", r["events_per_s"], lang, None)
    table("2. Round trip, one thread: dispatch + poll + complete + next_completion",
          ["case", "events/s", "work floor events/s", "ratio", ">= 0.6"], body)
    rounds = (find("c_roundtrip", batch=1) or {}).get("rounds", 1)
    if rounds > 1:
        out.append(f"Sections 1 and 2 ran {rounds} times, one round after the other, each language's floor right "
                   "beside its round trips; every figure in them is the median of its rounds (so are the "
                   "blocking-wait latency rows of section 3 and their own-queue peers).\n")
    if slot:
        out.append("The one-slot floor (tests/bench/floor/slot.go, `floor slot N`) makes the C round trip's four "
                   "calls (as `bench roundtrip_into`) with the library's JSON work and codec, but keeps the event "
                   "in one slot where the library has its channel: no queue, lock, id map, pending list, deadline "
                   "heap, stats, handle lookup or error bookkeeping. It is what four calls doing this work cost "
                   "at least; the library's time beyond it is its channel's and export layer's own.\n")
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

    # 2b. the peers' round trip
    body = []
    for lang, name, peer_name in (("c", "C", "mutex+condvar"), ("py", "Python", "queue.Queue"),
                                  ("rb", "Ruby", "Thread::Queue")):
        peer = find(f"{lang}_peer_roundtrip")
        mine = find("c_roundtrip", batch=1) if lang == "c" else find(f"{lang}_roundtrip", mode="raw", batch=1)
        if not peer or not mine:
            continue
        body.append([f"{name}, raw poll vs {peer_name}", f(mine["events_per_s"]), f(peer["events_per_s"]),
                     f(mine["events_per_s"] / peer["events_per_s"], 3)])
    if body:
        table("2b. Round trip beside the language's own queue (one thread, same documents)",
              ["case", "libtasker events/s", "own queue events/s", "libtasker / own queue"], body)
        out.append("The own queue moves the documents and nothing else (no parsing, ids, bounds or timeouts): "
                   "it shows what the dispatch machinery costs, not a target.\n")

    # 2d. the bindings' breakdown
    pyb, rbb = find("py_breakdown"), find("rb_breakdown")
    if pyb or rbb:
        keys = []
        for r in (pyb, rbb):
            for k in (r or {}).get("ns", {}):
                if k not in keys:
                    keys.append(k)
        body = [[k, f((pyb or {}).get("ns", {}).get(k), 0), f((rbb or {}).get("ns", {}).get(k), 0)] for k in keys]
        table("2c. Where a binding's raw round trip goes (ns per event, phases of 1,000 events)",
              ["step", "Python", "Ruby"], body)
        out.append("The first four rows are the binding's raw methods; the bare rows make the same library call "
                   "directly (ctypes / ffi, as the binding makes it); the rest time one ingredient "
                   "alone. Method minus bare call = the binding's own work.\n")
        summary["breakdown"] = {"py": pyb and pyb["ns"], "rb": rbb and rbb["ns"]}

    # 2c. instruction counts
    cgs = {r["what"]: r for r in rows if r.get("bench") == "callgrind"}
    if cgs:
        def ir(w):
            r = cgs.get(w)
            return r and r["ir_per_event"]
        go_json = None
        ga, gb = cgs.get("go_json_a"), cgs.get("go_json_b")
        if ga and gb and gb["events"] > ga["events"]:
            go_json = (gb["ir"] - ga["ir"]) / ((gb["events"] - ga["events"]) * 1.1)  # each run warms up with 10% more
        body = [["C round trip (dispatch + poll + complete + next_completion)", f(ir("c_all"))],
                ["C round trip with poll_into + next_completion_into", f(ir("c_into"))],
                ["C round trip with poll_batch(64), per event", f(ir("c_batch"))],
                ["  of which tasker_dispatch", f(ir("c_dispatch"))],
                ["  of which tasker_poll + tasker_free", f(ir("c_poll"))],
                ["  of which tasker_complete", f(ir("c_complete"))],
                ["  of which tasker_next_completion + tasker_free", f(ir("c_next"))],
                ["one-slot floor: the four calls with one event slot, no channel", f(ir("c_slot"))],
                ["one no-op crossing C -> Go -> C", f(ir("c_crossing"))],
                ["Go JSON work of one event (gofloor)", f(go_json)],
                ["work floor: 4 crossings + Go JSON work",
                 f(4 * ir("c_crossing") + go_json) if ir("c_crossing") and go_json else "n/a"],
                ["C mutex+condvar queue round trip (the peer)", f(ir("c_peer"))]]
        ci, cs = cgs.get("c_into_cache"), cgs.get("c_slot_cache")
        if ci and cs and "i1mr_per_event" in ci and "i1mr_per_event" in cs:
            kb = ci["i1_bytes"] // 1024
            body += [[f"L1 instruction-cache misses per event, poll_into round trip (simulated {kb} KB cache)",
                      f(ci["i1mr_per_event"])],
                     [f"L1 instruction-cache misses per event, one-slot floor (simulated {kb} KB cache)",
                      f(cs["i1mr_per_event"])]]
        for lang, name in (("py", "Python"), ("rb", "Ruby")):
            ra, rb_ = cgs.get(f"{lang}_raw_a"), cgs.get(f"{lang}_raw_b")
            if ra and rb_ and rb_["events"] > ra["events"]:
                per = (rb_["ir"] - ra["ir"]) / ((rb_["events"] - ra["events"]) * 1.1)
                body.append([f"{name} raw round trip through the binding (whole process, difference of two runs)",
                             f(per)])
                summary.setdefault("binding_instructions", {})[lang] = per
        table("2d. Instructions per event (valgrind --tool=callgrind, C)", ["what", "instructions"], body)
        if ir("c_all") and ir("c_crossing") and go_json:
            fl = 4 * ir("c_crossing") + go_json
            out.append(f"Work floor / round trip in instructions: {fl / ir('c_all'):.2f}. "
                       "Counts do not move with machine load: judge a change by them on a busy machine.\n")
        if ir("c_into") and ir("c_slot"):
            out.append(f"One-slot floor / the same round trip through the library (poll_into): "
                       f"{ir('c_slot') / ir('c_into'):.2f} in instructions; the channel and export layer add "
                       f"{ir('c_into') - ir('c_slot'):,.0f} per event. (The work floor is counted differently, "
                       "as the difference of two whole gofloor runs, GC included; the one-slot floor is counted "
                       "like the library, between the marks.)\n")
        if ci and cs and "i1mr_per_event" in ci and "i1mr_per_event" in cs:
            out.append(f"The instruction-cache rows are callgrind's simulation (--cache-sim=yes) of this machine's "
                       f"L1i: the code a round trip runs no longer fits it, so much of it is fetched again for "
                       f"every event; the library misses {ci['i1mr_per_event'] / cs['i1mr_per_event']:.1f}x as "
                       "often as the one-slot floor, which is why it takes more time beyond that floor than its "
                       "instructions alone explain (tests/bench/NOTES.md, 34).\n")
        summary["instructions"] = {k: v["ir_per_event"] for k, v in cgs.items()} | {"go_json": go_json}
    split = find("callgrind_split")
    if split:
        gap = split["library_per_event"] - split["slot_per_event"]
        body = [[g, f(v), f"{v / gap:.0%}" if gap else "n/a"] for g, v in split["groups"].items()]
        body.append(["library minus one-slot floor, all groups", f(gap), "100%"])
        table("2e. Where the library's instructions beyond the one-slot floor go (C, poll_into round trip, "
              "per event)", ["group of functions", "instructions", "share"], body)
        out.append("tests/bench/cgsplit.py puts each function's own instructions (callgrind, the library built "
                   "with its symbols) in one group and subtracts the one-slot floor's, group by group (the "
                   "floor's exported functions count as its export layer). Each group but \"other\" pays for "
                   "rules of the ABI the one-slot floor does not keep: ids, wake-ups of waiting threads, "
                   "finding an event by id, bounded queues with deadlines, stats, a handle that may be "
                   "destroyed, a fork check, a per-thread last error, a panic that must not cross into C.\n")
        into = find("c_roundtrip_into")
        fl = floors.get("c")
        if into and fl and go_ns is not None:
            floor_eps = 1e9 / (4 * fl["ns_per_call_args"] + go_ns)
            ns_now, ns_goal = 1e9 / into["events_per_s"], 1e9 / (0.6 * floor_eps)
            if ns_now > ns_goal:
                per_ir = ns_now / split["library_per_event"]
                need = (ns_now - ns_goal) / per_ir
                own = {g: v for g, v in split["groups"].items() if not g.startswith("other")}
                big = max(own, key=own.get) if own else None
                than = (f"more than any one group holds (the largest: {big}, {f(own[big])})"
                        if big and need > own[big] else f"as much as the group \"{big}\" holds" if big else "")
                out.append(f"To reach 0.6x the work floor this run's poll_into round trip ({ns_now:,.0f} ns) must "
                           f"lose {ns_now - ns_goal:,.0f} ns: at its average {per_ir * 1000:.0f} ps per "
                           f"instruction, about {need:,.0f} instructions, {need / gap:.0%} of all the library "
                           f"adds to the one-slot floor; {than}.\n")
        summary["instruction_split"] = split

    # 3. latency, beside each language's own queue (the peer) measured in the same run
    body = []
    lat_summary = []
    for lang, name, peer_name, mode in (("c", "C", "mutex+condvar", "blocking"),
                                        ("py", "Python", "queue.Queue", "blocking"),
                                        ("rb", "Ruby", "Thread::Queue", "blocking"),
                                        ("c", "C, 1 ms idle", "mutex+condvar", "blocking_gap1000us"),
                                        ("c", "C, 1 ms idle, one CPU", "mutex+condvar", "blocking_gap1000us_onecpu")):
        main = mode == "blocking"
        blk = find(f"{lang}_latency", mode=mode)
        slp = find(f"{lang}_latency", mode="sleep10ms") if main else None
        peer = find(f"{lang}_peer_latency", mode=mode)
        fdl = find(f"{lang}_latency", mode="fd") if main else None
        if not blk:
            continue
        r50 = blk["p50_us"] / peer["p50_us"] if peer else None
        r99 = blk["p99_us"] / peer["p99_us"] if peer else None
        met = r50 is not None and r50 <= 1.5 and r99 <= 1.5
        ffi = find(f"{lang}_ffi_latency") if main else None
        bare = find(f"{lang}_latency", mode="bare") if main else None
        rel = find(f"{lang}_latency", mode="bare_release") if main else None
        body.append([name, f(blk["p50_us"], 1), f(blk["p90_us"], 1), f(blk["p99_us"], 1), f(blk["max_us"], 1),
                     f"{peer_name}: " + (f"{peer['p50_us']:.1f} / {peer['p99_us']:.1f}" if peer else "n/a"),
                     f(r50, 2), f(r99, 2), "yes" if met else "no",
                     f"{bare['p50_us']:.1f} / {bare['p99_us']:.1f}" if bare else "n/a",
                     f"{ffi['p50_us']:.1f} / {ffi['p99_us']:.1f}" if ffi else "n/a",
                     f(slp and slp["p50_us"], 0),
                     f(fdl and fdl["p50_us"], 1), f(fdl and fdl["p99_us"], 1), str(blk["samples"])])
        if not main:
            continue  # the targets are judged on the protocol of issue 14 (the main rows)
        lat_summary.append({"lang": lang, "p50_us": blk["p50_us"], "p99_us": blk["p99_us"],
                            "peer_p50_us": peer and peer["p50_us"], "peer_p99_us": peer and peer["p99_us"],
                            "ffi_p50_us": ffi and ffi["p50_us"], "ffi_p99_us": ffi and ffi["p99_us"],
                            "bare_p50_us": bare and bare["p50_us"], "bare_p99_us": bare and bare["p99_us"],
                            "bare_release_p50_us": rel and rel["p50_us"], "bare_release_p99_us": rel and rel["p99_us"],
                            "ratio_p50": r50, "ratio_p99": r99})
    pp, ppp = find("c_pingpong"), find("c_peer_pingpong")
    if pp:
        out.append(f"Blocking ping-pong (C, two threads, each waits in the library for the other: dispatch + "
                   f"next_completion(-1) against poll(-1) + complete): {f(pp['events_per_s'])} events/s; "
                   f"mutex+condvar: {f(ppp and ppp['events_per_s'])} events/s"
                   + (f" (ratio {pp['events_per_s'] / ppp['events_per_s']:.2f})" if ppp else "") + ".\n")
        summary["pingpong"] = {"c": pp["events_per_s"], "peer": ppp and ppp["events_per_s"]}
    table("3. Latency: dispatch -> poll returns (µs), idle worker, beside the language's own queue",
          ["from", "p50", "p90", "p99", "max", "own queue p50 / p99", "ratio p50", "ratio p99",
           "both <= 1.5", "library calls made bare p50 / p99", "C condvar through the FFI p50 / p99", "poll(0)+sleep 10ms p50", "readiness fd p50", "fd p99", "samples"], body)
    out.append("Own queue: the same protocol (one event at a time, the worker blocked when it comes, "
               "the same documents) through what a user of that language would otherwise use between threads. "
               "The producer sleeps 50 µs (C) or 200 µs (Python, Ruby) between events; the rows '1 ms idle' sleep "
               "1 ms, so that the other CPU has gone idle when the event comes, and 'one CPU' runs that on CPU 0 "
               "alone (BENCH_ONE_CPU=1): what a wake-up costs depends on where the kernel puts the woken thread. "
               "Ratio = libtasker / own queue, from the same run. Library calls made bare (Python, Ruby): the "
               "same protocol with the library functions the binding calls, called directly (the binding's own "
               "work taken out). C condvar through the FFI (Python, Ruby): "
               "the same protocol through a mutex and condvar in a small C library (tests/bench/wakefloor.c, no Go, "
               "no documents), the waits called with the GIL/GVL released and the post keeping it, as the bindings "
               "call libtasker: the wake-up floor of any library that waits in native code, measured in the same "
               "rounds. Readiness fd: the idle worker waits on "
               "tasker_event_fd (C: poll(2); Python: tasker.aio.AsyncChannel on an asyncio loop; Ruby: a fiber "
               "in an Async reactor), then takes the event with a zero-timeout poll.\n")
    summary["latency"] = lat_summary

    # 3b. where the latency goes: fields the latency modes add (bench.c, bench.py, bench.rb)
    body = []
    for lang, name, mode in (("c", "C", "blocking"), ("c", "C, readiness fd", "fd"),
                             ("c", "C, 1 ms idle", "blocking_gap1000us"),
                             ("py", "Python", "blocking"), ("py", "Python, calls made bare", "bare"),
                             ("rb", "Ruby", "blocking"), ("rb", "Ruby, calls made bare", "bare"),
                             ("rb", "Ruby, calls made bare, dispatch without the GVL", "bare_release")):
        r = find(f"{lang}_latency", mode=mode)
        if not r or "dispatch_p50_us" not in r:
            continue
        wake = r.get("fd_wake_p50_us", -1)
        body.append([name, f(r["p50_us"], 1), f(r["dispatch_p50_us"], 1), f(r["dispatch_p99_us"], 1),
                     f(r.get("after_dispatch_p50_us"), 1), f(r.get("after_dispatch_p99_us"), 1),
                     f(r.get("same_cpu_pct"), 0), f(wake, 1) if wake >= 0 else "n/a"])
    if body:
        table("3b. Where the idle-worker latency goes (µs; same runs as section 3)",
              ["from", "latency p50", "dispatch call p50", "dispatch call p99", "worker back after the dispatch returned p50",
               "p99", "worker on the producer's CPU %", "fd: poll(2) returns p50"], body)
        out.append("The dispatch call: from the producer's clock reading before tasker_dispatch (dispatch_raw) to its "
                   "return; the woken worker may already have returned (C: it mostly runs on the producer's CPU and "
                   "preempts it, so the latency is shorter than the call). Python and Ruby: the worker's poll returns "
                   "that long after the producer's dispatch did, having waited for the GIL/GVL the producer holds until "
                   "it enters its next waiting call. fd: when the C worker's poll(2) on tasker_event_fd returned. "
                   "Ruby, dispatch without the GVL: the bare calls, but tasker_dispatch made through the gem's "
                   "binding that releases the GVL (the document copied to native memory first), so that the worker "
                   "the library wakes during the call can take the GVL at once; the producer then waits in "
                   "next_completion straight away, as the own queue's producer does in pop.\n")

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

    # 7. checkpoint vs complete
    body = []
    for r in rows:
        if r.get("bench") in ("c_checkpoint", "py_checkpoint"):
            who = "C" if r["bench"] == "c_checkpoint" else f"Python ({r['mode']})"
            body.append([who, f(r["complete_round_trip_us"], 2), f(r["checkpoint_round_trip_us"], 2),
                         f"{r['ratio']:.2f}", f"{r['events']:,}"])
    table("7. Checkpoint round trip (poll + checkpoint) vs complete round trip "
          "(dispatch + poll + complete + next_completion), µs, one thread",
          ["from", "complete round trip", "checkpoint round trip", "ratio", "events each"], body)

    # 8. go bench
    gob = [l for l in open(a.gobench) if l.startswith("Benchmark")] if os.path.exists(a.gobench) else []
    out.append("### 8. Go core: go test -bench\n")
    out.append("```")
    out.extend(l.rstrip() for l in gob)
    out.append("```\n")
    data["go_bench"] = [l.rstrip() for l in gob]

    # 9. PostgreSQL source
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
        table("9. PostgreSQL source: messages/s, C worker processes vs the raw SQL floor",
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
            table("9b. Wake-up latency: INSERT sent -> tasker_poll returns in the C worker (ms)",
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
            table("9c. Idle worker process with a source (empty queue), and the library's size",
                  ["what", "CPU time / size", "over", "CPU"], body)
    data["summary"] = summary

    # the targets of issue 14, from this run
    tgt = []
    for r in summary.get("latency", []):
        name = {"c": "C", "py": "Python", "rb": "Ruby"}[r["lang"]]
        for q in ("p50", "p99"):
            ratio = r[f"ratio_{q}"]
            verdict = "met" if ratio is not None and ratio <= 1.5 else "not met"
            cf = floors["c"]
            if verdict == "not met" and ratio and cf and f"after_sleep_{q}_us" in cf:
                # what no change in the library removes: the wake-up through the language's foreign-call
                # layer (the C condvar called the same way, where measured; else the own queue) plus the
                # one entry into Go that the producer's dispatch makes after its thread slept
                go, peer_q = cf[f"after_sleep_{q}_us"], r[f"peer_{q}_us"]
                ffi_q, bare_q = r.get(f"ffi_{q}_us"), r.get(f"bare_{q}_us")
                fl = (ffi_q or peer_q) + go
                base = (f"the wake-up through the FFI alone, a C condvar, {ffi_q:.1f} µs = {ffi_q / peer_q:.2f}x "
                        f"own queue; with one call into Go after a sleep, {go:.1f} µs:" if ffi_q
                        else "own queue + one call into Go after a sleep =")
                verdict += (f" (floor: {base} {fl:.1f} µs = {fl / peer_q:.2f}x; measured/floor {r[f'{q}_us'] / fl:.2f}"
                            + (f"; the library's calls made bare {bare_q:.1f} µs" if bare_q else "")
                            + (f"; made bare with dispatch releasing the GVL {r[f'bare_release_{q}_us']:.1f} µs = "
                               f"{r[f'bare_release_{q}_us'] / peer_q:.2f}x own queue (3b)"
                               if r.get(f"bare_release_{q}_us") else "") + ")")
            tgt.append([f"idle-worker latency {q}, {name}: <= 1.5x own queue",
                        f"{r[f'{q}_us']:.1f} / {r[f'peer_{q}_us']:.1f} µs = {ratio:.2f}x" if ratio else "n/a",
                        verdict])
    # what a binding could reach at best: the four library calls made bare, as the binding makes them,
    # in the same loop (section 2, same run), against the same work floor
    bare = {r["case"].split(",")[0]: r for r in summary.get("roundtrip", []) if "made bare" in r["case"]}
    slot_row = next((r for r in summary.get("roundtrip", []) if r["case"] == SLOT), None)
    for r in summary.get("roundtrip", []):
        if "decoded" in r["case"] or "made bare" in r["case"] or r["case"] == SLOT:
            continue
        ratio = r["ratio"]
        verdict = "met" if ratio and ratio >= 0.6 else "not met"
        b = bare.get(r["case"].split(",")[0])
        if verdict == "not met" and b and b["ratio"] and r["case"].endswith(", raw, poll"):
            verdict += (f" (the four calls made bare, no binding: {b['events_per_s']:,.0f}/s = {b['ratio']:.2f}x "
                        f"the floor; the binding reaches {ratio / b['ratio']:.0%} of that")
            c_into = find("c_roundtrip_into")
            if slot_row and slot_row["events_per_s"] and c_into and b["work_floor_events_per_s"]:
                # the same bare calls if the library behind them cost no more than the one-slot floor: the
                # language's calls (bare minus the C round trip through the library) plus the one-slot floor
                ns = 1e9 / b["events_per_s"] - 1e9 / c_into["events_per_s"] + 1e9 / slot_row["events_per_s"]
                verdict += (f"; the same calls on a library that cost no more than the one-slot floor, an estimate: "
                            f"{ns / 1e3:.2f} µs = {1e9 / ns / b['work_floor_events_per_s']:.2f}x the floor")
            verdict += ")"
        if verdict == "not met" and slot_row and slot_row["ratio"] and r["case"].startswith("C,") and ratio:
            # the four calls with no channel behind them: what any library making them reaches at best
            verdict += (f" (one-slot floor, the same four calls and JSON work with no channel: "
                        f"{slot_row['events_per_s']:,.0f}/s = {slot_row['ratio']:.2f}x the work floor; the library "
                        f"reaches {ratio / slot_row['ratio']:.0%} of that, its channel and export layer adding "
                        f"{(1 / r['events_per_s'] - 1 / slot_row['events_per_s']) * 1e6:.2f} µs per event)")
        tgt.append([f"round trip {r['case']}: >= 0.6x work floor", f"{ratio:.2f}" if ratio else "n/a", verdict])
    c1 = find("c_roundtrip", batch=1)
    if c1:
        tgt.append(["C single thread >= 200,000 events/s", f"{c1['events_per_s']:,.0f}/s",
                    "met" if c1["events_per_s"] >= 200000 else "not met (see the notes: machine load)"])
    ins = summary.get("instructions", {})
    if ins.get("c_all") and ins.get("c_crossing") and ins.get("go_json"):
        fl = 4 * ins["c_crossing"] + ins["go_json"]
        tgt.append(["C round trip vs work floor, in instructions (load-independent)",
                    f"{fl:,.0f} / {ins['c_all']:,.0f} = {fl / ins['c_all']:.2f}",
                    "met" if fl / ins["c_all"] >= 0.6 else "not met"])
    out.insert(0, "")
    out.insert(0, "\n".join(["### Targets of issue 14 in this run", "", "| target | measured | |", "|---|---|---|"]
                             + [f"| {a} | {b} | {c} |" for a, b, c in tgt]) + "\n")

    notes = os.path.join(os.path.dirname(__file__), "NOTES.md")
    if os.path.exists(notes) and not a.markdown.endswith("-quick.md"):
        out.append(open(notes).read())

    text = "\n".join(out)
    print("\n" + text)
    mc = data["machine"]
    md = (f"# Benchmarks\n\nThe latest `{a.command}` run. Reproduce with `make test && {a.command}` "
          f"(`make bench-quick` for a first look in under a minute).\n\n"
          f"Machine: {mc['cpu']}, {mc['cores']} cores, Linux {mc['kernel']}; {mc['go']}; {mc['gcc']}; "
          f"Python {mc['python']}; Ruby {mc['ruby']}. Run from {mc['started']} to {mc['ended']}; load average before: {mc['load_before']}.\n\n"
          + text)
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump(data, fh, indent=2)
    with open(a.markdown, "w") as fh:
        fh.write(md)
    print(f"\nwrote {a.json} and {a.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
