"""``ocppkit fleet``: run emulated stations against a CSMS — one or ten thousand.

Bad arguments (a flag, a template or scenario mistake) get one line per mistake on stderr
and exit code 2, never a traceback. So does a run in which no station started because the
runtime refused every station's configuration — some refusals show only once a station's
stored state is read (security profile 3 with no client certificate, configured or in its
certificate store): ``error: no station started: station <id>: <reason>``, after the
report files are written. A scenario run exits 1 when any station fails a step; a behaviour
run exits 0 when it ran to its end or was stopped with Ctrl-C (stations that failed to
start, if not all, are counted in the progress and the report).

Heavy imports (the station runtime, Rich's live display) happen inside the command, so
``ocppkit --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["fleet_command"]


def _usage_error(lines: list[str] | str) -> typer.Exit:
    for line in [lines] if isinstance(lines, str) else lines:
        typer.echo(f"error: {line}", err=True)
    return typer.Exit(2)


def fleet_command(
    csms: Annotated[
        str,
        typer.Option(
            "--csms",
            help="CSMS URL, ws://host:port/<prefix> or wss://...; each station id is appended.",
        ),
    ],
    stations: Annotated[
        int, typer.Option("--stations", "-n", min=1, help="Number of stations [1].")
    ] = 1,
    duration: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            help="Seconds to run after the ramp-up (behaviour); with --scenario, the most "
            "the whole run may take. Default: until Ctrl-C / until the scenario ends.",
        ),
    ] = None,
    ramp: Annotated[
        float, typer.Option(min=0.001, help="Stations started per second [200].")
    ] = 200.0,
    template: Annotated[
        Path | None,
        typer.Option(help="Fleet template, TOML (docs/fleet.md) [CP00001... 1.6, 1 connector]."),
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="Scenario file, TOML (docs/scenarios.md): every station runs its steps; "
            "without it the stations charge by the template's behaviour model."
        ),
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="Write the end-of-run report as JSON to this file.")
    ] = None,
    junit: Annotated[
        Path | None,
        typer.Option(help="Write scenario results as JUnit XML to this file (with --scenario)."),
    ] = None,
    processes: Annotated[
        int, typer.Option(min=1, help="Worker processes to spread the fleet over [1].")
    ] = 1,
    seed: Annotated[
        int, typer.Option(help="Seed of every random choice; same seed, same run [0].")
    ] = 0,
    trace_dir: Annotated[
        Path | None,
        typer.Option(help="Write each station's frames, timestamped, to DIR/<station id>.log."),
    ] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            help="The stations' persistent state and offline queue, SQLite; reuse it to "
            "resume a fleet. Default: a temporary file, removed at the end."
        ),
    ] = None,
    log_level: Annotated[
        str,
        typer.Option(
            help="Log level of the stations' messages on stderr: debug, info, warning, error "
            "[WARNING]."
        ),
    ] = "warning",
) -> None:
    """Run a fleet of emulated charging stations (OCPP 1.6 / 2.0.1) against a CSMS.

    Stations come from --template (ids, versions, connectors, power, security, behaviour),
    start at --ramp per second and either charge by the behaviour model (EVs arrive, plug,
    authorize, charge, leave; seeded) or run --scenario. Live progress while running; a
    report (per-action counts, CallErrors, timeouts, reconnects, latency p50/p90/p99/max)
    at the end. Stop with Ctrl-C: every station closes its connection cleanly.
    """
    from ocppkit.fleet.scenario import ScenarioError, load_scenario
    from ocppkit.fleet.template import FleetTemplate, TemplateError, load_template
    from ocppkit.logs import configure_logging

    parts = urllib.parse.urlsplit(csms)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise _usage_error(f"--csms must be a ws:// or wss:// URL with a host, got {csms!r}")
    if processes > stations:
        raise _usage_error(f"--processes ({processes}) is more than --stations ({stations})")
    if junit is not None and scenario is None:
        raise _usage_error("--junit needs --scenario (JUnit XML reports scenario steps)")
    try:
        configure_logging(log_level)
    except ValueError as exc:
        raise _usage_error(f"--log-level: {exc}") from None
    try:
        fleet_template = load_template(template) if template is not None else FleetTemplate()
    except TemplateError as exc:
        raise _usage_error(str(exc).splitlines()) from None
    try:
        fleet_scenario = load_scenario(scenario) if scenario is not None else None
    except ScenarioError as exc:
        raise _usage_error(str(exc).splitlines()) from None
    try:
        kwargs = fleet_template.station_kwargs(stations, csms, seed=seed)
    except TemplateError as exc:
        raise _usage_error(str(exc).splitlines()) from None

    from ocppkit.fleet.runner import FleetPlan, station_config

    try:  # the runtime's own checks (e.g. profile 2 needs wss://), once, before starting
        station_config(kwargs[0], scenario=fleet_scenario, trace_dir=None)
    except (ValueError, TypeError) as exc:
        raise _usage_error(f"station {kwargs[0]['station_id']}: {exc}") from None
    for path, what in ((report, "--report"), (junit, "--junit"), (store, "--store")):
        if path is not None and not path.parent.is_dir():
            raise _usage_error(f"{what}: directory {str(path.parent)!r} does not exist")

    plan = FleetPlan(
        stations=kwargs,
        behaviour=fleet_template.behaviour,
        scenario=fleet_scenario,
        duration=duration,
        ramp=ramp,
        store_path=str(store) if store is not None else None,
        trace_dir=str(trace_dir) if trace_dir is not None else None,
    )
    settings = {
        "csms": csms,
        "stations": stations,
        "duration": duration,
        "ramp": ramp,
        "template": str(template) if template else None,
        "scenario": str(scenario) if scenario else None,
        "processes": processes,
        "seed": seed,
    }
    code = _run(plan, processes, settings, report, junit, log_level)
    raise typer.Exit(code)


def _run(
    plan: Any,
    processes: int,
    settings: dict[str, Any],
    report_path: Path | None,
    junit_path: Path | None,
    log_level: str,
) -> int:
    from rich.console import Console

    from ocppkit.fleet.report import build_report, render_report, write_json, write_junit
    from ocppkit.fleet.runner import run_fleet, run_fleet_processes
    from ocppkit.fleet.stats import FleetStats

    out = Console()
    err = Console(stderr=True)
    stats = FleetStats()
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    progress = _Progress(err, t0)

    async def main() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()

        def on_signal() -> None:
            if stop.is_set() and current is not None:  # a second Ctrl-C: give up waiting
                current.cancel()
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        if processes > 1:
            return await run_fleet_processes(
                plan, stats, processes, stop=stop, on_tick=progress.update, log_level=log_level
            )
        return await run_fleet(plan, stats, stop=stop, on_tick=progress.update)

    try:
        with progress:
            outcome = asyncio.run(main())
    except asyncio.CancelledError:
        err.print("stopped without waiting for the stations to close")
        return 130
    except (OSError, RuntimeError) as exc:
        lines = str(exc).splitlines()
        typer.echo(f"error: {lines[0] if lines else type(exc).__name__}", err=True)
        return 1
    results = outcome.scenario_results if plan.scenario is not None else None
    report = build_report(
        stats.summary(),
        started_at=started_at,
        duration=time.monotonic() - t0,
        settings=settings,
        scenario_results=results,
    )
    report["stopped_early"] = outcome.stopped_early
    none_started = outcome.started == 0 and outcome.failed_to_start > 0
    if not none_started:  # else a table of zeros would bury the one line that matters
        out.print(render_report(report))
    if report_path is not None:
        write_json(report, report_path)
    if junit_path is not None and results is not None:
        write_junit(results, junit_path)
    if none_started:
        typer.echo(f"error: no station started: {outcome.start_error}", err=True)
        return 2
    if plan.scenario is not None:
        complete = len(results or []) == outcome.scenario_runs and not outcome.stopped_early
        if not complete:
            err.print("[red]the scenario did not finish on every station[/red]")
        return 0 if complete and all(r.passed for r in results or []) else 1
    return 0


class _Progress:
    """Live numbers on stderr: a Rich Live table on a terminal, a line every 10 s otherwise.

    The runner calls :meth:`update` with O(1) gauges a few times a second; rendering happens
    here, on the loop, and costs well under a millisecond."""

    def __init__(self, console: Any, t0: float) -> None:
        self.console = console
        self.t0 = t0
        self.live: Any = None
        self._last_line = 0.0

    def __enter__(self) -> _Progress:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, auto_refresh=False, transient=True)
            self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()

    def update(self, g: dict[str, int]) -> None:
        elapsed = time.monotonic() - self.t0
        if self.live is not None:
            from rich.table import Table

            table = Table.grid(padding=(0, 2))
            for _ in range(6):
                table.add_column(justify="right")
            table.add_row(
                "elapsed", "started", "connected", "booted", "charging", "queued msgs", style="bold"
            )
            table.add_row(
                f"{elapsed:.0f} s",
                f"{g.get('started', 0)}/{g.get('total', 0)}",
                str(g.get("connected", 0)),
                str(g.get("booted", 0)),
                str(g.get("charging", 0)),
                str(g.get("queued", 0)),
            )
            table.add_row(
                "calls", "errors", "reconnects", "faulted", "sessions", "not started", style="bold"
            )
            table.add_row(
                str(g.get("calls", 0)),
                str(g.get("errors", 0)),
                str(g.get("reconnects", 0)),
                str(g.get("faulted", 0)),
                str(g.get("sessions", 0)),
                str(g.get("failed_to_start", 0)),
            )
            self.live.update(table, refresh=True)
        elif elapsed - self._last_line >= 10.0:
            self._last_line = elapsed
            print(
                f"[{elapsed:.0f} s] started {g.get('started', 0)}/{g.get('total', 0)}"
                + (f" ({failed} failed to start)" if (failed := g.get("failed_to_start")) else "")
                + ", "
                f"connected {g.get('connected', 0)}, booted {g.get('booted', 0)}, "
                f"charging {g.get('charging', 0)}, queued {g.get('queued', 0)}, "
                f"calls {g.get('calls', 0)}, errors {g.get('errors', 0)}",
                file=sys.stderr,
                flush=True,
            )
