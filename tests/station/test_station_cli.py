"""``ocppkit station`` as a user runs it: a real process against our CSMS, driven from its
console on stdin (and from its HTTP control API); bad input gets one line and exit code 2.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ocppkit.csms import CsmsSettings
from ocppkit.node import start_csms
from ocppkit.station.station import StationConfig
from ocppkit.station.store import StationStore
from ocppkit.storage import Database
from ocppkit.storage.models import Transaction
from tests.station.peers import online, running


async def transactions(db_url: str) -> list[Any]:
    async with Database(db_url) as db, db.session() as session:
        return list((await session.scalars(select(Transaction))).all())


def run_cli(
    *args: str, stdin: str = "", cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocppkit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "250"},
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["station", "--id", "X"], "error: Missing option '--csms'"),
        (["station", "--csms", "ws://h/o"], "error: Missing option '--id'"),
        (["station", "--csms", "ws://h/o", "--id", "X", "--ocpp", "3.0"], "error: Invalid value"),
        (["station", "--csms", "http://h/o", "--id", "X"], "error: the CSMS URL must be ws://"),
        (["station", "--csms", "ws://h/o", "--id", "X", "--connectors", "0"], "error: Invalid"),
        (
            ["station", "--csms", "ws://h/o", "--id", "X", "--security-profile", "2"],
            "error: security profiles 2 and 3 need a wss:// URL",
        ),
        (
            ["station", "--csms", "ws://h/o", "--id", "X", "--security-profile", "1"],
            "error: security profiles 1 and 2 need --password",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_help_documents_every_option() -> None:
    result = run_cli("station", "--help")
    assert result.returncode == 0
    for option in (
        "--csms", "--id", "--ocpp", "--state", "--connectors", "--supply", "--password",
        "--ca-file", "--client-cert", "--client-key", "--security-profile", "--seed",
        "--trace", "--http-port", "--heartbeat-interval", "--meter-interval", "--console",
    ):  # fmt: skip
        assert option in result.stdout, option


async def test_console_session_against_our_csms(tmp_path: Path) -> None:
    """A user types: status, start, stop, a refused action, trace on, quit. The state file
    and the trace file are written; the CSMS recorded the transaction."""
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'csms.sqlite3'}"
    node = await start_csms(CsmsSettings(port=0, api_port=0, database=db_url))
    trace = tmp_path / "frames.log"
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ocppkit", "station",
            "--csms", f"ws://127.0.0.1:{node.port}/ocpp", "--id", "CLI-1",
            "--ocpp", "2.0.1", "--trace", str(trace),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, cwd=tmp_path,
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None

        async def say(line: str, expect: str) -> str:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(f"{line}\n".encode())
            await proc.stdin.drain()
            seen = ""
            async with asyncio.timeout(10):
                while expect not in seen:
                    seen += (await proc.stdout.readline()).decode()
            return seen

        async with asyncio.timeout(10):
            while True:
                out = await say("status", '"firmware_status"')
                if '"online": true' in out:
                    break
                await asyncio.sleep(0.2)
        await say("start 1 TAG-CLI", "transaction started")
        await say("plug 1", "error: ")
        await say("help", "quit")
        await say("trace on", "trace on")
        await say("stop 1", "transaction stopped")
        proc.stdin.write(b"quit\n")
        await proc.stdin.drain()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        await node.stop()
    (tx,) = await transactions(db_url)
    assert tx.state == "Ended" and tx.stop_reason == "Local", "quit waits for the queue"
    assert (tmp_path / "ocppkit-station-CLI-1.sqlite3").exists()
    frames = trace.read_text().splitlines()
    assert any("TransactionEvent" in f and " out " in f for f in frames)


async def test_http_control_api(tmp_path: Path) -> None:
    """The control API drives the same actions: start, status, a refused action (409),
    any CALL, stop."""
    from ocppkit.commands.station_http import serve_control_api

    db_url = f"sqlite+aiosqlite:///{tmp_path / 'csms.sqlite3'}"
    node = await start_csms(CsmsSettings(port=0, api_port=0, database=db_url))
    try:
        async with await StationStore.open(tmp_path / "st.sqlite3") as store:
            cfg = StationConfig(station_id="HTTP-1", csms_url=f"ws://127.0.0.1:{node.port}")
            async with running(cfg, store) as station:
                await online(station)
                server = await serve_control_api(station, 0)
                base = f"http://127.0.0.1:{server.port}"
                try:
                    async with httpx.AsyncClient(base_url=base) as client:
                        r = await client.post("/start", params={"connector": 1, "tag": "T1"})
                        assert r.status_code == 200, r.text
                        body: Any = r.json()
                        assert body["station"]["connectors"][0]["transaction"]
                        again = await client.post("/plug", params={"connector": 1})
                        assert again.status_code == 409
                        beat = await client.post("/call/Heartbeat", json={})
                        assert "currentTime" in beat.json()["result"]
                        status = (await client.get("/status")).json()
                        assert status["online"] is True
                        stop = await client.post("/stop", params={"reason": "EVDisconnected"})
                        assert stop.status_code == 200
                        assert json.dumps(stop.json())
                finally:
                    await server.stop()
    finally:
        await node.stop()
