"""OCPP 1.6 behaviour: the messages a 1.6 station sends and its answers to the Central System.

Model: :class:`~.status.ChargePoint16` (connector 0 and 1..n), :class:`~.config16.
Configuration16` (the standard keys, persisted), :class:`~.delivery.TransactionIds` (our
transaction key -> the Central System's ``transactionId``; -1 until the
StartTransaction.conf came, errata 3.18, resolved when each message is *sent*).

CSMS-initiated messages answered (Core, FirmwareManagement, LocalAuthListManagement,
Reservation, SmartCharging, RemoteTrigger): RemoteStart/StopTransaction, Reset,
ChangeAvailability, UnlockConnector, Get/ChangeConfiguration, ClearCache, TriggerMessage,
DataTransfer (``UnknownVendorId``: no vendor extensions), SendLocalList,
GetLocalListVersion, ReserveNow, CancelReservation, Set/ClearChargingProfile,
GetCompositeSchedule, UpdateFirmware, GetDiagnostics; and the Security extension's
(whitepaper edition 3): ExtendedTriggerMessage, CertificateSigned, InstallCertificate,
DeleteCertificate, GetInstalledCertificateIds, GetLog, SignedUpdateFirmware (the
certificates live in a :class:`~.certificates.CertificateStore`, persisted). Handlers
answer at once and do the slow part (a stop, a reboot, firmware steps) in the background, so
the CALLRESULT precedes the messages it causes (1.6 §5.17 TriggerMessage: "the Charge Point
SHALL first send the .conf").
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgspec

from ocppkit.messages import v16
from ocppkit.station.authorization import AuthInfo, AuthSettings
from ocppkit.station.behaviour import Behaviour, Port, Reservation, Tx
from ocppkit.station.certificates import (
    ANCHORS_V16,
    ROOT_TYPES_V16,
    CertificateError,
    CertificateStore,
)
from ocppkit.station.charging_profile import PURPOSE_V16, from_v16
from ocppkit.station.config16 import Configuration16
from ocppkit.station.delivery import TransactionIds, with_transaction_id
from ocppkit.station.firmware import FirmwareJob
from ocppkit.station.meter import (
    ENERGY,
    Reading,
    StopCause,
    meter_value_v16,
    stop_meter_value_v16,
)
from ocppkit.station.status import ChargePoint16, Connector16, Event, Facts

if TYPE_CHECKING:
    from ocppkit.station.station import Station

__all__ = ["Behaviour16"]

_V16_MEASURANDS = frozenset(m.value for m in v16.Measurand)
_UNSET = msgspec.UNSET


def _opt(value: Any) -> Any:
    return None if value is _UNSET else value


class Behaviour16(Behaviour):
    """An OCPP 1.6 station's model, messages and CSMS handlers."""

    invalid_certificate_event = "InvalidChargePointCertificate"
    security_event_request = v16.SecurityEventNotificationRequest
    certificate_anchors = ANCHORS_V16

    version = "1.6"

    def __init__(self, station: Station) -> None:
        cfg = station.config
        values = {
            "NumberOfConnectors": str(cfg.connectors),
            "MeterValueSampleInterval": str(cfg.meter_values_interval),
            "ClockAlignedDataInterval": str(cfg.clock_aligned_interval),
            "SecurityProfile": str(cfg.security_profile),
        }
        measurands = [m for m in cfg.measurands if m in _V16_MEASURANDS]
        if measurands:
            values["MeterValuesSampledData"] = ",".join(measurands[:8])
        if cfg.transaction_attempts is not None:
            values["TransactionMessageAttempts"] = str(cfg.transaction_attempts)
        if cfg.transaction_retry_interval is not None:
            values["TransactionMessageRetryInterval"] = str(cfg.transaction_retry_interval)
        self.config = Configuration16(values)
        self.cp = ChargePoint16.with_connectors(cfg.connectors)
        self.ids = TransactionIds()
        self.certs = CertificateStore()
        self.log_status = "Idle"
        self.log_request_id: int | None = None
        self.signed_firmware_request_id: int | None = None
        super().__init__(station)

    # -- model ------------------------------------------------------------------------------------

    @property
    def settings(self) -> AuthSettings:
        return self.config

    def facts(self, port: int) -> Facts:
        return self.cp.connector(port).facts

    def status_of(self, port: int) -> str:
        return str(self.cp.connector(port).status)

    def facts_refusal(self, port_id: int, event: Event) -> str | None:
        return self.cp.connector(port_id).refusal(event)

    def handle(self, port: int, event: Event, *, error_code: str = "OtherError") -> bool:
        outcomes, notes = self.cp.handle_outcome(
            port, event, now=self.st.now(), error_code=error_code
        )
        self.post_statuses(notes)
        return any(o.transaction_due for o in outcomes)

    def restore_facts(self, port: Port, facts: Facts) -> None:
        self.cp.connectors[port.id] = Connector16(port.id, facts)

    def install_profile(self, port: Port, raw: dict[str, Any]) -> None:
        port.keep_profile(from_v16(msgspec.convert(raw, v16.ChargingProfile)), raw)

    def tx_ref(self, tx: Tx) -> str:
        return str(self.ids.resolve(tx.key))

    def sample_interval(self) -> int:
        return self.config.meter_value_sample_interval

    def aligned_interval(self) -> int:
        return self.config.clock_aligned_data_interval

    def heartbeat_interval(self) -> int:
        return self.config.heartbeat_interval

    def set_heartbeat_interval(self, seconds: int) -> None:
        self.config.change_configuration("HeartbeatInterval", str(seconds))

    def password(self) -> str | None:
        return self.config.authorization_key or self.st.config.password

    def retry_policy(self) -> tuple[int, float]:
        return (
            self.config.transaction_message_attempts,
            float(self.config.transaction_message_retry_interval),
        )

    def ping_interval(self) -> float | None:
        interval = self.config.web_socket_ping_interval
        return float(interval) if interval > 0 else None

    def connection_timeout(self) -> int:
        return self.config.connection_timeout

    def stop_on_ev_disconnect(self) -> bool:
        return self.config.stop_transaction_on_ev_side_disconnect

    def authorize_remote(self) -> bool:
        return self.config.authorize_remote_tx_requests

    def model_to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "ids": self.ids.to_dict(),
            "cp": {"fault": self.cp.fault, "inoperative": self.cp.inoperative},
            "certs": self.certs.to_dict(),
        }

    def model_from_dict(self, data: dict[str, Any]) -> None:
        if "config" in data:
            self.config = Configuration16.from_dict(data["config"])
        self.ids = TransactionIds.from_dict(data.get("ids", {}))
        self.certs = CertificateStore.from_dict(data.get("certs", {}))
        cp = data.get("cp", {})
        self.cp.fault = cp.get("fault")
        if cp.get("inoperative"):
            self.cp.change_availability(0, operative=False, now=self.st.now())

    def reboot_model(self) -> None:
        self.config.reboot()

    # -- messages ---------------------------------------------------------------------------------

    def boot_request(self, reason: str) -> msgspec.Struct:
        cfg = self.st.config
        request = v16.BootNotificationRequest(
            charge_point_vendor=cfg.vendor[:20],
            charge_point_model=cfg.model[:20],
            firmware_version=cfg.firmware_version[:50],
        )
        if cfg.serial_number:
            request.charge_point_serial_number = cfg.serial_number[:25]
        return request

    def heartbeat_request(self) -> msgspec.Struct:
        return v16.HeartbeatRequest()

    def status_notifications(self) -> list[msgspec.Struct]:
        return list(self.cp.boot_notifications(self.st.now()))

    async def authorize_online(self, token: str, token_type: str | None) -> AuthInfo:
        reply = await self.st.request("Authorize", v16.AuthorizeRequest(id_tag=token))
        return AuthInfo.from_v16(reply.id_tag_info)

    async def enqueue_start(self, port: Port, tx: Tx, trigger: str) -> None:
        request = v16.StartTransactionRequest(
            connector_id=port.id,
            id_tag=(tx.id_token or "")[:20],
            meter_start=tx.meter_start,
            timestamp=tx.started_at,
        )
        if tx.reservation_id is not None:
            request.reservation_id = tx.reservation_id
        await self.st.enqueue("StartTransaction", request, tx_key=tx.key)

    async def enqueue_sample(self, port: Port, tx: Tx, *, aligned: bool, trigger: str) -> None:
        names = (
            self.config.meter_values_aligned_data
            if aligned
            else self.config.meter_values_sampled_data
        )
        context = v16.ReadingContext.SAMPLE_CLOCK if aligned else v16.ReadingContext.SAMPLE_PERIODIC
        value = meter_value_v16(
            port.meter.readings(self.measurands(names)), timestamp=self.st.now(), context=context
        )
        request = v16.MeterValuesRequest(
            connector_id=port.id, transaction_id=self.ids.resolve(tx.key), meter_value=[value]
        )
        await self.st.enqueue("MeterValues", request, tx_key=tx.key)

    def post_idle_aligned(self, port: Port) -> None:
        """§3.16 / key ClockAlignedDataInterval: every connector reports at the aligned
        times; without a transaction the values carry no transactionId (not queued)."""
        value = meter_value_v16(
            port.meter.readings(self.measurands(self.config.meter_values_aligned_data)),
            timestamp=self.st.now(),
            context=v16.ReadingContext.SAMPLE_CLOCK,
        )
        self.st.post(
            "MeterValues", v16.MeterValuesRequest(connector_id=port.id, meter_value=[value])
        )

    async def enqueue_stop(self, port: Port, tx: Tx, cause: StopCause, trigger: str) -> None:
        now = self.st.now()
        begin = stop_meter_value_v16(
            [Reading(ENERGY, float(tx.meter_start), "Wh")],
            timestamp=tx.started_at,
            context=v16.ReadingContext.TRANSACTION_BEGIN,
        )
        end = stop_meter_value_v16(
            port.meter.readings(self.measurands(self.config.stop_txn_sampled_data)),
            timestamp=now,
        )
        request = v16.StopTransactionRequest(
            meter_stop=port.meter.meter_wh,
            timestamp=now,
            transaction_id=self.ids.resolve(tx.key),
            reason=cause.v16,
            transaction_data=[begin, end],
        )
        if tx.id_token:
            request.id_tag = tx.id_token[:20]
        await self.st.enqueue("StopTransaction", request, tx_key=tx.key)

    def prepare(self, action: str, payload: bytes, tx_key: str | None) -> dict[str, Any]:
        if tx_key is not None and action in ("StopTransaction", "MeterValues"):
            payload = with_transaction_id(action, payload, self.ids.resolve(tx_key))
        result: dict[str, Any] = msgspec.json.decode(payload)
        return result

    def on_delivered(self, action: str, payload: bytes, tx_key: str | None, reply: Any) -> None:
        if tx_key is None:
            return
        if action == "StartTransaction":
            self.ids.confirm(tx_key, reply.transaction_id)
            request = msgspec.json.decode(payload, type=v16.StartTransactionRequest)
            info = AuthInfo.from_v16(reply.id_tag_info)
            self.auth.remember(request.id_tag, info, now=self.st.now(), config=self.config)
            port = self.find_tx(tx_key)
            if (
                info.status != "Accepted"
                and port is not None
                and self.config.stop_transaction_on_invalid_id
            ):
                self.st.spawn(self.stop(port, StopCause.DE_AUTHORIZED, "Deauthorized"))
        elif action == "StopTransaction":
            self.ids.forget(tx_key)

    def on_dropped(self, action: str, tx_key: str | None) -> None:
        if action == "StopTransaction" and tx_key is not None:
            self.ids.forget(tx_key)

    # -- CSMS-initiated messages --------------------------------------------------------------

    def register_handlers(self) -> None:
        r = self.register
        r("RemoteStartTransaction", self.on_remote_start)
        r("RemoteStopTransaction", self.on_remote_stop)
        r("Reset", self.on_reset)
        r("ChangeAvailability", self.on_change_availability)
        r("UnlockConnector", self.on_unlock)
        r("GetConfiguration", self.on_get_configuration)
        r("ChangeConfiguration", self.on_change_configuration)
        r("ClearCache", self.on_clear_cache)
        r("TriggerMessage", self.on_trigger)
        r("DataTransfer", self.on_data_transfer)
        r("SendLocalList", self.on_send_local_list)
        r("GetLocalListVersion", self.on_get_local_list_version)
        r("ReserveNow", self.on_reserve_now)
        r("CancelReservation", self.on_cancel_reservation)
        r("SetChargingProfile", self.on_set_charging_profile)
        r("ClearChargingProfile", self.on_clear_charging_profile)
        r("GetCompositeSchedule", self.on_get_composite_schedule)
        r("UpdateFirmware", self.on_update_firmware)
        r("GetDiagnostics", self.on_get_diagnostics)
        r("ExtendedTriggerMessage", self.on_extended_trigger)
        r("CertificateSigned", self.on_certificate_signed)
        r("InstallCertificate", self.on_install_certificate)
        r("DeleteCertificate", self.on_delete_certificate)
        r("GetInstalledCertificateIds", self.on_get_installed_certificate_ids)
        r("GetLog", self.on_get_log)
        r("SignedUpdateFirmware", self.on_signed_update_firmware)

    def on_remote_start(self, req: v16.RemoteStartTransactionRequest, _: Any) -> dict[str, Any]:
        """1.6 §5.11: Accepted when a transaction can start on the connector (only a TxProfile
        may come with it)."""
        port = self.remote_start_port(
            _opt(req.connector_id),
            _opt(req.charging_profile),
            v16.ChargingProfilePurposeType.TX_PROFILE,
        )
        if port is None:
            return {"status": "Rejected"}
        self.st.spawn(self.present_token(req.id_tag, port.id, remote=True))
        return {"status": "Accepted"}

    def on_remote_stop(self, req: v16.RemoteStopTransactionRequest, _: Any) -> dict[str, Any]:
        for port in self.ports.values():
            if port.tx is not None and self.ids.resolve(port.tx.key) == req.transaction_id:
                self.st.spawn(self.stop(port, StopCause.REMOTE, "RemoteStop"))
                return {"status": "Accepted"}
        return {"status": "Rejected"}

    def on_reset(self, req: v16.ResetRequest, _: Any) -> dict[str, Any]:
        hard = req.type is v16.ResetType.HARD
        self.st.spawn(self._reset(hard))
        return {"status": "Accepted"}

    async def _reset(self, hard: bool) -> None:
        """1.6 §5.14: stop transactions (reason Soft/HardReset), then reboot."""
        await asyncio.sleep(0.05)  # the .conf goes out first
        await self.stop_all(StopCause.HARD_RESET if hard else StopCause.SOFT_RESET, "ResetCommand")
        await self.reboot_when_sent("PowerUp")

    async def on_change_availability(
        self, req: v16.ChangeAvailabilityRequest, _: Any
    ) -> dict[str, Any]:
        if req.connector_id != 0 and req.connector_id not in self.ports:
            return {"status": "Rejected"}
        operative = req.type is v16.AvailabilityType.OPERATIVE
        answer, notes = self.cp.change_availability(
            req.connector_id, operative=operative, now=self.st.now()
        )
        self.post_statuses(notes)
        await self.st.save()
        return {"status": str(answer)}

    def on_unlock(self, req: v16.UnlockConnectorRequest, _: Any) -> dict[str, Any]:
        port = self.ports.get(req.connector_id)
        if port is None:
            return {"status": "NotSupported"}
        if port.tx is not None:
            self.st.spawn(self.stop(port, StopCause.UNLOCK_COMMAND, "UnlockCommand"))
        return {"status": "Unlocked"}

    def on_get_configuration(self, req: v16.GetConfigurationRequest, _: Any) -> msgspec.Struct:
        return self.config.handle_get_configuration(req)

    async def on_change_configuration(
        self, req: v16.ChangeConfigurationRequest, _: Any
    ) -> dict[str, Any]:
        if req.key in ("MeterValuesSampledData", "MeterValuesAlignedData", "StopTxnSampledData",
                       "StopTxnAlignedData"):  # fmt: skip
            items = [item.strip() for item in req.value.split(",") if item.strip()]
            if any(self.measurands([item]) != [item] for item in items):
                return {"status": "Rejected"}  # §5.3: a value the station cannot apply
        status = self.config.change_configuration(req.key, req.value)
        await self.st.save()
        self.st.wake_timer()
        self.st.wake_heartbeat()
        return {"status": str(status)}

    async def on_clear_cache(self, req: v16.ClearCacheRequest, _: Any) -> msgspec.Struct:
        reply = self.auth.clear_cache_v16(config=self.config)
        await self.st.save()
        return reply

    def on_trigger(self, req: v16.TriggerMessageRequest, _: Any) -> dict[str, Any]:
        """1.6 §5.17: Accepted, then the requested message."""
        connector = _opt(req.connector_id)
        if connector is not None and connector != 0 and connector not in self.ports:
            return {"status": "Rejected"}
        what = req.requested_message
        now = self.st.now()
        if what is v16.MessageTrigger.BOOT_NOTIFICATION:
            self.st.trigger_boot()
        elif what is v16.MessageTrigger.HEARTBEAT:
            self.st.spawn(self.st.request("Heartbeat", v16.HeartbeatRequest(), while_pending=True))
        elif what is v16.MessageTrigger.STATUS_NOTIFICATION:
            if connector is None:
                for note in self.cp.boot_notifications(now):
                    self.st.post("StatusNotification", note, triggered=True)
            elif connector == 0:
                self.st.post("StatusNotification", self.cp.notification(now), triggered=True)
            else:
                self.st.post(
                    "StatusNotification",
                    self.cp.connector(connector).notification(now),
                    triggered=True,
                )
        elif what is v16.MessageTrigger.METER_VALUES:
            targets = [self.ports[connector]] if connector else list(self.ports.values())
            for port in targets:
                self.advance(port)
                value = meter_value_v16(
                    port.meter.readings(self.measurands(self.config.meter_values_sampled_data)),
                    timestamp=now,
                    context=v16.ReadingContext.TRIGGER,
                )
                self.st.post(
                    "MeterValues",
                    v16.MeterValuesRequest(connector_id=port.id, meter_value=[value]),
                    triggered=True,
                )
        elif what is v16.MessageTrigger.DIAGNOSTICS_STATUS_NOTIFICATION:
            self.st.post(
                "DiagnosticsStatusNotification",
                {"status": "Uploading" if self.diagnostics_status == "Uploading" else "Idle"},
                triggered=True,
            )
        elif what is v16.MessageTrigger.FIRMWARE_STATUS_NOTIFICATION:
            busy = self.firmware_status in ("Downloading", "Downloaded", "Installing")
            self.st.post(
                "FirmwareStatusNotification",
                {"status": self.firmware_status if busy else "Idle"},
                triggered=True,
            )
        else:  # pragma: no cover - the enum has no other member
            return {"status": "NotImplemented"}
        return {"status": "Accepted"}

    def on_data_transfer(self, req: v16.DataTransferRequest, _: Any) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}

    async def on_send_local_list(self, req: v16.SendLocalListRequest, _: Any) -> msgspec.Struct:
        reply = self.auth.send_local_list_v16(req, config=self.config)
        await self.st.save()
        return reply

    def on_get_local_list_version(self, req: Any, _: Any) -> msgspec.Struct:
        return self.auth.get_local_list_version_v16(config=self.config)

    async def on_reserve_now(self, req: v16.ReserveNowRequest, _: Any) -> dict[str, Any]:
        port = self.ports.get(req.connector_id)
        if port is None:  # connector 0: ReserveConnectorZeroSupported is false (§5.13)
            return {"status": "Rejected"}
        reservation = Reservation(
            id=req.reservation_id,
            id_token=req.id_tag,
            expires_at=req.expiry_date,
            parent_id=_opt(req.parent_id_tag),
        )
        return await self.answer_reserve(port, reservation)

    async def on_cancel_reservation(
        self, req: v16.CancelReservationRequest, _: Any
    ) -> dict[str, Any]:
        return await self.answer_cancel_reservation(req.reservation_id)

    async def on_set_charging_profile(
        self, req: v16.SetChargingProfileRequest, _: Any
    ) -> dict[str, Any]:
        """1.6 §5.16 / §3.13: a TxProfile needs a transaction on its connector; the
        ChargePointMaxProfile goes to connector 0; a profile on connector 0 applies to all."""
        rejected = {"status": "Rejected"}
        profile = req.cs_charging_profiles
        purpose = profile.charging_profile_purpose
        connector = req.connector_id
        if connector != 0 and connector not in self.ports:
            return rejected
        if purpose is v16.ChargingProfilePurposeType.TX_PROFILE and (
            connector == 0 or self.ports[connector].tx is None
        ):
            return rejected
        if purpose is v16.ChargingProfilePurposeType.CHARGE_POINT_MAX_PROFILE and connector != 0:
            return rejected
        if profile.stack_level > self.config.get_int("ChargeProfileMaxStackLevel", 8):
            return rejected
        return await self.answer_set_profile(
            connector, profile, (ValueError, msgspec.ValidationError)
        )

    async def on_clear_charging_profile(
        self, req: v16.ClearChargingProfileRequest, _: Any
    ) -> dict[str, Any]:
        purpose = _opt(req.charging_profile_purpose)
        return await self.answer_clear_profiles(
            _opt(req.connector_id),
            profile_id=_opt(req.id),
            purpose=None if purpose is None else PURPOSE_V16[purpose],
            stack_level=_opt(req.stack_level),
        )

    def on_get_composite_schedule(
        self, req: v16.GetCompositeScheduleRequest, _: Any
    ) -> dict[str, Any]:
        port = self.ports.get(req.connector_id or 1)
        if port is None:
            return {"status": "Rejected"}
        unit = "W" if req.charging_rate_unit is v16.ChargingRateUnitType.W else "A"
        start = self.st.now()
        periods = self.composite_periods(port, start, req.duration, unit)
        return {
            "status": "Accepted",
            "connectorId": req.connector_id,
            "scheduleStart": start.isoformat(),
            "chargingSchedule": {
                "duration": req.duration,
                "startSchedule": start.isoformat(),
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": periods,
            },
        }

    def on_update_firmware(self, req: v16.UpdateFirmwareRequest, _: Any) -> dict[str, Any]:
        """§5.19 (unsigned): from ``retrieveDate`` on, FirmwareStatusNotification
        Downloading, Downloaded (or DownloadFailed when a fetching station could not get the
        file), Installing once no transaction runs (errata v4.0 §3.49), Installed, then a
        reboot; a new request cancels the update running. 1.6's FirmwareStatus has no
        DownloadScheduled: the wait for ``retrieveDate`` is silent."""
        job = FirmwareJob(
            location=req.location,
            retrieve=req.retrieve_date,
            retries=_opt(req.retries),
            retry_interval=_opt(req.retry_interval),
            legacy=True,
        )
        self.start_firmware_update(job, self._firmware_status)
        return {}

    async def _firmware_status(self, status: str) -> None:
        self.firmware_status = status
        self.st.post("FirmwareStatusNotification", {"status": status})
        await self.st.save()

    def set_firmware_hold(self, port_id: int, *, held: bool) -> None:
        """The connector's own availability (1.6 errata v4.0 §3.49, whitepaper L01.FR.07):
        given back, it stays Unavailable while connector 0 is set Inoperative."""
        _, notes = self.cp.change_availability(port_id, operative=not held, now=self.st.now())
        self.post_statuses(notes)

    def on_get_diagnostics(self, req: v16.GetDiagnosticsRequest, _: Any) -> dict[str, Any]:
        name = f"diagnostics-{self.st.station_id}-{self.st.now():%Y%m%dT%H%M%SZ}.log"[:255]
        self.st.spawn(self._diagnostics())
        return {"fileName": name}

    async def _diagnostics(self) -> None:
        """1.6 §5.9: Uploading, then Uploaded (the emulator has no file to send)."""
        for status in ("Uploading", "Uploaded"):
            self.diagnostics_status = status
            self.st.post("DiagnosticsStatusNotification", {"status": status})
            await asyncio.sleep(self.st.config.firmware_step_seconds)
        self.diagnostics_status = "Idle"

    # -- the Security extension (whitepaper edition 3) ------------------------------------------

    def on_extended_trigger(self, req: v16.ExtendedTriggerMessageRequest, _: Any) -> dict[str, Any]:
        """Use case "ExtendedTriggerMessage": Accepted, then the message (a connector the
        station lacks: Rejected)."""
        connector = _opt(req.connector_id)
        if connector is not None and connector != 0 and connector not in self.ports:
            return {"status": "Rejected"}
        trig = v16.MessageTriggerEnum
        what = req.requested_message
        if what is trig.LOG_STATUS_NOTIFICATION:
            payload: dict[str, Any] = {
                "status": "Uploading" if self.log_status == "Uploading" else "Idle"
            }
            if self.log_status == "Uploading" and self.log_request_id is not None:
                payload["requestId"] = self.log_request_id
            self.st.post("LogStatusNotification", payload, triggered=True)
        elif what is trig.FIRMWARE_STATUS_NOTIFICATION:
            busy = self.firmware_status not in ("Idle", "Installed")
            payload = {"status": self.firmware_status if busy else "Idle"}
            if busy and self.signed_firmware_request_id is not None:
                payload["requestId"] = self.signed_firmware_request_id
            self.st.post("SignedFirmwareStatusNotification", payload, triggered=True)
        elif what is trig.SIGN_CHARGE_POINT_CERTIFICATE:
            self.start_certificate_signing()
        else:  # the same as TriggerMessage's
            return self.on_trigger(
                v16.TriggerMessageRequest(
                    requested_message=v16.MessageTrigger(str(what)), connector_id=req.connector_id
                ),
                None,
            )
        return {"status": "Accepted"}

    def csr_organization(self) -> str:
        """A02.FR.13: CpoName (the vendor when none is configured)."""
        return self.config.value("CpoName") or self.st.config.vendor

    def cert_signing_retry(self) -> tuple[float, int]:
        """The whitepaper's CertSigningWaitMinimum / CertSigningRepeatTimes keys."""
        return (
            float(self.config.get_int("CertSigningWaitMinimum", 30)),
            self.config.get_int("CertSigningRepeatTimes", 3),
        )

    def certificate_store_max(self) -> int | None:
        """Whitepaper ``CertificateStoreMaxLength`` (M05.FR.03)."""
        return self.config.certificate_store_max_length

    def additional_root_certificate_check(self) -> bool:
        """Whitepaper ``AdditionalRootCertificateCheck`` (M05.FR.08-13)."""
        return self.config.additional_root_certificate_check

    def after_boot(self) -> None:
        super().after_boot()
        self.confirm_root_certificates()

    async def on_certificate_signed(
        self, req: v16.CertificateSignedRequest, _: Any
    ) -> dict[str, Any]:
        return await self._certificate_signed(req.certificate_chain)

    async def on_install_certificate(
        self, req: v16.InstallCertificateRequest, _: Any
    ) -> dict[str, Any]:
        return await self._install_certificate(str(req.certificate_type), req.certificate)

    async def on_delete_certificate(
        self, req: v16.DeleteCertificateRequest, _: Any
    ) -> dict[str, Any]:
        return await self._delete_certificate(req.certificate_hash_data)

    def on_get_installed_certificate_ids(
        self, req: v16.GetInstalledCertificateIdsRequest, _: Any
    ) -> dict[str, Any]:
        wanted = str(req.certificate_type)
        found = [d.to_wire() for _, d in self.certs.installed([wanted]) if wanted in ROOT_TYPES_V16]
        if not found:
            return {"status": "NotFound"}
        return {"status": "Accepted", "certificateHashData": found}

    def on_get_log(self, req: v16.GetLogRequest, _: Any) -> dict[str, Any]:
        """Use case "Get Security Log" / "Get Diagnostics Log": Accepted with a file name,
        then LogStatusNotification Uploading, Uploaded (the emulator sends no file)."""
        kind = "security" if str(req.log_type) == "SecurityLog" else "diagnostics"
        name = f"{kind}-{self.st.station_id}-{self.st.now():%Y%m%dT%H%M%SZ}.log"[:255]
        self.st.spawn(self._log_upload(req.request_id))
        return {"status": "Accepted", "filename": name}

    async def _log_upload(self, request_id: int) -> None:
        self.log_request_id = request_id
        for status in ("Uploading", "Uploaded"):
            self.log_status = status
            self.st.post("LogStatusNotification", {"status": status, "requestId": request_id})
            await asyncio.sleep(self.st.config.firmware_step_seconds)
        self.log_status = "Idle"

    async def on_signed_update_firmware(
        self, req: v16.SignedUpdateFirmwareRequest, _: Any
    ) -> dict[str, Any]:
        """Use case "Secure Firmware Update": the signing certificate is validated before
        the answer (L01.FR.23); not issued by an installed ManufacturerRootCertificate, or
        outside its validity: InvalidCertificate (L01.FR.24) and the security event
        InvalidFirmwareSigningCertificate (L01.FR.02), committed before the answer. Else
        Accepted (AcceptedCanceled when an update was running, L01.FR.26), then
        SignedFirmwareStatusNotification with the requestId (L01.FR.10) DownloadScheduled
        (a future ``retrieveDateTime``, L01.FR.13), Downloading, Downloaded,
        SignatureVerified (InvalidSignature and InvalidFirmwareSignature, L01.FR.03),
        InstallScheduled (a future ``installDateTime``, L01.FR.16), Installing (once no
        transaction runs, L01.FR.06/07), Installed, the security event FirmwareUpdated, and
        a reboot (:meth:`update_firmware`)."""
        firmware = req.firmware
        try:
            signer = self.firmware_signer(firmware.signing_certificate)
        except CertificateError as exc:
            await self.security_event("InvalidFirmwareSigningCertificate", str(exc))
            return {"status": "InvalidCertificate"}
        request_id = req.request_id
        self.signed_firmware_request_id = request_id

        async def report(status: str) -> None:
            self.firmware_status = status
            self.st.post(
                "SignedFirmwareStatusNotification", {"status": status, "requestId": request_id}
            )
            await self.st.save()

        return self.start_signed_update(req, signer, report)
