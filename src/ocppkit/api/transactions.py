"""``/api/transactions``: charging sessions of every version, with meter values and energy.

Energy (Wh): an ended transaction has ``meter_stop - meter_start`` (stored at the stop). An
active one has the last ``Energy.Active.Import.Register`` sample of the transaction minus
``meter_start`` (kWh samples are converted), or null before a sample arrives; the listing
shows stored values only, the detail computes the live one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel

from ocppkit.csms.service import CsmsService
from ocppkit.storage import repositories
from ocppkit.storage.models import MeterValue, Transaction

from .schemas import MAX_PAGE, Problem

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
    meter_values: list[MeterValueOut]


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
        offset: int = Query(0, ge=0),
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
    async def get_transaction(transaction_id: int) -> TransactionDetail:
        """One transaction with its meter values (oldest first) and energy so far."""
        async with service.db.session() as session:
            row = await session.get(Transaction, transaction_id)
            if row is None:
                raise HTTPException(404, f"unknown transaction {transaction_id}")
            values = await repositories.transaction_meter_values(session, transaction_id)
        base = TransactionOut.model_validate(row, from_attributes=True)
        return TransactionDetail(
            **(base.model_dump() | {"energy_wh": live_energy(row, values)}),
            meter_values=[MeterValueOut.model_validate(v, from_attributes=True) for v in values],
        )

    return router
