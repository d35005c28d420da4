"""The CSMS's HTTP API: stations, transactions, health, and CALLs to a live station.

Reads go straight to storage; "online" means a live connection on this node (the
``connections`` of :class:`~ocppkit.csms.CsmsService`), not the stored flag.

``POST /api/stations/{id}/call`` sends one CALL and waits for the reply; it queues behind
any CALL in flight on that connection (OCPP-J: one outstanding CALL). Answers::

    200  {"action", "response"}        the station's CALLRESULT, with wire (camelCase) names
    409  {"detail"}                     the station is not connected, or it went away
    422  {"detail", "code", "description", "path"}
                                        the action is unknown for the station's version, or
                                        the payload fails its schema (the CallError code the
                                        station would have answered)
    502  {"code", "description", "details"}
                                        the station answered with a CALLERROR (or an invalid
                                        reply)
    503  {"detail"}                     too many CALLs already queued for the station
    504  {"detail"}                     no reply within the CSMS's ``call_timeout``

There is no authentication yet (no API token): the API listens on localhost by default
(``api_host``); do not expose it on other interfaces.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select, text

from ocppkit.csms.service import CsmsService
from ocppkit.protocol import OcppVersion
from ocppkit.protocol.errors import (
    CallErrorReceived,
    CallTimeoutError,
    ErrorCode,
    OutgoingMessageError,
    PayloadError,
    SessionClosedError,
    wire_code,
)
from ocppkit.protocol.validation import Validator
from ocppkit.storage.models import ConnectorStatus, MeterValue, Station, Transaction

__all__ = ["create_api"]

#: The most transactions one listing returns.
MAX_TRANSACTIONS = 1000


# -- response and request bodies ---------------------------------------------------------------


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "error"]
    stations_connected: int
    stations_total: int | None


class ConnectorOut(BaseModel):
    evse_id: int
    connector_id: int
    status: str
    error_code: str | None
    info: str | None
    timestamp: datetime


class StationOut(BaseModel):
    id: str
    registration_status: str
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    ocpp_version: str | None
    online: bool
    last_seen: datetime | None
    last_boot: datetime | None
    connectors: list[ConnectorOut]


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


class CallIn(BaseModel):
    action: str = Field(min_length=1, max_length=64, examples=["GetConfiguration"])
    payload: dict[str, Any] = Field(
        default_factory=dict, description="The request with wire (camelCase) names."
    )


class CallOut(BaseModel):
    action: str
    response: dict[str, Any]


class Problem(BaseModel):
    detail: str


class PayloadProblem(Problem):
    code: str
    description: str
    path: str | None


class StationCallError(BaseModel):
    code: str
    description: str
    details: dict[str, Any]


# -- the application ---------------------------------------------------------------------------


def create_api(service: CsmsService) -> FastAPI:
    """The HTTP API of ``service``: OpenAPI at ``/docs``, schema at ``/openapi.json``."""
    api = FastAPI(
        title="ocppkit CSMS",
        summary="Stations, transactions and remote commands of an ocppkit central system.",
        version="0.1.0",
    )
    validators: dict[OcppVersion, Validator] = {}

    @api.get(
        "/health",
        response_model=Health,
        responses={503: {"model": Health, "description": "The database does not answer."}},
        tags=["health"],
    )
    async def health() -> JSONResponse:
        """Liveness: the database answers ``SELECT 1``; stations connected to this node."""
        connected = sum(1 for connection in service.connections.values() if not connection.closed)
        try:
            async with service.db.session() as session:
                await session.execute(text("SELECT 1"))
                total = await session.scalar(select(func.count()).select_from(Station))
        except Exception:
            body = Health(
                status="degraded",
                database="error",
                stations_connected=connected,
                stations_total=None,
            )
            return JSONResponse(body.model_dump(), status_code=503)
        body = Health(
            status="ok", database="ok", stations_connected=connected, stations_total=int(total or 0)
        )
        return JSONResponse(body.model_dump())

    def is_online(station_id: str) -> bool:
        connection = service.connections.get(station_id)
        return connection is not None and not connection.closed

    def station_out(station: Station, connectors: list[ConnectorStatus]) -> StationOut:
        return StationOut(
            id=station.id,
            registration_status=station.registration_status,
            vendor=station.vendor,
            model=station.model,
            serial_number=station.serial_number,
            firmware_version=station.firmware_version,
            ocpp_version=station.ocpp_version,
            online=is_online(station.id),
            last_seen=station.last_seen,
            last_boot=station.last_boot,
            connectors=[
                ConnectorOut(
                    evse_id=c.evse_id,
                    connector_id=c.connector_id,
                    status=c.status,
                    error_code=c.error_code,
                    info=c.info,
                    timestamp=c.timestamp,
                )
                for c in connectors
            ],
        )

    @api.get("/api/stations", response_model=list[StationOut], tags=["stations"])
    async def list_stations(
        online: bool | None = Query(None, description="Only stations (not) connected now."),
    ) -> list[StationOut]:
        """Every known station, by id, with its current connector statuses."""
        async with service.db.session() as session:
            stations = list(await session.scalars(select(Station).order_by(Station.id)))
            if online is not None:
                stations = [s for s in stations if is_online(s.id) == online]
            by_station: dict[str, list[ConnectorStatus]] = {s.id: [] for s in stations}
            if stations:
                rows = await session.scalars(
                    select(ConnectorStatus)
                    .where(ConnectorStatus.station_id.in_(list(by_station)))
                    .order_by(ConnectorStatus.evse_id, ConnectorStatus.connector_id)
                )
                for row in rows:
                    by_station[row.station_id].append(row)
        return [station_out(s, by_station[s.id]) for s in stations]

    @api.get(
        "/api/stations/{station_id}",
        response_model=StationOut,
        responses={404: {"model": Problem}},
        tags=["stations"],
    )
    async def get_station(station_id: str) -> StationOut:
        """One station with its current connector statuses."""
        async with service.db.session() as session:
            station = await session.get(Station, station_id)
            if station is None:
                raise HTTPException(404, f"unknown station {station_id!r}")
            connectors = list(
                await session.scalars(
                    select(ConnectorStatus)
                    .where(ConnectorStatus.station_id == station_id)
                    .order_by(ConnectorStatus.evse_id, ConnectorStatus.connector_id)
                )
            )
        return station_out(station, connectors)

    @api.get("/api/transactions", response_model=list[TransactionOut], tags=["transactions"])
    async def list_transactions(
        station_id: str | None = None,
        state: Literal["Active", "Ended"] | None = None,
        limit: int = Query(100, ge=1, le=MAX_TRANSACTIONS),
    ) -> list[TransactionOut]:
        """Transactions, newest first."""
        query = select(Transaction).order_by(Transaction.id.desc()).limit(limit)
        if station_id is not None:
            query = query.where(Transaction.station_id == station_id)
        if state is not None:
            query = query.where(Transaction.state == state)
        async with service.db.session() as session:
            rows = list(await session.scalars(query))
        return [TransactionOut.model_validate(row, from_attributes=True) for row in rows]

    @api.get(
        "/api/transactions/{transaction_id}",
        response_model=TransactionDetail,
        responses={404: {"model": Problem}},
        tags=["transactions"],
    )
    async def get_transaction(transaction_id: int) -> TransactionDetail:
        """One transaction with its meter values, oldest first."""
        async with service.db.session() as session:
            row = await session.get(Transaction, transaction_id)
            if row is None:
                raise HTTPException(404, f"unknown transaction {transaction_id}")
            values = list(
                await session.scalars(
                    select(MeterValue)
                    .where(MeterValue.transaction_id == transaction_id)
                    .order_by(MeterValue.timestamp, MeterValue.id)
                )
            )
        base = TransactionOut.model_validate(row, from_attributes=True)
        return TransactionDetail(
            **base.model_dump(),
            meter_values=[MeterValueOut.model_validate(v, from_attributes=True) for v in values],
        )

    @api.post(
        "/api/stations/{station_id}/call",
        response_model=CallOut,
        responses={
            409: {"model": Problem, "description": "The station is not connected."},
            422: {"model": PayloadProblem, "description": "Unknown action or invalid payload."},
            502: {"model": StationCallError, "description": "The station answered a CALLERROR."},
            503: {"model": Problem, "description": "Too many CALLs queued for the station."},
            504: {"model": Problem, "description": "No reply within the call timeout."},
        },
        tags=["stations"],
    )
    async def call_station(station_id: str, body: CallIn) -> Any:
        """Send one CALL to a connected station and return its reply."""
        connection = service.connections.get(station_id)
        if connection is None or connection.closed:
            return _problem(409, f"station {station_id!r} is not connected")
        version = connection.session.version
        validator = validators.get(version)
        if validator is None:
            validator = validators[version] = Validator(version)  # strict, whatever the peer's
        action = body.action
        if not (validator.knows(action) and validator.has_response(action)):
            return JSONResponse(
                PayloadProblem(
                    detail=f"OCPP {version} has no CALL {action!r}",
                    code=wire_code(ErrorCode.NOT_IMPLEMENTED, version),
                    description=f"unknown action {action!r}",
                    path=None,
                ).model_dump(),
                status_code=422,
            )
        try:
            request, _ = validator.decode(action, msgspec.json.encode(body.payload))
        except PayloadError as exc:
            return _payload_problem(exc)
        try:
            result = await connection.call(action, request)
        except CallErrorReceived as exc:
            return _station_error(exc.code, exc.description, exc.details)
        except PayloadError as exc:  # the station's reply fails the response schema
            return _station_error(exc.code, exc.description, {"path": exc.path})
        except CallTimeoutError:
            timeout = service.settings.call_timeout
            return _problem(504, f"no reply from {station_id!r} within {timeout:g} s")
        except SessionClosedError:
            return _problem(409, f"station {station_id!r} disconnected before answering")
        except OutgoingMessageError as exc:
            if isinstance(exc.__cause__, PayloadError):
                return _payload_problem(exc.__cause__)
            return _problem(503, str(exc))
        return CallOut(action=action, response=msgspec.to_builtins(result))

    return api


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def _payload_problem(exc: PayloadError) -> JSONResponse:
    body = PayloadProblem(
        detail=f"invalid payload: {exc.description}",
        code=exc.code,
        description=exc.description,
        path=exc.path,
    )
    return JSONResponse(body.model_dump(), status_code=422)


def _station_error(code: str, description: str, details: dict[str, Any]) -> JSONResponse:
    body = StationCallError(code=code, description=description, details=details)
    return JSONResponse(body.model_dump(), status_code=502)
