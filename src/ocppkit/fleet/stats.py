"""Fleet statistics: what every station sent, how fast the CSMS answered, what failed.

Why: a load test is only as useful as its numbers. Averages hide the tail a CSMS operator
cares about, so latencies go into HDR histograms (fixed memory, bounded relative error,
mergeable across worker processes) and the report gives p50 / p90 / p99 / max per action.

Theory of operation
-------------------
:class:`FleetStats` implements the station runtime's ``StationObserver`` interface
(``on_frame``, ``on_call``, ``on_state``); one instance serves every station of a process.
Each callback is a few dictionary updates and at most one histogram record — cheap enough
for tens of thousands of calls a second.

* ``on_call(action, latency, error, queued_for)``: counts the call; ``error`` None or a
  CallError code records the latency (the CSMS answered); ``"Timeout"`` counts a timeout
  (no latency: there was no answer), ``"Disconnected"`` a call cut off by the connection's
  end (the station's own stop included: not the CSMS's error); a positive ``queued_for``
  (time in the offline queue) goes to the queue-delay histogram.
* ``on_state``: connection states (``connecting`` ``connected`` ``booted`` ``rejected``
  ``disconnected``) and activity states (``charging`` ``idle`` ``faulted``) are kept per
  station, with running counts so the live display reads them in O(1). A ``connected``
  after a station was connected before is a reconnect.
* ``on_start_failed``: a station the fleet could not start — a configuration the runtime
  refused (``ValueError``) or one only its restored state refutes (``StationConfigError``,
  e.g. security profile 3 with no client certificate configured nor in its certificate
  store) — counts as failed to start, with its reason; it never connects, so without this
  count it would be missing from every other number.
* :meth:`FleetStats.to_wire` / :meth:`FleetStats.merge_wire`: the totals and the encoded
  histograms as a picklable dictionary, so worker processes send theirs to the parent,
  which merges them (HDR histograms add bucket by bucket).
* :meth:`FleetStats.summary`: the JSON-able end-of-run numbers the report renders.

Latencies are recorded in microseconds from 1 µs to ``max_latency`` (60 s by default,
larger values count as the maximum) with 3 significant digits; queue delays in
milliseconds up to one day with 2.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

__all__ = ["ACTIVITY_STATES", "CONNECTION_STATES", "ActionStats", "FleetStats"]

CONNECTION_STATES = ("connecting", "connected", "booted", "rejected", "disconnected")
ACTIVITY_STATES = ("charging", "idle", "faulted")
_ONLINE = frozenset({"connected", "booted", "rejected"})
_PERCENTILES = (50.0, 90.0, 99.0)


def _latency_histogram(max_latency: float) -> Any:
    return HdrHistogram(1, max(2, int(max_latency * 1_000_000)), 3)


def _queue_histogram() -> Any:
    return HdrHistogram(1, 86_400_000, 2)


def _encode(histogram: Any) -> str:
    """HdrHistogram's compressed, base64 wire form (the same as other HDR implementations)."""
    return str(histogram.encode().decode("ascii"))


@dataclass(slots=True)
class ActionStats:
    """The calls of one action (sent by stations): counts, error codes and latencies."""

    histogram: Any
    count: int = 0
    timeouts: int = 0
    disconnected: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class FleetStats:
    """Statistics of the stations of one process (a ``StationObserver``); mergeable."""

    def __init__(self, *, max_latency: float = 60.0) -> None:
        self.max_latency = max_latency
        self._max_us = max(2, int(max_latency * 1_000_000))
        self.actions: dict[str, ActionStats] = {}
        self.queue_delays = _queue_histogram()
        self.queued_calls = 0
        self.frames_in = 0
        self.frames_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.reconnects = 0
        self.connections = 0
        self.connection_state: dict[str, str] = {}
        self.activity_state: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self._ever_connected: set[str] = set()
        self.failed_to_start = 0
        self.start_errors: Counter[str] = Counter()
        """Why stations failed to start: reason -> stations."""
        self.extra: Counter[str] = Counter()
        """Other counters (behaviour sessions, store files set aside...), summed on merge."""

    # StationObserver -------------------------------------------------------------------
    def on_frame(self, station_id: str, direction: str, frame: str, at: float) -> None:
        if direction == "in":
            self.frames_in += 1
            self.bytes_in += len(frame)
        else:
            self.frames_out += 1
            self.bytes_out += len(frame)

    def on_call(
        self,
        station_id: str,
        action: str,
        latency: float,
        error: str | None,
        queued_for: float,
    ) -> None:
        stats = self.actions.get(action)
        if stats is None:
            stats = self.actions[action] = ActionStats(_latency_histogram(self.max_latency))
        stats.count += 1
        if error == "Timeout":
            stats.timeouts += 1
        elif error == "Disconnected":
            stats.disconnected += 1
        else:
            if error is not None:
                stats.errors[error] += 1
            micros = int(latency * 1_000_000)
            stats.histogram.record_value(min(max(micros, 1), self._max_us))
        if queued_for > 0:
            self.queued_calls += 1
            self.queue_delays.record_value(min(max(int(queued_for * 1000), 1), 86_400_000))

    def on_state(self, station_id: str, state: str) -> None:
        table = self.connection_state if state in CONNECTION_STATES else self.activity_state
        old = table.get(station_id)
        if old == state:
            return
        if old is not None:
            self._counts[old] -= 1
        self._counts[state] += 1
        table[station_id] = state
        if state == "connected":
            self.connections += 1
            if station_id in self._ever_connected:
                self.reconnects += 1
            else:
                self._ever_connected.add(station_id)

    # The runner ----------------------------------------------------------------------------
    def on_start_failed(self, station_id: str, reason: str) -> None:
        """``station_id`` was not started: its configuration was refused (``reason``)."""
        self.failed_to_start += 1
        self.start_errors[reason] += 1

    # Reading ----------------------------------------------------------------------------
    def gauges(self) -> dict[str, int]:
        """The live numbers: stations online, booted, charging...; O(1)."""
        counts = self._counts
        return {
            "stations": len(self.connection_state),
            "connected": sum(counts[s] for s in _ONLINE),
            "booted": counts["booted"],
            "rejected": counts["rejected"],
            "disconnected": counts["disconnected"] + counts["connecting"],
            "charging": counts["charging"],
            "faulted": counts["faulted"],
            "calls": sum(a.count for a in self.actions.values()),
            "errors": self.error_count(),
            "reconnects": self.reconnects,
            "failed_to_start": self.failed_to_start,
        }

    def error_count(self) -> int:
        """CallErrors plus timeouts over all actions."""
        return sum(a.timeouts + sum(a.errors.values()) for a in self.actions.values())

    def to_wire(self) -> dict[str, Any]:
        """Totals, state counts and encoded histograms (picklable) for :meth:`merge_wire`."""
        return {
            "actions": {
                name: {
                    "count": a.count,
                    "timeouts": a.timeouts,
                    "disconnected": a.disconnected,
                    "errors": dict(a.errors),
                    "histogram": _encode(a.histogram),
                }
                for name, a in self.actions.items()
            },
            "queue_delays": _encode(self.queue_delays),
            "queued_calls": self.queued_calls,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "reconnects": self.reconnects,
            "connections": self.connections,
            "connection_state": dict(self.connection_state),
            "activity_state": dict(self.activity_state),
            "failed_to_start": self.failed_to_start,
            "start_errors": dict(self.start_errors),
            "extra": dict(self.extra),
        }

    def merge_wire(self, wire: dict[str, Any]) -> None:
        """Add another process's :meth:`to_wire` into this one."""
        for name, data in wire["actions"].items():
            stats = self.actions.get(name)
            if stats is None:
                stats = self.actions[name] = ActionStats(_latency_histogram(self.max_latency))
            stats.count += data["count"]
            stats.timeouts += data["timeouts"]
            stats.disconnected += data["disconnected"]
            stats.errors.update(data["errors"])
            stats.histogram.decode_and_add(data["histogram"])
        self.queue_delays.decode_and_add(wire["queue_delays"])
        for key in ("queued_calls", "frames_in", "frames_out", "bytes_in", "bytes_out"):
            setattr(self, key, getattr(self, key) + wire[key])
        self.reconnects += wire["reconnects"]
        self.connections += wire["connections"]
        for table_name in ("connection_state", "activity_state"):
            for station_id, state in wire[table_name].items():
                self.on_state_quiet(table_name, station_id, state)
        self.failed_to_start += wire["failed_to_start"]
        self.start_errors.update(wire["start_errors"])
        self.extra.update(wire["extra"])

    def on_state_quiet(self, table_name: str, station_id: str, state: str) -> None:
        """Set a station's state without counting a connection (used when merging)."""
        table: dict[str, str] = getattr(self, table_name)
        old = table.get(station_id)
        if old is not None:
            self._counts[old] -= 1
        self._counts[state] += 1
        table[station_id] = state
        if state in _ONLINE:
            self._ever_connected.add(station_id)

    def summary(self) -> dict[str, Any]:
        """The end-of-run numbers, JSON-able; latencies in milliseconds."""
        actions = {}
        for name in sorted(self.actions):
            a = self.actions[name]
            h = a.histogram
            answered = h.get_total_count()
            latency: dict[str, float | None] = {
                f"p{p:g}": (h.get_value_at_percentile(p) / 1000 if answered else None)
                for p in _PERCENTILES
            }
            latency["max"] = h.get_max_value() / 1000 if answered else None
            latency["mean"] = round(h.get_mean_value() / 1000, 3) if answered else None
            actions[name] = {
                "count": a.count,
                "answered": answered,
                "call_errors": dict(sorted(a.errors.items())),
                "timeouts": a.timeouts,
                "disconnected": a.disconnected,
                "latency_ms": latency,
            }
        errors_by_code: Counter[str] = Counter()
        for a in self.actions.values():
            errors_by_code.update(a.errors)
        q = self.queue_delays
        queued = q.get_total_count()
        return {
            "stations": self.gauges(),
            "start_errors": dict(sorted(self.start_errors.items())),
            "actions": actions,
            "call_errors_by_code": dict(sorted(errors_by_code.items())),
            "timeouts": sum(a.timeouts for a in self.actions.values()),
            "disconnected": sum(a.disconnected for a in self.actions.values()),
            "reconnects": self.reconnects,
            "connections": self.connections,
            "frames": {
                "in": self.frames_in,
                "out": self.frames_out,
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
            },
            "queue_delay_ms": {
                "calls": queued,
                **{
                    f"p{p:g}": (q.get_value_at_percentile(p) if queued else None)
                    for p in _PERCENTILES
                },
                "max": q.get_max_value() if queued else None,
            },
            "extra": dict(sorted(self.extra.items())),
        }
