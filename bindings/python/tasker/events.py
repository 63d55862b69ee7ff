"""The documents the library hands out, as frozen dataclasses.

Timestamps are kept exactly as the library wrote them (RFC 3339, UTC, nanoseconds, as ``str``);
``parse_timestamp`` turns one into a ``datetime`` (microsecond precision) and ``timestamp_ns`` into
exact integer nanoseconds since the epoch. Keys a newer library may add are ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from ._errors import EINVAL, InvalidArgument

__all__ = ["StepEvent", "Completion", "ErrorInfo", "Checkpoint", "parse_timestamp", "timestamp_ns"]

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SECOND = timedelta(seconds=1)
_loads = json.loads


_seconds_cache: dict[str, int] = {}


def _seconds(prefix: str) -> int:
    secs = _seconds_cache.get(prefix)
    if secs is None:
        secs = (datetime.fromisoformat(prefix).replace(tzinfo=timezone.utc) - _EPOCH) // _SECOND
        if len(_seconds_cache) >= 1024:
            _seconds_cache.clear()
        _seconds_cache[prefix] = secs
    return secs


def timestamp_ns(ts: str) -> int:
    """Exact nanoseconds since the Unix epoch of an RFC 3339 timestamp such as
    ``2026-11-27T04:31:45.660995660Z`` (any number of fraction digits, ``Z`` or an offset)."""
    secs = _seconds(ts[:19])
    rest = ts[19:]
    if len(rest) == 11 and rest[0] == "." and rest[10] == "Z":  # the library's own form: fast path
        return secs * 1_000_000_000 + int(rest[1:10])
    frac = 0
    if rest[:1] == ".":
        i = 1
        while i < len(rest) and rest[i].isdigit():
            i += 1
        frac = int((rest[1:i] + "000000000")[:9])
        rest = rest[i:]
    offset = 0
    if rest and rest not in ("Z", "z"):
        sign = -1 if rest[0] == "-" else 1
        hh, _, mm = rest[1:].partition(":")
        offset = sign * (int(hh) * 3600 + int(mm or 0) * 60)
    return (secs - offset) * 1_000_000_000 + frac


def parse_timestamp(ts: str | None) -> datetime | None:
    """An RFC 3339 timestamp as an aware ``datetime`` in UTC (nanoseconds truncated to
    microseconds); ``None`` stays ``None``."""
    if ts is None:
        return None
    ns = timestamp_ns(ts)
    return _EPOCH + timedelta(microseconds=ns // 1000)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A long step's progress (ABI minor 1).

    Return one from a handler to yield: the Worker calls ``tasker_checkpoint``, the event goes back
    to the queue, and a later poll hands it out again with this progress as ``event.checkpoint``
    (its deadline restarting then). ``cursor`` is any JSON value (where to resume);
    ``items_processed`` an integer >= 0; ``accumulated_results`` any JSON value (or None). On a
    polled event, ``count`` is the number of checkpoints so far (ignored when you return one).
    """

    cursor: Any
    items_processed: int
    accumulated_results: Any = None
    count: int = 0

    def __post_init__(self) -> None:
        n = self.items_processed
        if type(n) is not int or n < 0 or n > 0x7FFFFFFFFFFFFFFF:
            raise InvalidArgument(f"items_processed: must be an integer in 0..2**63-1, not {n!r}", EINVAL)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Checkpoint:
        return cls(d.get("cursor"), d["items_processed"], d.get("accumulated_results"), d.get("count", 0))


@dataclass(frozen=True, slots=True)
class StepEvent:
    """A polled step event (``tasker_poll``): the dispatch document with every optional field
    filled in, plus when it was dispatched and polled."""

    event_id: str
    task_uuid: str
    step_uuid: str
    correlation_id: str
    handler: str
    payload: Any
    timeout_ms: int
    trace_id: str | None
    span_id: str | None
    dispatched_at: str
    polled_at: str
    checkpoint: Checkpoint | None = None
    """The progress saved by the event's last checkpoint; None on its first run."""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepEvent:
        cp = d.get("checkpoint")
        return cls(
            d["event_id"], d["task_uuid"], d["step_uuid"], d["correlation_id"], d["handler"],
            d.get("payload"), d["timeout_ms"], d.get("trace_id"), d.get("span_id"),
            d["dispatched_at"], d["polled_at"], None if cp is None else Checkpoint.from_dict(cp),
        )

    @classmethod
    def from_json(cls, doc: bytes | str) -> StepEvent:
        return cls.from_dict(_loads(doc))

    @property
    def dispatched_datetime(self) -> datetime:
        return parse_timestamp(self.dispatched_at)  # type: ignore[return-value]

    @property
    def polled_datetime(self) -> datetime:
        return parse_timestamp(self.polled_at)  # type: ignore[return-value]

    @property
    def deadline_ns(self) -> int:
        """When the library will expire this event: polled_at + timeout_ms, in epoch nanoseconds."""
        return timestamp_ns(self.polled_at) + self.timeout_ms * 1_000_000


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The ``error`` object of a failed, timed-out or cancelled completion."""

    message: str
    error_type: str
    retryable: bool

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ErrorInfo:
        return cls(d.get("message", ""), d.get("error_type", ""), bool(d.get("retryable", False)))


@dataclass(frozen=True, slots=True)
class Completion:
    """One entry of the completion stream (``tasker_next_completion``). ``status`` is
    ``"completed"``, ``"failed"``, ``"timeout"`` or ``"cancelled"``."""

    event_id: str
    task_uuid: str
    step_uuid: str
    correlation_id: str
    handler: str
    status: str
    success: bool
    result: Any
    error: ErrorInfo | None
    metadata: Any
    dispatched_at: str
    polled_at: str | None
    completed_at: str
    execution_time_ms: float | None
    checkpoints: int = 0
    """How many checkpoints the event took before it ended (ABI minor 1)."""
    trace_id: str | None = None
    """The event's trace_id (None when it had none), carried so that a trace can be followed."""
    span_id: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Completion:
        err = d.get("error")
        etm = d.get("execution_time_ms")
        return cls(
            d["event_id"], d["task_uuid"], d["step_uuid"], d["correlation_id"], d["handler"],
            d["status"], d["success"], d.get("result"),
            ErrorInfo.from_dict(err) if err is not None else None,
            d.get("metadata"), d["dispatched_at"], d.get("polled_at"), d["completed_at"],
            float(etm) if etm is not None else None, d.get("checkpoints", 0),
            d.get("trace_id"), d.get("span_id"),
        )

    @classmethod
    def from_json(cls, doc: bytes | str) -> Completion:
        return cls.from_dict(_loads(doc))

    @property
    def dispatched_datetime(self) -> datetime:
        return parse_timestamp(self.dispatched_at)  # type: ignore[return-value]

    @property
    def polled_datetime(self) -> datetime | None:
        return parse_timestamp(self.polled_at)

    @property
    def completed_datetime(self) -> datetime:
        return parse_timestamp(self.completed_at)  # type: ignore[return-value]

    @property
    def queue_ms(self) -> float | None:
        """Dispatch -> poll latency in milliseconds (None if the event was never polled)."""
        if self.polled_at is None:
            return None
        return (timestamp_ns(self.polled_at) - timestamp_ns(self.dispatched_at)) / 1e6

    @property
    def end_to_end_ms(self) -> float:
        """Dispatch -> completion latency in milliseconds."""
        return (timestamp_ns(self.completed_at) - timestamp_ns(self.dispatched_at)) / 1e6
