"""CSMS load benchmark: ocppkit vs a mobilityhouse-library CSMS vs a raw echo server, one run.

Every server runs as its own process pinned to one core (``taskset -c 0``), freshly started
for each scenario (an empty SQLite file for ocppkit); the load generator (``bench/loadgen.py``)
runs in this process, pinned to the other core. Servers are interleaved inside each scenario
so that a drift in the machine's load touches all three alike.

* ``echo``: ``bench/echo_server.py``, raw ``websockets`` answering canned CALLRESULTs: the
  ceiling of a Python WebSocket server on one core, and the check that the generator is not
  the bottleneck (its CPU is reported; at >= 90 % the echo figure is a lower bound).
* ``reference``: ``bench/reference_csms.py``, the mobilityhouse ``ocpp`` 1.6 CSMS as its
  README writes it; it stores nothing.
* ``ocppkit``: ``python -m ocppkit csms`` with SQLite; it stores every boot, heartbeat,
  transaction, MeterValues sample and frame (message log). The per-station message-rate limit
  is raised through ``OCPPKIT_MAX_MESSAGES_PER_SECOND`` / ``OCPPKIT_MESSAGE_BURST`` because
  a closed loop is many times a real station's rate; every other setting is the default.

Scenarios: ``heartbeat`` and ``metervalues`` closed loop at 100 and 1 000 stations;
``open-loop`` 5 000 stations x one MeterValues per 10 s for 60 s; ``storm`` 5 000 stations
connecting and booting at once; ``idle`` server RSS per idle booted station (5 000).
The targets of the issue are checked as ratios of the same run.

Reproduce (about 10 minutes; needs a quiet 2-core machine)::

    .venv/bin/python -m bench.bench_csms --json bench-csms.json

Smaller: ``--scenarios heartbeat,metervalues --servers reference,ocppkit``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import loadgen

__all__ = ["Config", "run"]

SERVERS = ("echo", "reference", "ocppkit")
SCENARIOS = ("heartbeat", "metervalues", "open-loop", "storm", "idle")
#: Generator CPU above which the generator, not the server, may be the limit.
GENERATOR_BOUND_PCT = 90.0
#: The rate limit is for real stations; a closed loop sends hundreds of CALLs/s per station.
OCPPKIT_ENV = {"OCPPKIT_MAX_MESSAGES_PER_SECOND": "100000", "OCPPKIT_MESSAGE_BURST": "1000000"}


@dataclass
class Config:
    """What one run measures, and how big."""

    servers: tuple[str, ...] = SERVERS
    scenarios: tuple[str, ...] = SCENARIOS
    closed_loop_stations: tuple[int, ...] = (100, 1000)
    duration: float = 10.0
    warmup: float = 2.0
    open_loop_stations: int = 5000
    open_loop_period: float = 10.0
    open_loop_duration: float = 60.0
    storm_stations: int = 5000
    idle_stations: int = 5000
    idle_settle: float = 5.0
    server_cpu: int | None = 0
    generator_cpu: int | None = 1
    reference_backlog: int | None = None
    keep_logs: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# -- servers ----------------------------------------------------------------------------------


#: How each server announces its port (all are started with port 0: no fixed port).
_LISTENING = {
    "echo": re.compile(rb"listening on [^:\s]+:(\d+)"),
    "reference": re.compile(rb"listening on [^:\s]+:(\d+)"),
    "ocppkit": re.compile(rb"csms listening.* port=(\d+)"),
}


def _command(server: str, port: int, workdir: Path, config: Config) -> list[str]:
    python = sys.executable
    if server == "echo":
        command = [python, "-m", "bench.echo_server", "--port", str(port)]
    elif server == "reference":
        command = [python, "-m", "bench.reference_csms", "--port", str(port)]
        if config.reference_backlog is not None:
            command += ["--backlog", str(config.reference_backlog)]
    elif server == "ocppkit":
        database = f"sqlite+aiosqlite:///{workdir / 'bench.sqlite3'}"
        command = [python, "-m", "ocppkit", "csms", "--port", str(port), "--api-port", "0"]
        command += ["--database", database]
    else:
        raise ValueError(f"unknown server {server!r}")
    if config.server_cpu is not None:
        command = ["taskset", "-c", str(config.server_cpu), *command]
    return command


@contextlib.contextmanager
def _server(server: str, config: Config, name: str = "") -> Iterator[tuple[str, int, Path]]:
    """Start ``server`` in a fresh directory; yield (url, pid, log file); stop it after."""
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{server}-"))
    log = workdir / "server.log"
    env = {**os.environ, **OCPPKIT_ENV} if server == "ocppkit" else dict(os.environ)
    root = Path(__file__).resolve().parent.parent
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    with open(log, "wb") as out:
        process = subprocess.Popen(
            _command(server, 0, workdir, config),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
        )
    try:
        port = _wait_listening(_LISTENING[server], process, log)
        yield f"ws://127.0.0.1:{port}/ocpp", process.pid, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if config.keep_logs is not None:
            config.keep_logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(log, config.keep_logs / f"{name or server}-{server}.log")
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_listening(pattern: re.Pattern[bytes], process: subprocess.Popen[bytes], log: Path) -> int:
    """The port the server logged once listening (it was started with port 0)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = pattern.search(log.read_bytes())
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        time.sleep(0.1)
    raise RuntimeError(f"server did not report its port within 60 s: {log.read_text()[-2000:]}")


# -- scenarios --------------------------------------------------------------------------------


@dataclass
class Case:
    key: str
    label: str
    measure: Callable[[loadgen.Target], Coroutine[Any, Any, dict[str, Any]]]


def _cases(config: Config) -> list[Case]:
    cases: list[Case] = []
    for action, name in (("Heartbeat", "heartbeat"), ("MeterValues", "metervalues")):
        if name in config.scenarios:
            for n in config.closed_loop_stations:

                def closed(target: loadgen.Target, n: int = n, action: str = action) -> Any:
                    return loadgen.closed_loop(
                        target,
                        stations=n,
                        action=action,
                        duration=config.duration,
                        warmup=config.warmup,
                    )

                cases.append(Case(f"{name}_{n}", f"{action} closed loop, {n} st.", closed))
    if "open-loop" in config.scenarios:
        n, period = config.open_loop_stations, config.open_loop_period

        def open_(target: loadgen.Target) -> Any:
            return loadgen.open_loop(
                target, stations=n, period=period, duration=config.open_loop_duration
            )

        cases.append(
            Case(f"open_loop_{n}", f"MeterValues open loop, {n} st. x 1/{period:g}s", open_)
        )
    if "storm" in config.scenarios:
        n_storm = config.storm_stations
        cases.append(
            Case(
                f"storm_{n_storm}",
                f"connect+boot storm, {n_storm} st.",
                lambda target: loadgen.storm(target, stations=n_storm),
            )
        )
    if "idle" in config.scenarios:
        n_idle = config.idle_stations
        cases.append(
            Case(
                f"idle_{n_idle}",
                f"RSS per idle connection, {n_idle} st.",
                lambda target: loadgen.idle_rss(target, stations=n_idle, settle=config.idle_settle),
            )
        )
    return cases


def run(config: Config, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure every case against every server; returns the results, ratios and targets."""
    if config.generator_cpu is not None:
        os.sched_setaffinity(0, {config.generator_cpu})
    loadgen.raise_nofile()
    results: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    for case in _cases(config):
        labels[case.key] = case.label
        results[case.key] = {}
        for server in config.servers:
            progress(f"{case.label}: {server} ...")
            with _server(server, config, case.key) as (url, pid, _log):
                target = loadgen.Target(
                    url,
                    start_transaction=server == "ocppkit",
                    server_pid=pid,
                    id_prefix="bench",
                )
                figures: dict[str, Any]
                try:
                    figures = asyncio.run(case.measure(target))
                except Exception as exc:  # one failed case must not lose the others
                    figures = {"error": f"{type(exc).__name__}: {exc}"}
            results[case.key][server] = figures
            progress(f"    {_headline(case.key, figures)}")
    return {
        "results": results,
        "labels": labels,
        "checks": _checks(results),
        "meta": _meta(config),
    }


def _headline(key: str, figures: dict[str, Any]) -> str:
    if "error" in figures:
        return f"ERROR {figures['error']}"
    if key.startswith(("heartbeat", "metervalues", "open_loop")):
        text = f"{figures['msg_per_s']:,.0f} msg/s p50 {figures['p50_ms']} ms"
        text += f" p99 {figures['p99_ms']} ms max {figures['max_ms']} ms"
        if "server_cpu_us_per_msg" in figures:
            text += f", server {figures['server_cpu_us_per_msg']} µs CPU/msg"
    elif key.startswith("storm"):
        text = f"all booted in {figures['all_booted_s']} s ({figures['booted']} booted)"
    else:
        text = f"{figures['kib_per_connection']} KiB per idle connection"
    cpu = [f"{k.split('_')[0]} {figures[k]}%" for k in ("server_cpu_pct", "generator_cpu_pct",
           "foreign_cpu_pct") if k in figures]  # fmt: skip
    return text + (f"  [cpu: {', '.join(cpu)}]" if cpu else "")


# -- checks -----------------------------------------------------------------------------------


def _value(results: dict[str, dict[str, Any]], key: str, server: str, name: str) -> float | None:
    figures = results.get(key, {}).get(server, {})
    value = figures.get(name)
    return float(value) if isinstance(value, int | float) else None


def _checks(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each computed from this run's figures."""
    checks: list[dict[str, Any]] = []

    def add(name: str, value: float | None, target: str, ok: bool | None, note: str = "") -> None:
        checks.append(
            {
                "check": name,
                "value": None if value is None else round(value, 3),
                "target": target,
                "met": ok,
                "note": note,
            }
        )

    for key in results:
        ours = _value(results, key, "ocppkit", "msg_per_s")
        ref = _value(results, key, "reference", "msg_per_s")
        echo = _value(results, key, "echo", "msg_per_s")
        if key.startswith(("heartbeat", "metervalues")):
            if ours is not None and ref:
                ratio = ours / ref
                add(f"{key}: ocppkit / reference", ratio, ">= 4", ratio >= 4)
            if key.startswith("heartbeat") and ours is not None and echo:
                gen = _value(results, key, "echo", "generator_cpu_pct") or 0.0
                note = (
                    f"generator at {gen:.0f} % CPU against echo: the ceiling is a lower bound"
                    if gen >= GENERATOR_BOUND_PCT
                    else ""
                )
                share = ours / echo
                add(f"{key}: ocppkit / echo ceiling", share, ">= 0.70", share >= 0.7, note)
        elif key.startswith("open_loop"):
            p99 = _value(results, key, "ocppkit", "p99_ms")
            ref_p99 = _value(results, key, "reference", "p99_ms")
            note = f"reference p99 {ref_p99} ms" if ref_p99 is not None else ""
            add(f"{key}: ocppkit p99 ms", p99, "< 10", None if p99 is None else p99 < 10, note)
        elif key.startswith("storm"):
            secs = _value(results, key, "ocppkit", "all_booted_s")
            failed = _value(results, key, "ocppkit", "failed")
            ref_s = _value(results, key, "reference", "all_booted_s")
            note = f"reference {ref_s} s" if ref_s is not None else ""
            if failed:
                note = f"{failed:.0f} stations never booted; {note}"
            met = None if secs is None and not failed else bool(secs is not None and secs <= 2)
            add(f"{key}: ocppkit all booted s", secs, "<= 2", met, note)
        elif key.startswith("idle"):
            kib = _value(results, key, "ocppkit", "kib_per_connection")
            ref_kib = _value(results, key, "reference", "kib_per_connection")
            note = f"reference {ref_kib} KiB" if ref_kib is not None else ""
            add(
                f"{key}: ocppkit KiB per idle conn.",
                kib,
                "<= 20",
                None if kib is None else kib <= 20,
                note,
            )
    return checks


def _meta(config: Config) -> dict[str, Any]:
    load1, load5, _ = os.getloadavg()
    return {
        "python": platform.python_version(),
        "ocppkit": version("ocppkit"),
        "ocpp": version("ocpp"),
        "websockets": version("websockets"),
        "cpus": os.cpu_count(),
        "server_cpu": config.server_cpu,
        "generator_cpu": config.generator_cpu,
        "loadavg_at_end": [round(load1, 2), round(load5, 2)],
        "command": "python -m bench.bench_csms " + " ".join(sys.argv[1:]),
        "config": {k: v for k, v in vars(config).items() if k not in ("extra", "keep_logs")},
    }


# -- report -----------------------------------------------------------------------------------


def _cell(figures: dict[str, Any] | None, key: str) -> str:
    if not figures:
        return "-"
    if "error" in figures:
        return "error"
    if key.startswith(("heartbeat", "metervalues", "open_loop")):
        return f"{figures['msg_per_s']:,.0f}/s {figures['p50_ms']:.1f}/{figures['p99_ms']:.1f}ms"
    if key.startswith("storm"):
        value = figures["all_booted_s"]
        return f"{value:.2f} s" if value is not None else f"{figures['failed']} failed"
    return f"{figures['kib_per_connection']:.1f} KiB"


def format_report(report: dict[str, Any]) -> str:
    """The table (msg/s and p50/p99 per server, or storm seconds, or KiB) and the checks."""
    results, servers = report["results"], report["meta"]["config"]["servers"]
    lines = [f"{'case':<44}" + "".join(f"{s:>26}" for s in servers)]
    lines.append("-" * len(lines[0]))
    for key, per_server in results.items():
        row = f"{report['labels'][key]:<44}"
        row += "".join(f"{_cell(per_server.get(s), key):>26}" for s in servers)
        lines.append(row)
    lines.append("")
    lines.append("cells: msg/s p50/p99 ms | storm: s until all booted | idle: KiB per connection")
    busiest = max(
        (f.get("foreign_cpu_pct", 0.0) for r in results.values() for f in r.values()), default=0.0
    )
    if busiest >= 10:
        lines.append(
            f"WARNING: other processes used up to {busiest:.0f} % of a core during the windows;"
            " these figures are preliminary."
        )
    lines.append("")
    for check in report["checks"]:
        met = {True: "met", False: "NOT met", None: "n/a"}[check["met"]]
        value = "-" if check["value"] is None else f"{check['value']:g}"
        note = f"  ({check['note']})" if check["note"] else ""
        lines.append(f"{check['check']:<48}{value:>10}  target {check['target']:<7} {met}{note}")
    lines.append("")
    lines.append(f"reproduce: .venv/bin/{report['meta']['command']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--stations", default="100,1000", help="closed loop station counts")
    parser.add_argument("--duration", type=float, default=10.0, help="closed loop window, s")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--open-loop-stations", type=int, default=5000)
    parser.add_argument("--open-loop-period", type=float, default=10.0)
    parser.add_argument("--open-loop-duration", type=float, default=60.0)
    parser.add_argument("--storm-stations", type=int, default=5000)
    parser.add_argument("--idle-stations", type=int, default=5000)
    parser.add_argument("--idle-settle", type=float, default=5.0, help="idle: s to settle")
    parser.add_argument("--reference-backlog", type=int, help="listen backlog of the reference")
    parser.add_argument("--keep-logs", type=Path, help="copy each server's log to this folder")
    parser.add_argument("--server-cpu", default="0", help="core for the servers, or 'none'")
    parser.add_argument("--generator-cpu", default="1", help="core for the generator, or 'none'")
    args = parser.parse_args()

    def core(value: str) -> int | None:
        return None if value == "none" else int(value)

    config = Config(
        servers=tuple(s for s in args.servers.split(",") if s),
        scenarios=tuple(s for s in args.scenarios.split(",") if s),
        closed_loop_stations=tuple(int(n) for n in args.stations.split(",") if n),
        duration=args.duration,
        warmup=args.warmup,
        open_loop_stations=args.open_loop_stations,
        open_loop_period=args.open_loop_period,
        open_loop_duration=args.open_loop_duration,
        storm_stations=args.storm_stations,
        idle_stations=args.idle_stations,
        idle_settle=args.idle_settle,
        server_cpu=core(args.server_cpu),
        generator_cpu=core(args.generator_cpu),
        reference_backlog=args.reference_backlog,
        keep_logs=args.keep_logs,
    )
    unknown = (set(config.servers) - set(SERVERS)) | (set(config.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown server or scenario: {', '.join(sorted(unknown))}")
    report = run(config, progress=lambda text: print(text, flush=True))
    print()
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
