"""Fleet statistics (issue 4 "A fleet": per-action counts, CallErrors by code, timeouts,
reconnects, queue delays, latency p50/p90/p99/max per action with an HDR histogram;
--processes K merges the workers' numbers)."""

from __future__ import annotations

import json
import pickle
import random

import pytest

from ocppkit.fleet.stats import FleetStats


def feed(stats: FleetStats, latencies_ms: list[float], action: str = "Heartbeat") -> None:
    for ms in latencies_ms:
        stats.on_call("CP1", action, ms / 1000, None, 0.0)


def test_counts_errors_timeouts_and_queue_delays() -> None:
    stats = FleetStats()
    feed(stats, [1, 2, 3])
    stats.on_call("CP1", "StartTransaction", 0.004, "InternalError", 0.0)
    stats.on_call("CP2", "StartTransaction", 0.005, "InternalError", 12.5)
    stats.on_call("CP2", "StartTransaction", 30.0, "Timeout", 0.0)
    stats.on_call("CP3", "MeterValues", 0.002, "FormationViolation", 0.0)
    stats.on_call("CP3", "MeterValues", 0.5, "Disconnected", 0.0)
    summary = stats.summary()
    start = summary["actions"]["StartTransaction"]
    assert start["count"] == 3 and start["answered"] == 2 and start["timeouts"] == 1
    assert start["call_errors"] == {"InternalError": 2}
    assert summary["call_errors_by_code"] == {"FormationViolation": 1, "InternalError": 2}
    assert summary["timeouts"] == 1
    assert summary["disconnected"] == 1  # cut off, not a CSMS error: no code, no latency
    assert summary["actions"]["MeterValues"]["answered"] == 1
    assert summary["queue_delay_ms"]["calls"] == 1
    assert summary["queue_delay_ms"]["max"] == pytest.approx(12500, rel=0.01)
    assert stats.error_count() == 4
    json.dumps(summary)  # JSON-able


def test_percentiles_within_hdr_precision() -> None:
    """3 significant digits: every reported percentile within 0.1 % of the exact one."""
    rng = random.Random(5)
    values = [rng.lognormvariate(1.5, 1.0) for _ in range(20_000)]  # ms
    stats = FleetStats()
    feed(stats, values)
    lat = stats.summary()["actions"]["Heartbeat"]["latency_ms"]
    exact = sorted(values)
    for p in (50, 90, 99):
        want = exact[int(len(exact) * p / 100) - 1]
        assert lat[f"p{p}"] == pytest.approx(want, rel=0.002, abs=0.002)
    assert lat["max"] == pytest.approx(max(values), rel=0.001)


def test_latency_beyond_the_range_counts_as_the_maximum() -> None:
    stats = FleetStats(max_latency=1.0)
    stats.on_call("CP1", "Heartbeat", 5.0, None, 0.0)
    stats.on_call("CP1", "Heartbeat", 0.0, None, 0.0)  # 0 s: recorded as 1 µs
    lat = stats.summary()["actions"]["Heartbeat"]["latency_ms"]
    assert lat["max"] == pytest.approx(1000, rel=0.001)
    assert stats.summary()["actions"]["Heartbeat"]["answered"] == 2


def test_states_gauges_and_reconnects() -> None:
    stats = FleetStats()
    for sid in ("A", "B", "C"):
        stats.on_state(sid, "connecting")
        stats.on_state(sid, "connected")
        stats.on_state(sid, "booted")
    stats.on_state("A", "charging")
    stats.on_state("B", "faulted")
    stats.on_state("C", "disconnected")
    stats.on_state("C", "connecting")
    stats.on_state("C", "connected")  # a reconnect
    stats.on_state("C", "connected")  # repeated: no change
    g = stats.gauges()
    assert g["stations"] == 3 and g["connected"] == 3 and g["booted"] == 2
    assert g["charging"] == 1 and g["faulted"] == 1 and g["reconnects"] == 1
    assert stats.connections == 4
    stats.on_state("A", "idle")
    assert stats.gauges()["charging"] == 0


def test_merge_equals_recording_everything_in_one() -> None:
    """Workers' statistics merge exactly: counts add, histograms add bucket by bucket."""
    rng = random.Random(9)
    single, parts = FleetStats(), [FleetStats() for _ in range(3)]
    for i in range(3000):
        action = rng.choice(["Heartbeat", "MeterValues", "StatusNotification"])
        latency = rng.expovariate(100)
        error = rng.choice([None, None, None, "InternalError", "Timeout"])
        queued = rng.choice([0.0, 0.0, rng.uniform(0, 100)])
        for target in (single, parts[i % 3]):
            target.on_call(f"CP{i}", action, latency, error, queued)
    for i, part in enumerate(parts):
        part.on_state(f"CP{i}", "connected")
        part.on_state(f"CP{i}", "booted")
        part.on_state(f"CP{i}", "charging")
        part.on_frame(f"CP{i}", "out", "x" * 10, 0.0)
        part.extra["behaviour_sessions"] += 2
    merged = FleetStats()
    for part in parts:
        merged.merge_wire(pickle.loads(pickle.dumps(part.to_wire())))
    got, want = merged.summary(), single.summary()
    assert got["actions"] == want["actions"]
    assert got["queue_delay_ms"] == want["queue_delay_ms"]
    assert got["stations"]["booted"] == 3 and got["stations"]["charging"] == 3
    assert got["frames"]["out"] == 3 and got["frames"]["bytes_out"] == 30
    assert got["extra"] == {"behaviour_sessions": 6}
    assert merged.reconnects == 0 and merged.connections == 3
