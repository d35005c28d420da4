"""End-of-run reports: a Rich table for people, JSON for tools, JUnit XML for CI.

Why: the same run is read three ways — by the developer at the terminal (a compact table),
by a script comparing runs (JSON with every number, ``--report FILE``), and by a CI server
that shows scenario failures as failed tests (JUnit XML, ``--junit FILE``). All three are
rendered from one :func:`build_report` dictionary, so they never disagree.

JSON shape (``"format": "ocppkit-fleet-report/1"``)::

    {"format", "started_at", "duration_s", "settings": {...},
     "stations": {"stations", "connected", "booted", "charging", ..., "failed_to_start"},
     "start_errors": {reason: stations},
     "actions": {"Heartbeat": {"count", "answered", "call_errors": {code: n}, "timeouts",
                               "disconnected",
                               "latency_ms": {"p50", "p90", "p99", "max", "mean"}}},
     "call_errors_by_code", "timeouts", "disconnected", "reconnects", "connections", "frames",
     "queue_delay_ms": {"calls", "p50", "p90", "p99", "max"}, "extra": {...},
     "scenarios": {"name", "stations", "passed", "failed", "results": [...]} | null}

JUnit XML: one ``<testsuite>`` per scenario, one ``<testcase>`` per station
(``classname`` = scenario, ``name`` = station id) with a ``<failure>`` naming the failing
step and its message, and the steps as ``<system-out>``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.markup import escape
from rich.table import Table

from ocppkit.fleet.scenario import ScenarioResult

__all__ = [
    "REPORT_FORMAT",
    "build_report",
    "junit_xml",
    "render_report",
    "write_json",
    "write_junit",
]

REPORT_FORMAT = "ocppkit-fleet-report/1"


def build_report(
    summary: Mapping[str, Any],
    *,
    started_at: datetime,
    duration: float,
    settings: Mapping[str, Any],
    scenario_results: Sequence[ScenarioResult] | None = None,
) -> dict[str, Any]:
    """The report dictionary from :meth:`FleetStats.summary` and the scenario results."""
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "started_at": started_at.astimezone(UTC).isoformat(timespec="seconds"),
        "duration_s": round(duration, 3),
        "settings": dict(settings),
        **summary,
        "scenarios": None,
    }
    if scenario_results is not None:
        passed = sum(1 for r in scenario_results if r.passed)
        report["scenarios"] = {
            "name": scenario_results[0].scenario if scenario_results else None,
            "stations": len(scenario_results),
            "passed": passed,
            "failed": len(scenario_results) - passed,
            "results": [r.to_dict() for r in scenario_results],
        }
    return report


def write_json(report: Mapping[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def render_report(report: Mapping[str, Any], *, max_failures: int = 10) -> Group:
    """The report as Rich renderables: totals, a per-action table, scenario outcome."""
    st = report["stations"]
    totals = Table(title="Fleet", show_header=False, box=None, pad_edge=False)
    totals.add_column(style="bold")
    totals.add_column()
    totals.add_row("duration", f"{report['duration_s']:.1f} s")
    failed = st.get("failed_to_start", 0)
    totals.add_row(
        "stations",
        f"{st['stations']} seen, {st['connected']} connected, {st['booted']} booted, "
        f"{st['charging']} charging, {st['faulted']} faulted, {st['rejected']} rejected"
        + (f", [red]{failed} failed to start[/red]" if failed else ""),
    )
    for reason, count in report.get("start_errors", {}).items():
        stations = "station" if count == 1 else "stations"
        totals.add_row("not started", f"{count} {stations}: {escape(reason)}")
    totals.add_row("connections", f"{report['connections']} ({report['reconnects']} reconnects)")
    frames = report["frames"]
    totals.add_row(
        "frames",
        f"{frames['out']} sent ({frames['bytes_out']} B), {frames['in']} received "
        f"({frames['bytes_in']} B)",
    )
    codes = report["call_errors_by_code"]
    totals.add_row(
        "errors",
        (", ".join(f"{code} {n}" for code, n in codes.items()) or "no CallErrors")
        + f"; {report['timeouts']} timeouts; {report['disconnected']} cut off by a disconnection",
    )
    q = report["queue_delay_ms"]
    if q["calls"]:
        totals.add_row(
            "offline queue",
            f"{q['calls']} calls waited: p50 {q['p50']} ms, p99 {q['p99']} ms, max {q['max']} ms",
        )
    for key, value in report.get("extra", {}).items():
        totals.add_row(key.replace("_", " "), str(value))

    actions = Table(title="Calls made by the stations (latency in ms)")
    for name in ("action", "count", "errors", "timeouts", "p50", "p90", "p99", "max"):
        actions.add_column(name, justify="left" if name == "action" else "right")
    for name, a in report["actions"].items():
        lat = a["latency_ms"]
        actions.add_row(
            name,
            str(a["count"]),
            str(sum(a["call_errors"].values())),
            str(a["timeouts"]),
            _ms(lat["p50"]),
            _ms(lat["p90"]),
            _ms(lat["p99"]),
            _ms(lat["max"]),
        )
    parts: list[Any] = [totals, actions]
    scenarios = report.get("scenarios")
    if scenarios:
        outcome = Table(title=f"Scenario {scenarios['name']}", show_header=True)
        outcome.add_column("station")
        outcome.add_column("result")
        outcome.add_column("failed step")
        shown = 0
        for r in scenarios["results"]:
            if r["passed"] or shown >= max_failures:
                continue
            shown += 1
            step = next((s for s in r["steps"] if s["status"] == "failed"), None)
            where = f"{step['index']} {step['name']}: {step['message']}" if step else ""
            outcome.add_row(r["station_id"], "[red]FAILED[/red]", where)
        outcome.caption = f"{scenarios['passed']} of {scenarios['stations']} stations passed" + (
            f" (first {shown} failures shown)" if scenarios["failed"] > shown else ""
        )
        parts.append(outcome)
    return Group(*parts)


def junit_xml(results: Sequence[ScenarioResult], *, suite_name: str | None = None) -> str:
    """JUnit XML for a scenario run: a testcase per station, failures naming the step."""
    name = suite_name or (results[0].scenario if results else "scenario")
    failures = sum(1 for r in results if not r.passed)
    suites = ET.Element("testsuites", name="ocppkit fleet")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name=name,
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{sum(r.duration for r in results):.3f}",
        timestamp=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=name,
            name=result.station_id,
            time=f"{result.duration:.3f}",
        )
        failed = result.failure
        if failed is not None:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"step {failed.index} {failed.name}: {failed.message}",
                type="AssertionError",
            )
            failure.text = failed.message
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(
            f"step {s.index} {s.name}: {s.status}" + (f" - {s.message}" if s.message else "")
            for s in result.steps
        )
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode")


def write_junit(results: Sequence[ScenarioResult], path: str | Path) -> None:
    Path(path).write_text(junit_xml(results) + "\n", encoding="utf-8")
