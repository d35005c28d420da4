"""The fleet runner: N stations from a template, ramped up, driven, measured, stopped.

Why: one process should carry thousands of stations (the event loop, not threads, does the
concurrency), start them fast but not all in the same millisecond (``ramp`` stations per
second), give them one shared :class:`~ocppkit.station.store.StationStore` (one SQLite
writer thread for the whole fleet, group commits across stations), and stop them all
cleanly — each closes its socket with 1000 — on Ctrl-C or at the end of ``duration``.
When one core is not enough, ``processes`` splits the fleet over worker processes.

Theory of operation
-------------------
:func:`run_fleet` runs in one event loop:

1. open the store; start a **ticker** that hands the live numbers
   (:meth:`FleetStats.gauges` plus the store's queue length) to ``on_tick`` a few times a
   second — O(1) per tick, whatever the fleet size;
2. **ramp**: start stations in small batches every 20 ms at ``ramp`` per second; each gets
   a task running either the behaviour model (``Station.run()`` plus, once the station
   first booted, one :func:`~ocppkit.fleet.behaviour.drive_connector` per connector) or the
   scenario
   (:class:`~ocppkit.fleet.scenario.ScenarioRun`, which starts and stops its station);
   a station whose configuration is refused — by ``StationConfig`` at once, or by
   ``Station.restore()`` once its stored state is read (``StationConfigError``: security
   profile 3 with no client certificate, configured or in the store) — is not counted as
   started but as **failed to start** (:meth:`FleetStats.on_start_failed`, the outcome's
   ``start_error`` keeps the first reason, so the CLI can say why none started);
3. wait for ``duration`` seconds after the last station started (behaviour; or until no
   station runs any more, e.g. none started) or for every scenario to finish (scenario;
   ``duration`` then caps the run), or for ``stop``;
4. **stop**: cancel the drivers, ``await station.stop()`` for all (at most
   ``stop_concurrency`` at once), wait for their run tasks, close the store.

:func:`run_fleet_processes` gives each of K worker processes (``spawn``) every K-th
station and ``ramp / K``; a worker runs :func:`run_fleet` with its own store file
(``<store>.w<k>``) and sends ``("tick", k, gauges)`` while it runs and
``("done", k, stats, results, error)`` at the end through a multiprocessing queue; the
parent sums the ticks for the live display and merges the statistics (HDR histograms add).
A stop (Ctrl-C) is passed to the workers through an ``Event``; they stop as in step 4.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import queue as queue_module
import random
import signal
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from ocppkit.fleet.behaviour import (
    BehaviourCounters,
    BehaviourSettings,
    drive_connector,
    plan_sessions,
)
from ocppkit.fleet.scenario import FrameLog, Scenario, ScenarioResult, ScenarioRun
from ocppkit.fleet.stats import FleetStats
from ocppkit.fleet.template import FleetTemplate

__all__ = [
    "FleetObserver",
    "FleetOutcome",
    "FleetPlan",
    "run_fleet",
    "run_fleet_processes",
    "station_config",
]

_log = structlog.get_logger("ocppkit.fleet")

Tick = Callable[[dict[str, int]], None]


@dataclass(frozen=True, kw_only=True)
class FleetPlan:
    """Everything a fleet run needs; picklable (sent to worker processes)."""

    stations: Sequence[Mapping[str, Any]]
    """``StationConfig`` keyword arguments, one per station (``FleetTemplate.station_kwargs``)."""
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)
    scenario: Scenario | None = None
    duration: float | None = None
    """Behaviour: seconds to run after the ramp (None: until stopped). Scenario: a cap."""
    ramp: float = 200.0
    """Stations started per second (> 0)."""
    store_path: str | None = None
    """The shared station store (SQLite); None: a temporary file removed at the end."""
    trace_dir: str | None = None
    """Write every station's frames to ``<trace_dir>/<station id>.log``."""
    stop_concurrency: int = 500
    tick_interval: float = 0.25

    @classmethod
    def from_template(
        cls, template: FleetTemplate, count: int, csms_url: str, *, seed: int = 0, **options: Any
    ) -> FleetPlan:
        """``count`` stations of ``template`` with its behaviour settings."""
        return cls(
            stations=template.station_kwargs(count, csms_url, seed=seed),
            behaviour=template.behaviour,
            **options,
        )


@dataclass(slots=True)
class FleetOutcome:
    """What a run produced besides the statistics."""

    scenario_results: list[ScenarioResult] = field(default_factory=list)
    started: int = 0
    """Stations running: launched, and not refused by their configuration."""
    failed_to_start: int = 0
    """Stations whose configuration was refused, when made or when their state was restored."""
    start_error: str | None = None
    """The first of those refusals, ``"station <id>: <reason>"``."""
    scenario_runs: int = 0
    """Scenario runs launched (each ends with a result unless stopped or crashed)."""
    stopped_early: bool = False


def station_config(
    kwargs: Mapping[str, Any],
    *,
    scenario: Scenario | None = None,
    trace_dir: str | None = None,
) -> Any:
    """A ``StationConfig`` from template keywords, the scenario's ``[station]`` overrides and
    the trace directory. Raises :class:`ValueError` for a configuration the runtime refuses."""
    from ocppkit.station.station import StationConfig

    values = dict(kwargs)
    if scenario is not None:
        values.update(scenario.station)
    if trace_dir is not None:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in values["station_id"])
        values["trace_file"] = str(Path(trace_dir) / f"{safe}.log")
    return StationConfig(**values)


class FleetObserver:
    """The ``StationObserver`` of a fleet: statistics for all, frame logs for scenarios."""

    __slots__ = ("logs", "stats")

    def __init__(self, stats: FleetStats) -> None:
        self.stats = stats
        self.logs: dict[str, FrameLog] = {}

    def on_frame(self, station_id: str, direction: str, frame: str, at: float) -> None:
        self.stats.on_frame(station_id, direction, frame, at)
        log = self.logs.get(station_id)
        if log is not None:
            log.append(direction, frame, at)

    def on_call(
        self, station_id: str, action: str, latency: float, error: str | None, queued_for: float
    ) -> None:
        self.stats.on_call(station_id, action, latency, error, queued_for)

    def on_state(self, station_id: str, state: str) -> None:
        self.stats.on_state(station_id, state)


async def run_fleet(
    plan: FleetPlan,
    stats: FleetStats,
    *,
    stop: asyncio.Event | None = None,
    on_tick: Tick | None = None,
) -> FleetOutcome:
    """Run the fleet in this event loop until ``duration``, the scenarios' end or ``stop``."""
    from ocppkit.station.store import StationStore

    if plan.ramp <= 0:
        raise ValueError(f"ramp must be > 0, got {plan.ramp}")
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    outcome = FleetOutcome()
    counters = BehaviourCounters()
    observer = FleetObserver(stats)
    if plan.trace_dir is not None:
        await asyncio.to_thread(Path(plan.trace_dir).mkdir, parents=True, exist_ok=True)
    temp_dir: tempfile.TemporaryDirectory[str] | None = None
    store_path = plan.store_path
    if store_path is None:
        temp_dir = tempfile.TemporaryDirectory(prefix="ocppkit-fleet-")
        store_path = str(Path(temp_dir.name) / "stations.sqlite3")
    store = await StationStore.open(store_path)
    if store.incidents:  # a damaged --store file was set aside (the store logs each)
        stats.extra["store_files_set_aside"] += len(store.incidents)
    queued = [0]
    stations: list[Any] = []
    runs: list[asyncio.Task[Any]] = []
    drivers: list[asyncio.Task[None]] = []
    scenario_tasks: list[asyncio.Task[ScenarioResult]] = []
    refused: set[str] = set()

    def start_failed(station_id: str, exc: Exception, *, launched: bool) -> None:
        """Count ``station_id`` as failed to start (once; a ``launched`` one no longer as
        started), with ``exc`` as the reason."""
        if station_id in refused:
            return
        refused.add(station_id)
        if launched:
            outcome.started -= 1
        outcome.failed_to_start += 1
        if outcome.start_error is None:
            outcome.start_error = f"station {station_id}: {exc}"
        stats.on_start_failed(station_id, str(exc))

    async def run_station(station: Any, driver: asyncio.Task[None] | None = None) -> None:
        """``station.run()``; a ``StationConfigError`` (raised before it connects; the station
        logs it) makes it a station that failed to start, and ends its ``driver``."""
        from ocppkit.station.station import StationConfigError

        try:
            await station.run()
        except StationConfigError as exc:
            if driver is not None:
                driver.cancel()
            start_failed(station.station_id, exc, launched=True)
            raise

    async def ticker() -> None:
        last_count = 0.0
        while True:
            now = loop.time()
            if now - last_count >= 1.0:
                last_count = now
                with contextlib.suppress(Exception):
                    queued[0] = await store.count()
            if on_tick is not None:
                gauges = stats.gauges()
                gauges["queued"] = queued[0]
                gauges["started"] = outcome.started
                gauges["total"] = len(plan.stations)
                gauges["sessions"] = counters.sessions
                on_tick(gauges)
            await asyncio.sleep(plan.tick_interval)

    def start_behaviour(config: Any) -> None:
        from ocppkit.station.station import Station

        station = Station(config, store=store, observer=observer)
        if config.trace_file is not None:
            station.trace = True
        stations.append(station)
        driver = asyncio.create_task(drive_station(station, config))
        drivers.append(driver)
        runs.append(
            asyncio.create_task(run_station(station, driver), name=f"station {config.station_id}")
        )

    async def drive_station(station: Any, config: Any) -> None:
        """The behaviour starts once the station first booted (EVs of a station that never
        came online would only test its offline refusals); session times count from then."""
        await station.wait_for_state(lambda snap: bool(snap.get("online")), 1e9)
        started_at = loop.time()
        async with asyncio.TaskGroup() as group:
            for connector in range(1, config.connectors + 1):
                rng = random.Random(config.seed * 1000 + connector)
                group.create_task(
                    drive_connector(
                        station,
                        connector,
                        plan_sessions(rng, plan.behaviour),
                        clock=loop.time,
                        started_at=started_at,
                        counters=counters,
                        station_id=config.station_id,
                    )
                )

    def start_scenario(config: Any, scenario: Scenario) -> None:
        from ocppkit.station.station import Station

        def make_station() -> Any:
            station = Station(config, store=store, observer=observer)
            if config.trace_file is not None:
                station.trace = True
            stations.append(station)
            return station

        log = FrameLog()
        observer.logs[config.station_id] = log
        run = ScenarioRun(
            scenario, config.station_id, make_station, log, clock=loop.time, run_station=run_station
        )
        scenario_tasks.append(asyncio.create_task(run.run()))
        outcome.scenario_runs += 1

    tick_task = asyncio.create_task(ticker())
    stop_wait = asyncio.create_task(stop.wait())
    begun = loop.time()
    try:
        # Ramp: batches every 20 ms at `ramp` per second.
        batch_interval = 0.02
        for index, kwargs in enumerate(plan.stations):
            if stop.is_set():
                outcome.stopped_early = True
                break
            due = begun + index / plan.ramp
            delay = due - loop.time()
            if delay > batch_interval:
                await asyncio.sleep(delay)
            elif index % 50 == 49:
                await asyncio.sleep(0)  # let started stations connect meanwhile
            try:
                config = station_config(kwargs, scenario=plan.scenario, trace_dir=plan.trace_dir)
            except (ValueError, TypeError) as exc:
                start_failed(str(kwargs.get("station_id")), exc, launched=False)
                _log.warning(
                    "station not started", station_id=kwargs.get("station_id"), error=str(exc)
                )
                continue
            outcome.started += 1
            if plan.scenario is None:
                start_behaviour(config)
            else:
                start_scenario(config, plan.scenario)
        ramped = loop.time()
        # Run.
        if plan.scenario is None:
            wait_for: set[asyncio.Future[Any]] = {stop_wait}
            if plan.duration is not None:
                remaining = max(0.0, ramped + plan.duration - loop.time())
                wait_for.add(asyncio.ensure_future(asyncio.sleep(remaining)))
            # A station's run ends only with stop() or a refusal: when every one ended (none
            # started, say), nothing is left to run; without a duration we would wait forever.
            ended = asyncio.wait(runs) if runs else asyncio.sleep(0)
            wait_for.add(asyncio.ensure_future(ended))
            done, pending = await asyncio.wait(wait_for, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                if task is not stop_wait:
                    task.cancel()
            outcome.stopped_early = stop.is_set()
        elif scenario_tasks:
            all_done: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(*scenario_tasks))
            cap = None if plan.duration is None else max(0.0, begun + plan.duration - loop.time())
            either: set[asyncio.Future[Any]] = {all_done, stop_wait}
            done, _ = await asyncio.wait(either, timeout=cap, return_when=asyncio.FIRST_COMPLETED)
            if all_done not in done:
                outcome.stopped_early = True
                for task in scenario_tasks:
                    task.cancel()
                await asyncio.gather(*scenario_tasks, return_exceptions=True)
                all_done.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await all_done
            for task in scenario_tasks:
                if not task.cancelled() and task.exception() is None:
                    outcome.scenario_results.append(task.result())
    finally:
        # Stop: drivers first (no new actions), then every station, then the store.
        for task in drivers:
            task.cancel()
        for result in await asyncio.gather(*drivers, return_exceptions=True):
            if isinstance(result, Exception):
                stats.extra["behaviour_driver_failures"] += 1
                _log.warning("behaviour driver failed", error=repr(result))
        semaphore = asyncio.Semaphore(plan.stop_concurrency)

        async def stop_one(station: Any) -> None:
            async with semaphore:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(station.stop("fleet stopping"), 10)

        await asyncio.gather(*(stop_one(s) for s in stations), return_exceptions=True)
        if runs:
            _, slow = await asyncio.wait(runs, timeout=15)
            for task in slow:
                task.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
        stats.extra["behaviour_sessions"] += counters.sessions
        stats.extra["behaviour_sessions_accepted"] += counters.accepted
        stats.extra["behaviour_sessions_refused"] += counters.refused
        stats.extra["behaviour_action_errors"] += counters.errors
        if plan.scenario is not None:
            for key in [k for k in stats.extra if k.startswith("behaviour_")]:
                del stats.extra[key]
        stop_wait.cancel()
        tick_task.cancel()
        await asyncio.gather(stop_wait, tick_task, return_exceptions=True)
        await store.close()
        if temp_dir is not None:
            temp_dir.cleanup()
    return outcome


# Worker processes -------------------------------------------------------------------------
def _worker_main(
    plan: FleetPlan,
    index: int,
    results: Any,
    stop_flag: Any,
    log_level: str,
) -> None:
    """A worker process: run its share of the fleet, report ticks and the final numbers."""
    from ocppkit.logs import configure_logging

    configure_logging(log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent says when to stop

    async def main() -> tuple[dict[str, Any], list[ScenarioResult], FleetOutcome]:
        stats = FleetStats()
        stop = asyncio.Event()

        async def watch_stop() -> None:
            while not stop_flag.is_set():  # noqa: ASYNC110 - a multiprocessing Event
                await asyncio.sleep(0.1)
            stop.set()

        watcher = asyncio.create_task(watch_stop())

        def tick(gauges: dict[str, int]) -> None:
            results.put(("tick", index, gauges))

        try:
            outcome = await run_fleet(plan, stats, stop=stop, on_tick=tick)
        finally:
            watcher.cancel()
        return stats.to_wire(), outcome.scenario_results, outcome

    try:
        wire, scenario_results, outcome = asyncio.run(main())
    except BaseException as exc:
        results.put(("done", index, None, [], f"{type(exc).__name__}: {exc}"))
        return
    outcome.scenario_results = []
    results.put(("done", index, wire, scenario_results, outcome))


def split_plan(plan: FleetPlan, processes: int) -> list[FleetPlan]:
    """Every ``processes``-th station to each worker, ``ramp / processes`` each."""
    store = plan.store_path
    plans = []
    for k in range(processes):
        share = list(plan.stations[k::processes])
        if not share:
            continue
        plans.append(
            replace(
                plan,
                stations=share,
                ramp=plan.ramp / processes,
                store_path=None if store is None else f"{store}.w{k}",
            )
        )
    return plans


async def run_fleet_processes(
    plan: FleetPlan,
    stats: FleetStats,
    processes: int,
    *,
    stop: asyncio.Event | None = None,
    on_tick: Tick | None = None,
    log_level: str = "warning",
) -> FleetOutcome:
    """Run the fleet over ``processes`` worker processes; merge their statistics into
    ``stats``. Raises :class:`RuntimeError` when a worker failed."""
    stop = stop if stop is not None else asyncio.Event()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    stop_flag = context.Event()
    plans = split_plan(plan, processes)
    workers = [
        context.Process(
            target=_worker_main,
            args=(share, k, results, stop_flag, log_level),
            name=f"ocppkit-fleet-{k}",
            daemon=True,
        )
        for k, share in enumerate(plans)
    ]
    for worker in workers:
        worker.start()
    outcome = FleetOutcome()
    ticks: dict[int, dict[str, int]] = {}
    finished: set[int] = set()
    errors: list[str] = []
    last_tick = 0.0
    try:
        while len(finished) < len(workers):
            if stop.is_set() and not stop_flag.is_set():
                stop_flag.set()
            try:
                message = results.get_nowait()
            except queue_module.Empty:
                if all(not w.is_alive() for w in workers) and results.empty():
                    dead = [k for k, w in enumerate(workers) if k not in finished]
                    errors.extend(f"worker {k} exited without a report" for k in dead)
                    break
                await asyncio.sleep(0.05)
                continue
            kind, k = message[0], message[1]
            if kind == "tick":
                ticks[k] = message[2]
                now = time.monotonic()
                if on_tick is not None and now - last_tick >= plan.tick_interval:
                    last_tick = now
                    on_tick(_sum_ticks(ticks.values()))
                continue
            finished.add(k)
            _, _, wire, scenario_results, worker_outcome = message
            if wire is None:
                errors.append(f"worker {k}: {worker_outcome}")
                continue
            stats.merge_wire(wire)
            outcome.scenario_results.extend(scenario_results)
            outcome.started += worker_outcome.started
            outcome.failed_to_start += worker_outcome.failed_to_start
            outcome.scenario_runs += worker_outcome.scenario_runs
            if outcome.start_error is None:
                outcome.start_error = worker_outcome.start_error
            outcome.stopped_early |= worker_outcome.stopped_early
    finally:
        stop_flag.set()
        for worker in workers:
            await asyncio.get_running_loop().run_in_executor(None, worker.join, 30)
            if worker.is_alive():
                worker.kill()
        results.close()
    if errors:
        raise RuntimeError("; ".join(errors))
    outcome.scenario_results.sort(key=lambda r: r.station_id)
    return outcome


def _sum_ticks(ticks: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for gauges in ticks:
        for key, value in gauges.items():
            total[key] = total.get(key, 0) + value
    return total


def default_processes() -> int:
    """How many worker processes make sense here (the usable cores)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
