"""The CSMS load benchmark still runs end to end (a functional check, never a timed one).

``bench/bench_csms.py`` is run as the lead runs it, at a tiny scale (5 stations, 1 s windows)
against all three servers, so that the load generator, the echo server, the reference CSMS and
the orchestration cannot rot unnoticed. Nothing here asserts a speed: only that every figure
the issue asks for is produced, complete and self-consistent, and that no CALL went wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.echo_server import reply_to

ROOT = Path(__file__).resolve().parents[2]
STATIONS = 5
SERVERS = ("echo", "reference", "ocppkit")
CASES = (
    "heartbeat_5",
    "metervalues_5",
    f"open_loop_{STATIONS}",
    f"storm_{STATIONS}",
    f"idle_{STATIONS}",
)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    options = {
        "--stations": STATIONS,
        "--duration": 1,
        "--warmup": 0.2,
        "--open-loop-stations": STATIONS,
        "--open-loop-period": 0.5,
        "--open-loop-duration": 1.5,
        "--storm-stations": STATIONS,
        "--idle-stations": STATIONS,
        "--idle-settle": 0.2,
        "--server-cpu": "none",  # no pinning: the test checks function, not speed
        "--generator-cpu": "none",
        "--json": out,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "bench.bench_csms", *(str(x) for kv in options.items() for x in kv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return json.loads(out.read_text()), completed.stdout


def test_every_case_measured_against_every_server(report: tuple[dict[str, Any], str]) -> None:
    """Issue: 'compares, in one run, our CSMS with [the reference]' and the echo ceiling."""
    results = report[0]["results"]
    assert tuple(results) == CASES
    for case in CASES:
        assert tuple(results[case]) == SERVERS
        for server in SERVERS:
            assert "error" not in results[case][server], (case, server, results[case][server])


@pytest.mark.parametrize("case", ["heartbeat_5", "metervalues_5"])
def test_closed_loop_figures_are_complete_and_clean(
    report: tuple[dict[str, Any], str], case: str
) -> None:
    """Closed loop: msg/s and p50/p99 from every reply, no CALLERROR, none lost or unmatched."""
    for server, figures in report[0]["results"][case].items():
        assert figures["stations"] == STATIONS
        assert figures["replies"] > 0 and figures["msg_per_s"] > 0, server
        assert 0 < figures["p50_ms"] <= figures["p90_ms"] <= figures["p99_ms"] <= figures["max_ms"]
        assert figures["call_errors"] == 0, server  # ocppkit: every station booted first
        assert figures["unmatched"] == figures["disconnects"] == figures["protocol_errors"] == 0
        assert figures["unanswered_at_end"] == 0
        assert figures["server_cpu_pct"] >= 0 and figures["generator_cpu_pct"] >= 0
        assert figures["server_cpu_us_per_msg"] >= 0


def test_open_loop_answers_every_scheduled_call(report: tuple[dict[str, Any], str]) -> None:
    """Open loop (fixed rate per station): every CALL sent is answered, latency recorded."""
    for server, figures in report[0]["results"][f"open_loop_{STATIONS}"].items():
        assert figures["calls"] >= STATIONS, server  # each station fired at least once
        assert figures["replies"] == figures["calls"], server
        assert figures["overruns"] == figures["call_errors"] == figures["disconnects"] == 0
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
        assert figures["from_schedule_p99_ms"] >= figures["p50_ms"]


def test_storm_boots_every_station(report: tuple[dict[str, Any], str]) -> None:
    """Storm: all stations connected and answered Accepted; the time to the last is given."""
    for server, figures in report[0]["results"][f"storm_{STATIONS}"].items():
        assert figures["booted"] == STATIONS and figures["failed"] == 0, server
        assert 0 < figures["last_connected_s"] <= figures["all_booted_s"]


def test_idle_rss_is_read_from_the_server_process(report: tuple[dict[str, Any], str]) -> None:
    """Idle: VmRSS of the server process before and with the idle stations, per station."""
    for server, figures in report[0]["results"][f"idle_{STATIONS}"].items():
        assert figures["rss_before_mib"] > 5 and figures["rss_idle_mib"] > 5, server
        expected = (figures["rss_idle_mib"] - figures["rss_before_mib"]) * 1024 / STATIONS
        assert figures["kib_per_connection"] == pytest.approx(expected, abs=25), server


def test_targets_are_reported_as_ratios_with_the_command(
    report: tuple[dict[str, Any], str],
) -> None:
    """Issue: 'Targets, each as a ratio in the same run' and the command to reproduce."""
    data, stdout = report
    names = [check["check"] for check in data["checks"]]
    assert names == [
        "heartbeat_5: ocppkit / reference",
        "heartbeat_5: ocppkit / echo ceiling",
        "metervalues_5: ocppkit / reference",
        f"open_loop_{STATIONS}: ocppkit p99 ms",
        f"storm_{STATIONS}: ocppkit all booted s",
        f"idle_{STATIONS}: ocppkit KiB per idle conn.",
    ]
    heartbeat = data["results"]["heartbeat_5"]
    ratio = heartbeat["ocppkit"]["msg_per_s"] / heartbeat["reference"]["msg_per_s"]
    assert data["checks"][0]["value"] == pytest.approx(ratio, rel=1e-3)
    assert all(check["met"] in (True, False) for check in data["checks"])
    assert "reproduce: .venv/bin/python -m bench.bench_csms" in stdout
    assert "ocppkit / reference" in stdout


def test_echo_server_answers_the_same_id() -> None:
    """OCPP-J §4.2.2: a CALLRESULT carries the CALL's message id; anything else is ignored."""
    assert reply_to('[2,"a1","Heartbeat",{}]') == '[3,"a1",{"currentTime":"2026-11-27T10:00:00Z"}]'
    assert reply_to('[2, "x", "MeterValues", {"connectorId": 1}]') == '[3,"x",{}]'
    assert reply_to('[3,"a1",{}]') is None
