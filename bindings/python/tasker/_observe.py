"""Private: what the workers report — the "tasker" logger and the periodic stats monitor.

Logging follows the standard library's convention for libraries: records go to the logger named
``"tasker"`` (children ``tasker.worker`` and ``tasker.aio``), which has a ``NullHandler``, so nothing
is printed until the application configures logging (``logging.basicConfig()`` shows warnings and
errors). Levels: INFO worker start/stop; WARNING starvation detected (``starvation_detected`` turning
true), a late completion (a result for an event that had already ended, e.g. timed out); ERROR a
handler that raised (with the traceback).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping

__all__ = ["logger", "StatsCallback", "StatsMonitor", "DEFAULT_STATS_INTERVAL"]

logger = logging.getLogger("tasker")
logger.addHandler(logging.NullHandler())

StatsCallback = Callable[[dict[str, Any]], Any]
"""``stats_callback(stats)``: ``stats`` is the channel's stats document (a dict, see
``Channel.stats()``) plus ``"worker"``: the worker's own counts."""

DEFAULT_STATS_INTERVAL = 5.0
"""Seconds between two stats snapshots of a worker (the stats callback and the starvation check)."""


def check_stats_options(stats_callback: StatsCallback | None, stats_interval: float | None) -> float:
    """Validate the two options the Worker and the AsyncWorker share; returns the interval."""
    if stats_callback is not None and not callable(stats_callback):
        raise TypeError("stats_callback must be callable (it gets one dict)")
    interval = DEFAULT_STATS_INTERVAL if stats_interval is None else stats_interval
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval < float("inf"):
        raise ValueError(f"stats_interval must be a number of seconds > 0, not {stats_interval!r}")
    return float(interval)


class StatsMonitor:
    """One worker's periodic look at the channel: calls ``stats_callback`` with the snapshot and logs
    when ``starvation_detected`` turns true (and, at INFO, when it clears). ``tick()`` is called by
    the worker every ``interval`` seconds (a thread for ``Worker``, a loop timer for
    ``AsyncWorker``). A callback that raises is logged, never fatal."""

    def __init__(self, name: str, stats: Callable[[], dict[str, Any]], counts: Callable[[], Mapping[str, int]],
                 callback: StatsCallback | None, interval: float, log: logging.Logger) -> None:
        self.name = name
        self.interval = interval
        self._stats = stats
        self._counts = counts
        self._callback = callback
        self._log = log
        self._starving = False
        self.ticks = 0

    def tick(self) -> None:
        try:
            snapshot = self._stats()
        except Exception:  # noqa: BLE001 - the channel is closed or gone: nothing to report
            return
        self.ticks += 1
        starving = bool(snapshot.get("starvation_detected"))
        if starving and not self._starving:
            self._log.warning(
                "%s: starvation detected: %s event(s) older than starvation_warning_threshold_ms "
                "(oldest pending %s ms, event %s; oldest queued %s ms)",
                self.name, snapshot.get("starving_event_count"), snapshot.get("oldest_pending_age_ms"),
                snapshot.get("oldest_pending_event_id"), snapshot.get("oldest_queued_age_ms"),
            )
        elif self._starving and not starving:
            self._log.info("%s: starvation cleared", self.name)
        self._starving = starving
        if self._callback is not None:
            snapshot["worker"] = dict(self._counts())
            try:
                self._callback(snapshot)
            except Exception:  # noqa: BLE001
                self._log.exception("%s: stats_callback raised", self.name)


def monotonic() -> float:
    return time.monotonic()
