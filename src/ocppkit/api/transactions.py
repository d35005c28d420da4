"""``/api/transactions``: charging sessions of every version, with meter values and energy.

Energy (Wh): an ended transaction has ``meter_stop - meter_start`` (stored at the stop). An
active one has the last ``Energy.Active.Import.Register`` sample of the transaction minus
``meter_start`` (kWh samples are converted), or null before a sample arrives; the listing
shows stored values only, the detail computes the live one.

Completeness (detail only, reliability.md E5/E6): ``complete`` is true when the CSMS holds the
whole transaction: for 2.x its Started and Ended events and every seqNo between them
(``missing_seq_nos`` lists the gaps; a transaction first seen through a later event is a
placeholder, missing from seqNo 0); for 1.6 its start and its stop (a StopTransaction for an
unconfirmed transaction, id -1, is kept as a placeholder without a start).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel

from ocppkit.csms.service import CsmsService
from ocppkit.storage import repositories
from ocppkit.storage.models import MAX_TRANSACTION_ID, MeterValue, Transaction

from .schemas import MAX_PAGE, MAX_ROW_NUMBER, Problem

__all__ = ["MeterValueOut", "TransactionDetail", "TransactionOut", "transactions_router"]

ENERGY_REGISTER = "Energy.Active.Import.Register"


class MeterValueOut(BaseModel):
    timestamp: datetime
    evse_id: int | None
    measurand: str | None
    phase: str | None
    unit: str | None
    context: str | None
    location: str | None
    value: float | None
    raw_value: str | None


class TransactionOut(BaseModel):
    id: int
    station_id: str
    transaction_uid: str | None
    evse_id: int | None
    connector_id: int | None
    id_tag: str | None
    meter_start: int | None
    meter_stop: int | None
    energy_wh: int | None
    start_time: datetime
    stop_time: datetime | None
    stop_reason: str | None
    state: str


class TransactionDetail(TransactionOut):
    complete: bool
    missing_seq_nos: list[int]
    meter_values: list[MeterValueOut]


def completeness(transaction: Transaction, events: list[tuple[int, str]]) -> tuple[bool, list[int]]:
    """(complete, missing seqNos) from the stored (seqNo, eventType) pairs."""
    if not events:  # 1.6: a start and a stop
        return transaction.meter_start is not None and transaction.state == "Ended", []
    seen = {seq_no for seq_no, _ in events}
    started = [seq_no for seq_no, kind in events if kind == "Started"]
    ended = [seq_no for seq_no, kind in events if kind == "Ended"]
    first = started[0] if started else 0
    last = ended[0] if ended else max(seen)
    missing = [n for n in range(first, last + 1) if n not in seen]
    return bool(started and ended and not missing), missing


def live_energy(transaction: Transaction, values: list[MeterValue]) -> int | None:
    """Energy so far: stored when ended, else the last energy register minus the start."""
    if transaction.state == "Ended" or transaction.meter_start is None:
        return transaction.energy_wh
    for value in reversed(values):  # oldest first: the last reading is the newest
        if value.measurand == ENERGY_REGISTER and value.value is not None and value.phase is None:
            scale = 1000 if value.unit == "kWh" else 1
            return round(value.value * scale) - transaction.meter_start
    return None


def transactions_router(service: CsmsService) -> APIRouter:
    router = APIRouter(prefix="/api/transactions", tags=["transactions"])

    @router.get("", response_model=list[TransactionOut])
    async def list_transactions(
        station_id: str | None = Query(None, max_length=48),
        id_tag: str | None = Query(None, max_length=255),
        state: Literal["Active", "Ended"] | None = Query(
            None, description="Active (running) or Ended (finished)."
        ),
        started_after: Annotated[AwareDatetime | None, Query(description="Inclusive.")] = None,
        started_before: Annotated[AwareDatetime | None, Query(description="Inclusive.")] = None,
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0, le=MAX_ROW_NUMBER),
    ) -> list[TransactionOut]:
        """Transactions, newest first."""
        async with service.db.session() as session:
            rows = await repositories.list_transactions(
                session,
                station_id=station_id,
                id_tag=id_tag,
                state=state,
                started_after=started_after,
                started_before=started_before,
                limit=limit,
                offset=offset,
            )
        return [TransactionOut.model_validate(row, from_attributes=True) for row in rows]

    @router.get(
        "/{transaction_id}",
        response_model=TransactionDetail,
        responses={404: {"model": Problem}},
    )
    async def get_transaction(
        transaction_id: Annotated[int, Path(ge=1, le=MAX_TRANSACTION_ID)],
    ) -> TransactionDetail:
        """One transaction with its meter values (oldest first) and energy so far."""
        async with service.db.session() as session:
            row = await session.get(Transaction, transaction_id)
            if row is None:
                raise HTTPException(404, f"unknown transaction {transaction_id}")
            values = await repositories.transaction_meter_values(session, transaction_id)
            events = await repositories.transaction_seq_nos(session, transaction_id)
        base = TransactionOut.model_validate(row, from_attributes=True)
        complete, missing = completeness(row, events)
        return TransactionDetail(
            **(base.model_dump() | {"energy_wh": live_energy(row, values)}),
            complete=complete,
            missing_seq_nos=missing,
            meter_values=[MeterValueOut.model_validate(v, from_attributes=True) for v in values],
        )

    return router
