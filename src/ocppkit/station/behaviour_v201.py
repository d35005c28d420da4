"""OCPP 2.0.1 behaviour: TransactionEvents, the device model, and answers to the CSMS.

Model: :class:`~.status.Station201` (EVSEs 1..n, one connector each),
:class:`~.device_model.DeviceModel` (the controllers' variables, persisted), and
:class:`~.delivery.SeqNos` (seqNo 0, 1, 2... per transaction, E01.FR.07 edition 2; the store
commits the counter with each event, so a restart never reuses one).

Transactions: ``TxStartPoint`` PowerPathClosed (cable and authorization both there) starts
one with a station-generated ``transactionId`` (a UUID); Started carries the idToken, the
EVSE and the Transaction.Begin meter value; Updated every
``SampledDataCtrlr.TxUpdatedInterval`` (MeterValuePeriodic) and at
``AlignedDataCtrlr.Interval`` (MeterValueClock); Ended with ``stoppedReason`` and the
Transaction.End value. An event that happened while offline carries ``offline = true``
(E11/E12).

CSMS-initiated messages answered: RequestStart/StopTransaction, Reset (Immediate, OnIdle;
an EVSE-level reset is Rejected), ChangeAvailability, UnlockConnector, Get/SetVariables,
GetBaseReport and GetReport (B08; then NotifyReport), SetNetworkProfile (B09, stored and
persisted, not yet used to connect), GetChargingProfiles (K09; then ReportChargingProfiles),
TriggerMessage, ClearCache, SendLocalList,
GetLocalListVersion, Set/ClearChargingProfile, GetCompositeSchedule, ReserveNow (an EVSE is
needed: ``ReservationCtrlr.NonEvseSpecific`` is false), CancelReservation, UpdateFirmware,
GetLog, GetTransactionStatus, DataTransfer (``UnknownVendorId``), and the certificate
messages (a :class:`~.certificates.CertificateStore`, persisted): InstallCertificate (M05),
GetInstalledCertificateIds (M03), DeleteCertificate (M04), CertificateSigned (A02/A03, after
TriggerMessage(SignChargingStationCertificate) sent SignCertificate with a CSR). Others:
``NotSupported``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from typing import TYPE_CHECKING, Any

import msgspec

from ocppkit.messages import v201
from ocppkit.protocol import ErrorCode, HandlerError
from ocppkit.station.authorization import AuthInfo, AuthSettings
from ocppkit.station.behaviour import ActionRefused, Behaviour, Port, Reservation, Tx
from ocppkit.station.certificates import CertificateStore
from ocppkit.station.charging_profile import PURPOSE_V201, from_v201
from ocppkit.station.delivery import SeqNos
from ocppkit.station.device_model import (
    DeviceModel,
    TooManyItemsError,
    VariableKey,
    VariableSpec,
    standard_variables,
)
from ocppkit.station.meter import StopCause, meter_value_v201
from ocppkit.station.status import Connector201, Event, Facts, Station201

if TYPE_CHECKING:
    from ocppkit.station.station import Station

__all__ = ["Behaviour201"]

_UNSET = msgspec.UNSET
_MEASURANDS_201 = frozenset(m.value for m in v201.MeasurandEnum)
_CTX = v201.ReadingContextEnum


def _opt(value: Any) -> Any:
    return None if value is _UNSET else value


def _key(component: str, variable: str, instance: str | None = None) -> VariableKey:
    return VariableKey(component, variable, variable_instance=instance)


class Behaviour201(Behaviour):
    """An OCPP 2.0.1 station's model, messages and CSMS handlers."""

    version = "2.0.1"

    def __init__(self, station: Station) -> None:
        cfg = station.config
        self._specs = _variables(cfg.connectors, self._max_power(cfg))
        measurands = ",".join(m for m in cfg.measurands if m in _MEASURANDS_201)
        values = {
            _key("SampledDataCtrlr", "TxUpdatedInterval"): str(cfg.meter_values_interval),
            _key("AlignedDataCtrlr", "Interval"): str(cfg.clock_aligned_interval),
            _key("SecurityCtrlr", "SecurityProfile"): str(cfg.security_profile),
        }
        if measurands:
            values[_key("SampledDataCtrlr", "TxUpdatedMeasurands")] = measurands
        if cfg.transaction_attempts is not None:
            values[_key("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")] = str(
                cfg.transaction_attempts
            )
        if cfg.transaction_retry_interval is not None:
            values[_key("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent")] = str(
                cfg.transaction_retry_interval
            )
        self.dm = DeviceModel(self._specs, values)
        self._dm_snapshot: dict[str, Any] | None = None
        self.model = Station201(dict.fromkeys(range(1, cfg.connectors + 1), 1))
        self.seq = SeqNos()
        self.certs = CertificateStore()
        self._charging_states: dict[str, v201.ChargingStateEnum] = {}
        """The chargingState last reported per transaction (ChargingStateChanged)."""
        self.log_status = "Idle"
        self.firmware_request_id: int | None = None
        self.network_profiles: dict[int, dict[str, Any]] = {}
        """SetNetworkProfile (B09) profiles by configurationSlot, wire form, persisted."""
        super().__init__(station)

    @staticmethod
    def _max_power(cfg: Any) -> float:
        if cfg.supply == "dc":
            return float(cfg.max_power_w)
        return float(cfg.phases * cfg.voltage * cfg.max_current)

    # -- model ------------------------------------------------------------------------------------

    @property
    def settings(self) -> AuthSettings:
        return self.dm

    def facts(self, port: int) -> Facts:
        return self.model.connector(port).facts

    def status_of(self, port: int) -> str:
        return str(self.model.connector(port).status)

    def facts_refusal(self, port_id: int, event: Event) -> str | None:
        return self.model.connector(port_id).refusal(event)

    def handle(self, port: int, event: Event, *, error_code: str = "OtherError") -> bool:
        if port == 0:
            raise ActionRefused("2.0.1 has no EVSE 0 to fault; name an EVSE")
        outcome = self.model.connector(port).handle(event, now=self.st.now(), error_code=error_code)
        self.post_statuses(outcome.notifications)
        current = self.ports.get(port)
        tx = None if current is None else current.tx
        if current is not None and tx is not None:
            reported = self._charging_states.get(tx.key)
            state = self._charging_state(current)
            if reported is not None and state != reported:
                # E02: a change of chargingState is an Updated event of its own
                self._charging_states[tx.key] = state
                self.st.spawn(
                    self._tx_event(
                        v201.TransactionEventEnum.UPDATED, current, tx, "ChargingStateChanged"
                    )
                )
        return outcome.transaction_due

    def restore_facts(self, port: Port, facts: Facts) -> None:
        inoperative = facts.inoperative
        self.model.connectors[(port.id, 1)] = Connector201(
            port.id, 1, dataclasses.replace(facts, inoperative=False)
        )
        if inoperative:
            self.model.change_availability(
                operative=False, now=self.st.now(), evse_id=port.id, connector_id=1
            )

    def install_profile(self, port: Port, raw: dict[str, Any]) -> None:
        port.keep_profile(from_v201(msgspec.convert(raw, v201.ChargingProfile)), raw)

    def tx_ref(self, tx: Tx) -> str:
        return tx.key

    def sample_interval(self) -> int:
        return self.dm.tx_updated_interval

    def aligned_interval(self) -> int:
        return self.dm.aligned_data_interval

    def heartbeat_interval(self) -> int:
        return self.dm.heartbeat_interval

    def set_heartbeat_interval(self, seconds: int) -> None:
        self._dm_snapshot = None
        with contextlib.suppress(ValueError):
            self.dm.set_actual(_key("OCPPCommCtrlr", "HeartbeatInterval"), str(seconds))

    def password(self) -> str | None:
        return self.dm.basic_auth_password or self.st.config.password

    def retry_policy(self) -> tuple[int, float]:
        return (
            self.dm.message_attempts_transaction_event,
            float(self.dm.message_attempt_interval_transaction_event),
        )

    def backoff(self) -> tuple[float, float, int] | None:
        return (
            float(self.dm.retry_back_off_wait_minimum),
            float(self.dm.retry_back_off_random_range),
            self.dm.retry_back_off_repeat_times,
        )

    def ping_interval(self) -> float | None:
        interval = self.dm.web_socket_ping_interval
        return float(interval) if interval > 0 else None

    def connection_timeout(self) -> int:
        return self.dm.ev_connection_timeout

    def stop_on_ev_disconnect(self) -> bool:
        return self.dm.stop_tx_on_ev_side_disconnect

    def authorize_remote(self) -> bool:
        return self.dm.authorize_remote_start

    def merge_seq(self, counters: dict[str, int]) -> None:
        self.seq.merge(counters)

    def model_to_dict(self) -> dict[str, Any]:
        # The device model changes rarely and its snapshot is the bulk of the state blob
        # written with every queued message: keep it until a change.
        if self._dm_snapshot is None:
            self._dm_snapshot = self.dm.to_dict()
        return {
            "device_model": self._dm_snapshot,
            "seq": self.seq.to_dict(),
            "certs": self.certs.to_dict(),
            "network_profiles": {str(k): v for k, v in self.network_profiles.items()},
        }

    def model_from_dict(self, data: dict[str, Any]) -> None:
        if "device_model" in data:
            self.dm = DeviceModel.from_dict(data["device_model"], self._specs)
        self._dm_snapshot = None
        self.seq = SeqNos.from_dict(data.get("seq", {}))
        self.certs = CertificateStore.from_dict(data.get("certs", {}))
        self.network_profiles = {
            int(slot): profile for slot, profile in data.get("network_profiles", {}).items()
        }

    def reboot_model(self) -> None:
        self.dm.reboot()
        self._dm_snapshot = None

    def token_object(self, token: str, token_type: str | None) -> Any:
        return v201.IdToken(id_token=token, type=v201.IdTokenEnum(token_type or "ISO14443"))

    # -- messages ---------------------------------------------------------------------------------

    def boot_request(self, reason: str) -> msgspec.Struct:
        cfg = self.st.config
        station = v201.ChargingStation(
            vendor_name=cfg.vendor[:50],
            model=cfg.model[:20],
            firmware_version=cfg.firmware_version[:50],
        )
        if cfg.serial_number:
            station.serial_number = cfg.serial_number[:25]
        return v201.BootNotificationRequest(
            reason=v201.BootReasonEnum(reason), charging_station=station
        )

    def heartbeat_request(self) -> msgspec.Struct:
        return v201.HeartbeatRequest()

    def status_notifications(self) -> list[msgspec.Struct]:
        return list(self.model.boot_notifications(self.st.now()))

    async def authorize_online(self, token: str, token_type: str | None) -> AuthInfo:
        reply = await self.st.request(
            "Authorize", v201.AuthorizeRequest(id_token=self.token_object(token, token_type))
        )
        return AuthInfo.from_v201(reply.id_token_info)

    def _charging_state(self, port: Port) -> v201.ChargingStateEnum:
        facts = self.facts(port.id)
        if facts.evse_suspended:
            return v201.ChargingStateEnum.SUSPENDED_EVSE
        if facts.ev_drawing:
            return v201.ChargingStateEnum.CHARGING
        if facts.plugged:
            return v201.ChargingStateEnum.SUSPENDED_EV
        return v201.ChargingStateEnum.IDLE

    def _values(self, port: Port, names: list[Any], context: Any) -> list[v201.MeterValue]:
        readings = port.meter.readings(self.measurands([str(n) for n in names]))
        return [meter_value_v201(readings, timestamp=self.st.now(), context=context)]

    async def _tx_event(
        self,
        kind: v201.TransactionEventEnum,
        port: Port,
        tx: Tx,
        trigger: str,
        *,
        meter_value: list[v201.MeterValue] | None = None,
        stopped: StopCause | None = None,
        with_token: bool = False,
    ) -> None:
        info = v201.Transaction(transaction_id=tx.key, charging_state=self._charging_state(port))
        if stopped is not None:
            info.stopped_reason = stopped.v201
            info.charging_state = (
                v201.ChargingStateEnum.EV_CONNECTED
                if self.facts(port.id).plugged
                else v201.ChargingStateEnum.IDLE
            )
        if kind is v201.TransactionEventEnum.STARTED and tx.remote_start_id is not None:
            info.remote_start_id = tx.remote_start_id
        request = v201.TransactionEventRequest(
            event_type=kind,
            timestamp=self.st.now(),
            trigger_reason=v201.TriggerReasonEnum(trigger),
            seq_no=self.seq.next(tx.key),
            transaction_info=info,
        )
        if kind is v201.TransactionEventEnum.STARTED:
            request.evse = v201.EVSE(id=port.id, connector_id=1)
            if tx.reservation_id is not None:
                request.reservation_id = tx.reservation_id
        if with_token and tx.id_token:
            request.id_token = self.token_object(tx.id_token, tx.token_type)
        if meter_value:
            request.meter_value = meter_value
        if not self.st.online:
            request.offline = True  # E11.FR.01 / E12.FR.01: it happened while offline
        if kind is v201.TransactionEventEnum.ENDED:
            self._charging_states.pop(tx.key, None)
        elif info.charging_state is not _UNSET:
            self._charging_states[tx.key] = info.charging_state
        await self.st.enqueue("TransactionEvent", request, tx_key=tx.key)

    async def enqueue_start(self, port: Port, tx: Tx, trigger: str) -> None:
        values = self._values(port, self.dm.tx_started_measurands, _CTX.TRANSACTION_BEGIN)
        await self._tx_event(
            v201.TransactionEventEnum.STARTED,
            port,
            tx,
            trigger,
            meter_value=values,
            with_token=True,
        )

    async def enqueue_sample(self, port: Port, tx: Tx, *, aligned: bool, trigger: str) -> None:
        if aligned:
            values = self._values(port, self.dm.aligned_data_measurands, _CTX.SAMPLE_CLOCK)
        else:
            values = self._values(port, self.dm.tx_updated_measurands, _CTX.SAMPLE_PERIODIC)
        await self._tx_event(
            v201.TransactionEventEnum.UPDATED, port, tx, trigger, meter_value=values
        )

    def post_idle_aligned(self, port: Port) -> None:
        """J01: aligned values outside transactions only with AlignedDataCtrlr.SendDuringIdle."""
        idle = self.dm.actual(_key("AlignedDataCtrlr", "SendDuringIdle")) == "true"
        if idle:
            values = self._values(port, self.dm.aligned_data_measurands, _CTX.SAMPLE_CLOCK)
            self.st.post(
                "MeterValues", v201.MeterValuesRequest(evse_id=port.id, meter_value=values)
            )

    async def enqueue_stop(self, port: Port, tx: Tx, cause: StopCause, trigger: str) -> None:
        values = self._values(port, self.dm.tx_ended_measurands, _CTX.TRANSACTION_END)
        await self._tx_event(
            v201.TransactionEventEnum.ENDED,
            port,
            tx,
            trigger,
            meter_value=values,
            stopped=cause,
            with_token=cause is StopCause.LOCAL,
        )
        self.seq.forget(tx.key)

    def prepare(self, action: str, payload: bytes, tx_key: str | None) -> dict[str, Any]:
        result: dict[str, Any] = msgspec.json.decode(payload)
        return result

    def on_delivered(self, action: str, payload: bytes, tx_key: str | None, reply: Any) -> None:
        if action != "TransactionEvent" or tx_key is None:
            return
        request = msgspec.json.decode(payload, type=v201.TransactionEventRequest)
        info = _opt(reply.id_token_info)
        token = _opt(request.id_token)
        if info is not None and token is not None:
            auth = AuthInfo.from_v201(info)
            self.auth.remember(token, auth, now=self.st.now(), config=self.dm)
            port = self.find_tx(tx_key)
            if auth.status != "Accepted" and port is not None and self.dm.stop_tx_on_invalid_id:
                self.st.spawn(self.stop(port, StopCause.DE_AUTHORIZED, "Deauthorized"))
        if request.event_type is v201.TransactionEventEnum.ENDED:
            self.st.spawn(self.st.store.forget_seq(self.st.station_id, tx_key))

    # -- CSMS-initiated messages --------------------------------------------------------------

    def register_handlers(self) -> None:
        r = self.register
        r("RequestStartTransaction", self.on_request_start)
        r("RequestStopTransaction", self.on_request_stop)
        r("Reset", self.on_reset)
        r("ChangeAvailability", self.on_change_availability)
        r("UnlockConnector", self.on_unlock)
        r("GetVariables", self.on_get_variables)
        r("SetVariables", self.on_set_variables)
        r("GetBaseReport", self.on_get_base_report)
        r("GetReport", self.on_get_report)
        r("SetNetworkProfile", self.on_set_network_profile)
        r("GetChargingProfiles", self.on_get_charging_profiles)
        r("TriggerMessage", self.on_trigger)
        r("ClearCache", self.on_clear_cache)
        r("SendLocalList", self.on_send_local_list)
        r("GetLocalListVersion", self.on_get_local_list_version)
        r("SetChargingProfile", self.on_set_charging_profile)
        r("ClearChargingProfile", self.on_clear_charging_profile)
        r("GetCompositeSchedule", self.on_get_composite_schedule)
        r("ReserveNow", self.on_reserve_now)
        r("CancelReservation", self.on_cancel_reservation)
        r("UpdateFirmware", self.on_update_firmware)
        r("GetLog", self.on_get_log)
        r("GetTransactionStatus", self.on_get_transaction_status)
        r("DataTransfer", self.on_data_transfer)
        r("InstallCertificate", self.on_install_certificate)
        r("GetInstalledCertificateIds", self.on_get_installed_certificate_ids)
        r("DeleteCertificate", self.on_delete_certificate)
        r("CertificateSigned", self.on_certificate_signed)

    def on_request_start(self, req: v201.RequestStartTransactionRequest, _: Any) -> dict[str, Any]:
        """F01/F02: Accepted when an EVSE can take the session; it starts in the background.
        Only a TxProfile may come with it (F01.FR.12)."""
        port = self.remote_start_port(
            _opt(req.evse_id),
            _opt(req.charging_profile),
            v201.ChargingProfilePurposeEnum.TX_PROFILE,
        )
        if port is None:
            return {"status": "Rejected"}
        port.remote_start_id = req.remote_start_id
        token = req.id_token
        self.st.spawn(
            self.present_token(token.id_token, port.id, token_type=str(token.type), remote=True)
        )
        return {"status": "Accepted"}

    def on_request_stop(self, req: v201.RequestStopTransactionRequest, _: Any) -> dict[str, Any]:
        port = self.find_tx(req.transaction_id)
        if port is None:
            return {"status": "Rejected"}
        self.st.spawn(self.stop(port, StopCause.REMOTE, "RemoteStop"))
        return {"status": "Accepted"}

    def on_reset(self, req: v201.ResetRequest, _: Any) -> dict[str, Any]:
        """B11/B12: Immediate stops transactions (ImmediateReset) and reboots; OnIdle waits
        for them (Scheduled). Resetting one EVSE is not supported (Rejected)."""
        if _opt(req.evse_id) is not None:
            return {"status": "Rejected"}
        immediate = req.type is v201.ResetEnum.IMMEDIATE
        busy = self.any_transaction()
        self.st.spawn(self._reset(immediate))
        return {"status": "Scheduled" if busy and not immediate else "Accepted"}

    async def _reset(self, immediate: bool) -> None:
        await asyncio.sleep(0.05)
        if immediate:
            await self.stop_all(StopCause.HARD_RESET, "ResetCommand")
        else:
            await self.st.wait_for_state(lambda s: s["state"] != "charging", 1e9)
        await self.reboot_when_sent("RemoteReset")

    async def on_change_availability(
        self, req: v201.ChangeAvailabilityRequest, _: Any
    ) -> dict[str, Any]:
        evse = _opt(req.evse)
        evse_id = None if evse is None else evse.id
        connector_id = None if evse is None else _opt(evse.connector_id)
        if evse_id == 0:
            evse_id = connector_id = None
        if evse_id is not None and (evse_id not in self.ports or connector_id not in (None, 1)):
            return {"status": "Rejected"}
        operative = req.operational_status is v201.OperationalStatusEnum.OPERATIVE
        answer, notes = self.model.change_availability(
            operative=operative, now=self.st.now(), evse_id=evse_id, connector_id=connector_id
        )
        self.post_statuses(notes)
        await self.st.save()
        return {"status": str(answer)}

    def on_unlock(self, req: v201.UnlockConnectorRequest, _: Any) -> dict[str, Any]:
        port = self.ports.get(req.evse_id)
        if port is None or req.connector_id != 1:
            return {"status": "UnknownConnector"}
        if port.tx is not None:
            return {"status": "OngoingAuthorizedTransaction"}  # F05.FR.02
        return {"status": "Unlocked"}

    def on_get_variables(self, req: v201.GetVariablesRequest, _: Any) -> msgspec.Struct:
        try:
            return self.dm.handle_get_variables(req)
        except TooManyItemsError as exc:
            raise HandlerError(_error_code(exc), str(exc)) from None

    async def on_set_variables(self, req: v201.SetVariablesRequest, _: Any) -> msgspec.Struct:
        try:
            reply = self.dm.handle_set_variables(req)
        except TooManyItemsError as exc:
            raise HandlerError(_error_code(exc), str(exc)) from None
        self._dm_snapshot = None
        await self.st.save()
        self.st.wake_timer()
        self.st.wake_heartbeat()
        return reply

    def on_get_base_report(self, req: v201.GetBaseReportRequest, _: Any) -> msgspec.Struct:
        reply = self.dm.handle_get_base_report(req)
        if reply.status is v201.GenericDeviceModelStatusEnum.ACCEPTED:
            self.st.spawn(self._notify_report(req))
        return reply

    async def _notify_report(self, req: v201.GetBaseReportRequest) -> None:
        pages = self.dm.notify_reports(req.request_id, req.report_base, generated_at=self.st.now())
        await self._send_all("NotifyReport", pages)

    def on_get_report(self, req: v201.GetReportRequest, _: Any) -> msgspec.Struct:
        """B08: Accepted then NotifyReport pages; EmptyResultSet / NotSupported."""
        reply, pages = self.dm.get_report(req, generated_at=self.st.now())
        if pages:
            self.st.spawn(self._send_all("NotifyReport", pages))
        return reply

    async def _send_all(self, action: str, messages: list[Any]) -> None:
        for message in messages:
            await self.st.request(action, message, while_pending=True)

    async def on_set_network_profile(
        self, req: v201.SetNetworkProfileRequest, _: Any
    ) -> dict[str, Any]:
        """B09: Rejected for a slot outside ``NetworkConfigurationPriority``'s valuesList
        (0..7) or a securityProfile below the current one (A00.FR.005); else stored by slot
        (persisted with the station state; the station does not connect with it yet)."""
        spec = next(
            s for s in self._specs if s.key == _key("OCPPCommCtrlr", "NetworkConfigurationPriority")
        )
        slots = {int(v) for v in spec.values_list or ()}
        profile = req.connection_data
        if req.configuration_slot not in slots:
            return {"status": "Rejected", "statusInfo": {"reasonCode": "InvalidSlot"}}
        if profile.security_profile < self.dm.security_profile:
            return {"status": "Rejected", "statusInfo": {"reasonCode": "SecurityDowngrade"}}
        self.network_profiles[req.configuration_slot] = msgspec.to_builtins(profile)
        await self.st.save()
        return {"status": "Accepted"}

    def on_get_charging_profiles(
        self, req: v201.GetChargingProfilesRequest, _: Any
    ) -> dict[str, Any]:
        """K09: Accepted then ReportChargingProfiles, one per EVSE (source CSO: every
        profile here came from the CSMS), ``tbc`` on all but the last; NoProfiles when
        none matches. A station-wide purpose, or a profile on every EVSE, is EVSE 0's."""
        crit = req.charging_profile
        sources = _opt(crit.charging_limit_source)
        if sources is not None and v201.ChargingLimitSourceEnum.CSO not in sources:
            return {"status": "NoProfiles"}
        ids = _opt(crit.charging_profile_id)
        purpose = _opt(crit.charging_profile_purpose)
        stack = _opt(crit.stack_level)
        wanted_evse = _opt(req.evse_id)
        groups: dict[int, dict[int, v201.ChargingProfile]] = {}
        p = v201.ChargingProfilePurposeEnum
        station_wide = (p.CHARGING_STATION_MAX_PROFILE, p.CHARGING_STATION_EXTERNAL_CONSTRAINTS)
        for port in self.ports.values():
            for pid, raw in port.raw_profiles.items():
                profile = msgspec.convert(raw, v201.ChargingProfile)
                everywhere = len(self.ports) > 1 and all(
                    pid in other.raw_profiles for other in self.ports.values()
                )
                evse = (
                    0 if profile.charging_profile_purpose in station_wide or everywhere else port.id
                )
                if wanted_evse is not None and evse != wanted_evse:
                    continue
                if ids is not None and pid not in ids:
                    continue
                if purpose is not None and profile.charging_profile_purpose is not purpose:
                    continue
                if stack is not None and profile.stack_level != stack:
                    continue
                groups.setdefault(evse, {})[pid] = profile
        if not groups:
            return {"status": "NoProfiles"}
        reports = []
        for evse, profiles in sorted(groups.items()):
            reports.append(
                v201.ReportChargingProfilesRequest(
                    request_id=req.request_id,
                    charging_limit_source=v201.ChargingLimitSourceEnum.CSO,
                    charging_profile=list(profiles.values()),
                    evse_id=evse,
                )
            )
        for report in reports[:-1]:
            report.tbc = True
        self.st.spawn(self._send_all("ReportChargingProfiles", reports))
        return {"status": "Accepted"}

    def on_trigger(self, req: v201.TriggerMessageRequest, _: Any) -> dict[str, Any]:
        """F06: Accepted, then the message; an unknown EVSE is Rejected."""
        evse = _opt(req.evse)
        evse_id = None if evse is None else evse.id
        if evse_id is not None and evse_id not in self.ports:
            return {"status": "Rejected"}
        what = req.requested_message
        trig = v201.MessageTriggerEnum
        now = self.st.now()
        targets = [self.ports[evse_id]] if evse_id else list(self.ports.values())
        if what is trig.BOOT_NOTIFICATION:
            self.st.trigger_boot()
        elif what is trig.HEARTBEAT:
            self.st.spawn(self.st.request("Heartbeat", v201.HeartbeatRequest(), while_pending=True))
        elif what is trig.STATUS_NOTIFICATION:
            for port in targets:
                self.st.post(
                    "StatusNotification",
                    self.model.connector(port.id).notification(now),
                    triggered=True,
                )
        elif what is trig.METER_VALUES:
            for port in targets:
                self.advance(port)
                values = self._values(port, self.dm.aligned_data_measurands, _CTX.TRIGGER)
                self.st.post(
                    "MeterValues",
                    v201.MeterValuesRequest(evse_id=port.id, meter_value=values),
                    triggered=True,
                )
        elif what is trig.TRANSACTION_EVENT:
            running = [p for p in targets if p.tx is not None]
            if not running:
                return {"status": "Rejected"}
            for port in running:
                assert port.tx is not None
                self.advance(port)
                values = self._values(port, self.dm.tx_updated_measurands, _CTX.TRIGGER)
                self.st.spawn(
                    self._tx_event(
                        v201.TransactionEventEnum.UPDATED,
                        port,
                        port.tx,
                        "Trigger",
                        meter_value=values,
                    )
                )
        elif what is trig.FIRMWARE_STATUS_NOTIFICATION:
            busy = self.firmware_status not in ("Idle", "Installed")
            payload: dict[str, Any] = {"status": self.firmware_status if busy else "Idle"}
            if busy and self.firmware_request_id is not None:
                payload["requestId"] = self.firmware_request_id
            self.st.post("FirmwareStatusNotification", payload, triggered=True)
        elif what is trig.LOG_STATUS_NOTIFICATION:
            self.st.post("LogStatusNotification", {"status": "Idle"}, triggered=True)
        elif what is trig.SIGN_CHARGING_STATION_CERTIFICATE:
            self.st.spawn(self.sign_certificate())
        else:
            return {"status": "NotImplemented"}
        return {"status": "Accepted"}

    async def on_clear_cache(self, req: v201.ClearCacheRequest, _: Any) -> msgspec.Struct:
        reply = self.auth.clear_cache_v201(config=self.dm)
        await self.st.save()
        return reply

    async def on_send_local_list(self, req: v201.SendLocalListRequest, _: Any) -> msgspec.Struct:
        reply = self.auth.send_local_list_v201(req, config=self.dm)
        await self.st.save()
        return reply

    def on_get_local_list_version(self, req: Any, _: Any) -> msgspec.Struct:
        return self.auth.get_local_list_version_v201()

    async def on_set_charging_profile(
        self, req: v201.SetChargingProfileRequest, _: Any
    ) -> dict[str, Any]:
        """K01: a TxProfile needs its transaction on the EVSE; the station-wide purposes go
        to EVSE 0; a profile on EVSE 0 applies to every EVSE."""
        rejected = {"status": "Rejected"}
        profile = req.charging_profile
        purpose = profile.charging_profile_purpose
        evse = req.evse_id
        p = v201.ChargingProfilePurposeEnum
        if evse != 0 and evse not in self.ports:
            return rejected
        if purpose is p.TX_PROFILE:
            tx = None if evse == 0 else self.ports[evse].tx
            tx_id = _opt(profile.transaction_id)
            if tx is None or (tx_id is not None and tx_id != tx.key):
                return rejected  # K01.FR.03 / FR.09
        station_wide = (p.CHARGING_STATION_MAX_PROFILE, p.CHARGING_STATION_EXTERNAL_CONSTRAINTS)
        if purpose in station_wide and evse != 0:
            return rejected
        return await self.answer_set_profile(
            evse, profile, (ValueError, msgspec.ValidationError, IndexError)
        )

    async def on_clear_charging_profile(
        self, req: v201.ClearChargingProfileRequest, _: Any
    ) -> dict[str, Any]:
        criteria = _opt(req.charging_profile_criteria)
        evse = None if criteria is None else _opt(criteria.evse_id)
        purpose = None if criteria is None else _opt(criteria.charging_profile_purpose)
        stack = None if criteria is None else _opt(criteria.stack_level)
        return await self.answer_clear_profiles(
            evse,
            profile_id=_opt(req.charging_profile_id),
            purpose=None if purpose is None else PURPOSE_V201[purpose],
            stack_level=stack,
        )

    def on_get_composite_schedule(
        self, req: v201.GetCompositeScheduleRequest, _: Any
    ) -> dict[str, Any]:
        port = self.ports.get(req.evse_id or 1)
        if port is None:
            return {"status": "Rejected"}
        unit = "W" if req.charging_rate_unit is v201.ChargingRateUnitEnum.W else "A"
        start = self.st.now()
        return {
            "status": "Accepted",
            "schedule": {
                "evseId": req.evse_id,
                "duration": req.duration,
                "scheduleStart": start.isoformat(),
                "chargingRateUnit": unit,
                "chargingSchedulePeriod": self.composite_periods(port, start, req.duration, unit),
            },
        }

    async def on_reserve_now(self, req: v201.ReserveNowRequest, _: Any) -> dict[str, Any]:
        port = self.ports.get(_opt(req.evse_id) or 0)
        if port is None:
            return {"status": "Rejected"}
        group = _opt(req.group_id_token)
        reservation = Reservation(
            id=req.id,
            id_token=req.id_token.id_token,
            expires_at=req.expiry_date_time,
            parent_id=None if group is None else group.id_token,
        )
        return await self.answer_reserve(port, reservation)

    async def on_cancel_reservation(
        self, req: v201.CancelReservationRequest, _: Any
    ) -> dict[str, Any]:
        return await self.answer_cancel_reservation(req.reservation_id)

    def reservation_expired(self, port: Port, reservation: Reservation) -> None:
        self.st.post(
            "ReservationStatusUpdate",
            {"reservationId": reservation.id, "reservationUpdateStatus": "Expired"},
        )

    def on_update_firmware(self, req: v201.UpdateFirmwareRequest, _: Any) -> dict[str, Any]:
        self.firmware_request_id = req.request_id
        report = functools.partial(self._firmware_status, request_id=req.request_id)
        self.st.spawn(self.update_firmware(req.firmware.retrieve_date_time, report))
        return {"status": "Accepted"}

    async def _firmware_status(self, status: str, request_id: int) -> None:
        self.firmware_status = status
        self.st.post("FirmwareStatusNotification", {"status": status, "requestId": request_id})
        await self.st.save()

    def on_get_log(self, req: v201.GetLogRequest, _: Any) -> dict[str, Any]:
        name = f"{req.log_type}-{self.st.station_id}-{self.st.now():%Y%m%dT%H%M%SZ}.log"[:255]
        self.st.spawn(self._upload_log(req.request_id))
        return {"status": "Accepted", "filename": name}

    async def _upload_log(self, request_id: int) -> None:
        """N01: Uploading, then Uploaded (the emulator has no log to send)."""
        for status in ("Uploading", "Uploaded"):
            self.log_status = status
            self.st.post("LogStatusNotification", {"status": status, "requestId": request_id})
            await asyncio.sleep(self.st.config.firmware_step_seconds)
        self.log_status = "Idle"

    async def on_get_transaction_status(
        self, req: v201.GetTransactionStatusRequest, _: Any
    ) -> dict[str, Any]:
        """E14: whether messages of the transaction (of any, without an id) are queued."""
        tx_id = _opt(req.transaction_id)
        pending = await self.st.store.pending(self.st.station_id)
        if tx_id is None:
            return {"messagesInQueue": bool(pending)}
        queued = any(m.tx_key == tx_id for m in pending)
        return {"messagesInQueue": queued, "ongoingIndicator": self.find_tx(tx_id) is not None}

    def on_data_transfer(self, req: v201.DataTransferRequest, _: Any) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}

    # -- certificates (A02/A03, M03-M05) ---------------------------------------------------------

    async def sign_certificate(self) -> None:
        """A02/A03 via F06: SignCertificate with a CSR whose O is
        SecurityCtrlr.OrganizationName."""
        organization = self.dm.actual(_key("SecurityCtrlr", "OrganizationName")) or ""
        await self._send_csr(organization, certificateType="ChargingStationCertificate")

    async def on_certificate_signed(
        self, req: v201.CertificateSignedRequest, _: Any
    ) -> dict[str, Any]:
        return await self._certificate_signed(req.certificate_chain)

    async def on_install_certificate(
        self, req: v201.InstallCertificateRequest, _: Any
    ) -> dict[str, Any]:
        return await self._install_certificate(str(req.certificate_type), req.certificate)

    def on_get_installed_certificate_ids(
        self, req: v201.GetInstalledCertificateIdsRequest, _: Any
    ) -> dict[str, Any]:
        """M03: the hash data of the installed roots of the asked types (all: none asked)."""
        types = _opt(req.certificate_type)
        wanted = None if types is None else [str(t) for t in types]
        chain = [
            {"certificateType": t, "certificateHashData": d.to_wire()}
            for t, d in self.certs.installed(wanted)
        ]
        if not chain:
            return {"status": "NotFound"}
        return {"status": "Accepted", "certificateHashDataChain": chain}

    async def on_delete_certificate(
        self, req: v201.DeleteCertificateRequest, _: Any
    ) -> dict[str, Any]:
        return await self._delete_certificate(req.certificate_hash_data)


@functools.lru_cache(maxsize=32)
def _variables(evses: int, max_power: float) -> tuple[VariableSpec, ...]:
    """The device-model table for a station shape, built once and shared (the specs are
    frozen; a fleet of 10 000 stations would otherwise hold 10 000 copies)."""
    return tuple(standard_variables([1] * evses, max_power=max_power))


def _error_code(exc: TooManyItemsError) -> ErrorCode:
    return ErrorCode(exc.code)
