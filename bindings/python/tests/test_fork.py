from __future__ import annotations

import os
import textwrap
import unittest

import tasker
from tasker import _native

from ._util import run_python, wait_child


class ForkAfterLoadTest(unittest.TestCase):
    def test_child_forked_after_load_gets_forked_error_and_does_not_hang(self) -> None:
        ch = tasker.Channel()
        self.addCleanup(ch.close)
        box = [tasker.Channel()]  # garbage-collected in the child: must not call into the library
        self.addCleanup(lambda: box and box[0].close())
        eid = ch.dispatch("parent")
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 99
            try:
                os.close(r)
                problems: list[str] = []
                self_check = _native.is_forked()
                if not self_check:
                    problems.append("is_forked() is False")
                for name, call in (("poll", lambda: ch.poll(0.5)), ("dispatch", lambda: ch.dispatch("x")),
                                   ("complete", lambda: ch.complete(eid, 1)), ("stats", ch.stats),
                                   ("shutdown", ch.shutdown), ("new", tasker.Channel)):
                    try:
                        call()
                        problems.append(f"{name}: no error")
                    except tasker.ForkedError as e:
                        if e.status != -7 or "fork" not in e.message or "spawn" not in e.message:
                            problems.append(f"{name}: message {e.message!r}")
                    except BaseException as e:  # noqa: BLE001
                        problems.append(f"{name}: {type(e).__name__}: {e}")
                # the library itself answers EFORKED (its C check), mapped to ForkedError too
                lib = _native.loaded()
                assert lib is not None
                o = _native.outs()
                rc = lib.cdll.tasker_poll(ch.handle, 0, o.bp, o.bn)
                if rc != -7:
                    problems.append(f"library returned {rc} in the child")
                if not isinstance(ch._error(rc), tasker.ForkedError):
                    problems.append("EFORKED not mapped to ForkedError")
                # finalizers never call into the library in the child
                lib.destroy = lambda h: os._exit(3)  # would be fatal if called
                import gc
                import weakref

                ref = weakref.ref(box[0])
                box.clear()
                gc.collect()
                if ref() is not None:
                    problems.append("the channel was not collected")
                ch.close()  # a no-op in the child
                if not ch.closed:
                    problems.append("close() in the child did not mark it closed")
                os.write(w, "\n".join(problems).encode())
                code = 0 if not problems else 1
            finally:
                os._exit(code)
        os.close(w)
        code = wait_child(pid, timeout=15)
        with os.fdopen(r, "rb") as f:
            report = f.read().decode()
        self.assertIsNotNone(code, "the forked child hung")
        self.assertEqual(code, 0, report)
        # the parent is unaffected
        ev = ch.poll(1.0)
        assert ev is not None
        self.assertEqual(ev.event_id, eid)
        self.assertFalse(_native.is_forked())


class ForkBeforeLoadTest(unittest.TestCase):
    def test_child_of_an_import_only_parent_can_use_the_library(self) -> None:
        code = textwrap.dedent(
            """
            import os, sys, time, tasker
            assert not tasker.is_loaded(), "import loaded the library"
            def use(tag):
                with tasker.Channel() as ch:
                    eid = ch.dispatch("h", tag)
                    ev = ch.poll(2.0)
                    ch.complete(ev.event_id, ev.payload + "!")
                    c = ch.next_completion(2.0)
                    assert c.event_id == eid and c.result == tag + "!", c
            pid = os.fork()
            if pid == 0:
                try:
                    use("child")
                    os._exit(0)
                except BaseException as e:
                    print("child:", type(e).__name__, e, file=sys.stderr)
                    os._exit(1)
            deadline = time.monotonic() + 20
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9); os.waitpid(pid, 0); print("child hung"); sys.exit(3)
                time.sleep(0.01)
            if os.waitstatus_to_exitcode(status) != 0:
                sys.exit(2)
            # a multiprocessing 'fork' child of the import-only parent works as well
            import multiprocessing as mp
            ctx = mp.get_context("fork")
            p = ctx.Process(target=use, args=("mp",))
            p.start(); p.join(20)
            if p.exitcode != 0:
                print("mp child exit", p.exitcode); sys.exit(4)
            use("parent")  # and the parent can still load it after its children
            print("ok")
            """
        )
        res = run_python(code, timeout=60)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertEqual(res.stdout.strip(), "ok")


if __name__ == "__main__":
    unittest.main()
