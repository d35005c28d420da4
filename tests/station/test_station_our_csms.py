"""The station runtime against our CSMS over real sockets, with real SQLite on both sides:
boot, authorize, a full transaction on 1.6 and 2.0.1 (checked in the CSMS's database), and
the offline queue across a CSMS restart (1.6 §3.7, 2.0.1 E11/E12, checklist F1).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from ocppkit.station.backoff import BackoffSettings
from ocppkit.station.station import StationConfig
from ocppkit.station.store import StationStore
from ocppkit.storage import Database
from ocppkit.storage.models import MeterValue, Transaction, TransactionEvent
from tests.station.peers import drained, online, running


async def rows(db_url: str, model: Any, *where: Any, order: Any = None) -> list[Any]:
    async with Database(db_url) as db, db.session() as session:
        query = select(model).where(*where)
        if order is not None:
            query = query.order_by(order)
        return list((await session.scalars(query)).all())


def config(port: int, version: str, **kw: Any) -> StationConfig:
    return StationConfig(
        station_id=f"EMU-{version}",
        csms_url=f"ws://127.0.0.1:{port}/ocpp",
        ocpp_version=version,
        **kw,
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_full_transaction_is_recorded_by_our_csms(
    version: str, csms: Callable[..., Any], db_url: str, store: StationStore
) -> None:
    """Boot Accepted, statuses, Authorize, start, periodic meter values, stop (reason
    Local): the CSMS holds one ended transaction whose energy matches our meter."""
    node = await csms()
    async with running(config(node.port, version, meter_values_interval=1), store) as st:
        await online(st)
        assert await st.present_token("TAG-1") == "Accepted"
        await st.plug(1)
        snap = await st.wait_for_state(lambda s: s["connectors"][0]["transaction"], 5)
        assert snap["connectors"][0]["status"] in ("Charging", "Occupied")
        await asyncio.sleep(2.3)
        await st.stop_transaction(1)
        snap = await drained(st)
        energy = snap["connectors"][0]["energy_wh"]
        assert energy > 0
    (tx,) = await rows(db_url, Transaction)
    assert tx.state == "Ended" and tx.stop_reason == "Local"
    assert tx.meter_start == 0 and tx.meter_stop == energy
    values = await rows(db_url, MeterValue, MeterValue.transaction_id == tx.id)
    assert values, "periodic meter values reach the CSMS"
    if version == "2.0.1":
        events = await rows(db_url, TransactionEvent, order=TransactionEvent.seq_no)
        assert [e.seq_no for e in events] == list(range(len(events)))  # E01.FR.07: from 0
        assert events[0].event_type == "Started" and events[-1].event_type == "Ended"
        assert not any(e.offline for e in events)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_offline_queue_survives_csms_restart_in_order_exactly_once(
    version: str, csms: Callable[..., Any], db_url: str, store: StationStore
) -> None:
    """1.6 §3.7 / 2.0.1 E11-E12 (F1): the CSMS stops mid-transaction; the station keeps
    charging and queues its meter values and the stop; after the CSMS restarts everything
    arrives, in order, once; 2.0.1 marks the offline events offline=true."""
    node = await csms()
    port = node.port
    cfg = config(
        port,
        version,
        meter_values_interval=1,
        backoff=BackoffSettings(wait_minimum=0.2, random_range=0.2, repeat_times=1),
    )
    async with running(cfg, store) as st:
        await online(st)
        await st.start_transaction(1, "TAG-OFF")
        await asyncio.sleep(1.5)
        await drained(st)
        await node.stop()
        await st.wait_for_state(lambda s: not s["online"], 10)
        await asyncio.sleep(2.5)  # sampling goes on offline
        await st.stop_transaction(1)
        queued = st.snapshot()["queued"]
        assert queued >= 3, "meter values and the stop wait in the persistent queue"
        assert await store.count(st.station_id) == queued
        node = await csms(port=port)
        await online(st, 20)
        await drained(st, 20)
    (tx,) = await rows(db_url, Transaction)
    assert tx.state == "Ended" and tx.stop_reason == "Local"
    values = await rows(db_url, MeterValue, MeterValue.transaction_id == tx.id, order=MeterValue.id)
    register = [
        v
        for v in values
        if v.measurand in (None, "Energy.Active.Import.Register")
        and v.context != "Transaction.Begin"  # the begin value of 1.6 transactionData
    ]
    energy = [v.value for v in register]
    stamps = [v.timestamp for v in register]
    assert energy == sorted(energy), "delivered in order (FIFO)"
    assert len(set(stamps)) == len(stamps), "each sample once"
    assert tx.meter_stop == max(energy)
    if version == "2.0.1":
        events = await rows(db_url, TransactionEvent, order=TransactionEvent.seq_no)
        assert [e.seq_no for e in events] == list(range(len(events)))
        assert events[-1].event_type == "Ended" and events[-1].offline
        assert any(e.offline for e in events[1:-1]), "offline Updated events flagged"
        assert not events[0].offline
    assert await store.count(st.station_id) == 0
    assert await store.dropped(st.station_id) == []
