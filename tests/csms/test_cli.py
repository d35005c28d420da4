"""``ocppkit csms`` as a user runs it: a real process, a real station, a clean SIGINT stop;
bad input gets one line and exit code 2."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ocppkit.messages import v201
from ocppkit.storage import Database
from ocppkit.storage.models import Station
from ocppkit.transport import connect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "ocppkit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["csms", "--port", "70000"], {}, "error: invalid port from the command line"),
        (["csms"], {"OCPPKIT_PORT": "abc"}, "error: invalid OCPPKIT_PORT='abc' from the env"),
        (["csms", "--config", "/nonexistent.toml"], {}, "error: cannot read config file"),
        (["csms", "--database", "nosuchdriver://x"], {}, "error: invalid database URL"),
        (["csms", "--database", "postgresql+asyncpg://nobody@127.0.0.1:1/x"], {}, "error: "),
        (["csms", "--port", "abc"], {}, "error: Invalid value for '--port'"),
        (["csms", "--no-such-flag"], {}, "error: No such option: --no-such-flag"),
        (["csms", "--unknown-stations", "maybe"], {}, "error: Invalid value for '--unknown-sta"),
    ],
)
def test_bad_input_is_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    """A bad flag, environment variable or file: one clear line on stderr, no traceback."""
    result = run_cli(*args, env=env)
    assert result.returncode in (1, 2)
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_bad_config_value_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "csms.toml"
    config.write_text('[csms]\nheartbeat_interval = "often"\n')
    result = run_cli("csms", "--config", str(config))
    assert result.returncode == 2
    assert "invalid heartbeat_interval from config file" in result.stderr


def test_csms_starts_serves_and_stops_cleanly(tmp_path: Path) -> None:
    """No database flag: an SQLite file in the working directory, created and migrated; a
    2.0.1 station boots; SIGINT closes it with 1001 and the process exits 0."""
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "ocppkit", "csms", "--port", str(port), "--api-port", "0"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            close_code = asyncio.run(_boot_and_wait_for_close(port, process))
            _, stderr = process.communicate(timeout=30)
            assert process.returncode == 0, stderr
        finally:
            if process.poll() is None:
                process.kill()
    assert close_code == 1001
    assert (tmp_path / "ocppkit.sqlite3").exists()

    async def check() -> str | None:
        url = f"sqlite+aiosqlite:///{tmp_path / 'ocppkit.sqlite3'}"
        async with Database(url) as db, db.session() as session:
            station = await session.get(Station, "CLI-1")
            return station.registration_status if station else None

    assert asyncio.run(check()) == "Accepted"


async def _boot_and_wait_for_close(port: int, process: subprocess.Popen[str]) -> int | None:
    for _ in range(100):  # wait for the listener
        try:
            async with connect(f"ws://127.0.0.1:{port}/ocpp/CLI-1", versions=["2.0.1"]) as conn:
                reply = await conn.call(
                    "BootNotification",
                    v201.BootNotificationRequest(
                        reason=v201.BootReasonEnum.POWER_UP,
                        charging_station=v201.ChargingStation(vendor_name="V", model="M"),
                    ),
                )
                assert reply.status == v201.RegistrationStatusEnum.ACCEPTED
                process.send_signal(signal.SIGINT)
                await conn.wait_closed()
                return conn.websocket.close_code
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("the CSMS never listened")


def test_help_exits_zero_and_no_arguments_show_the_help() -> None:
    assert run_cli("--help").returncode == 0
    assert run_cli("csms", "--help").returncode == 0
    bare = run_cli()
    assert bare.returncode == 2 and "Usage" in bare.stdout
