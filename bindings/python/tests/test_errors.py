from __future__ import annotations

import os
import re
import unittest

import tasker
from tasker import _errors

from ._util import HEADER


class ErrorFromRealCallsTest(unittest.TestCase):
    def assertTaskerError(self, cm: unittest.case._AssertRaisesContext, status: int) -> tasker.TaskerError:  # type: ignore[type-arg]
        exc = cm.exception
        self.assertIsInstance(exc, tasker.TaskerError)
        self.assertEqual(exc.status, status)
        self.assertIsInstance(exc.message, str)
        self.assertTrue(exc.message)
        return exc

    def test_invalid_argument_bad_config(self) -> None:
        with self.assertRaises(tasker.InvalidArgument) as cm:
            tasker.Channel(dispatch_bufer_size=10)
        exc = self.assertTaskerError(cm, _errors.EINVAL)
        self.assertIn("dispatch_bufer_size", exc.message)
        with self.assertRaises(tasker.InvalidArgument) as cm:
            tasker.Channel(max_concurrent_handlers="ten")
        self.assertIn("max_concurrent_handlers", cm.exception.message)
        self.assertIsInstance(cm.exception, ValueError)

    def test_invalid_argument_unknown_result_key_leaves_event_pending(self) -> None:
        with tasker.Channel() as ch:
            eid = ch.dispatch("h")
            ch.poll(1.0)
            with self.assertRaises(tasker.InvalidArgument) as cm:
                ch.complete_raw(eid, b'{"success":false,"retryable":false,"error":{"message":"x"}}')
            exc = self.assertTaskerError(cm, _errors.EINVAL)
            self.assertIn("retryable", exc.message)
            ch.complete(eid, 1)  # still pending: a corrected call succeeds
            c = ch.next_completion(1.0)
            self.assertEqual(c.status if c else None, "completed")

    def test_invalid_argument_bad_dispatch(self) -> None:
        with tasker.Channel() as ch:
            with self.assertRaises(tasker.InvalidArgument) as cm:
                ch.dispatch("h", task_uuid="not-a-uuid")
            self.assertIn("task_uuid", cm.exception.message)
            with self.assertRaises(tasker.InvalidArgument):
                ch.dispatch("")
            with self.assertRaises(tasker.InvalidArgument):
                ch.dispatch_raw(b"{not json")
            with self.assertRaises(ValueError):  # NaN is not JSON: refused before the library
                ch.dispatch("h", float("nan"))
            self.assertEqual(ch.stats()["dispatched"], 0)

    def test_bad_handle_after_close(self) -> None:
        ch = tasker.Channel()
        ch.close()
        for call in (lambda: ch.dispatch("h"), lambda: ch.poll(), lambda: ch.stats(),
                     lambda: ch.next_completion(), lambda: ch.cleanup_timeouts(), lambda: ch.shutdown()):
            with self.assertRaises(tasker.BadHandle) as cm:
                call()
            exc = self.assertTaskerError(cm, _errors.EBADF)
            self.assertIn("closed", exc.message)

    def test_event_not_pending_on_second_complete(self) -> None:
        with tasker.Channel() as ch:
            eid = ch.dispatch("h")
            ch.poll(1.0)
            ch.complete(eid, 1)
            with self.assertRaises(tasker.EventNotPending) as cm:
                ch.complete(eid, 2)
            self.assertTaskerError(cm, _errors.ENOENT)
            with self.assertRaises(tasker.EventNotPending):
                ch.fail(eid, "late")
            self.assertEqual(ch.stats()["late_completions"], 2)
            c = ch.next_completion(1.0)
            self.assertEqual(c.result if c else None, 1)  # the first end stands

    def test_queue_full(self) -> None:
        with tasker.Channel(dispatch_buffer_size=1) as ch:
            ch.dispatch("h")
            with self.assertRaises(tasker.QueueFull) as cm:
                ch.dispatch("h")
            self.assertTaskerError(cm, _errors.EFULL)
            with self.assertRaises(tasker.QueueFull):
                ch.dispatch("h", wait=0.05)
            st = ch.stats()
            self.assertEqual((st["dispatched"], st["rejected_full"]), (1, 2))

    def test_shutdown_error(self) -> None:
        with tasker.Channel() as ch:
            ch.shutdown()
            with self.assertRaises(tasker.ShutdownError) as cm:
                ch.dispatch("h")
            self.assertTaskerError(cm, _errors.ESHUTDOWN)

    def test_too_large(self) -> None:
        with tasker.Channel(max_payload_bytes=256) as ch:
            with self.assertRaises(tasker.TooLarge) as cm:
                ch.dispatch("h", "x" * 300)
            self.assertTaskerError(cm, _errors.ETOOBIG)
            eid = ch.dispatch("h", "small")
            ch.poll(1.0)
            with self.assertRaises(tasker.TooLarge):
                ch.complete(eid, "y" * 300)
            ch.complete(eid, "ok")  # the rejected result changed nothing

    def test_channel_closed_after_shutdown_and_drain(self) -> None:
        with tasker.Channel() as ch:
            ch.dispatch("h")
            ch.shutdown(drain=0)
            with self.assertRaises(tasker.ChannelClosed) as cm:
                ch.poll(1.0)
            self.assertEqual(cm.exception.status, _errors.CLOSED)
            c = ch.next_completion(1.0)
            self.assertEqual(c.status if c else None, "cancelled")
            with self.assertRaises(tasker.ChannelClosed):
                ch.next_completion(1.0)
            with self.assertRaises(tasker.ChannelClosed):
                ch.poll_batch(5, 1.0)

    def test_wrong_python_types_never_reach_the_library_as_pointers(self) -> None:
        with tasker.Channel() as ch:
            eid = ch.dispatch("h")
            ch.poll(1.0)
            with self.assertRaises(tasker.InvalidArgument):
                ch.complete(12345)  # type: ignore[arg-type]  # an int must not become a pointer
            import uuid as _uuid

            ch.complete(_uuid.UUID(eid), "ok")  # a uuid.UUID is accepted
            with self.assertRaises(tasker.InvalidArgument):
                ch.poll_batch(0)
            with self.assertRaises(tasker.InvalidArgument):
                ch.poll_batch(-1)

    def test_bad_timeout_is_refused_by_library(self) -> None:
        # the binding never sends < -1, but the raw function must answer EINVAL for it
        with tasker.Channel() as ch:
            from tasker import _native
            o = _native.outs()
            self.assertEqual(_native.load().poll(ch.handle, -5, o.bp, o.bn), _errors.EINVAL)
            self.assertIn("timeout", _native.last_error(_native.load()))


class MappingTableTest(unittest.TestCase):
    def test_every_status_maps_to_its_class(self) -> None:
        expected = {
            _errors.EINVAL: tasker.InvalidArgument,
            _errors.EBADF: tasker.BadHandle,
            _errors.ENOENT: tasker.EventNotPending,
            _errors.EFULL: tasker.QueueFull,
            _errors.ESHUTDOWN: tasker.ShutdownError,
            _errors.ETOOBIG: tasker.TooLarge,
            _errors.EFORKED: tasker.ForkedError,
            _errors.EINTERNAL: tasker.InternalError,
            _errors.CLOSED: tasker.ChannelClosed,
        }
        self.assertEqual(_errors.ERRORS, expected)
        for status, cls in expected.items():
            exc = _errors.error_for(status, "msg")
            self.assertIs(type(exc), cls)
            self.assertEqual((exc.status, exc.message), (status, "msg"))
            self.assertTrue(issubclass(cls, tasker.TaskerError))

    def test_internal_error(self) -> None:
        exc = _errors.error_for(-8, "tasker_poll: internal error: recovered panic: boom")
        self.assertIsInstance(exc, tasker.InternalError)
        self.assertIn("boom", str(exc))
        self.assertIn("TASKER_EINTERNAL", str(exc))

    def test_unknown_status_is_plain_tasker_error(self) -> None:
        exc = _errors.error_for(-99, "")
        self.assertIs(type(exc), tasker.TaskerError)
        self.assertEqual(exc.status, -99)

    def test_exceptions_pickle(self) -> None:
        import pickle

        exc = pickle.loads(pickle.dumps(tasker.QueueFull("full", -4)))
        self.assertEqual((type(exc), exc.message, exc.status), (tasker.QueueFull, "full", -4))

    @unittest.skipUnless(os.path.exists(HEADER), "include/tasker.h not found")
    def test_constants_match_the_header(self) -> None:
        with open(HEADER) as f:
            text = f.read()
        found = {m[0]: int(m[1]) for m in re.findall(r"#define (TASKER_[A-Z_]+)\s+\(?(-?\d+)\)?", text)}
        for status, name in _errors.STATUS_NAMES.items():
            self.assertEqual(found[name], status, name)
        self.assertEqual(found["TASKER_ABI_VERSION"], tasker.ABI_VERSION)
        # and every status of the header has a name here
        statuses = {v for k, v in found.items() if k not in ("TASKER_ABI_VERSION",)}
        self.assertEqual(statuses, set(_errors.STATUS_NAMES))


if __name__ == "__main__":
    unittest.main()
