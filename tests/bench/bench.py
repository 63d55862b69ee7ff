"""`make bench` from Python, through the tasker package. One JSON line per figure.

    bench.py jsonfloor N                the JSON work Python must do per event
    bench.py roundtrip N MODE BATCH     MODE decoded|raw, BATCH 1|64; MODE bare (BATCH 1): the four
                                        library calls made directly, as the binding makes them
    bench.py latency N MODE             MODE block (poll waits) | sleep (poll(0) + sleep 10 ms)
                                        | fd (an asyncio worker: AsyncChannel.poll on the readiness fd)
                                        | bare (block, the library calls made directly, no binding)
    bench.py checkpoint N MODE          checkpoint round trip (poll + checkpoint) beside complete
                                        round trip (dispatch + poll + complete + next_completion),
                                        same run; MODE decoded (StepEvent, Checkpoint values) | raw
    bench.py peer_roundtrip N           the same round trip through queue.Queue (the peer)
    bench.py peer_latency N             dispatch -> get() returns through queue.Queue + a thread
    bench.py ffi_latency N LIB          the same protocol through a C condvar (tests/bench/wakefloor.c,
                                        built as LIB) called through ctypes: the wake-up floor of any
                                        library that waits in native code
    bench.py breakdown N                where a raw round trip's time goes, call by call
"""
from __future__ import annotations

import ctypes
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Iterator

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bindings", "python"))
import tasker  # noqa: E402

EVENT = os.environ["BENCH_EVENT"].encode()
RESULT = os.environ["BENCH_RESULT"].encode()
_ev = json.loads(EVENT)
TASK, STEP, PAYLOAD = _ev["task_uuid"], _ev["step_uuid"], _ev["payload"]
RESULT_VALUE = {"ok": True, "total": 42.5}
META = {"worker": "py"}
CFG = dict(cleanup_interval_ms=0, max_concurrent_handlers=64, completion_buffer_size=128)


def emit(**kw) -> None:
    print(json.dumps(kw), flush=True)


def paced(n: int, pause: bool = True) -> Iterator[int]:
    """The producer's side of every latency protocol: 50 ms for the worker to start waiting, then
    events 0..n-1 one at a time, each after a 200 µs pause (none with ``pause=False``) so that the
    worker is idle when it comes. The caller notes sent[i] itself, after the pause."""
    time.sleep(0.05)
    for i in range(n):
        if pause:
            time.sleep(0.0002)
        yield i


def gaps(later: list[float], earlier: list[float]) -> list[float]:
    """later[i] - earlier[i] for every i, in µs, sorted."""
    return sorted((a - b) * 1e6 for a, b in zip(later, earlier))


def percentiles(lat: list[float]) -> dict[str, float]:
    """The latency figures of a sorted list of µs."""
    n = len(lat)
    return {"p50_us": lat[n // 2], "p90_us": lat[n * 9 // 10], "p99_us": lat[n * 99 // 100], "max_us": lat[-1]}


def jsonfloor(n: int) -> None:
    # what a decoded round trip must do in Python whatever the library:
    # encode the dispatch document, decode the event, encode the result,
    # decode the completion (documents as the library produces them)
    with tasker.Channel(cleanup_interval_ms=0) as ch:
        ch.dispatch_raw(EVENT)
        event_doc = ch.poll_raw()
        ch.complete_raw(json.loads(event_doc)["event_id"], RESULT)
        completion_doc = ch.next_completion_raw()
    dispatch_doc = {"task_uuid": TASK, "step_uuid": STEP, "handler": "bench", "payload": PAYLOAD}
    result_doc = {"success": True, "result": RESULT_VALUE, "metadata": META}
    dumps, loads = json.dumps, json.loads
    t0 = time.perf_counter()
    for _ in range(n):
        dumps(dispatch_doc, separators=(",", ":")).encode()
        loads(event_doc)
        dumps(result_doc, separators=(",", ":")).encode()
        loads(completion_doc)
    dt = time.perf_counter() - t0
    emit(bench="py_json_floor", iterations=n, ns_per_op=dt / n * 1e9)


def roundtrip(n: int, mode: str, batch: int) -> None:
    with tasker.Channel(**CFG) as ch:
        def once_decoded() -> None:
            ch.dispatch("bench", PAYLOAD, task_uuid=TASK, step_uuid=STEP)
            ev = ch.poll()
            ch.complete(ev.event_id, RESULT_VALUE, metadata=META)
            ch.next_completion()

        def once_raw() -> None:
            ch.dispatch_raw(EVENT)
            raw = ch.poll_raw()
            ch.complete_raw(raw[13:49], RESULT)  # {"event_id":"<36>" comes first
            ch.next_completion_raw()

        def batch_decoded() -> None:
            for _ in range(batch):
                ch.dispatch("bench", PAYLOAD, task_uuid=TASK, step_uuid=STEP)
            evs = ch.poll_batch(batch)
            for ev in evs:
                ch.complete(ev.event_id, RESULT_VALUE, metadata=META)
            for _ in evs:
                ch.next_completion()

        def batch_raw() -> None:
            for _ in range(batch):
                ch.dispatch_raw(EVENT)
            raw = ch.poll_batch_raw(batch)
            k, i = 0, raw.find(b'"event_id":"')
            while i >= 0:
                ch.complete_raw(raw[i + 12:i + 48], RESULT)
                k += 1
                i = raw.find(b'"event_id":"', i + 48)
            for _ in range(k):
                ch.next_completion_raw()

        # the four library calls made bare, as the binding makes them (unchecked views, arguments
        # made once), nothing else: what any ctypes binding doing four calls per event could reach
        from tasker import _native, channel
        lib, o = ch._lib, _native.outs()
        h, c0, buf, ccap, binn, inn, idbuf = ch._ch, channel._C0, o.buf, o.ccap, o.binn, o.inn, o.idbuf
        evl, rl = ctypes.c_size_t(len(EVENT)), ctypes.c_size_t(len(RESULT))
        u_dispatch, u_poll, u_complete, u_next = (lib.u_dispatch_now, lib.u_poll_into_now, lib.u_complete,
                                                  lib.u_next_completion_into_now)

        def once_bare() -> None:
            if u_dispatch(h, EVENT, evl, c0, idbuf) != 0:
                raise RuntimeError("dispatch failed")
            idbuf.value.decode()
            u_poll(h, c0, buf, ccap, binn)
            raw = buf[:inn.value]
            u_complete(h, raw[13:49], RESULT, rl)
            u_next(h, c0, buf, ccap, binn)
            buf[:inn.value]

        if batch == 1:
            fn = {"decoded": once_decoded, "raw": once_raw, "bare": once_bare}.get(mode)
        else:
            fn = {"decoded": batch_decoded, "raw": batch_raw}.get(mode) if batch > 1 else None
        if fn is None:
            sys.exit(f"roundtrip: MODE decoded|raw with BATCH >= 1, or bare with BATCH 1; not {mode} {batch}")
        per = 1 if batch == 1 else batch
        for _ in range(max(1, n // 10 // per)):
            fn()
        t0 = time.perf_counter()
        for _ in range(n // per):
            fn()
        dt = time.perf_counter() - t0
        done = n // per * per
        inn.value = 0  # (bare) as the binding leaves it
    emit(bench="py_roundtrip", mode=mode, batch=batch, events=done, seconds=round(dt, 4),
         events_per_s=done / dt, us_per_event=dt / done * 1e6)


def latency_fd(n: int) -> None:
    """An idle asyncio worker (tasker.aio.AsyncChannel.poll: loop.add_reader on tasker_event_fd) on
    its own thread's event loop; the producer dispatches from the main thread."""
    import asyncio
    from tasker.aio import AsyncChannel

    got = [0.0] * n
    with tasker.Channel(cleanup_interval_ms=0) as ch:
        async def work() -> None:
            ach = AsyncChannel(ch)
            for i in range(n):
                ev = await ach.poll(None)
                got[i] = time.perf_counter()
                ch.complete_raw(ev.event_id, RESULT)  # type: ignore[union-attr]

        t = threading.Thread(target=lambda: asyncio.run(work()))
        t.start()
        sent = [0.0] * n
        for i in paced(n):
            sent[i] = time.perf_counter()
            ch.dispatch_raw(EVENT)
            ch.next_completion_raw(None)
        t.join()
    emit(bench="py_latency", mode="fd", samples=n, **percentiles(gaps(got, sent)))


def latency(n: int, mode: str) -> None:
    if mode == "fd":
        latency_fd(n)
        return
    if mode not in ("block", "sleep", "bare"):
        sys.exit(f"latency: MODE block|sleep|fd|bare; not {mode}")
    sleep_mode = mode == "sleep"
    got = [0.0] * n
    with tasker.Channel(cleanup_interval_ms=0) as ch:
        # bare: the calls the binding makes, made directly (the waits through the GIL-releasing
        # declared functions, the rest through the GIL-keeping unchecked views), nothing else
        from tasker import _native, channel
        lib, c0 = ch._lib, channel._C0
        rl = ctypes.c_size_t(len(RESULT))

        def worker() -> None:
            if mode == "bare":
                o = _native.outs()
                for i in range(n):
                    if lib.poll_into(ch._h, -1, o.buf, o.cap, o.binn) != 0:
                        raise RuntimeError("poll_into failed")
                    raw = o.buf[:o.inn.value]
                    got[i] = time.perf_counter()
                    lib.u_complete(ch._ch, raw[13:49], RESULT, rl)
                o.inn.value = 0  # as the binding leaves it
                return
            i = 0
            while i < n:
                raw = ch.poll_raw(0 if sleep_mode else None)
                if raw is None:
                    time.sleep(0.010)
                    continue
                got[i] = time.perf_counter()
                ch.complete_raw(raw[13:49], RESULT)
                i += 1

        t = threading.Thread(target=worker)
        t.start()
        sent = [0.0] * n
        dret = [0.0] * n
        if mode == "bare":
            o = _native.outs()
            evl = ctypes.c_size_t(len(EVENT))
            for i in paced(n):
                sent[i] = time.perf_counter()
                if lib.u_dispatch_now(ch._ch, EVENT, evl, c0, o.idbuf) != 0:
                    raise RuntimeError("dispatch failed")
                dret[i] = time.perf_counter()
                lib.next_completion_into(ch._h, -1, o.buf, o.cap, o.binn)
            o.inn.value = 0
        else:
            for i in paced(n, pause=not sleep_mode):  # the pause lets the worker park in poll
                sent[i] = time.perf_counter()
                ch.dispatch_raw(EVENT)
                dret[i] = time.perf_counter()
                ch.next_completion_raw(None)
        t.join()
    # where it goes: the dispatch call, and the worker's return counted from the dispatch's
    disp, back = gaps(dret, sent), gaps(got, dret)
    emit(bench="py_latency", mode={"sleep": "sleep10ms", "bare": "bare"}.get(mode, "blocking"), samples=n,
         **percentiles(gaps(got, sent)), dispatch_p50_us=disp[n // 2], dispatch_p99_us=disp[n * 99 // 100],
         after_dispatch_p50_us=back[n // 2], after_dispatch_p99_us=back[n * 99 // 100])


CURSOR = {"table": "orders", "after_id": 123456}
ACC = {"sum": 98765.25, "errors": 0}
CHECKPOINT = json.dumps({"cursor": CURSOR, "items_processed": 5000, "accumulated_results": ACC},
                        separators=(",", ":")).encode()


def checkpoint(n: int, mode: str) -> None:
    with tasker.Channel(cleanup_interval_ms=0, max_checkpoints=2**31 - 1) as ch:
        def complete_decoded() -> None:
            ch.dispatch("bench", PAYLOAD, task_uuid=TASK, step_uuid=STEP)
            ev = ch.poll()
            ch.complete(ev.event_id, RESULT_VALUE, metadata=META)
            ch.next_completion()

        def complete_raw() -> None:
            ch.dispatch_raw(EVENT)
            raw = ch.poll_raw()
            ch.complete_raw(raw[13:49], RESULT)
            ch.next_completion_raw()

        def checkpoint_decoded() -> None:
            ev = ch.poll()  # the event with its checkpoint (decoded into a tasker.Checkpoint)
            ch.checkpoint(ev.event_id, CURSOR, 5000, ACC)

        def checkpoint_raw() -> None:
            raw = ch.poll_raw()
            ch.checkpoint_raw(raw[13:49], CHECKPOINT)

        comp, cp = (complete_decoded, checkpoint_decoded) if mode == "decoded" else (complete_raw, checkpoint_raw)

        def timed(fn) -> float:
            for _ in range(max(1, n // 10)):
                fn()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            return time.perf_counter() - t0

        complete_s = timed(comp)
        ch.dispatch_raw(EVENT)
        checkpoint_s = timed(cp)
    emit(bench="py_checkpoint", mode=mode, events=n, complete_round_trip_us=complete_s / n * 1e6,
         checkpoint_round_trip_us=checkpoint_s / n * 1e6, ratio=checkpoint_s / complete_s)


def peer_roundtrip(n: int) -> None:
    # what a Python user writes instead for in-process dispatch between threads: queue.Queue,
    # carrying the same documents (as bytes) both ways
    work: queue.Queue[bytes] = queue.Queue()
    done: queue.Queue[bytes] = queue.Queue()

    def once() -> None:
        work.put(EVENT)
        work.get()
        done.put(RESULT)
        done.get()

    for _ in range(max(1, n // 10)):
        once()
    t0 = time.perf_counter()
    for _ in range(n):
        once()
    dt = time.perf_counter() - t0
    emit(bench="py_peer_roundtrip", events=n, seconds=round(dt, 4), events_per_s=n / dt, us_per_event=dt / n * 1e6)


def peer_latency(n: int) -> None:
    # the same protocol as latency(): one event at a time, the worker idle (blocked in get) when it comes
    work: queue.Queue[bytes] = queue.Queue()
    done: queue.Queue[bytes] = queue.Queue()
    got = [0.0] * n

    def worker() -> None:
        for i in range(n):
            work.get()
            got[i] = time.perf_counter()
            done.put(RESULT)

    t = threading.Thread(target=worker)
    t.start()
    sent = [0.0] * n
    for i in paced(n):
        sent[i] = time.perf_counter()
        work.put(EVENT)
        done.get()
    t.join()
    emit(bench="py_peer_latency", mode="blocking", samples=n, **percentiles(gaps(got, sent)))


def ffi_latency(n: int, path: str) -> None:
    """The protocol of latency() through tests/bench/wakefloor.c, no Go: the waits through CDLL
    (GIL released), post and finish through PyDLL (GIL kept), as the binding calls libtasker."""
    cdll = ctypes.CDLL(path)
    pydll = ctypes.PyDLL(path, handle=cdll._handle)
    cdll.wake_new.restype = ctypes.c_void_p
    for lib in (cdll, pydll):
        for name in ("wake_post", "wake_wait", "wake_finish", "wake_wait_done", "wake_free"):
            fn = getattr(lib, name)
            fn.argtypes = [ctypes.c_void_p]
            fn.restype = None if name == "wake_free" else ctypes.c_int
    w = cdll.wake_new()
    if not w:
        raise MemoryError("wake_new")
    post, finish, wait, wait_done = pydll.wake_post, pydll.wake_finish, cdll.wake_wait, cdll.wake_wait_done
    got = [0.0] * n

    def worker() -> None:
        for i in range(n):
            wait(w)
            got[i] = time.perf_counter()
            finish(w)

    t = threading.Thread(target=worker)
    t.start()
    sent = [0.0] * n
    dret = [0.0] * n
    for i in paced(n):
        sent[i] = time.perf_counter()
        post(w)
        dret[i] = time.perf_counter()
        wait_done(w)
    t.join()
    cdll.wake_free(w)
    disp = gaps(dret, sent)
    emit(bench="py_ffi_latency", mode="blocking", samples=n, **percentiles(gaps(got, sent)),
         post_p50_us=disp[n // 2], post_p99_us=disp[n * 99 // 100])


def breakdown(n: int) -> None:
    """Each raw method beside the bare ctypes call it makes, in phases of K events so that the
    channel is in the same state for both: the difference is the binding's own work (argument
    checks, tuple packing, the try-then-wait shape, copying the document out, tasker_free)."""
    from tasker import _native

    K = 1000
    cfg = dict(cleanup_interval_ms=0, dispatch_buffer_size=K, max_concurrent_handlers=K, completion_buffer_size=K)
    pc = time.perf_counter_ns
    acc: dict[str, int] = {}

    def add(k: str, dt: int) -> None:
        acc[k] = acc.get(k, 0) + dt

    with tasker.Channel(**cfg) as ch:
        lib, h, o = ch._lib, ch.handle, _native.outs()
        bp, bn, idbuf, evl, rl = o.bp, o.bn, o.idbuf, len(EVENT), len(RESULT)
        # the round trip's calls as the binding makes them: unchecked views, prepared arguments
        ch_, c0, cevl, crl = ch._ch, ctypes.c_int32(0), ctypes.c_size_t(evl), ctypes.c_size_t(rl)
        string_at, free = _native.string_at, lib.free
        rounds = max(1, n // K)
        for r in range(rounds + 1):  # round 0 warms up
            ids: list[bytes] = []
            t = pc()
            for _ in range(K):
                ch.dispatch_raw(EVENT)
            t1 = pc()
            evs = [ch.poll_raw() for _ in range(K)]
            t2 = pc()
            for ev in evs:
                ch.complete_raw(ev[13:49], RESULT)
            t3 = pc()
            for _ in range(K):
                ch.next_completion_raw()
            t4 = pc()
            if r:
                add("dispatch_raw", t1 - t); add("poll_raw", t2 - t1); add("complete_raw", t3 - t2)
                add("next_completion_raw", t4 - t3)
            # the same four steps as bare ctypes calls (as the binding makes them: the single
            # documents into the thread's buffer), then the ingredients one at a time
            buf, ccap, binn, inn = o.buf, o.ccap, o.binn, o.inn
            t = pc()
            for _ in range(K):
                lib.u_dispatch_now(ch_, EVENT, cevl, c0, idbuf)
            t1 = pc()
            for _ in range(K):
                lib.u_poll_into_now(ch_, c0, buf, ccap, binn)
                ids.append(buf[:inn.value][13:49])
            t2 = pc()
            for i in ids:
                lib.u_complete(ch_, i, RESULT, crl)
            t3 = pc()
            for _ in range(K):
                lib.u_next_completion_into_now(ch_, c0, buf, ccap, binn)
                buf[:inn.value]
            t4 = pc()
            inn.value = 0  # as the binding leaves it (a non-zero length means a document not copied out)
            # what the malloc'ing calls add instead: string_at and tasker_free per document
            for _ in range(K):
                lib.dispatch_now(h, EVENT, evl, 0, idbuf)
                lib.poll_now(h, 0, bp, bn)
                lib.complete(h, string_at(o.p.value, o.n.value)[13:49], RESULT, rl)
                free(o.p.value)
            addrs = []
            for _ in range(K):
                lib.next_completion_now(h, 0, bp, bn)
                addrs.append((o.p.value, o.n.value))
            t5 = pc()
            docs = [string_at(a, m) for a, m in addrs]
            t6 = pc()
            for a, _ in addrs:
                free(a)
            t7 = pc()
            o.p.value = None  # freed above: the binding's next take must not see it as left behind
            for _ in range(K):
                buf[:300]
            t8 = pc()
            for _ in range(K):
                idbuf.value.decode()
            t9 = pc()
            for _ in range(K):
                lib.u_poll_into_now(ch_, c0, buf, ccap, binn)  # EMPTY: a crossing with almost no Go work
            t10 = pc()
            for _ in range(K):
                lib.poll_into_now(h, 0, buf, o.cap, binn)  # the same, declared (argtypes convert each argument)
            t10b = pc()
            for _ in range(K):
                lib.last_error(o.errbuf, 4096)  # what every failing call adds
            t11 = pc()
            del docs
            if r:
                add("ctypes dispatch", t1 - t); add("ctypes poll_into + copy out", t2 - t1)
                add("ctypes complete", t3 - t2); add("ctypes next_completion_into + copy out", t4 - t3)
                add("string_at (copy out of a library buffer)", t6 - t5); add("tasker_free", t7 - t6)
                add("slice copy out (into-buffer)", t8 - t7)
                add("id decode", t9 - t8); add("ctypes poll_into, EMPTY", t10 - t9)
                add("ctypes poll_into, EMPTY, with argtypes", t10b - t10); add("tasker_last_error", t11 - t10b)
    events = rounds * K
    emit(bench="py_breakdown", events=events, ns={k: round(v / events, 1) for k, v in acc.items()})


if __name__ == "__main__":
    what, n = sys.argv[1], int(sys.argv[2])
    if what == "jsonfloor":
        jsonfloor(n)
    elif what == "roundtrip":
        roundtrip(n, sys.argv[3], int(sys.argv[4]))
    elif what == "latency":
        latency(n, sys.argv[3])
    elif what == "checkpoint":
        checkpoint(n, sys.argv[3])
    elif what == "peer_roundtrip":
        peer_roundtrip(n)
    elif what == "peer_latency":
        peer_latency(n)
    elif what == "ffi_latency":
        ffi_latency(n, sys.argv[3])
    elif what == "breakdown":
        breakdown(n)
    else:
        sys.exit(f"unknown benchmark {what}")
