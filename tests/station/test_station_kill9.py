"""``kill -9`` of an emulator process mid-transaction, then a restart from the same state
file (checklist F4; MicroOcpp "transaction safety"): nothing is lost, nothing doubled, and the
transaction that was running ends with reason PowerLoss, as our CSMS's database shows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ocppkit.csms import CsmsSettings
from ocppkit.node import start_csms
from ocppkit.storage import Database
from ocppkit.storage.models import ConnectorStatus, MeterValue, Transaction, TransactionEvent


async def rows(db_url: str, model: Any, *where: Any) -> list[Any]:
    async with Database(db_url) as db, db.session() as session:
        return list((await session.scalars(select(model).where(*where))).all())


async def until(check: Callable[[], Any], timeout: float = 20.0) -> Any:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.2)


async def emulator(port: int, state: Path, version: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ocppkit",
        "station",
        "--csms",
        f"ws://127.0.0.1:{port}/ocpp",
        "--id",
        "KILL-ME",
        "--ocpp",
        version,
        "--state",
        str(state),
        "--meter-interval",
        "1",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_kill_9_mid_transaction_then_restart_ends_it_powerloss_nothing_lost(
    version: str, tmp_path: Path
) -> None:
    """F4: the process dies with SIGKILL while charging; the restarted emulator (same
    --state) ends the transaction with PowerLoss and delivers its queue: one transaction,
    no meter value twice, meterStop not below any value sent."""
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'csms.sqlite3'}"
    node = await start_csms(CsmsSettings(port=0, api_port=0, database=db_url))
    state = tmp_path / "emulator.sqlite3"
    try:
        first = await emulator(node.port, state, version)
        assert first.stdin is not None

        async def booted() -> Any:
            return await rows(db_url, ConnectorStatus)  # the statuses after an accepted boot

        await until(booted)
        first.stdin.write(b"start 1 TAG-K9\n")
        await first.stdin.drain()

        async def charging() -> Any:
            txs = await rows(db_url, Transaction)
            if not txs:
                return None
            return len(await rows(db_url, MeterValue, MeterValue.transaction_id == txs[0].id)) >= 3

        await until(charging)
        os.kill(first.pid, signal.SIGKILL)
        await first.wait()
        assert first.returncode == -signal.SIGKILL
        second = await emulator(node.port, state, version)
        assert second.stdin is not None

        async def ended() -> Any:
            return [t for t in await rows(db_url, Transaction) if t.state == "Ended"]

        (tx,) = await until(ended)
        second.stdin.write(b"quit\n")
        await second.stdin.drain()
        await asyncio.wait_for(second.wait(), 20)
        assert second.returncode == 0
    finally:
        await node.stop()
    assert len(await rows(db_url, Transaction)) == 1, "the restart started nothing new"
    assert tx.stop_reason == "PowerLoss"
    values = await rows(db_url, MeterValue, MeterValue.transaction_id == tx.id)
    register = [
        (v.timestamp, v.context)
        for v in values
        if v.measurand in (None, "Energy.Active.Import.Register")
    ]
    assert len(register) == len(set(register)), "no sample stored twice"
    sampled = [
        v.value
        for v in values
        if v.context == "Sample.Periodic"
        and v.measurand in (None, "Energy.Active.Import.Register")
        and v.value is not None
    ]
    assert sampled and tx.meter_stop is not None
    assert tx.meter_stop >= max(sampled), "the register never goes back"
    if version == "2.0.1":
        seqs = sorted(e.seq_no for e in await rows(db_url, TransactionEvent))
        assert seqs == list(range(len(seqs))), "seqNo continues after the restart, no reuse"
