"""Reports (issue 4: "as a table and as JSON (--report)", "a JUnit XML report option for
CI"): the JSON shape and the JUnit XML structure CI servers read."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from ocppkit.fleet.report import (
    REPORT_FORMAT,
    build_report,
    junit_xml,
    render_report,
    write_json,
    write_junit,
)
from ocppkit.fleet.scenario import ScenarioResult, StepResult
from ocppkit.fleet.stats import FleetStats


def results() -> list[ScenarioResult]:
    ok = ScenarioResult(scenario="smoke", station_id="CP1", duration=1.5)
    ok.steps = [StepResult(index=1, name="connect", do="connect", status="passed", duration=0.1)]
    bad = ScenarioResult(scenario="smoke", station_id="CP2", duration=2.0)
    bad.steps = [
        StepResult(index=1, name="connect", do="connect", status="passed"),
        StepResult(
            index=2,
            name="boot",
            do="boot",
            status="failed",
            message='status: got "Rejected", wanted "Accepted"',
        ),
        StepResult(index=3, name="plug", do="plug", status="skipped"),
    ]
    return [ok, bad]


def sample_stats() -> FleetStats:
    stats = FleetStats()
    stats.on_state("CP1", "connected")
    stats.on_call("CP1", "Heartbeat", 0.002, None, 0.0)
    stats.on_call("CP1", "Authorize", 0.003, "NotImplemented", 0.0)
    stats.on_call("CP1", "MeterValues", 30.0, "Timeout", 5.0)
    return stats


def test_json_report_shape(tmp_path: Path) -> None:
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    report = build_report(
        sample_stats().summary(),
        started_at=started,
        duration=12.3456,
        settings={"stations": 1},
        scenario_results=results(),
    )
    path = tmp_path / "r.json"
    write_json(report, path)
    data = json.loads(path.read_text())
    assert data["format"] == REPORT_FORMAT
    assert data["started_at"] == "2026-01-02T03:04:05+00:00"
    assert data["duration_s"] == 12.346
    assert data["settings"] == {"stations": 1}
    assert set(data) >= {
        "stations",
        "actions",
        "call_errors_by_code",
        "timeouts",
        "disconnected",
        "reconnects",
        "connections",
        "frames",
        "queue_delay_ms",
        "scenarios",
    }
    hb = data["actions"]["Heartbeat"]
    assert set(hb) == {"count", "answered", "call_errors", "timeouts", "disconnected", "latency_ms"}
    assert set(hb["latency_ms"]) == {"p50", "p90", "p99", "max", "mean"}
    assert data["actions"]["MeterValues"]["latency_ms"]["p50"] is None  # no answer, no latency
    assert data["call_errors_by_code"] == {"NotImplemented": 1}
    sc = data["scenarios"]
    assert (sc["name"], sc["stations"], sc["passed"], sc["failed"]) == ("smoke", 2, 1, 1)
    assert sc["results"][1]["steps"][1]["status"] == "failed"


def test_behaviour_report_has_no_scenarios() -> None:
    report = build_report(
        FleetStats().summary(), started_at=datetime.now(UTC), duration=1, settings={}
    )
    assert report["scenarios"] is None


def test_junit_xml_structure(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    write_junit(results(), path)
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    assert suite.attrib["name"] == "smoke"
    assert (suite.attrib["tests"], suite.attrib["failures"], suite.attrib["errors"]) == (
        "2",
        "1",
        "0",
    )
    cases = suite.findall("testcase")
    assert [(c.attrib["classname"], c.attrib["name"]) for c in cases] == [
        ("smoke", "CP1"),
        ("smoke", "CP2"),
    ]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == 'step 2 boot: status: got "Rejected", wanted "Accepted"'
    out = cases[1].find("system-out")
    assert out is not None and out.text is not None
    assert out.text.splitlines() == [
        "step 1 connect: passed",
        'step 2 boot: failed - status: got "Rejected", wanted "Accepted"',
        "step 3 plug: skipped",
    ]


def test_junit_escapes_station_text() -> None:
    r = ScenarioResult(scenario="s<&>", station_id='CP"1')
    r.steps = [StepResult(index=1, name="x", do="call", status="failed", message="<b>&</b>")]
    root = ET.fromstring(junit_xml([r]))
    assert root.find("testsuite/testcase/failure").attrib["message"] == "step 1 x: <b>&</b>"


def test_table_renders_every_action_and_failure() -> None:
    report = build_report(
        sample_stats().summary(),
        started_at=datetime.now(UTC),
        duration=3,
        settings={},
        scenario_results=results(),
    )
    console = Console(file=io.StringIO(), width=160)
    console.print(render_report(report))
    text = console.file.getvalue()
    for fragment in (
        "Heartbeat",
        "Authorize",
        "MeterValues",
        "NotImplemented 1",
        "1 timeouts",
        "CP2",
        "FAILED",
        "1 of 2 stations passed",
    ):
        assert fragment in text, fragment
