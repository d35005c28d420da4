"""``ocppkit station``: one emulated charging station, driven from a line console.

Why a console: a developer reproducing a field bug wants to type ``plug``, ``auth TAG``,
``unplug`` and watch the frames go by (``trace on``); a script pipes the same lines in.
The station's state (configuration, queue, transactions) lives in an SQLite file
(``--state``), so a restart continues where the last run stopped (a transaction that was
running ends with reason PowerLoss).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import stat
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

__all__ = ["COMMANDS_HELP", "Console", "station_command"]

COMMANDS_HELP = """commands:
  plug [N]             plug the cable in on connector N (default 1)
  unplug [N]           unplug it (stops the transaction: EVDisconnected)
  park [N]             an EV drives into the parking bay of connector N (bay sensor)
  leave_bay [N]        the EV leaves the bay (unplug first; 2.0.1: EVDeparted); alias: leave
  auth TAG [N]         present id token TAG on connector N (starts or stops a session)
  start [N] [TAG]      plug + authorize + start (TAG defaults to EMULATOR)
  stop [N] [REASON]    stop the transaction on N (reason Local by default)
  suspend [N] | resume [N]   the EV stops / resumes drawing
  fault [N] [CODE]     raise a fault (1.6 ChargePointErrorCode, default OtherError)
  clear [N]            clear the fault
  status               the station's state as JSON
  trace on|off         print every frame (and append it to --trace FILE)
  help                 this list
  quit                 stop the station and exit"""


class OcppVersionChoice(StrEnum):
    V16 = "1.6"
    V201 = "2.0.1"


class SupplyChoice(StrEnum):
    AC = "ac"
    DC = "dc"


class FirmwareDownloadChoice(StrEnum):
    SIMULATE = "simulate"
    FETCH = "fetch"


class Console:
    """Executes console lines against a station; output goes to ``echo``."""

    def __init__(self, station: Any, echo: Callable[[str], None]) -> None:
        self.station = station
        self.echo = echo

    async def execute(self, line: str) -> bool:
        """Run one line; False when the console should end (quit)."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.echo(f"error: {exc}")
            return True
        if not words:
            return True
        verb, args = words[0].lower(), words[1:]
        st = self.station
        try:
            if verb in ("quit", "exit"):
                return False
            if verb == "help":
                self.echo(COMMANDS_HELP)
            elif verb == "status":
                self.echo(json.dumps(st.snapshot(), indent=2))
            elif verb == "trace":
                st.trace = bool(args) and args[0].lower() == "on"
                self.echo(f"trace {'on' if st.trace else 'off'}")
            elif verb == "plug":
                await st.plug(_int(args, 0))
                self.echo("plugged")
            elif verb == "unplug":
                await st.unplug(_int(args, 0))
                self.echo("unplugged")
            elif verb == "park":
                await st.park(_int(args, 0))
                self.echo("parked")
            elif verb in ("leave_bay", "leave"):  # "leave": the old name, kept for scripts
                await st.leave_bay(_int(args, 0))
                self.echo("left the bay")
            elif verb == "auth":
                if not args:
                    raise ValueError("auth needs an id token: auth TAG [N]")
                self.echo(await st.present_token(args[0], _int(args, 1)))
            elif verb == "start":
                tag = args[1] if len(args) > 1 else "EMULATOR"
                await st.start_transaction(_int(args, 0), tag)
                self.echo("transaction started")
            elif verb == "stop":
                reason = args[1] if len(args) > 1 else "Local"
                await st.stop_transaction(_int(args, 0), reason)
                self.echo("transaction stopped")
            elif verb == "suspend":
                await st.ev_suspend(_int(args, 0))
                self.echo("EV suspended")
            elif verb == "resume":
                await st.ev_resume(_int(args, 0))
                self.echo("EV resumed")
            elif verb == "fault":
                code = args[1] if len(args) > 1 else "OtherError"
                await st.fault(_int(args, 0), code)
                self.echo("faulted")
            elif verb == "clear":
                await st.clear_fault(_int(args, 0))
                self.echo("fault cleared")
            else:
                self.echo(f"error: unknown command {verb!r} (try 'help')")
        except Exception as exc:  # a refused action is reported, the console goes on
            self.echo(f"error: {exc}")
        return True


class _Printer:
    """Prints frames while the station's trace is on (``trace on``)."""

    station: Any = None

    def on_frame(self, station_id: str, direction: str, frame: str, at: float) -> None:
        if self.station is not None and self.station.trace:
            typer.echo(f"{'>>' if direction == 'out' else '<<'} {frame}")

    def on_call(
        self, station_id: str, action: str, latency: float, error: str | None, queued_for: float
    ) -> None:
        if error is not None and self.station is not None and self.station.trace:
            typer.echo(f"!! {action}: {error}")

    def on_state(self, station_id: str, state: str) -> None:
        if self.station is not None and self.station.trace:
            typer.echo(f"-- {state}")


def _int(args: list[str], index: int, default: int = 1) -> int:
    if len(args) <= index:
        return default
    try:
        return int(args[index])
    except ValueError:
        raise ValueError(f"not a connector number: {args[index]!r}") from None


async def _lines() -> Any:
    """Lines from stdin without blocking the loop (a pipe or a terminal; a file is read whole)."""
    fd = sys.stdin.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):
        for line in sys.stdin.read().splitlines():
            yield line
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        while True:
            raw = await reader.readline()
            if not raw:
                return
            yield raw.decode("utf-8", "replace").rstrip("\r\n")
    finally:
        transport.close()


async def _run(config: Any, state: Path, console: bool, http_port: int | None) -> int:
    from ocppkit.station.station import Station
    from ocppkit.station.store import StationStore

    store = await StationStore.open(state)
    for incident in store.incidents:
        typer.echo(f"warning: state file damaged, set aside: {incident.quarantined_to}", err=True)
    station = Station(config, store=store, observer=_Printer())
    station.observer.station = station  # type: ignore[union-attr]
    try:  # what only the stored state tells (profile 3's certificate): before the console
        await station.restore()
    except BaseException:
        await store.close()
        raise
    runner = asyncio.create_task(station.run())
    server = None
    if http_port is not None:
        from ocppkit.commands.station_http import serve_control_api

        server = await serve_control_api(station, http_port)
        typer.echo(f"control API on http://127.0.0.1:{server.port}/status")
    try:
        if console:
            shell = Console(station, typer.echo)
            typer.echo(f"station {config.station_id} -> {config.url} (type 'help')")
            async for line in _lines():
                if not await shell.execute(line):
                    break
                if runner.done():
                    break
        else:
            await runner
    finally:
        if server is not None:
            await server.stop()
        await station.stop("operator quit", drain_timeout=5.0)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(runner, 10)
        await store.close()
    return 0


def station_command(
    csms: Annotated[
        str,
        typer.Option(
            help="CSMS WebSocket URL without the station id, e.g. ws://127.0.0.1:9000/ocpp "
            "(the id is appended as the last path segment)."
        ),
    ],
    station_id: Annotated[str, typer.Option("--id", help="The station id (charge box id).")],
    ocpp: Annotated[
        OcppVersionChoice, typer.Option(help="OCPP version to speak.")
    ] = OcppVersionChoice.V16,
    state: Annotated[
        Path | None,
        typer.Option(
            help="SQLite state file: queue, configuration, transactions "
            "[./ocppkit-station-<id>.sqlite3]."
        ),
    ] = None,
    connectors: Annotated[
        int, typer.Option(min=1, max=64, help="Connectors (1.6) / EVSEs (2.0.1).")
    ] = 1,
    supply: Annotated[
        SupplyChoice, typer.Option(help="AC (phases x voltage x current) or DC supply.")
    ] = SupplyChoice.AC,
    max_current: Annotated[float, typer.Option(min=0, help="AC: amperes per phase.")] = 32.0,
    max_power: Annotated[float, typer.Option(min=0, help="DC: maximum power, W.")] = 50_000.0,
    security_profile: Annotated[
        int,
        typer.Option(
            min=0,
            max=3,
            help="0 none, 1 Basic auth over ws://, 2 Basic auth over wss://, 3 wss:// with a "
            "client certificate. Profiles 1-2 need --password.",
        ),
    ] = 0,
    password: Annotated[
        str | None,
        typer.Option(
            help="Basic-auth password (profiles 1 and 2); OCPPKIT_STATION_PASSWORD also works.",
            envvar="OCPPKIT_STATION_PASSWORD",
        ),
    ] = None,
    ca_file: Annotated[
        Path | None, typer.Option(help="CA bundle (PEM) that signs the CSMS certificate (wss).")
    ] = None,
    client_cert: Annotated[
        Path | None, typer.Option(help="Client certificate, PEM (profile 3).")
    ] = None,
    client_key: Annotated[
        Path | None, typer.Option(help="Private key of --client-cert, PEM (profile 3).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (EV batteries, voltage noise).")] = 0,
    heartbeat_interval: Annotated[
        int | None,
        typer.Option(min=1, help="Heartbeat interval, s [the CSMS's, from BootNotification]."),
    ] = None,
    meter_interval: Annotated[
        int,
        typer.Option(
            min=0,
            help="Seconds between meter values in a transaction at first start "
            "(MeterValueSampleInterval / TxUpdatedInterval) [60].",
        ),
    ] = 60,
    trace: Annotated[
        Path | None, typer.Option(help="Append every frame, with timestamps, to this file.")
    ] = None,
    firmware_download: Annotated[
        FirmwareDownloadChoice,
        typer.Option(
            help="Firmware updates: 'simulate' walks the statuses without downloading (no "
            "signature is claimed verified); 'fetch' downloads http(s) locations and checks "
            "a signed update's signature over the file.",
        ),
    ] = FirmwareDownloadChoice.SIMULATE,
    http_port: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=65535,
            help="Serve a local HTTP control API on 127.0.0.1:PORT (0 picks one) [off].",
        ),
    ] = None,
    console: Annotated[
        bool,
        typer.Option(
            "--console/--no-console", help="Read commands from stdin (or just run) [console]."
        ),
    ] = True,
) -> None:
    """Run one emulated charging station (OCPP 1.6 or 2.0.1) with a command console.

    Type 'help' at the prompt for the commands (plug, auth TAG, start, stop, unplug, park,
    leave_bay, fault, clear, status, trace on|off, quit). Stop with 'quit', end of input or
    Ctrl-C.
    """
    from ocppkit.station.station import StationConfig, StationConfigError

    if password is not None and security_profile == 0:
        security_profile = 1
    try:
        config = StationConfig(
            station_id=station_id,
            csms_url=csms,
            ocpp_version=ocpp.value,
            connectors=connectors,
            supply=supply.value,
            max_current=max_current,
            max_power_w=max_power,
            security_profile=security_profile,
            password=password,
            ca_file=str(ca_file) if ca_file else None,
            client_cert=str(client_cert) if client_cert else None,
            client_key=str(client_key) if client_key else None,
            seed=seed,
            heartbeat_interval=heartbeat_interval,
            meter_values_interval=meter_interval,
            trace_file=str(trace) if trace else None,
            firmware_download=firmware_download.value,
        )
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if security_profile in (1, 2) and not password:
        typer.echo("error: security profiles 1 and 2 need --password", err=True)
        raise typer.Exit(2)
    path = state if state is not None else Path(f"ocppkit-station-{_safe(station_id)}.sqlite3")
    try:
        code = asyncio.run(_run(config, path, console, http_port))
    except KeyboardInterrupt:
        code = 130
    except StationConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64]
