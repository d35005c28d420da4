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
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.exceptions import ConnectionClosed

from ocppkit.csms.certificate_signing import CertificateSigning, load_authority
from ocppkit.csms.metrics import CsmsMetrics
from ocppkit.csms.settings import CsmsSettings, StationPolicy, TagPolicy, check_supported
from ocppkit.messages import v16, v21, v201
from ocppkit.protocol import ErrorCode, HandlerError, OcppVersion, Router
from ocppkit.protocol.frames import FrameHead, MessageType, peek_head
from ocppkit.storage import Database, repositories
from ocppkit.storage.group_commit import GroupCommitter, RowWriter, StorageUnavailableError, Unit
from ocppkit.storage.models import MAX_METER_WH
from ocppkit.storage.repositories import MessageLogRow, MeterValueRow
from ocppkit.transport import Connection

__all__ = ["CsmsService"]

_log = structlog.get_logger("ocppkit.csms")
#: Seconds, beyond the call timeout, that a triggered message is accepted while Pending.
TRIGGER_GRACE = 60.0
_TRIGGERS = frozenset({"TriggerMessage", "ExtendedTriggerMessage"})
#: TriggerMessage's requestedMessage -> the CALL(s) the station answers it with.
_TRIGGERED_ACTIONS: dict[str, tuple[str, ...]] = {
    "SignChargePointCertificate": ("SignCertificate",),
    "SignChargingStationCertificate": ("SignCertificate",),
    "SignV2GCertificate": ("SignCertificate",),
    "SignCombinedCertificate": ("SignCertificate",),
    "FirmwareStatusNotification": (
        "FirmwareStatusNotification",
        "SignedFirmwareStatusNotification",
    ),
}
#: Frames kept for the message log while the database cannot take them.
MAX_QUEUED_LOG_FRAMES = 100_000
_UNSET = msgspec.UNSET
#: The BootNotification status of a station no operator has decided on, per policy.
_POLICY_STATUS = {
    StationPolicy.ACCEPT: "Accepted",
    StationPolicy.PENDING: "Pending",
    StationPolicy.REJECT: "Rejected",
}
T = TypeVar("T")
#: OCPP 2.1 stations get the 2.0.1 behaviour with 2.1's own message types.
_MESSAGES_2X: dict[OcppVersion, Any] = {OcppVersion.V201: v201, OcppVersion.V21: v21}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _opt(value: Any) -> Any:
    """``None`` for an unset optional field."""
    return None if value is _UNSET else value


class _GatedRouter(Router):
    """A router that answers SecurityError to what a station may not send yet (see
    :meth:`CsmsService.may_call`)."""

    def __init__(self, allowed: Callable[[Connection, str], Awaitable[bool]]) -> None:
        super().__init__()
        self._allowed = allowed
        self.metrics: CsmsMetrics | None = None  # set by CsmsService

    async def dispatch(self, action: str, request: msgspec.Struct, context: Any) -> msgspec.Struct:
        if not await self._allowed(context, action):
            raise HandlerError(ErrorCode.SECURITY_ERROR, "the station is not Accepted yet")
        if self.metrics is None:
            return await super().dispatch(action, request, context)
        started = time.perf_counter()
        try:
            return await super().dispatch(action, request, context)
        finally:
            self.metrics.handler(action, time.perf_counter() - started)


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
        self.committer = GroupCommitter(database)
        self._touched: set[str] = set()
        # station id -> {action the CSMS triggered: monotonic time until it is allowed}
        self._triggered: dict[str, dict[str, float]] = {}
        # station id -> done once a new connection knows whether the station is Accepted
        self._restoring: dict[str, asyncio.Future[None]] = {}
        self.clock = clock
        self.connections: dict[str, Connection] = {}
        self._accepted: set[str] = set()
        self._log_rows: list[tuple[datetime, str, str, str | bytes, FrameHead | None]] = []
        # SignCertificate -> CertificateSigned (A02/A03); the CA files are read here, at start.
        self.certificate_signing = CertificateSigning(
            load_authority(settings),
            security_profile=settings.security_profile,
            write=self._write,
            clock=lambda: self.clock(),
        )
        self.routers = {
            OcppVersion.V16: self._router_16(),
            OcppVersion.V201: self._router_2x(v201),
            OcppVersion.V21: self._router_2x(v21),
        }
        self.metrics = CsmsMetrics(
            connected=lambda: sum(1 for c in self.connections.values() if not c.closed)
        )
        for router in self.routers.values():
            if isinstance(router, _GatedRouter):
                router.metrics = self.metrics
        self.committer.on_batch = lambda units, seconds: self.metrics.db_batch(
            "group_commit", units, seconds
        )

    # -- connections ------------------------------------------------------------------------

    def is_accepted(self, connection: Connection) -> bool:
        """True once this connection's station was answered Accepted."""
        return self.connections.get(connection.identity) is connection and (
            connection.identity in self._accepted
        )

    async def may_call(self, connection: Connection, action: str) -> bool:
        """Whether the station may send ``action`` now.

        BootNotification always; anything once the station is Accepted (at this connection's
        boot or, for a station that only reconnected, at an earlier one); before that only
        what the CSMS itself asked for with a TriggerMessage, for a while after asking
        (1.6J errata 3.8; 2.0.1 B02.FR.09 / B03.FR.07).
        """
        if action == "BootNotification" or self.is_accepted(connection):
            return True
        restoring = self._restoring.get(connection.identity)
        if restoring is not None:  # the registry is being read for this new connection
            await asyncio.shield(restoring)
            if self.is_accepted(connection):
                return True
        until = self._triggered.get(connection.identity, {}).get(action)
        return until is not None and until >= time.monotonic()

    def _note_trigger(self, connection: Connection, frame: str | bytes) -> None:
        """Remember which message an outgoing TriggerMessage asks the station for."""
        try:
            kind, _, action, payload = msgspec.json.decode(frame)
            requested = payload["requestedMessage"]
        except (msgspec.DecodeError, ValueError, TypeError, KeyError):
            return
        if kind != 2 or action not in _TRIGGERS:
            return
        until = time.monotonic() + self.settings.call_timeout + TRIGGER_GRACE
        allowed = self._triggered.setdefault(connection.identity, {})
        for answer in _TRIGGERED_ACTIONS.get(requested, (requested,)):
            allowed[answer] = until

    async def on_connect(self, connection: Connection) -> None:
        """Register the connection while it lives; refuse a second one for the same id.

        An unauthenticated second connection (profile 0) never displaces the first
        (checklist A11). An authenticated one (profile >= 1: it passed the credential check
        before the upgrade) replaces the first only if that one no longer answers a ping
        within ``duplicate_probe_timeout`` (a half-open socket whose peer vanished,
        checklist A12); otherwise it is closed 1008. At no moment are two connections
        routable for one id: the old one leaves :attr:`connections` in the same step as the
        new one enters. Both outcomes are logged and stored as security events.
        """
        station_id = connection.identity
        existing = self.connections.get(station_id)
        replaced = False
        if existing is not None and not existing.closed:
            if self.settings.security_profile == 0:
                _log.warning("duplicate connection refused", station_id=station_id)
                await connection.close(1008, "already connected")
                return
            replaced = await self._replace_if_dead(existing, connection)
            if not replaced:
                await connection.close(1008, "already connected")
                return
        self.connections[station_id] = connection
        if not replaced:  # a replacement keeps the station's Boot state (same station)
            self._accepted.discard(station_id)
        restoring = self._restoring[station_id] = asyncio.get_running_loop().create_future()
        try:
            if await self._presence(station_id, online=True, version=connection.version) and (
                not connection.closed
            ):
                # Accepted at an earlier boot: a station that only reconnected (no reboot)
                # need not boot again (1.6 §4.2 / 2.0.1 B01: Boot follows a (re)boot).
                self._accepted.add(station_id)
        finally:
            restoring.set_result(None)
            if self._restoring.get(station_id) is restoring:
                del self._restoring[station_id]
        _log.info("station connected", station_id=station_id, ocpp=connection.version)

    async def on_close(self, connection: Connection) -> None:
        """Unregister a connection that has ended (unless another one replaced it)."""
        station_id = connection.identity
        if self.connections.get(station_id) is connection:
            del self.connections[station_id]
            self._accepted.discard(station_id)
            await self._presence(station_id, online=False)
        _log.info(
            "station disconnected",
            station_id=station_id,
            code=connection.websocket.close_code,
            reason=connection.websocket.close_reason or None,
        )

    async def _presence(self, station_id: str, *, online: bool, version: str | None = None) -> bool:
        """Store online/offline (with every other station's in the same group commit); True
        if the station came online and was Accepted at an earlier boot. A storage failure
        is logged, the station is not refused."""
        row: repositories.PresenceRow = {
            "station_id": station_id,
            "now": self.clock(),
            "online": online,
            "ocpp_version": version,
        }
        try:
            result = await self._insert(repositories.record_presence, [row])
        except Exception:
            _log.warning("online state not stored", station_id=station_id, exc_info=True)
            return False
        return bool(result and result[0])

    async def _replace_if_dead(self, old: Connection, new: Connection) -> bool:
        """Ping ``old``; without a pong in time, make ``new`` the routable one. True if so."""
        station_id = new.identity
        alive = await self._answers_ping(old)
        if alive or new.closed or self.connections.get(station_id) is not old:
            # Alive, or the new socket went away, or another connection won the race.
            _log.warning("duplicate connection refused", station_id=station_id, old_alive=alive)
            await self._duplicate_event(
                station_id, "DuplicateConnectionRefused", "the connected session answered a ping"
            )
            return False
        self.connections[station_id] = new  # one assignment: old unroutable, new routable
        _log.warning("dead connection replaced", station_id=station_id)
        await self._duplicate_event(
            station_id, "DuplicateConnectionReplaced", "the connected session missed a ping"
        )
        await self._drop(old)
        return True

    async def _answers_ping(self, connection: Connection) -> bool:
        try:
            pong = await connection.websocket.ping()
            await asyncio.wait_for(pong, self.settings.duplicate_probe_timeout)
        except (TimeoutError, ConnectionClosed):
            return False
        return True

    async def _drop(self, connection: Connection, grace: float = 1.0) -> None:
        """Close a connection whose peer is gone: a close frame, then abort after ``grace``."""
        closing = asyncio.create_task(connection.close(1008, "replaced by a new connection"))
        try:
            await asyncio.wait_for(asyncio.shield(closing), grace)
        except TimeoutError:
            connection.websocket.transport.abort()
            await closing

    async def _duplicate_event(self, station_id: str, type_: str, tech_info: str) -> None:
        """Store a security event for a duplicate connection (never fails the caller)."""
        now = self.clock()

        async def store(session: AsyncSession) -> None:
            await repositories.ensure_station(session, station_id, now=now)
            await repositories.add_security_event(
                session, station_id, type=type_, timestamp=now, tech_info=tech_info
            )

        try:
            await self._write(store)
        except Exception:
            _log.exception("security event not stored", station_id=station_id)

    # -- message log ------------------------------------------------------------------------

    def observe(self, connection: Connection, direction: str, frame: str | bytes) -> None:
        """Frame observer: queue every frame for the batched message log; count it. The
        frame's head is read once, for both."""
        head = peek_head(frame)
        self._log_rows.append((self.clock(), connection.identity, direction, frame, head))
        self.metrics.frame(connection, direction, head)
        if (
            direction == "out"
            and head is not None
            and head[0] == MessageType.CALL
            and head[2] in _TRIGGERS
        ):
            self._note_trigger(connection, frame)

    async def flush_message_log(self) -> int:
        """Write the queued frames in one transaction; returns how many."""
        queued, self._log_rows = self._log_rows, []
        if not queued:
            return 0
        rows = [_log_row(*entry) for entry in queued]
        started = time.perf_counter()
        try:  # through the group committer: one writer, so SQLite never waits on a lock
            await self._insert(repositories.add_message_log, rows)
        except Exception:
            # Keep the frames for the next attempt, newest last, within a bound.
            self._log_rows = (queued + self._log_rows)[-MAX_QUEUED_LOG_FRAMES:]
            self.metrics.db_batch_failed("message_log")
            raise
        self.metrics.db_batch("message_log", len(rows), time.perf_counter() - started)
        return len(rows)

    async def prune_message_log(self) -> int:
        """Delete message-log rows older than the retention setting (0 keeps everything)."""
        days = self.settings.message_log_retention_days
        if days == 0:
            return 0
        async with self.db.write_session() as session:
            deleted = await repositories.prune_message_log(
                session, retention=timedelta(days=days), now=self.clock()
            )
            await session.commit()
        return deleted

    async def flush_last_seen(self) -> int:
        """Write ``last_seen`` for the stations seen since the last flush; returns how many.

        Heartbeats and notifications only mark a station as seen; writing that per message
        would put a commit on the hottest path for a value nobody needs to the millisecond.
        """
        touched, self._touched = self._touched, set()
        if not touched:
            return 0
        try:
            now = self.clock()
            await self._write(lambda s: repositories.touch_stations(s, sorted(touched), now=now))
        except Exception:
            self._touched |= touched
            raise
        return len(touched)

    async def run_message_log(
        self, interval: float = 0.1, prune_every: float = 3600.0, checkpoint_every: float = 1.0
    ) -> None:
        """Flush the message log every ``interval`` seconds, checkpoint the database every
        ``checkpoint_every`` seconds (:meth:`Database.checkpoint`) and prune the log every
        ``prune_every`` seconds (and at start) until cancelled; flush once more on the way out.

        The interval is short because a flush shares the group committer with the replies
        waiting for their commit: at 0.5 s, a flush of a busy second's frames held them up for
        several milliseconds, the tail of the open-loop benchmark.
        """
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + prune_every
        next_checkpoint = loop.time() + checkpoint_every
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    await self.flush_message_log()
                    await self.flush_last_seen()
                    if loop.time() >= next_checkpoint:
                        next_checkpoint = loop.time() + checkpoint_every
                        await self.db.checkpoint()
                    if loop.time() >= next_prune:
                        next_prune = loop.time() + prune_every
                        await self.prune_message_log()
                except Exception:  # a database hiccup must not end the message log
                    _log.exception("message log write failed; will retry")
        finally:
            await asyncio.shield(self.flush_message_log())
            await asyncio.shield(self.flush_last_seen())

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
        row: repositories.BootRow = {
            "station_id": station_id,
            "now": self.clock(),
            "ocpp_version": connection.version,
            "vendor": vendor,
            "model": model,
            "serial_number": serial_number,
            "firmware_version": firmware_version,
            "default_status": _POLICY_STATUS[self.settings.station_policy],
        }
        # Every boot of the group commit in one read and one write (reconnect storms).
        statuses = await self._insert(repositories.register_boots, [row])
        status = str(statuses[0]) if statuses else "Rejected"
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

    async def _write(self, unit: Unit[T]) -> T:
        """Run ``unit`` in the next group commit; its result once committed.

        Raises:
            HandlerError: InternalError when storage keeps failing, so the station retries
                (1.6 §3.7.1: never a CALLRESULT without a commit).
        """
        try:
            return await self.committer.run(unit)
        except StorageUnavailableError:
            raise HandlerError(ErrorCode.INTERNAL_ERROR, "storage unavailable; retry") from None

    async def _insert(self, writer: RowWriter, rows: Sequence[Any]) -> list[Any] | None:
        """:meth:`GroupCommitter.insert` with storage failures as InternalError (see
        :meth:`_write`)."""
        try:
            return await self.committer.insert(writer, rows)
        except StorageUnavailableError:
            raise HandlerError(ErrorCode.INTERNAL_ERROR, "storage unavailable; retry") from None

    def _touch(self, connection: Connection) -> None:
        """Note that the station was seen; ``last_seen`` is written with the next log batch."""
        self._touched.add(connection.identity)

    async def _store_meter_values(self, rows: Sequence[MeterValueRow]) -> None:
        started = time.perf_counter()
        try:
            # One multi-row INSERT for every station's samples in the batch.
            await self._insert(repositories.add_meter_values, rows)
        except Exception:  # storage unavailable (InternalError to the station) or a bad row
            self.metrics.db_batch_failed("meter_values")
            raise
        self.metrics.db_batch("meter_values", len(rows), time.perf_counter() - started)

    async def _security_event(
        self, connection: Connection, type_: str, timestamp: datetime, tech_info: str | None
    ) -> None:
        await self._write(
            lambda session: repositories.add_security_event(
                session,
                connection.identity,
                type=type_,
                timestamp=timestamp,
                tech_info=tech_info,
            )
        )

    # -- OCPP 1.6 ---------------------------------------------------------------------------

    def _router_16(self) -> Router:
        router = _GatedRouter(self.may_call)
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
        on("SignCertificate", self.certificate_signing.handler(v16))
        for action, response, field in (
            ("DiagnosticsStatusNotification", v16.DiagnosticsStatusNotificationResponse, "log"),
            ("FirmwareStatusNotification", v16.FirmwareStatusNotificationResponse, "firmware"),
            ("LogStatusNotification", v16.LogStatusNotificationResponse, "log"),
            (
                "SignedFirmwareStatusNotification",
                v16.SignedFirmwareStatusNotificationResponse,
                "firmware",
            ),
        ):
            on(action, self._progress(response, field))
        return router

    def _progress(self, response: Any, field: str) -> Callable[[Any, Connection], Any]:
        """Firmware / diagnostics / log status notifications: the latest status per station."""

        async def handler(req: Any, conn: Connection) -> Any:
            status = req.status.value
            now = self.clock()
            await self._write(
                lambda session: repositories.set_station_progress(
                    session, conn.identity, now=now, **{f"{field}_status": status}
                )
            )
            return response()

        return handler

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
        self._touch(conn)
        return v16.HeartbeatResponse(current_time=self.clock())

    async def _status_16(self, req: v16.StatusNotificationRequest, conn: Connection) -> Any:
        await self._write(
            lambda session: repositories.set_connector_status(
                session,
                conn.identity,
                evse_id=req.connector_id,
                connector_id=req.connector_id,
                status=req.status.value,
                timestamp=_opt(req.timestamp) or self.clock(),
                error_code=req.error_code.value,
                info=_opt(req.info),
            )
        )
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
        # The id is announced in the reply: _write returns once it is committed.
        transaction_id, created = await self._write(
            lambda session: repositories.start_transaction_v16(
                session,
                conn.identity,
                connector_id=req.connector_id,
                id_tag=req.id_tag,
                meter_start=req.meter_start,
                timestamp=req.timestamp,
            )
        )
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

        async def stop(session: AsyncSession) -> Any:
            stopped = None
            if transaction_id is not None:
                stopped = await repositories.stop_transaction(
                    session,
                    transaction_id,
                    station_id=conn.identity,
                    meter_stop=req.meter_stop,
                    timestamp=req.timestamp,
                    reason=_value_of(req.reason),
                )
            confirmed = stopped is not None
            if stopped is None:
                # 1.6 requires accepting a StopTransaction; an unknown or -1 id (errata 3.18)
                # is kept as an ended placeholder transaction, to be reconciled later.
                stopped = await repositories.record_unconfirmed_stop(
                    session,
                    conn.identity,
                    transaction_id=req.transaction_id,
                    meter_stop=req.meter_stop,
                    timestamp=req.timestamp,
                    reason=_value_of(req.reason),
                    id_tag=_opt(req.id_tag),
                )
            await repositories.add_meter_values(
                session, [r | {"transaction_id": stopped.id} for r in rows]
            )
            return confirmed

        confirmed = await self._write(stop)  # the stop is acknowledged: committed first
        if not confirmed:
            _log.warning(
                "StopTransaction for an unknown transaction kept for reconciliation",
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
        # A transaction id we do not know is stored as none (add_meter_values): no sample lost.
        await self._store_meter_values(rows)
        return v16.MeterValuesResponse()

    async def _security_event_16(
        self, req: v16.SecurityEventNotificationRequest, conn: Connection
    ) -> Any:
        await self._security_event(conn, req.type, req.timestamp, _opt(req.tech_info))
        return v16.SecurityEventNotificationResponse()

    # -- OCPP 2.0.1 and 2.1 -----------------------------------------------------------------
    # 2.1 stations get the same behaviour: the handlers read only fields that 2.0.1 and 2.1
    # share and answer with the connection's own message types (``_m``). 2.1-only actions
    # are not registered, so they are answered NotSupported.

    def _router_2x(self, m: Any) -> Router:
        router = _GatedRouter(self.may_call)
        on = router.register
        on("BootNotification", self._boot_2x)
        on("Heartbeat", self._heartbeat_2x)
        on("StatusNotification", self._status_2x)
        on("Authorize", self._authorize_2x)
        on("TransactionEvent", self._transaction_event_2x)
        on("MeterValues", self._meter_values_2x)
        on("NotifyReport", self._notify_report_2x)
        on("SecurityEventNotification", self._security_event_2x)
        on("DataTransfer", _unknown_vendor(m.DataTransferResponse, m.DataTransferStatusEnum))
        on("SignCertificate", self.certificate_signing.handler(m))
        on(
            "FirmwareStatusNotification",
            self._progress(m.FirmwareStatusNotificationResponse, "firmware"),
        )
        on("LogStatusNotification", self._progress(m.LogStatusNotificationResponse, "log"))
        on("NotifyEvent", self._notify_event_2x)
        for action, response in (
            ("NotifyChargingLimit", m.NotifyChargingLimitResponse),
            ("ReservationStatusUpdate", m.ReservationStatusUpdateResponse),
            ("NotifyMonitoringReport", m.NotifyMonitoringReportResponse),
            ("NotifyCustomerInformation", m.NotifyCustomerInformationResponse),
            ("NotifyDisplayMessages", m.NotifyDisplayMessagesResponse),
            ("ReportChargingProfiles", m.ReportChargingProfilesResponse),
            ("ClearedChargingLimit", m.ClearedChargingLimitResponse),
            ("PublishFirmwareStatusNotification", m.PublishFirmwareStatusNotificationResponse),
        ):
            on(action, _acknowledge(self, response))
        return router

    async def _boot_2x(self, req: v201.BootNotificationRequest, conn: Connection) -> Any:
        m = _m(conn)
        station = req.charging_station
        status = await self._register_boot(
            conn,
            vendor=station.vendor_name,
            model=station.model,
            serial_number=_opt(station.serial_number),
            firmware_version=_opt(station.firmware_version),
        )
        return m.BootNotificationResponse(
            current_time=self.clock(),
            interval=self.settings.heartbeat_interval,
            status=m.RegistrationStatusEnum(status),
        )

    async def _heartbeat_2x(self, req: v201.HeartbeatRequest, conn: Connection) -> Any:
        self._touch(conn)
        return _m(conn).HeartbeatResponse(current_time=self.clock())

    async def _status_2x(self, req: v201.StatusNotificationRequest, conn: Connection) -> Any:
        await self._write(
            lambda session: repositories.set_connector_status(
                session,
                conn.identity,
                evse_id=req.evse_id,
                connector_id=req.connector_id,
                status=req.connector_status.value,
                timestamp=req.timestamp,
            )
        )
        return _m(conn).StatusNotificationResponse()

    async def _id_token_info_2x(self, token: v201.IdToken, conn: Connection) -> Any:
        m = _m(conn)
        status, expiry, _parent = await self._authorize(token.id_token)
        return m.IdTokenInfo(
            status=m.AuthorizationStatusEnum(status),
            cache_expiry_date_time=expiry if expiry is not None else _UNSET,
        )

    async def _authorize_2x(self, req: v201.AuthorizeRequest, conn: Connection) -> Any:
        info = await self._id_token_info_2x(req.id_token, conn)
        return _m(conn).AuthorizeResponse(id_token_info=info)

    async def _transaction_event_2x(
        self, req: v201.TransactionEventRequest, conn: Connection
    ) -> Any:
        info = req.transaction_info
        evse = _opt(req.evse)
        token = _opt(req.id_token)
        meter_values = _opt(req.meter_value) or []
        meter_wh = _energy_register(meter_values)

        async def record(session: AsyncSession) -> None:
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
                evse_id = evse.id if evse else None
                rows: list[MeterValueRow] = []
                for meter_value in meter_values:
                    rows.extend(_rows_201(conn.identity, transaction.id, evse_id, meter_value))
                await repositories.add_meter_values(session, rows)

        await self._write(record)  # never a CALLERROR for a valid TransactionEvent but storage
        m = _m(conn)
        if token is None:
            return m.TransactionEventResponse()
        return m.TransactionEventResponse(id_token_info=await self._id_token_info_2x(token, conn))

    async def _meter_values_2x(self, req: v201.MeterValuesRequest, conn: Connection) -> Any:
        rows: list[MeterValueRow] = []
        for meter_value in req.meter_value:
            rows.extend(_rows_201(conn.identity, None, req.evse_id, meter_value))
        await self._store_meter_values(rows)
        return _m(conn).MeterValuesResponse()

    async def _notify_report_2x(self, req: v201.NotifyReportRequest, conn: Connection) -> Any:
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
        await self._write(
            lambda session: repositories.upsert_device_model(session, conn.identity, rows)
        )
        return _m(conn).NotifyReportResponse()

    async def _notify_event_2x(self, req: v201.NotifyEventRequest, conn: Connection) -> Any:
        rows: list[repositories.StationEventRow] = []
        for event in req.event_data:
            component, variable = event.component, event.variable
            evse = _opt(component.evse)
            rows.append(
                {
                    "event_id": event.event_id,
                    "timestamp": event.timestamp,
                    "trigger": event.trigger.value,
                    "component": component.name,
                    "component_instance": _opt(component.instance),
                    "evse_id": evse.id if evse else None,
                    "variable": variable.name,
                    "variable_instance": _opt(variable.instance),
                    "actual_value": event.actual_value,
                    "event_notification_type": event.event_notification_type.value,
                    "cleared": _opt(event.cleared),
                    "tech_code": _opt(event.tech_code),
                    "tech_info": _opt(event.tech_info),
                }
            )
        now = self.clock()
        await self._write(
            lambda session: repositories.add_station_events(session, conn.identity, rows, now=now)
        )
        return _m(conn).NotifyEventResponse()

    async def _security_event_2x(
        self, req: v201.SecurityEventNotificationRequest, conn: Connection
    ) -> Any:
        await self._security_event(conn, req.type, req.timestamp, _opt(req.tech_info))
        return _m(conn).SecurityEventNotificationResponse()


# -- helpers ----------------------------------------------------------------------------------


def _m(connection: Connection) -> Any:
    """The message module (v201 or v21) of a 2.x connection."""
    return _MESSAGES_2X[connection.session.version]


def _acknowledge(
    service: CsmsService, response: type[msgspec.Struct]
) -> Callable[[Any, Connection], Awaitable[msgspec.Struct]]:
    """A handler for notifications whose answer is empty: kept in the message log only."""

    async def handler(request: Any, connection: Connection) -> msgspec.Struct:
        service._touch(connection)
        return response()

    return handler


def _unknown_vendor(response: Any, status: Any) -> Callable[[Any, Connection], Any]:
    """DataTransfer: no vendor extensions are registered, so UnknownVendorId (1.6 §6.15)."""
    return lambda request, connection: response(status=status.UNKNOWN_VENDOR_ID)


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
    """An optional enum field as plain text: every generated enum is a ``StrEnum``, whose
    ``str()`` is its value (and cheaper than ``.value``, on the path of every sample)."""
    return None if field is _UNSET or field is None else str(field)


def _energy_register(meter_values: Sequence[Any]) -> int | None:
    """The last Energy.Active.Import.Register reading in Wh, if the event carries one."""
    reading = None
    for meter_value in meter_values:
        for sample in meter_value.sampled_value:
            measurand = _value_of(sample.measurand) or "Energy.Active.Import.Register"
            if measurand == "Energy.Active.Import.Register":
                unit = _opt(sample.unit_of_measure)
                scale = 1000 if unit and _opt(unit.unit) == "kWh" else 1
                wh = float(sample.value) * scale
                if math.isfinite(wh) and abs(wh) <= MAX_METER_WH:  # else no reading at all
                    reading = round(wh)
    return reading


def _log_row(
    time: datetime, station_id: str, direction: str, frame: str | bytes, head: FrameHead | None
) -> MessageLogRow:
    row: MessageLogRow = {
        "time": time,
        "station_id": station_id,
        "direction": direction,
        "message_type": 0,  # a frame that does not start like one is logged raw, type 0
        "raw": frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame,
    }
    if head is not None:
        row["message_type"], row["message_id"], third = head
        if head[0] in (MessageType.CALL, MessageType.SEND):
            row["action"] = third
    return row
