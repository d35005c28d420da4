"""Test peers for the station runtime: an independent CSMS written with the mobilityhouse
``ocpp`` library (``@on`` handlers served by ``websockets.serve``), and helpers to run a
:class:`~ocppkit.station.station.Station` against it or against our own CSMS.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as MhCp16
from ocpp.v16 import call_result as r16
from ocpp.v201 import ChargePoint as MhCp201
from ocpp.v201 import call_result as r201

from ocppkit.station.station import Station, StationConfig
from ocppkit.station.store import StationStore


def now() -> str:
    return datetime.now(UTC).isoformat()


class Recorder:
    """What the independent CSMS saw: every station CALL as (station, action, kwargs)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.times: list[float] = []
        """Loop time each call arrived (parallel to :attr:`calls`)."""
        self.points: dict[str, Any] = {}
        self.event = asyncio.Event()
        self.boot_status = "Accepted"
        self.boot_interval = 300
        self.blocked: set[str] = set()
        self.parents: dict[str, str] = {}
        """id tag -> the parentIdTag Authorize answers (1.6)."""
        self.tx_ids = itertools.count(100)
        self.fail_actions: dict[str, int] = {}
        """action -> how many more times to answer it with CALLERROR InternalError."""

    def add(self, station: str, action: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((station, action, kwargs))
        self.times.append(asyncio.get_running_loop().time())
        self.event.set()
        self.event = asyncio.Event()
        remaining = self.fail_actions.get(action, 0)
        if remaining:
            self.fail_actions[action] = remaining - 1
            from ocpp.exceptions import InternalError

            raise InternalError(description="test: failing on purpose")

    def times_of(self, action: str) -> list[float]:
        return [t for t, (_, a, _) in zip(self.times, self.calls, strict=True) if a == action]

    def of(self, action: str) -> list[dict[str, Any]]:
        return [kw for _, a, kw in self.calls if a == action]

    async def wait_for(self, predicate: Callable[[Recorder], bool], timeout: float = 10.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            while not predicate(self):
                await self.event.wait()

    async def wait_count(self, action: str, count: int, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        await self.wait_for(lambda r: len(r.of(action)) >= count, timeout)

    def status(self, code: str) -> str:
        return "Blocked" if code in self.blocked else "Accepted"


def csms16(rec: Recorder) -> type[MhCp16]:
    class TheirCsms16(MhCp16):
        @on("BootNotification")
        def on_boot(self, **kw: Any) -> Any:
            rec.add(self.id, "BootNotification", kw)
            return r16.BootNotification(
                current_time=now(), interval=rec.boot_interval, status=rec.boot_status
            )

        @on("Heartbeat")
        def on_heartbeat(self, **kw: Any) -> Any:
            rec.add(self.id, "Heartbeat", kw)
            return r16.Heartbeat(current_time=now())

        @on("StatusNotification")
        def on_status(self, **kw: Any) -> Any:
            rec.add(self.id, "StatusNotification", kw)
            return r16.StatusNotification()

        @on("Authorize")
        def on_authorize(self, id_tag: str, **kw: Any) -> Any:
            rec.add(self.id, "Authorize", {"id_tag": id_tag, **kw})
            info = {"status": rec.status(id_tag)}
            if id_tag in rec.parents:
                info["parent_id_tag"] = rec.parents[id_tag]
            return r16.Authorize(id_tag_info=info)

        @on("StartTransaction")
        def on_start(self, **kw: Any) -> Any:
            rec.add(self.id, "StartTransaction", kw)
            return r16.StartTransaction(
                transaction_id=next(rec.tx_ids), id_tag_info={"status": rec.status(kw["id_tag"])}
            )

        @on("StopTransaction")
        def on_stop(self, **kw: Any) -> Any:
            rec.add(self.id, "StopTransaction", kw)
            return r16.StopTransaction()

        @on("MeterValues")
        def on_meter_values(self, **kw: Any) -> Any:
            rec.add(self.id, "MeterValues", kw)
            return r16.MeterValues()

        @on("FirmwareStatusNotification")
        def on_firmware(self, **kw: Any) -> Any:
            rec.add(self.id, "FirmwareStatusNotification", kw)
            return r16.FirmwareStatusNotification()

        @on("DiagnosticsStatusNotification")
        def on_diagnostics(self, **kw: Any) -> Any:
            rec.add(self.id, "DiagnosticsStatusNotification", kw)
            return r16.DiagnosticsStatusNotification()

        @on("SignCertificate")
        def on_sign_certificate(self, **kw: Any) -> Any:
            rec.add(self.id, "SignCertificate", kw)
            return r16.SignCertificate(status="Accepted")

        @on("SecurityEventNotification")
        def on_security_event(self, **kw: Any) -> Any:
            rec.add(self.id, "SecurityEventNotification", kw)
            return r16.SecurityEventNotification()

        @on("LogStatusNotification")
        def on_log_status(self, **kw: Any) -> Any:
            rec.add(self.id, "LogStatusNotification", kw)
            return r16.LogStatusNotification()

        @on("SignedFirmwareStatusNotification")
        def on_signed_firmware(self, **kw: Any) -> Any:
            rec.add(self.id, "SignedFirmwareStatusNotification", kw)
            return r16.SignedFirmwareStatusNotification()

    return TheirCsms16


def csms201(rec: Recorder) -> type[MhCp201]:
    class TheirCsms201(MhCp201):
        @on("BootNotification")
        def on_boot(self, **kw: Any) -> Any:
            rec.add(self.id, "BootNotification", kw)
            return r201.BootNotification(
                current_time=now(), interval=rec.boot_interval, status=rec.boot_status
            )

        @on("Heartbeat")
        def on_heartbeat(self, **kw: Any) -> Any:
            rec.add(self.id, "Heartbeat", kw)
            return r201.Heartbeat(current_time=now())

        @on("StatusNotification")
        def on_status(self, **kw: Any) -> Any:
            rec.add(self.id, "StatusNotification", kw)
            return r201.StatusNotification()

        @on("Authorize")
        def on_authorize(self, id_token: dict[str, Any], **kw: Any) -> Any:
            rec.add(self.id, "Authorize", {"id_token": id_token, **kw})
            return r201.Authorize(id_token_info={"status": rec.status(id_token["id_token"])})

        @on("TransactionEvent")
        def on_transaction_event(self, **kw: Any) -> Any:
            rec.add(self.id, "TransactionEvent", kw)
            token = kw.get("id_token")
            if token is None:
                return r201.TransactionEvent()
            return r201.TransactionEvent(id_token_info={"status": rec.status(token["id_token"])})

        @on("MeterValues")
        def on_meter_values(self, **kw: Any) -> Any:
            rec.add(self.id, "MeterValues", kw)
            return r201.MeterValues()

        @on("NotifyReport")
        def on_notify_report(self, **kw: Any) -> Any:
            rec.add(self.id, "NotifyReport", kw)
            return r201.NotifyReport()

        @on("FirmwareStatusNotification")
        def on_firmware(self, **kw: Any) -> Any:
            rec.add(self.id, "FirmwareStatusNotification", kw)
            return r201.FirmwareStatusNotification()

        @on("ReportChargingProfiles")
        def on_report_charging_profiles(self, **kw: Any) -> Any:
            rec.add(self.id, "ReportChargingProfiles", kw)
            return r201.ReportChargingProfiles()

        @on("LogStatusNotification")
        def on_log_status(self, **kw: Any) -> Any:
            rec.add(self.id, "LogStatusNotification", kw)
            return r201.LogStatusNotification()

        @on("ReservationStatusUpdate")
        def on_reservation(self, **kw: Any) -> Any:
            rec.add(self.id, "ReservationStatusUpdate", kw)
            return r201.ReservationStatusUpdate()

        @on("SignCertificate")
        def on_sign_certificate(self, **kw: Any) -> Any:
            rec.add(self.id, "SignCertificate", kw)
            return r201.SignCertificate(status="Accepted")

        @on("SecurityEventNotification")
        def on_security_event(self, **kw: Any) -> Any:
            rec.add(self.id, "SecurityEventNotification", kw)
            return r201.SecurityEventNotification()

        @on("NotifyEvent")
        def on_notify_event(self, **kw: Any) -> Any:
            rec.add(self.id, "NotifyEvent", kw)
            return r201.NotifyEvent()

        @on("NotifyMonitoringReport")
        def on_notify_monitoring_report(self, **kw: Any) -> Any:
            rec.add(self.id, "NotifyMonitoringReport", kw)
            return r201.NotifyMonitoringReport()

        @on("NotifyDisplayMessages")
        def on_notify_display_messages(self, **kw: Any) -> Any:
            rec.add(self.id, "NotifyDisplayMessages", kw)
            return r201.NotifyDisplayMessages()

        @on("NotifyCustomerInformation")
        def on_notify_customer_information(self, **kw: Any) -> Any:
            rec.add(self.id, "NotifyCustomerInformation", kw)
            return r201.NotifyCustomerInformation()

    return TheirCsms201


@contextlib.asynccontextmanager
async def their_csms() -> AsyncIterator[tuple[int, Recorder]]:
    """The independent CSMS on an ephemeral port: (port, recorder)."""
    rec = Recorder()
    c16, c201 = csms16(rec), csms201(rec)

    async def on_connect(ws: Any) -> None:
        cls: Any = c16 if ws.subprotocol == "ocpp1.6" else c201
        point = cls(ws.request.path.rsplit("/", 1)[-1], ws)
        rec.points[point.id] = point
        with contextlib.suppress(websockets.ConnectionClosed):
            await point.start()

    async with websockets.serve(
        on_connect, "127.0.0.1", 0, subprotocols=["ocpp1.6", "ocpp2.0.1"]
    ) as server:
        yield server.sockets[0].getsockname()[1], rec


@contextlib.asynccontextmanager
async def running(
    config: StationConfig, store: StationStore, **kwargs: Any
) -> AsyncIterator[Station]:
    """A station running in the background; stopped (gracefully) on exit."""
    station = Station(config, store=store, **kwargs)
    task = asyncio.create_task(station.run())
    try:
        yield station
    finally:
        await station.stop("test over")
        await asyncio.wait_for(task, 15)


@contextlib.asynccontextmanager
async def with_their_csms(
    store: StationStore, station_id: str, ocpp_version: str, *, statuses: int, **config: Any
) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    """Their CSMS, our station online (2 connectors, meter values every second, quick
    firmware steps, unless ``config`` says otherwise) and its first ``statuses``
    StatusNotifications received: (station, recorder, their ChargePoint for calls)."""
    async with their_csms() as (port, rec):
        settings: dict[str, Any] = {
            "meter_values_interval": 1,
            "connectors": 2,
            "firmware_step_seconds": 0.1,
            **config,
        }
        cfg = StationConfig(
            station_id=station_id,
            csms_url=f"ws://127.0.0.1:{port}/ocpp",
            ocpp_version=ocpp_version,
            **settings,
        )
        async with running(cfg, store) as station:
            await online(station)
            await rec.wait_count("StatusNotification", statuses)
            yield station, rec, rec.points[station_id]


async def online(station: Station, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
    return await station.wait_for_state(lambda s: s["online"], timeout)


async def drained(station: Station, timeout: float = 10.0) -> dict[str, Any]:  # noqa: ASYNC109
    return await station.wait_for_state(lambda s: s["queued"] == 0, timeout)
