"""Fleet tests run real stations over real WebSockets against our CSMS (SQLite in tmp_path,
ephemeral ports)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ocppkit.csms import CsmsSettings
from ocppkit.node import RunningCsms, start_csms


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[RunningCsms]:
    """Our CSMS with a rate limit high enough for the 1000-frame smoke test."""
    settings = CsmsSettings(
        port=0,
        api_port=0,
        database=f"sqlite+aiosqlite:///{tmp_path / 'csms.sqlite3'}",
        max_messages_per_second=1000,
        message_burst=1000,
        log_level="warning",
    )
    running = await start_csms(settings)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
def csms_url(csms: RunningCsms) -> str:
    return f"ws://127.0.0.1:{csms.port}/ocpp"


@pytest.fixture
async def csms_process_url(tmp_path: Path) -> AsyncIterator[str]:
    """Our CSMS as its own process (``python -m ocppkit csms --port 0``), as a fleet meets
    it in use: the fleet's event loop and the CSMS's do not share a core's time."""
    log_path = tmp_path / "csms.log"
    env = {**os.environ, "OCPPKIT_MAX_MESSAGES_PER_SECOND": "1000"}
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ocppkit",
            "csms",
            "--port",
            "0",
            "--api-port",
            "0",
            "--database",
            f"sqlite+aiosqlite:///{tmp_path / 'csms.sqlite3'}",
            stdout=log,
            stderr=log,
            env=env,
        )
    try:
        port = None
        for _ in range(300):
            match = re.search(
                r"csms listening.* port=(\d+)", log_path.read_text("utf-8", "replace")
            )
            if match:
                port = int(match.group(1))
                break
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.1)
        assert port is not None, log_path.read_text("utf-8", "replace")[-2000:]
        yield f"ws://127.0.0.1:{port}/ocpp"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()
