"""The ``ocppkit`` command line: ``ocppkit csms`` runs a central system.

Bad input (a flag, an environment variable, a config file) gets one clear line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError
from typer.exceptions import TyperException

from ocppkit.commands.fleet import fleet_command
from ocppkit.commands.station import station_command
from ocppkit.csms.settings import SettingsError, StationPolicy, TagPolicy, load_settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="ocppkit",
    help="OCPP 1.6 / 2.0.1 toolkit: a central system (CSMS), an emulated station, a fleet of them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """ocppkit: OCPP tools."""


@app.command()
def csms(
    host: Annotated[
        str | None, typer.Option(help="Address for OCPP WebSockets [127.0.0.1].")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port for OCPP WebSockets [9000].")] = None,
    api_port: Annotated[
        int | None,
        typer.Option(help="Port for the HTTP API, OpenAPI docs at /docs [8080]; 0 picks one."),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy async URL [sqlite+aiosqlite:///ocppkit.sqlite3 in the working "
            "directory]; e.g. postgresql+asyncpg://user@host/db."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings file ([csms] table or top level)."),
    ] = None,
    unknown_stations: Annotated[
        StationPolicy | None,
        typer.Option(help="Unknown station ids: accept (register), pending, or reject [accept]."),
    ] = None,
    unknown_id_tags: Annotated[
        TagPolicy | None, typer.Option(help="Unknown id tags: accept or reject [accept].")
    ] = None,
    heartbeat_interval: Annotated[
        int | None, typer.Option(help="Heartbeat interval given in BootNotification, s [300].")
    ] = None,
    security_profile: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=3,
            help="OCPP security profile of the port: 0 none, 1 Basic auth over ws, 2 Basic "
            "auth over wss, 3 wss with client certificates [0]. Passwords come from the "
            "station registry, never from flags (docs/security.md).",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="Server certificate chain, PEM (profiles 2 and 3).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option(help="Private key of --tls-cert, PEM (profiles 2 and 3).")
    ] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(help="CA bundle that signs station certificates, PEM (profile 3)."),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            help="CA certificate that signs station CSRs (SignCertificate), PEM; without it "
            "SignCertificate is answered Rejected (docs/security.md)."
        ),
    ] = None,
    ca_key: Annotated[
        Path | None, typer.Option(help="Unencrypted private key of --ca-cert, PEM.")
    ] = None,
    certificate_validity_days: Annotated[
        int | None, typer.Option(help="Validity of the station certificates signed, days [365].")
    ] = None,
) -> None:
    """Run the central system: OCPP 1.6 and 2.0.1 on one WebSocket endpoint, with storage.

    Stations connect to ws://HOST:PORT/<any/prefix>/<stationId>. Settings come from these
    flags, then OCPPKIT_* environment variables (OCPPKIT_PORT=9001), then --config, then
    defaults. Stop with Ctrl-C (SIGINT) or SIGTERM.
    """
    from ocppkit.node import run_csms

    try:
        settings = load_settings(
            config_file=config,
            flags={
                "host": host,
                "port": port,
                "api_port": api_port,
                "database": database,
                "unknown_stations": unknown_stations,
                "unknown_id_tags": unknown_id_tags,
                "heartbeat_interval": heartbeat_interval,
                "security_profile": security_profile,
                "tls_cert": str(tls_cert) if tls_cert else None,
                "tls_key": str(tls_key) if tls_key else None,
                "tls_client_ca": str(tls_client_ca) if tls_client_ca else None,
                "ca_cert": str(ca_cert) if ca_cert else None,
                "ca_key": str(ca_key) if ca_key else None,
                "certificate_validity_days": certificate_validity_days,
            },
        )
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        asyncio.run(run_csms(settings))
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except (OSError, SQLAlchemyError) as exc:  # port in use, database unreachable, ...
        lines = str(exc).splitlines()
        typer.echo(f"error: {lines[0] if lines else type(exc).__name__}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


app.command("fleet")(fleet_command)
app.command("station")(station_command)


def main() -> None:
    """Console-script entry point: a bad argument gets one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)  # typer.Exit inside a command comes back as a code
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.exit(130)
    except TyperException as exc:  # Typer's usage errors: bad value, unknown option...
        ctx = getattr(exc, "ctx", None)
        message = exc.format_message()
        if not message and ctx is not None:  # no arguments at all: the help is the answer
            typer.echo(ctx.get_help())
        else:
            hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
            typer.echo(f"error: {message}{hint}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
