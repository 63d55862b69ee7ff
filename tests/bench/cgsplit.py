"""Where the C round trip's instructions beyond the one-slot floor go.

    python3 tests/bench/cgsplit.py LIBRARY.out SLOT.out EVENTS

LIBRARY.out is callgrind's output for `bench callgrind EVENTS into` run
against a library built with its symbols (run.sh builds one: the shipped
library is stripped, and callgrind would see only addresses); SLOT.out is
`floor slot EVENTS callgrind`. Both count only the instructions between the
programs' marks, so their difference per event is what the library's channel
and export layer add to the same four calls and the same JSON work.

Each function's own instructions (not those of what it calls) are put in one
group by the first rule below that matches its name; the difference of the
two runs is taken group by group. Prints one JSON line for report.py.
Reports only; asserts nothing."""
from __future__ import annotations

import json
import re
import subprocess
import sys

MOD = "github.com/tasker-systems/libtasker/"

# (group, pattern on the function's name), first match wins. The names are
# callgrind_annotate's: Go functions with their import path, C ones bare.
RULES: list[tuple[str, str]] = [
    ("event and correlation ids (two UUIDv7 per dispatch)", r"channel\.\(\*idGen\)|chacha8rand|rand/v2\.\(\*ChaCha8\)"),
    ("wake-ups: kicks after each change, the park slots, readiness",
     r"channel\.\(\*Channel\)\.(kick|unlock|notifyReady|publishReady|applyReady)|main\.attachPark|main\.\(\*parkSlot\)"),
    ("the id index (a table from event id to entry)", r"channel\.\(\*idIndex\)"),
    ("deadlines and clock reads", r"channel\.\(\*deadlineHeap\)|channel\.Now$|^time\.|clock_gettime|runtime\.nanotime|time\.now"),
    ("queues, pending list, state and stats (the rest of the channel)", r"^" + re.escape(MOD) + r"channel\."),
    # the Go map functions: on the round trip, the routing map's lookup by handler name
    ("the dispatcher above the channel (routing, Go-handler checks)",
     r"^" + re.escape(MOD) + r"runtime\.|internal/runtime/maps\.|^runtime\.map|aeshash|runtime\.memhash|runtime\.memequal"),
    ("allocation and the collector (entries are recycled: NOTES 28)",
     r"^runtime\.(mallocgc|newobject|\(\*m(span|heap|cache|central)\)|memclr|gc|wbBuf|bulkBarrier|findObject|"
     r"scan|typePointers|tryDeferToSpanScan|writeHeapBits|newMarkBits|nextFreeFast|heapSetType|deductAssistCredit)"
     r"|gcWriteBarrier"),
    # The one-slot floor's exported functions (bench_slot_*, its loop) are its
    # export layer and count against the library's. They also build the
    # completion, which the library does in its channel, so this group is a
    # little understated.
    ("export layer: handle lookup, argument checks, panic guard, buffers, the C shim",
     r"^main\.|^_cgoexp_|^tgo_|^tasker_|^take_|kept_take|parked_take|deliver_into|sync\.\(\*Pool\)|"
     r"sync\.runtime_procU?n?[Pp]in|runtime\.gorecover|^errors\.|^context\.|bench_slot_|slot_round_trip"),
]


def own_instructions(path: str) -> dict[str, int]:
    """Each function's own instructions in a callgrind output (all threads)."""
    out = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", "--inclusive=no", path],
                         capture_output=True, text=True, check=True).stdout
    costs: dict[str, int] = {}
    started = False
    for line in out.splitlines():
        if "file:function" in line:
            started = True
            continue
        m = re.match(r"\s*([\d,]+) \([^)]*\)\s+(\S.*)$", line) if started else None
        if not m:
            continue
        name = re.sub(r"\s*\[.*\]$", "", m.group(2))  # drop the object file
        name = name.split(":", 1)[1] if ":" in name else name  # drop the source file
        name = name.replace("'2", "")  # callgrind's recursion marker
        costs[name] = costs.get(name, 0) + int(m.group(1).replace(",", ""))
    return costs


def group_of(name: str) -> str:
    for group, pattern in RULES:
        if re.search(pattern, name):
            return group
    return "other (work both share: codec, copies, the crossings' runtime; differences of placement)"


def main() -> None:
    lib_path, slot_path, events = sys.argv[1], sys.argv[2], int(sys.argv[3])
    lib, slot = own_instructions(lib_path), own_instructions(slot_path)
    groups: dict[str, float] = {}
    for name in set(lib) | set(slot):
        g = group_of(name)
        groups[g] = groups.get(g, 0.0) + (lib.get(name, 0) - slot.get(name, 0)) / events
    print(json.dumps({"bench": "callgrind_split", "events": events,
                      "library_per_event": sum(lib.values()) / events,
                      "slot_per_event": sum(slot.values()) / events,
                      "groups": {g: round(v, 1) for g, v in sorted(groups.items(), key=lambda kv: -kv[1])}}))


if __name__ == "__main__":
    main()
