"""The central system's behaviour: what it answers to each station-initiated message.

One :class:`CsmsService` holds the storage, the settings and the live connections, and builds
one :class:`~ocppkit.protocol.Router` per OCPP version. Handlers commit what their reply
announces (a registration, a transaction id, a stop) *before* they return, so a reply is
never sent for something that was not stored; when storage fails the handler raises and the
station gets ``InternalError`` and retries (issue: "ack after commit").

Before a station is Accepted, every CALL but BootNotification is answered ``SecurityError``
(1.6J errata 3.8; 2.0.1 B02.FR.09 / B03.FR.07).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import structlog

from ocppkit.csms.settings import CsmsSettings, StationPolicy, TagPolicy, check_supported
from ocppkit.messages import v16, v201
from ocppkit.protocol import ErrorCode, HandlerError, OcppVersion, Router
from ocppkit.storage import Database, repositories
from ocppkit.storage.models import Station
from ocppkit.storage.repositories import MessageLogRow, MeterValueRow
from ocppkit.transport import Connection

__all__ = ["CsmsService"]

_log = structlog.get_logger("ocppkit.csms")
#: Frames kept for the message log while the database cannot take them.
MAX_QUEUED_LOG_FRAMES = 100_000
_frame_head = msgspec.json.Decoder(list[msgspec.Raw])
_UNSET = msgspec.UNSET


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _opt(value: Any) -> Any:
    """``None`` for an unset optional field."""
    return None if value is _UNSET else value


class _GatedRouter(Router):
    """A router that answers SecurityError until the station's BootNotification is Accepted."""

    def __init__(self, accepted: Callable[[Connection], bool]) -> None:
        super().__init__()
        self._accepted = accepted

    async def dispatch(self, action: str, request: msgspec.Struct, context: Any) -> msgspec.Struct:
        if action != "BootNotification" and not self._accepted(context):
            raise HandlerError(ErrorCode.SECURITY_ERROR, "the station is not Accepted yet")
        return await super().dispatch(action, request, context)


class CsmsService:
    """Storage, policies and live connections of one CSMS node."""

    def __init__(
        self,
        settings: CsmsSettings,
        database: Database,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        check_supported(settings)
        self.settings = settings
        self.db = database
        self.clock = clock
        self.connections: dict[str, Connection] = {}
        self._accepted: set[str] = set()
        self._log_rows: list[tuple[datetime, str, str, str | bytes]] = []
        self.routers = {
            OcppVersion.V16: self._router_16(),
            OcppVersion.V201: self._router_201(),
        }

    # -- connections ------------------------------------------------------------------------

    def is_accepted(self, connection: Connection) -> bool:
        """True once this connection's station was answered Accepted."""
        return self.connections.get(connection.identity) is connection and (
            connection.identity in self._accepted
        )

    async def on_connect(self, connection: Connection) -> None:
        """Register the connection while it lives; refuse a second one for the same id.

        An unauthenticated second connection never displaces the first (checklist A11).
        """
        station_id = connection.identity
        existing = self.connections.get(station_id)
        if existing is not None and not existing.closed:
            _log.warning("duplicate connection refused", station_id=station_id)
            await connection.close(1008, "already connected")
            return
        self.connections[station_id] = connection
        self._accepted.discard(station_id)
        async with self.db.session() as session:
            await repositories.mark_online(
                session, station_id, now=self.clock(), ocpp_version=connection.version
            )
            await session.commit()
        _log.info("station connected", station_id=station_id, ocpp=connection.version)
        try:
            await connection.wait_closed()
        finally:
            if self.connections.get(station_id) is connection:
                del self.connections[station_id]
                self._accepted.discard(station_id)
                async with self.db.session() as session:
                    await repositories.mark_offline(session, station_id, now=self.clock())
                    await session.commit()
            _log.info("station disconnected", station_id=station_id)

    # -- message log ------------------------------------------------------------------------

    def observe(self, connection: Connection, direction: str, frame: str | bytes) -> None:
        """Frame observer: queue every frame for the batched message log."""
        self._log_rows.append((self.clock(), connection.identity, direction, frame))

    async def flush_message_log(self) -> int:
        """Write the queued frames in one transaction; returns how many."""
        queued, self._log_rows = self._log_rows, []
        if not queued:
            return 0
        rows = [_log_row(*entry) for entry in queued]
        try:
            async with self.db.session() as session:
                written = await repositories.add_message_log(session, rows)
                await session.commit()
        except Exception:
            # Keep the frames for the next attempt, newest last, within a bound.
            self._log_rows = (queued + self._log_rows)[-MAX_QUEUED_LOG_FRAMES:]
            raise
        return written

    async def prune_message_log(self) -> int:
        """Delete message-log rows older than the retention setting (0 keeps everything)."""
        days = self.settings.message_log_retention_days
        if days == 0:
            return 0
        async with self.db.session() as session:
            deleted = await repositories.prune_message_log(
                session, retention=timedelta(days=days), now=self.clock()
            )
            await session.commit()
        return deleted

    async def run_message_log(self, interval: float = 0.5, prune_every: float = 3600.0) -> None:
        """Flush the message log every ``interval`` seconds and prune it every ``prune_every``
        seconds (and at start) until cancelled; flush once more on the way out."""
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + prune_every
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.flush_message_log()
                    if loop.time() >= next_prune:
                        next_prune = loop.time() + prune_every
                        await self.prune_message_log()
                except Exception:  # a database hiccup must not end the message log
                    _log.exception("message log write failed; will retry")
        finally:
            await asyncio.shield(self.flush_message_log())

    # -- shared behaviour -------------------------------------------------------------------

    async def _register_boot(
        self,
        connection: Connection,
        *,
        vendor: str,
        model: str,
        serial_number: str | None,
        firmware_version: str | None,
    ) -> str:
        """Decide Accepted / Pending / Rejected by registry and policy, store it, return it."""
        station_id = connection.identity
        async with self.db.session() as session:
            known = await session.get(Station, station_id)
            if known is not None and known.last_boot is not None:
                status = known.registration_status
            else:
                status = {
                    StationPolicy.ACCEPT: "Accepted",
                    StationPolicy.PENDING: "Pending",
                    StationPolicy.REJECT: "Rejected",
                }[self.settings.station_policy]
            await repositories.upsert_station_on_boot(
                session,
                station_id,
                now=self.clock(),
                ocpp_version=connection.version,
                vendor=vendor,
                model=model,
                serial_number=serial_number,
                firmware_version=firmware_version,
                registration_status=status,
            )
            await session.commit()
        if status == "Accepted":
            self._accepted.add(station_id)
        else:
            self._accepted.discard(station_id)
        _log.info("boot", station_id=station_id, status=status)
        return status

    async def _authorize(self, id_tag: str) -> tuple[str, datetime | None, str | None]:
        """(status, expiry, parent) for an id tag: registry first, then the policy."""
        async with self.db.session() as session:
            tag = await repositories.get_id_tag(session, id_tag)
        if tag is None:
            status = "Accepted" if self.settings.tag_policy is TagPolicy.ACCEPT else "Invalid"
            return status, None, None
        status = tag.status
        if status == "Accepted" and tag.expiry_date is not None and tag.expiry_date < self.clock():
            status = "Expired"
        return status, tag.expiry_date, tag.parent_id_tag

    async def _touch(self, connection: Connection) -> None:
        async with self.db.session() as session:
            await repositories.touch_stations(session, [connection.identity], now=self.clock())
            await session.commit()

    async def _store_meter_values(self, rows: Sequence[MeterValueRow]) -> None:
        async with self.db.session() as session:
            await repositories.add_meter_values(session, rows)
            await session.commit()

    async def _security_event(
        self, connection: Connection, type_: str, timestamp: datetime, tech_info: str | None
    ) -> None:
        async with self.db.session() as session:
            await repositories.add_security_event(
                session,
                connection.identity,
                type=type_,
                timestamp=timestamp,
                tech_info=tech_info,
            )
            await session.commit()

    # -- OCPP 1.6 ---------------------------------------------------------------------------

    def _router_16(self) -> Router:
        router = _GatedRouter(self.is_accepted)
        on = router.register
        on("BootNotification", self._boot_16)
        on("Heartbeat", self._heartbeat_16)
        on("StatusNotification", self._status_16)
        on("Authorize", self._authorize_16)
        on("StartTransaction", self._start_16)
        on("StopTransaction", self._stop_16)
        on("MeterValues", self._meter_values_16)
        on("DataTransfer", _unknown_vendor(v16.DataTransferResponse, v16.DataTransferStatus))
        on("SecurityEventNotification", self._security_event_16)
        on("SignCertificate", _reject_csr(v16.SignCertificateResponse, v16.GenericStatusEnum))
        for action, response in (
            ("DiagnosticsStatusNotification", v16.DiagnosticsStatusNotificationResponse),
            ("FirmwareStatusNotification", v16.FirmwareStatusNotificationResponse),
            ("LogStatusNotification", v16.LogStatusNotificationResponse),
            ("SignedFirmwareStatusNotification", v16.SignedFirmwareStatusNotificationResponse),
        ):
            on(action, _acknowledge(self, response))
        return router

    async def _boot_16(
        self, req: v16.BootNotificationRequest, conn: Connection
    ) -> v16.BootNotificationResponse:
        status = await self._register_boot(
            conn,
            vendor=req.charge_point_vendor,
            model=req.charge_point_model,
            serial_number=_opt(req.charge_point_serial_number),
            firmware_version=_opt(req.firmware_version),
        )
        return v16.BootNotificationResponse(
            current_time=self.clock(),
            interval=self.settings.heartbeat_interval,
            status=v16.RegistrationStatus(status),
        )

    async def _heartbeat_16(self, req: v16.HeartbeatRequest, conn: Connection) -> Any:
        await self._touch(conn)
        return v16.HeartbeatResponse(current_time=self.clock())

    async def _status_16(self, req: v16.StatusNotificationRequest, conn: Connection) -> Any:
        async with self.db.session() as session:
            await repositories.set_connector_status(
                session,
                conn.identity,
                evse_id=req.connector_id,
                connector_id=req.connector_id,
                status=req.status.value,
                timestamp=_opt(req.timestamp) or self.clock(),
                error_code=req.error_code.value,
                info=_opt(req.info),
            )
            await session.commit()
        return v16.StatusNotificationResponse()

    async def _id_tag_info_16(self, id_tag: str) -> v16.IdTagInfo:
        status, expiry, parent = await self._authorize(id_tag)
        return v16.IdTagInfo(
            status=v16.AuthorizationStatus(status),
            expiry_date=expiry if expiry is not None else _UNSET,
            parent_id_tag=parent if parent is not None else _UNSET,
        )

    async def _authorize_16(self, req: v16.AuthorizeRequest, conn: Connection) -> Any:
        return v16.AuthorizeResponse(id_tag_info=await self._id_tag_info_16(req.id_tag))

    async def _start_16(
        self, req: v16.StartTransactionRequest, conn: Connection
    ) -> v16.StartTransactionResponse:
        info = await self._id_tag_info_16(req.id_tag)
        async with self.db.session() as session:
            transaction_id, created = await repositories.start_transaction_v16(
                session,
                conn.identity,
                connector_id=req.connector_id,
                id_tag=req.id_tag,
                meter_start=req.meter_start,
                timestamp=req.timestamp,
            )
            await session.commit()  # the id is announced in the reply: commit first
        _log.info(
            "transaction started" if created else "StartTransaction retry recognised",
            station_id=conn.identity,
            transaction_id=transaction_id,
        )
        return v16.StartTransactionResponse(id_tag_info=info, transaction_id=transaction_id)

    async def _stop_16(
        self, req: v16.StopTransactionRequest, conn: Connection
    ) -> v16.StopTransactionResponse:
        rows: list[MeterValueRow] = []
        transaction_id = req.transaction_id if req.transaction_id > 0 else None
        for meter_value in _opt(req.transaction_data) or []:
            rows.extend(_rows_16(conn.identity, transaction_id, None, meter_value))
        async with self.db.session() as session:
            stopped = None
            if transaction_id is not None:
                stopped = await repositories.stop_transaction(
                    session,
                    transaction_id,
                    meter_stop=req.meter_stop,
                    timestamp=req.timestamp,
                    reason=_value_of(req.reason),
                )
            if stopped is None:
                rows = [row | {"transaction_id": None} for row in rows]
            await repositories.add_meter_values(session, rows)
            await session.commit()  # the stop is acknowledged in the reply: commit first
        if stopped is None:
            # 1.6 requires accepting a StopTransaction; an unknown or -1 id (errata 3.18) is
            # logged for reconciliation instead of failing the station's retry loop.
            _log.warning(
                "StopTransaction for an unknown transaction",
                station_id=conn.identity,
                transaction_id=req.transaction_id,
            )
        id_tag = _opt(req.id_tag)
        if id_tag is None:
            return v16.StopTransactionResponse()
        return v16.StopTransactionResponse(id_tag_info=await self._id_tag_info_16(id_tag))

    async def _meter_values_16(self, req: v16.MeterValuesRequest, conn: Connection) -> Any:
        transaction_id = _opt(req.transaction_id)
        if transaction_id is not None and transaction_id <= 0:
            transaction_id = None  # -1: a transaction the CSMS never confirmed (errata 3.18)
        rows: list[MeterValueRow] = []
        for meter_value in req.meter_value:
            rows.extend(_rows_16(conn.identity, transaction_id, req.connector_id, meter_value))
        try:
            await self._store_meter_values(rows)
        except Exception:
            if transaction_id is None:
                raise
            # A transaction id we do not know must not lose the samples.
            await self._store_meter_values([row | {"transaction_id": None} for row in rows])
        return v16.MeterValuesResponse()

    async def _security_event_16(
        self, req: v16.SecurityEventNotificationRequest, conn: Connection
    ) -> Any:
        await self._security_event(conn, req.type, req.timestamp, _opt(req.tech_info))
        return v16.SecurityEventNotificationResponse()

    # -- OCPP 2.0.1 -------------------------------------------------------------------------

    def _router_201(self) -> Router:
        router = _GatedRouter(self.is_accepted)
        on = router.register
        on("BootNotification", self._boot_201)
        on("Heartbeat", self._heartbeat_201)
        on("StatusNotification", self._status_201)
        on("Authorize", self._authorize_201)
        on("TransactionEvent", self._transaction_event_201)
        on("MeterValues", self._meter_values_201)
        on("NotifyReport", self._notify_report_201)
        on("SecurityEventNotification", self._security_event_201)
        on("DataTransfer", _unknown_vendor(v201.DataTransferResponse, v201.DataTransferStatusEnum))
        on("SignCertificate", _reject_csr(v201.SignCertificateResponse, v201.GenericStatusEnum))
        for action, response in (
            ("FirmwareStatusNotification", v201.FirmwareStatusNotificationResponse),
            ("LogStatusNotification", v201.LogStatusNotificationResponse),
            ("NotifyEvent", v201.NotifyEventResponse),
            ("NotifyChargingLimit", v201.NotifyChargingLimitResponse),
            ("ReservationStatusUpdate", v201.ReservationStatusUpdateResponse),
            ("NotifyMonitoringReport", v201.NotifyMonitoringReportResponse),
            ("NotifyCustomerInformation", v201.NotifyCustomerInformationResponse),
            ("ClearedChargingLimit", v201.ClearedChargingLimitResponse),
            ("PublishFirmwareStatusNotification", v201.PublishFirmwareStatusNotificationResponse),
        ):
            on(action, _acknowledge(self, response))
        return router

    async def _boot_201(
        self, req: v201.BootNotificationRequest, conn: Connection
    ) -> v201.BootNotificationResponse:
        station = req.charging_station
        status = await self._register_boot(
            conn,
            vendor=station.vendor_name,
            model=station.model,
            serial_number=_opt(station.serial_number),
            firmware_version=_opt(station.firmware_version),
        )
        return v201.BootNotificationResponse(
            current_time=self.clock(),
            interval=self.settings.heartbeat_interval,
            status=v201.RegistrationStatusEnum(status),
        )

    async def _heartbeat_201(self, req: v201.HeartbeatRequest, conn: Connection) -> Any:
        await self._touch(conn)
        return v201.HeartbeatResponse(current_time=self.clock())

    async def _status_201(self, req: v201.StatusNotificationRequest, conn: Connection) -> Any:
        async with self.db.session() as session:
            await repositories.set_connector_status(
                session,
                conn.identity,
                evse_id=req.evse_id,
                connector_id=req.connector_id,
                status=req.connector_status.value,
                timestamp=req.timestamp,
            )
            await session.commit()
        return v201.StatusNotificationResponse()

    async def _id_token_info_201(self, token: v201.IdToken) -> v201.IdTokenInfo:
        status, expiry, _parent = await self._authorize(token.id_token)
        return v201.IdTokenInfo(
            status=v201.AuthorizationStatusEnum(status),
            cache_expiry_date_time=expiry if expiry is not None else _UNSET,
        )

    async def _authorize_201(self, req: v201.AuthorizeRequest, conn: Connection) -> Any:
        return v201.AuthorizeResponse(id_token_info=await self._id_token_info_201(req.id_token))

    async def _transaction_event_201(
        self, req: v201.TransactionEventRequest, conn: Connection
    ) -> v201.TransactionEventResponse:
        info = req.transaction_info
        evse = _opt(req.evse)
        token = _opt(req.id_token)
        meter_wh = _energy_register(_opt(req.meter_value) or [])
        async with self.db.session() as session:
            transaction, applied = await repositories.record_transaction_event(
                session,
                conn.identity,
                transaction_uid=info.transaction_id,
                seq_no=req.seq_no,
                event_type=req.event_type.value,
                trigger_reason=req.trigger_reason.value,
                timestamp=req.timestamp,
                offline=bool(_opt(req.offline)),
                evse_id=evse.id if evse else None,
                connector_id=_opt(evse.connector_id) if evse else None,
                id_tag=token.id_token if token else None,
                meter_wh=meter_wh,
                stopped_reason=_value_of(info.stopped_reason),
            )
            if applied:
                rows: list[MeterValueRow] = []
                for meter_value in _opt(req.meter_value) or []:
                    rows.extend(
                        _rows_201(
                            conn.identity, transaction.id, evse.id if evse else None, meter_value
                        )
                    )
                await repositories.add_meter_values(session, rows)
            await session.commit()
        if token is None:
            return v201.TransactionEventResponse()
        return v201.TransactionEventResponse(id_token_info=await self._id_token_info_201(token))

    async def _meter_values_201(self, req: v201.MeterValuesRequest, conn: Connection) -> Any:
        rows: list[MeterValueRow] = []
        for meter_value in req.meter_value:
            rows.extend(_rows_201(conn.identity, None, req.evse_id, meter_value))
        await self._store_meter_values(rows)
        return v201.MeterValuesResponse()

    async def _notify_report_201(self, req: v201.NotifyReportRequest, conn: Connection) -> Any:
        rows: list[repositories.DeviceModelRow] = []
        for item in _opt(req.report_data) or []:
            component, variable = item.component, item.variable
            evse = _opt(component.evse)
            for attribute in item.variable_attribute:
                rows.append(
                    {
                        "component": component.name,
                        "component_instance": _opt(component.instance) or "",
                        "evse_id": evse.id if evse else 0,
                        "variable": variable.name,
                        "variable_instance": _opt(variable.instance) or "",
                        "attribute_type": (_opt(attribute.type) or "Actual"),
                        "value": _opt(attribute.value),
                    }
                )
        async with self.db.session() as session:
            await repositories.upsert_device_model(session, conn.identity, rows)
            await session.commit()
        return v201.NotifyReportResponse()

    async def _security_event_201(
        self, req: v201.SecurityEventNotificationRequest, conn: Connection
    ) -> Any:
        await self._security_event(conn, req.type, req.timestamp, _opt(req.tech_info))
        return v201.SecurityEventNotificationResponse()


# -- helpers ----------------------------------------------------------------------------------


def _acknowledge(
    service: CsmsService, response: type[msgspec.Struct]
) -> Callable[[Any, Connection], Awaitable[msgspec.Struct]]:
    """A handler for notifications whose answer is empty: kept in the message log only."""

    async def handler(request: Any, connection: Connection) -> msgspec.Struct:
        await service._touch(connection)
        return response()

    return handler


def _unknown_vendor(response: Any, status: Any) -> Callable[[Any, Connection], Any]:
    """DataTransfer: no vendor extensions are registered, so UnknownVendorId (1.6 §6.15)."""
    return lambda request, connection: response(status=status.UNKNOWN_VENDOR_ID)


def _reject_csr(response: Any, status: Any) -> Callable[[Any, Connection], Any]:
    """SignCertificate: no certificate authority is configured on this CSMS, so Rejected."""
    return lambda request, connection: response(status=status.REJECTED)


def _rows_16(
    station_id: str, transaction_id: int | None, evse_id: int | None, meter_value: Any
) -> list[MeterValueRow]:
    return [
        {
            "station_id": station_id,
            "transaction_id": transaction_id,
            "evse_id": evse_id,
            "timestamp": meter_value.timestamp,
            "measurand": _value_of(sample.measurand) or "Energy.Active.Import.Register",
            "phase": _value_of(sample.phase),
            "unit": _value_of(sample.unit),
            "context": _value_of(sample.context),
            "location": _value_of(sample.location),
            "raw_value": sample.value,
        }
        for sample in meter_value.sampled_value
    ]


def _rows_201(
    station_id: str, transaction_id: int | None, evse_id: int | None, meter_value: Any
) -> list[MeterValueRow]:
    rows: list[MeterValueRow] = []
    for sample in meter_value.sampled_value:
        unit = _opt(sample.unit_of_measure)
        rows.append(
            {
                "station_id": station_id,
                "transaction_id": transaction_id,
                "evse_id": evse_id,
                "timestamp": meter_value.timestamp,
                "measurand": _value_of(sample.measurand) or "Energy.Active.Import.Register",
                "phase": _value_of(sample.phase),
                "unit": (_opt(unit.unit) if unit else None) or "Wh",
                "context": _value_of(sample.context),
                "location": _value_of(sample.location),
                "value": float(sample.value),
                "raw_value": repr(sample.value),
            }
        )
    return rows


def _value_of(field: Any) -> str | None:
    value = _opt(field)
    return None if value is None else str(value.value if hasattr(value, "value") else value)


def _energy_register(meter_values: Sequence[Any]) -> int | None:
    """The last Energy.Active.Import.Register reading in Wh, if the event carries one."""
    reading = None
    for meter_value in meter_values:
        for sample in meter_value.sampled_value:
            measurand = _value_of(sample.measurand) or "Energy.Active.Import.Register"
            if measurand == "Energy.Active.Import.Register":
                unit = _opt(sample.unit_of_measure)
                scale = 1000 if unit and _opt(unit.unit) == "kWh" else 1
                reading = round(float(sample.value) * scale)
    return reading


def _log_row(time: datetime, station_id: str, direction: str, frame: str | bytes) -> MessageLogRow:
    text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
    row: MessageLogRow = {
        "time": time,
        "station_id": station_id,
        "direction": direction,
        "message_type": 0,
        "raw": text,
    }
    try:
        head = _frame_head.decode(text)
        row["message_type"] = msgspec.json.decode(head[0], type=int)
        row["message_id"] = msgspec.json.decode(head[1], type=str)
        if row["message_type"] in (2, 6):
            row["action"] = msgspec.json.decode(head[2], type=str)
    except (msgspec.MsgspecError, IndexError, RecursionError, UnicodeError):
        pass  # a malformed frame is logged raw, with type 0
    return row
