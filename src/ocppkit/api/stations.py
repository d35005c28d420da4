"""``/api/stations``: the station registry (list, detail, register, update, delete).

"online" means a live connection on this node (``CsmsService.connections``), not the
stored flag, which a crashed node can leave behind.

Registration status is what the CSMS answers the station's next BootNotification with
(``CsmsService._register_boot``): an operator accepts a Pending station by setting
``registration_status`` to Accepted, and the station is Accepted when it boots again (a
Pending station retries BootNotification at the interval it was given). A live session is
not changed under the station's feet.

Passwords (security profiles 1 and 2) are hashed with :func:`~ocppkit.csms.credentials.
hash_password` before they are stored; they are never returned and never logged. The
security profile can only be raised through the API: lowering it is refused with 409
(OCPP 2.0.1 A00.FR.005, reliability.md G4).

Deleting a station keeps history: transactions, meter values, status history and security
events refer to the station, so a station that has any of them cannot be deleted (409);
set its registration status to Rejected to retire it. A station without history is
deleted together with its current connector statuses and device model. The message log
(no foreign key) is kept either way. A connected station cannot be deleted (409).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import quote

import structlog
from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy.exc import IntegrityError

from ocppkit.csms.credentials import PasswordError, hash_password
from ocppkit.csms.service import CsmsService
from ocppkit.protocol.identity import InvalidIdentityError, identity_from_path
from ocppkit.storage import repositories
from ocppkit.storage.models import ConnectorStatus, Station

from .schemas import MAX_PAGE, MAX_ROW_NUMBER, Problem

__all__ = ["StationIn", "StationOut", "StationPatch", "stations_router"]

_log = structlog.get_logger("ocppkit.api")

RegistrationStatus = Literal["Accepted", "Pending", "Rejected"]
#: Profiles whose stations authenticate with a password (HTTP Basic).
PASSWORD_PROFILES = frozenset({1, 2})


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
    security_profile: int
    has_password: bool
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    ocpp_version: str | None
    online: bool
    last_seen: datetime | None
    last_boot: datetime | None
    connectors: list[ConnectorOut]


class StationIn(BaseModel):
    # A misspelt field ("securityProfile") must not silently register profile 0.
    model_config = ConfigDict(extra="forbid")

    id: str = Field(examples=["CP-001"], description="identifierString, at most 48 characters")
    password: SecretStr | None = Field(
        None, description="16-40 printable ASCII characters; needed for profiles 1 and 2"
    )
    security_profile: int = Field(0, ge=0, le=3)
    registration_status: RegistrationStatus = "Accepted"

    @field_validator("id")
    @classmethod
    def _identity(cls, value: str) -> str:
        try:
            # identity_from_path percent-decodes; quoting first makes it check `value` as is.
            identity_from_path("/" + quote(value, safe=""))
        except InvalidIdentityError as exc:
            raise ValueError(str(exc)) from None
        return value


class StationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: SecretStr | None = Field(
        None, description="a new password; null removes it (profiles 0 and 3 only)"
    )
    security_profile: int | None = Field(None, ge=0, le=3, description="may only be raised")
    registration_status: RegistrationStatus | None = None


def _hash(password: SecretStr) -> str:
    try:
        return hash_password(password.get_secret_value())
    except PasswordError as exc:
        raise HTTPException(422, str(exc)) from None


def stations_router(service: CsmsService) -> APIRouter:
    router = APIRouter(prefix="/api/stations", tags=["stations"])

    def is_online(station_id: str) -> bool:
        connection = service.connections.get(station_id)
        return connection is not None and not connection.closed

    def online_ids() -> set[str]:
        return {sid for sid, conn in service.connections.items() if not conn.closed}

    def station_out(station: Station, connectors: list[ConnectorStatus]) -> StationOut:
        return StationOut(
            id=station.id,
            registration_status=station.registration_status,
            security_profile=station.security_profile,
            has_password=station.password_hash is not None,
            vendor=station.vendor,
            model=station.model,
            serial_number=station.serial_number,
            firmware_version=station.firmware_version,
            ocpp_version=station.ocpp_version,
            online=is_online(station.id),
            last_seen=station.last_seen,
            last_boot=station.last_boot,
            connectors=[ConnectorOut.model_validate(c, from_attributes=True) for c in connectors],
        )

    async def detail(station_id: str) -> StationOut:
        async with service.db.session() as session:
            station = await session.get(Station, station_id, populate_existing=True)
            if station is None:
                raise HTTPException(404, f"unknown station {station_id!r}")
            connectors = await repositories.connector_statuses(session, [station_id])
        return station_out(station, connectors[station_id])

    @router.get("", response_model=list[StationOut])
    async def list_stations(
        online: bool | None = Query(None, description="Only stations (not) connected now."),
        ocpp_version: Literal["1.6", "2.0.1", "2.1"] | None = None,
        registration_status: RegistrationStatus | None = None,
        vendor: str | None = Query(None, max_length=50, description="Exact vendor name."),
        id_prefix: str | None = Query(None, max_length=48, description="Ids starting with it."),
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0, le=MAX_ROW_NUMBER),
    ) -> list[StationOut]:
        """Known stations by id, with their current connector statuses."""
        connected = online_ids() if online is not None else None
        async with service.db.session() as session:
            stations = await repositories.list_stations(
                session,
                include=connected if online else None,
                exclude=connected if online is False else None,
                ocpp_version=ocpp_version,
                registration_status=registration_status,
                vendor=vendor,
                id_prefix=id_prefix,
                limit=limit,
                offset=offset,
            )
            connectors = await repositories.connector_statuses(session, [s.id for s in stations])
        return [station_out(s, connectors[s.id]) for s in stations]

    @router.get("/{station_id}", response_model=StationOut, responses={404: {"model": Problem}})
    async def get_station(station_id: str) -> StationOut:
        """One station with its current connector statuses."""
        return await detail(station_id)

    @router.post(
        "",
        response_model=StationOut,
        status_code=201,
        responses={409: {"model": Problem, "description": "The id is already registered."}},
    )
    async def register_station(body: StationIn, response: Response) -> StationOut:
        """Register a station before it connects (its password is stored hashed)."""
        if body.security_profile in PASSWORD_PROFILES and body.password is None:
            raise HTTPException(422, f"security profile {body.security_profile} needs a password")
        password_hash = _hash(body.password) if body.password is not None else None
        async with service.db.write_session() as session:
            created = await repositories.register_station(
                session,
                body.id,
                now=service.clock(),
                registration_status=body.registration_status,
                security_profile=body.security_profile,
                password_hash=password_hash,
            )
            if not created:
                raise HTTPException(409, f"station {body.id!r} already exists")
            await session.commit()
        _log.info(
            "station registered",
            station_id=body.id,
            registration_status=body.registration_status,
            security_profile=body.security_profile,
        )
        response.headers["Location"] = f"/api/stations/{quote(body.id, safe='')}"
        return await detail(body.id)

    @router.patch(
        "/{station_id}",
        response_model=StationOut,
        responses={
            404: {"model": Problem},
            409: {"model": Problem, "description": "Lowering the security profile."},
        },
    )
    async def update_station(station_id: str, body: StationPatch) -> StationOut:
        """Change the password, registration status or security profile (raise only).

        A new registration status is answered at the station's next BootNotification.
        """
        changes = body.model_fields_set
        password_hash = _hash(body.password) if body.password is not None else None
        async with service.db.write_session() as session:
            station = await session.get(Station, station_id)
            if station is None:
                raise HTTPException(404, f"unknown station {station_id!r}")
            profile = station.security_profile
            if "security_profile" in changes and body.security_profile is not None:
                if body.security_profile < profile:
                    raise HTTPException(
                        409,
                        f"lowering the security profile ({profile} -> {body.security_profile}) "
                        "is not allowed (OCPP A00.FR.005)",
                    )
                profile = body.security_profile
            has_password = station.password_hash is not None
            if "password" in changes:
                has_password = password_hash is not None
            if profile in PASSWORD_PROFILES and not has_password:
                raise HTTPException(422, f"security profile {profile} needs a password")
            station.security_profile = profile
            if "password" in changes:
                station.password_hash = password_hash
            if "registration_status" in changes and body.registration_status is not None:
                station.registration_status = body.registration_status
            await session.commit()
        _log.info(
            "station updated",
            station_id=station_id,
            changed=sorted(changes),
            registration_status=station.registration_status,
            security_profile=profile,
        )
        return await detail(station_id)

    @router.delete(
        "/{station_id}",
        status_code=204,
        responses={
            404: {"model": Problem},
            409: {"model": Problem, "description": "Connected, or has history to keep."},
        },
    )
    async def delete_station(station_id: str) -> Response:
        """Delete a station that is not connected and has no history (see the docs)."""
        if is_online(station_id):
            raise HTTPException(409, f"station {station_id!r} is connected")
        # Checked without the write lock: counting a station's meter values scans that table
        # (no index leads with the station), and every station's commits wait for the lock.
        async with service.db.session() as session:
            if await session.get(Station, station_id) is None:
                raise HTTPException(404, f"unknown station {station_id!r}")
            history = {
                k: v
                for k, v in (await repositories.station_history(session, station_id)).items()
                if v
            }

        def refusal(what: str) -> HTTPException:
            return HTTPException(
                409,
                f"station {station_id!r} has {what} that is kept; "
                "set its registration_status to Rejected to retire it",
            )

        if history:
            kept = ", ".join(f"{n} {name.replace('_', ' ')}" for name, n in history.items())
            raise refusal(f"history ({kept})")
        try:
            async with service.db.write_session() as session:
                if not await repositories.delete_station(session, station_id):
                    raise HTTPException(404, f"unknown station {station_id!r}")
                await session.commit()
        except IntegrityError:  # history came in since the check: its foreign keys refuse
            raise refusal("new history") from None
        _log.info("station deleted", station_id=station_id)
        return Response(status_code=204)

    return router
