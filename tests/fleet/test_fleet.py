"""``ocppkit fleet`` against our CSMS over real WebSockets (issue 4 "A fleet", "Scenarios",
"Tests": "a fleet of 1 000 stations"): the shipped scenarios pass, a behaviour fleet
charges and reports, a failing assertion exits non-zero with JUnit XML, worker processes
merge their statistics."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from ocppkit.fleet.report import build_report, render_report
from ocppkit.fleet.runner import FleetPlan, run_fleet
from ocppkit.fleet.scenario import load_scenario, parse_scenario
from ocppkit.fleet.stats import FleetStats
from ocppkit.fleet.template import FleetTemplate, parse_template

EXAMPLES = Path(__file__).parents[2] / "examples"
SCENARIOS = EXAMPLES / "scenarios"


async def cli(*args: str, within: float = 120) -> tuple[int, str, str]:
    """Run ``python -m ocppkit fleet ...`` as a subprocess while this loop serves the CSMS."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocppkit",
        "fleet",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "200"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), within)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    "name",
    [
        "boot_heartbeat",
        "unknown_action",
        "no_reply_timeout",
        "serialized_writes",
        "server_closes",
        "charging_session_16",
        "charging_session_201",
    ],
)
async def test_shipped_scenarios_pass_against_our_csms(csms_url: str, name: str) -> None:
    """The seed's five smoke tests and a full session per version, as scenarios."""
    plan = FleetPlan.from_template(
        FleetTemplate(),
        1,
        csms_url,
        scenario=load_scenario(SCENARIOS / f"{name}.toml"),
        duration=90,
    )
    stats = FleetStats()
    outcome = await run_fleet(plan, stats)
    (result,) = outcome.scenario_results
    assert result.passed, result.to_dict()
    assert not outcome.stopped_early


async def test_scenario_on_every_station_of_a_mixed_fleet(csms_url: str, tmp_path: Path) -> None:
    """A scenario runs on each station; the version mix comes from the template unless the
    scenario fixes it; traces are written per station."""
    template = parse_template({"versions": {"1.6": 0.5, "2.0.1": 0.5}})
    plan = FleetPlan.from_template(
        template,
        6,
        csms_url,
        seed=3,
        scenario=load_scenario(SCENARIOS / "unknown_action.toml"),
        duration=60,
        trace_dir=str(tmp_path / "traces"),
    )
    stats = FleetStats()
    outcome = await run_fleet(plan, stats)
    assert [r.passed for r in outcome.scenario_results] == [True] * 6
    traces = sorted((tmp_path / "traces").glob("*.log"))
    assert len(traces) == 6
    text = traces[0].read_text()
    assert "NoSuchAction" in text and "NotImplemented" in text
    first = text.splitlines()[0].split(" ", 3)
    assert first[1] == traces[0].stem and first[2] == "out"  # "<time> <station> out <frame>"
    assert stats.summary()["actions"]["BootNotification"]["count"] == 6


async def test_behaviour_fleet_charges_and_reports(csms_url: str) -> None:
    """20 stations, both versions, sessions from the behaviour model in a few seconds."""
    template = parse_template(
        {
            "versions": {"1.6": 0.5, "2.0.1": 0.5},
            "connectors": 2,
            "meter_values_interval": 1,
            "behaviour": {
                "arrivals_per_hour": 3600,
                "min_duration": 1,
                "max_duration": 2,
                "auth_delay": 0.1,
                "unplug_delay": 0.1,
            },
        }
    )
    plan = FleetPlan.from_template(template, 20, csms_url, seed=1, duration=5)
    stats = FleetStats()
    ticks: list[dict[str, int]] = []
    outcome = await run_fleet(plan, stats, on_tick=ticks.append)
    summary = stats.summary()
    assert outcome.started == 20 and not outcome.stopped_early
    assert summary["stations"]["booted"] == 20
    assert summary["actions"]["BootNotification"]["count"] == 20
    assert summary["actions"]["StartTransaction"]["count"] > 0
    assert summary["actions"]["TransactionEvent"]["count"] > 0
    assert summary["actions"]["MeterValues"]["count"] > 0
    assert summary["call_errors_by_code"] == {} and summary["timeouts"] == 0
    assert summary["extra"]["behaviour_sessions_accepted"] > 10
    assert summary["extra"]["behaviour_action_errors"] == 0
    for action in summary["actions"].values():
        lat = action["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert ticks and ticks[-1]["total"] == 20 and max(t["charging"] for t in ticks) > 0


async def test_cli_failing_assertion_exits_1_with_junit(csms_url: str, tmp_path: Path) -> None:
    """Exit code non-zero when an assertion fails; JUnit XML names the failing step."""
    scenario = tmp_path / "wrong.toml"
    scenario.write_text(
        'name = "expects rejection"\n[[step]]\ndo = "connect"\n'
        '[[step]]\ndo = "boot"\nexpect = { status = "Rejected" }\n[[step]]\ndo = "plug"\n',
        encoding="utf-8",
    )
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    code, out, err = await cli(
        "--csms",
        csms_url,
        "-n",
        "3",
        "--scenario",
        str(scenario),
        "--junit",
        str(junit),
        "--report",
        str(report),
    )
    assert code == 1, err
    assert "0 of 3 stations passed" in out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.attrib["failures"] == "3"
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.attrib["message"] == 'step 2 boot: status: got "Accepted", wanted "Rejected"'
    data = json.loads(report.read_text())
    assert data["scenarios"]["failed"] == 3
    assert [s["status"] for s in data["scenarios"]["results"][0]["steps"]] == [
        "passed",
        "failed",
        "skipped",
    ]


async def test_cli_passing_scenario_exits_0(csms_url: str, tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    code, _, err = await cli(
        "--csms",
        csms_url,
        "-n",
        "2",
        "--scenario",
        str(SCENARIOS / "unknown_action.toml"),
        "--junit",
        str(junit),
    )
    assert code == 0, err
    assert ET.parse(junit).getroot().find("testsuite").attrib["failures"] == "0"  # type: ignore[union-attr]


async def test_cli_processes_merge_statistics(csms_url: str, tmp_path: Path) -> None:
    """--processes 2: each worker runs half the fleet; the report counts all of it."""
    report = tmp_path / "report.json"
    code, _, err = await cli(
        "--csms",
        csms_url,
        "-n",
        "10",
        "--duration",
        "2",
        "--processes",
        "2",
        "--template",
        str(EXAMPLES / "fleet.toml"),
        "--report",
        str(report),
    )
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["stations"]["stations"] == 10 and data["stations"]["booted"] == 10
    assert data["actions"]["BootNotification"]["count"] == 10
    assert data["actions"]["BootNotification"]["latency_ms"]["p50"] > 0
    assert data["settings"]["processes"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--csms", "http://127.0.0.1:1/ocpp"], "error: --csms must be a ws:// or wss:// URL"),
        (["--csms", "ws://h/ocpp", "--junit", "j.xml"], "error: --junit needs --scenario"),
        (["--csms", "ws://h/ocpp", "-n", "2", "--processes", "3"], "is more than --stations"),
        (["--csms", "ws://h/ocpp", "--template", "/nonexistent.toml"], "cannot read"),
        (["--csms", "ws://h/ocpp", "--ramp", "0"], "Invalid value for '--ramp'"),
        (["--csms", "ws://h/ocpp", "--store", "/no/such/dir/s.db"], "--store: directory"),
    ],
)
async def test_cli_bad_arguments_exit_2(args: list[str], message: str) -> None:
    code, _, err = await cli(*args)
    assert code == 2
    assert message in err and "Traceback" not in err


async def test_cli_template_mistakes_one_line_each(tmp_path: Path) -> None:
    template = tmp_path / "t.toml"
    template.write_text('connectors = 0\nsupply = "solar"\n', encoding="utf-8")
    code, _, err = await cli("--csms", "ws://h/ocpp", "--template", str(template))
    assert code == 2
    assert err.splitlines() == [
        f"error: {template}: connectors: must be between 1 and 100, got 0",
        f'error: {template}: supply: must be "ac" or "dc", got \'solar\'',
    ]


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def test_fleet_of_1000_stations(csms_process_url: str) -> None:
    """Issue 4 "Tests": a fleet of 1 000 stations in one process (this one) against our CSMS
    (its own process): all boot and charge, none errs, in well under a minute. The run is
    stopped 3 s after the last station booted."""
    template = parse_template(
        {
            "versions": {"1.6": 0.5, "2.0.1": 0.5},
            "behaviour": {"arrivals_per_hour": 3600, "auth_delay": 0.5},
        }
    )
    plan = FleetPlan.from_template(template, 1000, csms_process_url, seed=11, duration=50, ramp=500)
    stats = FleetStats()
    before = rss_mb()
    started = time.monotonic()
    stop = asyncio.Event()
    seen: dict[str, Any] = {"all_booted_at": None, "charging": 0}

    def tick(g: dict[str, int]) -> None:
        seen["charging"] = max(seen["charging"], g["charging"])
        if g["booted"] == 1000 and seen["all_booted_at"] is None:
            seen["all_booted_at"] = time.monotonic() - started
        if (
            seen["all_booted_at"] is not None
            and time.monotonic() - started > seen["all_booted_at"] + 3
        ):
            stop.set()

    outcome = await run_fleet(plan, stats, stop=stop, on_tick=tick)
    elapsed = time.monotonic() - started
    summary = stats.summary()
    boot = summary["actions"]["BootNotification"]["latency_ms"]
    print(
        f"\n1000 stations: all booted after {seen['all_booted_at']} s, run {elapsed:.1f} s, "
        f"RSS +{rss_mb() - before:.0f} MB, boot p50 {boot['p50']} ms p99 {boot['p99']} ms, "
        f"peak charging {seen['charging']}, {summary['extra']}"
    )
    assert outcome.started == 1000
    assert seen["all_booted_at"] is not None and summary["stations"]["booted"] == 1000
    assert summary["actions"]["BootNotification"]["count"] == 1000
    assert summary["call_errors_by_code"] == {} and summary["timeouts"] == 0
    assert summary["reconnects"] == 0
    assert seen["charging"] > 0 and summary["extra"]["behaviour_sessions_accepted"] > 0
    assert summary["extra"]["behaviour_action_errors"] == 0
    assert elapsed < 60


async def test_cli_ctrl_c_stops_cleanly_with_a_report(csms_url: str, tmp_path: Path) -> None:
    """Ctrl-C (SIGINT) ends a run without --duration: stations close, the report is written,
    exit code 0."""
    report = tmp_path / "report.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ocppkit", "fleet", "--csms", csms_url, "-n", "5",
        "--report", str(report),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await asyncio.sleep(4)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    data = json.loads(report.read_text())
    assert data["stopped_early"] is True
    assert data["stations"]["booted"] == 5 and data["call_errors_by_code"] == {}


async def test_scenario_over_its_duration_is_stopped_and_fails(csms_url: str) -> None:
    """--duration caps a scenario run; stations still running then are stopped and the run
    counts as not finished (the CLI exits 1)."""
    scenario = parse_scenario(
        {"step": [{"do": "connect"}, {"do": "sleep", "seconds": 30}]}, default_name="slow"
    )
    plan = FleetPlan.from_template(FleetTemplate(), 2, csms_url, scenario=scenario, duration=2)
    started = time.monotonic()
    outcome = await run_fleet(plan, FleetStats())
    assert time.monotonic() - started < 15
    assert outcome.stopped_early and outcome.scenario_results == []


# Stations the runtime refuses to start -----------------------------------------------------
NO_CLIENT_CERT = "security profile 3 needs a client certificate"


def mixed_profiles(csms_url: str, working: int, refused: int) -> list[dict[str, Any]]:
    """``working`` plain stations for our CSMS, then ``refused`` of security profile 3 with no
    client certificate, configured or in their (fresh) certificate store: ``Station.restore()``
    refuses them (StationConfigError) before they dial."""
    secure = csms_url.replace("ws://", "wss://", 1)
    plain = FleetTemplate().station_kwargs(working, csms_url, seed=0) if working else []
    strict = FleetTemplate().station_kwargs(refused, secure, seed=0)
    for n, kwargs in enumerate(strict, 1):
        kwargs.update(station_id=f"SP3-{n:03d}", security_profile=3)
    return [*plain, *strict]


async def test_profile_3_without_a_client_certificate_fails_to_start_behaviour(
    csms_url: str,
) -> None:
    """Security profile 3 is TLS with a client certificate (1.6 Security Whitepaper / 2.0.1
    Part 2 A00, secondary source); with none, configured or stored, a station never starts
    (``StationConfigError``). The fleet counts
    it as failed to start — not as started — with the reason, in the live gauges, the
    summary and the rendered report, while the others boot."""
    plan = FleetPlan(stations=mixed_profiles(csms_url, 3, 2), duration=1, tick_interval=0.05)
    stats = FleetStats()
    ticks: list[dict[str, int]] = []
    outcome = await run_fleet(plan, stats, on_tick=ticks.append)
    assert (outcome.started, outcome.failed_to_start) == (3, 2)
    assert outcome.start_error is not None and outcome.start_error.startswith("station SP3-00")
    assert NO_CLIENT_CERT in outcome.start_error
    summary = stats.summary()
    assert summary["stations"]["booted"] == 3 and summary["stations"]["failed_to_start"] == 2
    ((reason, count),) = summary["start_errors"].items()
    assert NO_CLIENT_CERT in reason and count == 2
    assert summary["actions"]["BootNotification"]["count"] == 3
    assert (ticks[-1]["started"], ticks[-1]["failed_to_start"], ticks[-1]["total"]) == (3, 2, 5)
    report = build_report(
        summary, started_at=datetime.now(UTC), duration=1.0, settings={}, scenario_results=None
    )
    console = Console(record=True, width=300)
    console.print(render_report(report))
    text = console.export_text()
    assert "3 booted" in text and "2 failed to start" in text
    assert "not started" in text and f"2 stations: {reason}" in text


async def test_a_behaviour_run_in_which_no_station_started_ends_without_a_duration(
    csms_url: str,
) -> None:
    """With no ``duration`` a behaviour run lasts until stopped — unless no station runs any
    more: every one refused (profile 3, no client certificate) ends the run at once instead
    of waiting for a Ctrl-C that would never find anything running."""
    plan = FleetPlan(stations=mixed_profiles(csms_url, 0, 2))
    started = time.monotonic()
    outcome = await asyncio.wait_for(run_fleet(plan, FleetStats()), 30)
    assert time.monotonic() - started < 10
    assert (outcome.started, outcome.failed_to_start, outcome.stopped_early) == (0, 2, False)


async def test_profile_3_without_a_client_certificate_fails_to_start_scenario(
    csms_url: str,
) -> None:
    """The same in a scenario run: the refused stations fail their connect step with the
    runtime's reason (so JUnit shows them) and count as failed to start; the run is complete
    (every scenario run ended with a result)."""
    plan = FleetPlan(
        stations=mixed_profiles(csms_url, 2, 1),
        scenario=load_scenario(SCENARIOS / "boot_heartbeat.toml"),
        duration=60,
    )
    stats = FleetStats()
    outcome = await run_fleet(plan, stats)
    assert (outcome.started, outcome.failed_to_start, outcome.scenario_runs) == (2, 1, 3)
    results = {r.station_id: r for r in outcome.scenario_results}
    assert len(results) == 3 and not outcome.stopped_early
    refused = results.pop("SP3-001")
    assert refused.failure is not None and refused.failure.do == "connect"
    assert "StationConfigError" in refused.failure.message
    assert NO_CLIENT_CERT in refused.failure.message
    assert all(r.passed for r in results.values())
    assert stats.summary()["stations"]["failed_to_start"] == 1


async def test_cli_every_station_refused_exits_2_with_one_line(
    csms_url: str, tmp_path: Path
) -> None:
    """When no station starts (every one profile 3 with no client certificate), the CLI
    exits 2 with one ``error:`` line naming a station and the reason (design.md: "exits
    non-zero with one clear line"), and still writes the report, which counts them — also
    when worker processes (``--processes 2``) each report theirs."""
    template = tmp_path / "p3.toml"
    template.write_text("security_profile = 3\n", encoding="utf-8")
    report = tmp_path / "report.json"
    code, out, err = await cli(
        "--csms",
        csms_url.replace("ws://", "wss://", 1),
        "-n",
        "3",
        "--duration",
        "1",
        "--processes",
        "2",
        "--template",
        str(template),
        "--report",
        str(report),
    )
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [err.splitlines()[-1]]
    assert errors[0].startswith("error: no station started: station CP0000")
    assert NO_CLIENT_CERT in errors[0] and "Traceback" not in err
    assert out == ""
    data = json.loads(report.read_text())
    assert data["stations"]["failed_to_start"] == 3 and data["stations"]["stations"] == 0
