#!/usr/bin/env python3
"""One worker process of the cluster runs (tests/cluster/cluster.py): a tasker.Channel whose
events come from the PostgreSQL source, run by a tasker.Worker.

    worker.py NAME SOURCE_JSON [THREADS]

The handler "charge" takes payload {"i": n, "sleep_ms": ms, "fail": bool}: it sleeps sleep_ms,
then returns {"worker": NAME, "i": n}, or, when "fail" is true, raises Declined whose message
names the worker (so the database alone tells which process wrote each result).

Every 200 ms the process prints one JSON line on stdout: {"worker", "pid", "counts", "source"}
(the Worker's counts and the channel's source_* stats). SIGTERM stops it (SIGINT is ignored:
Ctrl-C goes to the whole process group, and the orchestrator decides): the threads
end, the channel shuts down (events still queued are released at once), a last line is printed,
exit 0. It also stops when its parent process is gone (nothing outlives the run).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))

import tasker  # noqa: E402


class Declined(Exception):
    retryable = False


def main() -> int:
    name, source = sys.argv[1], json.loads(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    parent = os.getppid()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the orchestrator's: it stops us

    def charge(ev: tasker.StepEvent) -> dict:
        p = ev.payload or {}
        ms = p.get("sleep_ms", 0)
        if ms:
            time.sleep(ms / 1000)
        if p.get("fail"):
            raise Declined(f"card declined [worker={name}]")
        return {"worker": name, "i": p.get("i")}

    # The source reads only what the channel has room for (queued + running <= the handler slots):
    # slots beyond the thread count let it read ahead while the threads work (4 per thread: reads
    # of up to 16, and with them ~1.5x the throughput of reads of 4 on this machine).
    ch = tasker.Channel(source=source, worker_id=name, dispatch_buffer_size=threads * 4,
                        max_concurrent_handlers=threads * 4, handler_timeout_ms=60000)
    w = tasker.Worker(ch, {"charge": charge}, threads=threads, poll_interval=0.05, name=name)

    def report() -> None:
        st = ch.stats()
        src = {k: v for k, v in st.items() if k.startswith("source_")}
        print(json.dumps({"worker": name, "pid": os.getpid(), "counts": w.counts, "source": src}), flush=True)

    w.start()
    try:
        while not stop.is_set():
            if os.getppid() != parent:
                break
            if w.error is not None:
                raise w.error
            report()
            stop.wait(0.2)
    finally:
        w.stop(10)
        ch.shutdown(0)  # workers stopped: release what is still queued at once
        report()
        ch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
