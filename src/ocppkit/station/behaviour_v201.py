"""OCPP 2.0.1 behaviour: TransactionEvents, the device model, and answers to the CSMS.

Model: :class:`~.status.Station201` (EVSEs 1..n, one connector each),
:class:`~.device_model.DeviceModel` (the controllers' variables, persisted), and
:class:`~.delivery.SeqNos` (seqNo 0, 1, 2... per transaction, E01.FR.07 edition 2; the store
commits the counter with each event, so a restart never reuses one).

Transactions start at the first ``TxCtrlr.TxStartPoint`` reached and end when the first
``TxStopPoint`` condition that held is gone (:mod:`.tx_points`, E01-E07; the default
PowerPathClosed starts one when cable and authorization are both there), with a
station-generated ``transactionId`` (a UUID). A transaction the cable started waits for
its authorization without energy (chargingState EVConnected; then Updated Authorized with
the idToken, E02); one the id token started waits ``EVConnectionTimeOut`` for the cable
(E03.FR.05). An EV parked in the bay (:meth:`Behaviour201.park`, an emulated bay sensor)
starts one at TxStartPoint ParkingBayOccupancy (EVDetected) and its departure
(:meth:`Behaviour201.leave_bay`, EVDeparted) ends it at TxStopPoint ParkingBayOccupancy.
Started carries the idToken (when there is one), the EVSE and the
Transaction.Begin meter value; Updated every
``SampledDataCtrlr.TxUpdatedInterval`` (MeterValuePeriodic) and at
``AlignedDataCtrlr.Interval`` (MeterValueClock); Ended with ``stoppedReason`` and the
Transaction.End value. An event that happened while offline carries ``offline = true``
(E11/E12).

CSMS-initiated messages answered: RequestStart/StopTransaction, Reset (Immediate, OnIdle;
the station, or one EVSE: B11/B12), ChangeAvailability, UnlockConnector, Get/SetVariables,
GetBaseReport and GetReport (B08; then NotifyReport), SetNetworkProfile (B09, stored,
persisted, and dialled by NetworkConfigurationPriority with fail-over, B10: see
:mod:`.network_profiles`), GetChargingProfiles (K09; then ReportChargingProfiles),
TriggerMessage, ClearCache, SendLocalList,
GetLocalListVersion, Set/ClearChargingProfile, GetCompositeSchedule, ReserveNow (of an EVSE,
or, ``ReservationCtrlr.NonEvseSpecific`` true, of an unspecified EVSE or connector type: H01
S1/S3, EVSEs held Reserved when just enough are free, any fitting EVSE used by the holder,
H03 S3), CancelReservation, UpdateFirmware,
GetLog, GetTransactionStatus, DataTransfer (``UnknownVendorId``), and the certificate
messages (a :class:`~.certificates.CertificateStore`, persisted): InstallCertificate (M05),
GetInstalledCertificateIds (M03), DeleteCertificate (M04), CertificateSigned (A02/A03, after
TriggerMessage(SignChargingStationCertificate) sent SignCertificate with a CSR); the
monitoring, CustomerInformation and display-message messages (blocks N and O, with
NotifyEvent when a monitor fires) are :class:`~.diagnostics201.Diagnostics201`'s. Others:
``NotSupported``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from ocppkit.messages import v201
from ocppkit.protocol import ErrorCode, HandlerError
from ocppkit.station.authorization import AuthInfo, AuthSettings
from ocppkit.station.behaviour import ActionRefused, Port, Reservation, Tx
from ocppkit.station.certificates import (
    ANCHORS_V201,
    CS_USE,
    V2G_CHAIN_TYPE,
    V2G_USE,
    CertificateError,
    CertificateStore,
)
from ocppkit.station.charging_profile import PURPOSE_V201, from_v201
from ocppkit.station.delivery import SeqNos
from ocppkit.station.device_model import (
    DeviceModel,
    DeviceModelError,
    TooManyItemsError,
    VariableKey,
    VariableSpec,
    standard_variables,
)
from ocppkit.station.diagnostics201 import Diagnostics201
from ocppkit.station.meter import StopCause, meter_value_v201
from ocppkit.station.network_profiles import (
    Endpoint,
    Failover,
    endpoint_from_profile,
    failover_order,
    parse_priority,
    profile_problem,
)
from ocppkit.station.status import Connector201, Event, Facts, Station201
from ocppkit.station.tx_points import Conditions, Point, TxPoints

if TYPE_CHECKING:
    from ocppkit.station.station import Station

__all__ = ["Behaviour201"]

_UNSET = msgspec.UNSET
_MEASURANDS_201 = frozenset(m.value for m in v201.MeasurandEnum)
_CTX = v201.ReadingContextEnum

EVSE_RESET_SECONDS = 0.2
"""How long a reset EVSE stays Unavailable (B11.FR.08) before it is back."""


def _opt(value: Any) -> Any:
    return None if value is _UNSET else value


def _key(component: str, variable: str, instance: str | None = None) -> VariableKey:
    return VariableKey(component, variable, variable_instance=instance)


class Behaviour201(Diagnostics201):
    """An OCPP 2.0.1 station's model, messages and CSMS handlers."""

    version = "2.0.1"
    security_event_request = v201.SecurityEventNotificationRequest
    certificate_anchors = ANCHORS_V201

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
        self.init_diagnostics(cfg.connectors, self._max_power(cfg))
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
        self._points: tuple[tuple[tuple[str, ...], tuple[str, ...]], TxPoints] | None = None
        self._quiet: set[int] = set()
        """EVSEs whose charging-state change the running step reports itself."""
        self._resetting: set[int] = set()
        """EVSEs with a reset (B11/B12 with evseId) accepted and not yet done."""
        self.unbound: list[Reservation] = []
        """The reservations of an unspecified EVSE (ReserveNow without evseId, H01), oldest
        first; persisted."""
        self._holding = False
        """:meth:`_hold_for_unspecified` is running (its own status changes re-enter it)."""
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
        if current is not None and tx is not None and port not in self._quiet:
            reported = self._charging_states.get(tx.key)
            state = self._charging_state(current)
            if reported is not None and state != reported:
                self._charging_states[tx.key] = state
                charging = v201.ChargingStateEnum.CHARGING
                if Point.ENERGY_TRANSFER in self.points.stop and reported is charging:
                    # E06 S6: TxStopPoint EnergyTransfer, the energy stopped flowing
                    suspended_ev = state is v201.ChargingStateEnum.SUSPENDED_EV
                    cause = StopCause.EV_FULL if suspended_ev else StopCause.OTHER
                    self.st.spawn(self._stop_if_running(current, tx, cause, "ChargingStateChanged"))
                else:
                    # E02: a change of chargingState is an Updated event of its own
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
            **self.diagnostics_to_dict(),
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
        self.diagnostics_from_dict(data)

    def reboot_model(self) -> None:
        self.dm.reboot()
        self._dm_snapshot = None

    def token_object(self, token: str, token_type: str | None) -> Any:
        return v201.IdToken(id_token=token, type=v201.IdTokenEnum(token_type or "ISO14443"))

    # -- transaction start and stop points (E01-E07, see tx_points) ------------------------------

    @property
    def points(self) -> TxPoints:
        """``TxCtrlr.TxStartPoint`` / ``TxStopPoint`` as now set (parsed once per value)."""
        key = (tuple(self.dm.tx_start_point), tuple(self.dm.tx_stop_point))
        if self._points is None or self._points[0] != key:
            self._points = (key, TxPoints.parse(*key))
        return self._points[1]

    def conditions(self, port: Port) -> Conditions:
        """What holds on ``port`` for the points. Without a transaction, ``energy`` is whether
        it would flow: the power path closed and an EV that takes energy."""
        facts = self.facts(port.id)
        tx = port.tx
        if tx is not None:
            drawing = facts.ev_drawing and not facts.evse_suspended
            return Conditions(
                plugged=facts.plugged,
                parked=facts.parked,
                authorized=tx.authorized,
                energy=drawing,
            )
        authorized = port.token is not None and facts.authorized
        flows = authorized and facts.fault is None and self.ev_accepts(port)
        return Conditions(
            plugged=facts.plugged, parked=facts.parked, authorized=authorized, energy=flows
        )

    @contextlib.contextmanager
    def _quietly(self, port: Port) -> Iterator[None]:
        """Status events whose chargingState change the caller reports in its own event."""
        self._quiet.add(port.id)
        try:
            yield
        finally:
            self._quiet.discard(port.id)

    def _power_path(self, port: Port) -> None:
        """Close the power path (the EV draws, if it takes energy) when cable and authorization
        are there; open it otherwise (E02: no energy before the authorization)."""
        tx = port.tx
        facts = self.facts(port.id)
        closed = tx is not None and tx.authorized and facts.plugged and facts.fault is None
        with self._quietly(port):
            if closed and not facts.ev_drawing and self.ev_accepts(port):
                self.handle(port.id, Event.EV_STARTS_DRAWING)
            elif not closed and facts.ev_drawing:
                self.handle(port.id, Event.EV_STOPS_DRAWING)

    async def _settle(
        self,
        port: Port,
        before: Conditions,
        cause: str,
        *,
        update: str | None = None,
        with_token: bool = False,
        reservation_id: int | None = None,
    ) -> None:
        """After a cable, an authorization or an EV in the bay arrived: start a transaction if
        a start point was reached (triggerReason per E01, ``cause`` for Authorized /
        PowerPathClosed), or report it in the running one as Updated with ``update`` (default
        ``cause``) and the ``reservation_id`` the authorization used."""
        tx = port.tx
        if tx is None:
            trigger = self.points.start_trigger(before, self.conditions(port), cause)
            refusal = self.facts_refusal(port.id, Event.TRANSACTION_STARTED)
            if trigger is not None and refusal is None:
                await self.start(port, trigger)
            else:
                await self.st.save()
            return
        self._power_path(port)
        await self._tx_event(
            v201.TransactionEventEnum.UPDATED,
            port,
            tx,
            update or cause,
            with_token=with_token,
            reservation_id=reservation_id,
        )
        self.st.changed()

    async def plug(self, port_id: int) -> None:
        """E02 cable first / E03 cable after the id token: CablePluggedIn starts (TxStartPoint
        EVConnected, ParkingBayOccupancy, PowerPathClosed ...) or updates the transaction."""
        await self._plug(self.port(port_id), "CablePluggedIn")

    async def _plug(self, port: Port, cause: str) -> None:
        self.advance(port)
        before = self.conditions(port)
        with self._quietly(port):
            self._event(port, Event.PLUG_IN)
        port.meter.battery = self.new_battery()
        if port.tx is not None:
            port.tx.awaiting_cable = False
        await self._settle(port, before, cause, update="CablePluggedIn")

    async def unplug(self, port_id: int) -> None:
        """E06: the cable gone ends the transaction when TxStopPoint has EVConnected,
        ParkingBayOccupancy, PowerPathClosed or (energy flowing) EnergyTransfer, or Authorized
        with ``StopTxOnEVSideDisconnect`` (which deauthorizes): Ended EVDisconnected /
        EVCommunicationLost. Else it goes on (E10: the EV may come back), Updated."""
        port = self.port(port_id)
        if not self.facts(port_id).plugged:
            raise ActionRefused(f"no cable is plugged in on connector {port_id}")
        self.advance(port)
        tx = port.tx
        if tx is not None:
            before = self.conditions(port)
            authorized = tx.authorized and not self.stop_on_ev_disconnect()
            after = Conditions(
                plugged=False, parked=before.parked, authorized=authorized, energy=False
            )
            if self.points.ends(before, after):
                await self.stop(port, StopCause.EV_DISCONNECTED, "EVCommunicationLost")
            else:
                tx.authorized = authorized
                with self._quietly(port):
                    self._event(port, Event.UNPLUG)
                port.meter.battery = None
                await self._tx_event(
                    v201.TransactionEventEnum.UPDATED, port, tx, "EVCommunicationLost"
                )
                self.st.changed()
                return
        self._event(port, Event.UNPLUG)
        port.meter.battery = None
        await self.st.save()

    async def park(self, port_id: int) -> None:
        """E01 S1: an EV detected in the parking bay (status rule 10: Occupied, or Reserved on
        a reserved EVSE). TxStartPoint ParkingBayOccupancy starts the transaction (E01.FR.01,
        Started with triggerReason EVDetected, OCTT TC_E_12_CS), before any cable or id token;
        a running transaction gets an Updated EVDetected. With the default points (no
        ParkingBayOccupancy) nothing starts: the EV waits for its cable and authorization."""
        port = self.port(port_id)
        if self.facts(port_id).parked:
            raise ActionRefused(f"an EV is already in the parking bay of connector {port_id}")
        self.advance(port)
        before = self.conditions(port)
        with self._quietly(port):
            self._event(port, Event.BAY_OCCUPIED)
        await self._settle(port, before, "EVDetected")

    async def leave_bay(self, port_id: int) -> None:
        """E06 S1: the EV leaves the parking bay (refused while its cable is plugged in). The
        transaction ends when TxStopPoint has ParkingBayOccupancy (E06.FR.01) or nothing is
        left to wait for (no cable, no authorization): Ended, triggerReason EVDeparted.
        stoppedReason: ReasonEnumType has no EVDeparted; OCTT TC_E_19_CS wants Local, or
        Remote when a RequestStopTransaction ended the authorization before (the cause the
        authorization ended with, :attr:`Tx.deauthorized`). Else it goes on, Updated
        EVDeparted (e.g. TxStartPoint Authorized, its id token waiting for the cable)."""
        port = self.port(port_id)
        facts = self.facts(port_id)
        if not facts.parked:
            raise ActionRefused(f"no EV is in the parking bay of connector {port_id}")
        refusal = self.facts_refusal(port_id, Event.BAY_VACATED)
        if refusal is not None:
            raise ActionRefused(f"{Event.BAY_VACATED.name} refused: {refusal}")
        self.advance(port)
        tx = port.tx
        if tx is not None:
            before = self.conditions(port)
            after = dataclasses.replace(before, parked=False)
            if self.points.ends(before, after):
                cause = StopCause[tx.deauthorized] if tx.deauthorized else StopCause.LOCAL
                await self.stop(port, cause, "EVDeparted")
            else:
                with self._quietly(port):
                    self._event(port, Event.BAY_VACATED)
                await self._tx_event(v201.TransactionEventEnum.UPDATED, port, tx, "EVDeparted")
                self.st.changed()
                return
        self._event(port, Event.BAY_VACATED)
        await self.st.save()

    async def token_accepted(
        self, port: Port, reservation: Reservation | None, *, remote: bool
    ) -> None:
        """E03 id token first (or E02's token after the cable): Authorized / RemoteStart starts
        a transaction at TxStartPoint Authorized (or PowerPathClosed with the cable in); a
        remote start plugs the emulated EV in when ``auto_plug``. The reservation it claimed
        is used with the authorization (H03.FR.09); the EVSEs held for the reservations of an
        unspecified EVSE are re-balanced once, after both."""
        before = self.conditions(port)
        with self._holds_settled():
            if reservation is not None:
                refusal = self.facts_refusal(port.id, Event.AUTHORIZE)
                if refusal is not None:
                    raise ActionRefused(f"{Event.AUTHORIZE.name} refused: {refusal}")
                used = self.use_reservation(port, reservation)
                if used is not None:
                    port.token_reservation = used
            self._event(port, Event.AUTHORIZE)
        port.token_at = self.st.clock()  # EVConnectionTimeOut counts from here (C01.FR.26)
        self.st.wake_timer()
        cause = "RemoteStart" if remote else "Authorized"
        await self._settle(port, before, cause)
        if remote and self.st.config.auto_plug and not self.facts(port.id).plugged:
            await self._plug(port, cause)

    async def authorize_transaction(
        self,
        port: Port,
        token: str,
        token_type: str | None,
        *,
        remote: bool,
        reservation: Reservation | None = None,
    ) -> None:
        """E02 (cable first, TxStartPoint EVConnected): the authorization of the running
        transaction, Updated with triggerReason Authorized (RemoteStart and the
        remoteStartId for F02) and the idToken; the power path closes. The holder's id token
        on a reserved EVSE consumes the reservation (H03 S1/S2 #2, H03.FR.09): the connector
        turns Occupied, no ReservationStatusUpdate follows, and this Updated event carries
        its reservationId ("the reservation that terminates as a result of this
        transaction", TransactionEventRequest). So does a reservation of an unspecified EVSE
        (H03 S3 #2), the EVSE it held released."""
        tx = port.tx
        if tx is None:
            raise ActionRefused(f"no transaction runs on connector {port.id}")
        self.advance(port)
        before = self.conditions(port)
        with self._holds_settled():
            used = None if reservation is None else self.use_reservation(port, reservation)
            if used is not None:
                tx.reservation_id = used
                if self.facts(port.id).reserved:
                    self.handle(port.id, Event.RESERVATION_ENDED)
            tx.id_token, tx.token_type, tx.authorized = token, token_type, True
            tx.deauthorized = None
        if remote:
            tx.remote_start_id, port.remote_start_id = port.remote_start_id, None
        cause = "RemoteStart" if remote else "Authorized"
        await self._settle(port, before, cause, with_token=True, reservation_id=used)

    async def end_authorization(self, port: Port, cause: StopCause, trigger: str) -> None:
        """E07 (same id token again), F03 (RequestStopTransaction), E05/E06.FR.04 (invalid
        idTokenInfo): the transaction ends when TxStopPoint has Authorized, PowerPathClosed
        or (energy flowing) EnergyTransfer; else it goes on without energy, Updated with
        ``trigger`` (E07's alternative: TxStopPoint EVConnected ends it at the unplug)."""
        tx = port.tx
        if tx is None:
            raise ActionRefused(f"no transaction runs on connector {port.id}")
        self.advance(port)
        before = self.conditions(port)
        after = dataclasses.replace(before, authorized=False, energy=False)
        if self.points.ends(before, after):
            await self.stop(port, cause, trigger)
            return
        tx.authorized = False
        tx.deauthorized = cause.name
        self._power_path(port)
        await self._tx_event(
            v201.TransactionEventEnum.UPDATED,
            port,
            tx,
            trigger,
            with_token=cause is StopCause.LOCAL,
        )
        self.st.changed()

    async def ev_resume(self, port_id: int) -> None:
        port = self.port(port_id)
        if port.tx is not None and not port.tx.authorized:
            raise ActionRefused(f"EVSE {port_id} waits for an authorization (power path open)")
        await super().ev_resume(port_id)

    async def _stop_if_running(self, port: Port, tx: Tx, cause: StopCause, trigger: str) -> None:
        """Stop ``tx`` unless it ended meanwhile (a background stop races the user)."""
        if port.tx is tx:
            await self.stop(port, cause, trigger)

    async def _end_authorization_if(
        self, port: Port, tx: Tx, cause: StopCause, trigger: str
    ) -> None:
        if port.tx is tx and tx.authorized:
            await self.end_authorization(port, cause, trigger)

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
        if facts.plugged and port.tx is not None and not port.tx.authorized:
            return v201.ChargingStateEnum.EV_CONNECTED  # no authorization: power path open
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
        reservation_id: int | None = None,
    ) -> None:
        info = v201.Transaction(transaction_id=tx.key, charging_state=self._charging_state(port))
        if stopped is not None:
            info.stopped_reason = stopped.v201
            info.charging_state = (
                v201.ChargingStateEnum.EV_CONNECTED
                if self.facts(port.id).plugged
                else v201.ChargingStateEnum.IDLE
            )
        starts = kind is v201.TransactionEventEnum.STARTED or trigger == "RemoteStart"
        if starts and tx.remote_start_id is not None:
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
        elif reservation_id is not None:
            request.reservation_id = reservation_id  # consumed by this event's id token (H03)
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
            # the idToken that ended it; an EV driving away (EVDeparted) presented none
            with_token=cause is StopCause.LOCAL and trigger != "EVDeparted",
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
                # E05 / E06.FR.04: the authorization ends; the transaction too if TxStopPoint says
                tx = port.tx
                if tx is not None and tx.authorized:
                    ended = self._end_authorization_if(
                        port, tx, StopCause.DE_AUTHORIZED, "Deauthorized"
                    )
                    self.st.spawn(ended)
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
        r("CostUpdated", self.on_cost_updated)
        self.register_diagnostics()

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
        """F03: the CSMS ends the authorization (then as TxStopPoint says, like E07); a
        transaction that has none yet is ended."""
        port = self.find_tx(req.transaction_id)
        if port is None or port.tx is None:
            return {"status": "Rejected"}
        tx = port.tx
        if tx.authorized:
            self.st.spawn(self._end_authorization_if(port, tx, StopCause.REMOTE, "RemoteStop"))
        else:
            self.st.spawn(self._stop_if_running(port, tx, StopCause.REMOTE, "RemoteStop"))
        return {"status": "Accepted"}

    def on_reset(self, req: v201.ResetRequest, _: Any) -> dict[str, Any]:
        """B11/B12. The station: Immediate stops the transactions (B12.FR.04: Ended with
        triggerReason ResetCommand, stoppedReason ImmediateReset) and reboots; OnIdle waits
        for them (B12.FR.01 Scheduled, B12.FR.03).

        One EVSE (``evseId``): an unknown one is Rejected; without a transaction it is
        Accepted and the EVSE resets (B11.FR.08: Unavailable, then back) while the station
        and the other EVSEs go on; with one, OnIdle is Scheduled and the EVSE resets once the
        transaction ended normally (B12.FR.01, B12.FR.07), Immediate is Accepted and the
        transaction ends first with ResetCommand / ImmediateReset (B12.FR.08)."""
        immediate = req.type is v201.ResetEnum.IMMEDIATE
        evse_id = _opt(req.evse_id)
        if evse_id is not None:
            port = self.ports.get(evse_id)
            if port is None or evse_id in self._resetting:
                return {"status": "Rejected"}
            self._resetting.add(evse_id)
            self.st.spawn(self._reset_evse(port, immediate))
            return {"status": "Scheduled" if port.tx is not None and not immediate else "Accepted"}
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

    async def _reset_evse(self, port: Port, immediate: bool) -> None:
        """Reset one EVSE: end its transaction (Immediate) or wait for its end (OnIdle),
        then Unavailable (B11.FR.08), forget what waited on it (an accepted id token), and
        back to what its availability was. An EVSE the CSMS had set Inoperative stays so
        (B11: persistent states persist)."""
        try:
            await asyncio.sleep(0.05)  # the ResetResponse goes out first
            tx = port.tx
            if tx is not None and immediate:
                await self._stop_if_running(port, tx, StopCause.HARD_RESET, "ResetCommand")
            elif tx is not None:
                await self.st.wait_for_state(lambda _: port.tx is None, 1e9)
            self.advance(port)
            port.token = port.token_type = None
            port.remote_start_id = port.token_reservation = None
            if self.facts(port.id).inoperative:
                await self.st.save()
                return
            now = self.st.now()
            _, down = self.model.change_availability(operative=False, now=now, evse_id=port.id)
            self.post_statuses(down)
            await self.st.save()
            await asyncio.sleep(EVSE_RESET_SECONDS)
            _, up = self.model.change_availability(
                operative=True, now=self.st.now(), evse_id=port.id
            )
            self.post_statuses(up)
            await self.st.save()
        finally:
            self._resetting.discard(port.id)

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
        self.observe_set_variables(reply)
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

    async def on_set_network_profile(
        self, req: v201.SetNetworkProfileRequest, _: Any
    ) -> dict[str, Any]:
        """B09: Rejected for a slot outside ``NetworkConfigurationPriority``'s valuesList
        (0..7), a profile this station cannot connect with (B09.FR.02,
        :func:`.network_profiles.profile_problem`) or a securityProfile below the current
        one (B09.FR.04 / A00.FR.005); else stored by slot and persisted with the station
        state (B09.FR.01). It is dialled after the next reboot when
        ``NetworkConfigurationPriority`` lists its slot (B10.FR.04, :mod:`.network_profiles`)."""
        spec = next(
            s for s in self._specs if s.key == _key("OCPPCommCtrlr", "NetworkConfigurationPriority")
        )
        slots = {int(v) for v in spec.values_list or ()}
        profile = req.connection_data
        if req.configuration_slot not in slots:
            return {"status": "Rejected", "statusInfo": {"reasonCode": "InvalidSlot"}}
        raw = msgspec.to_builtins(profile)
        problem = profile_problem(raw, has_client_certificate=self.st.has_client_certificate())
        if problem is not None:
            info = {"reasonCode": "InvalidNetworkConf", "additionalInfo": problem[:512]}
            return {"status": "Rejected", "statusInfo": info}
        if profile.security_profile < self.dm.security_profile:
            return {"status": "Rejected", "statusInfo": {"reasonCode": "SecurityDowngrade"}}
        self.network_profiles[req.configuration_slot] = raw
        await self.st.save()
        return {"status": "Accepted"}

    def network_endpoints(self) -> dict[int, Endpoint]:
        """Every slot holding a profile: slot 0 is the URL and security profile the station
        was started with unless the CSMS stored a profile there."""
        endpoints = {0: self.st.config.endpoint}
        for slot, raw in self.network_profiles.items():
            with contextlib.suppress(KeyError, TypeError, ValueError):
                endpoints[slot] = endpoint_from_profile(slot, raw)
        return endpoints

    def network_failover(self) -> Failover:
        """B10.FR.03/04: the fail-over of this boot, from NetworkConfigurationPriority,
        NetworkProfileConnectionAttempts and ActiveNetworkProfile (the last good slot,
        B10.FR.07), skipping profiles below SecurityCtrlr.SecurityProfile."""
        occ = "OCPPCommCtrlr"
        endpoints = self.network_endpoints()
        current = self.dm.security_profile
        order = failover_order(
            parse_priority(self.dm.actual(_key(occ, "NetworkConfigurationPriority"))),
            endpoints,
            security_profile=current,
        )
        attempts = self.dm.actual(_key(occ, "NetworkProfileConnectionAttempts"))
        active = self.dm.actual(_key(occ, "ActiveNetworkProfile"))
        last_good = None if active is None else int(active)
        if last_good not in endpoints or endpoints[last_good].security_profile < current:
            last_good = None
        return Failover(order, attempts=int(attempts or 1), last_good=last_good)

    def network_connected(self, endpoint: Endpoint) -> None:
        """ActiveNetworkProfile is the slot connected with; SecurityCtrlr.SecurityProfile
        follows a higher profile of that connection (it never goes down, A00.FR.005)."""
        self._dm_snapshot = None
        self.dm.set_actual(_key("OCPPCommCtrlr", "ActiveNetworkProfile"), str(endpoint.slot))
        if endpoint.security_profile > self.dm.security_profile:
            self.dm.set_actual(
                _key("SecurityCtrlr", "SecurityProfile"), str(endpoint.security_profile)
            )

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
            self.start_certificate_signing(CS_USE)
        elif what is trig.SIGN_V2G_CERTIFICATE:
            self.start_certificate_signing(V2G_USE)
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
        """H01: ReserveNow. Rejected when ``ReservationCtrlr.Enabled`` is false (H01.FR.01,
        secondary source: OCTT TC_H_22/TC_H_13), for an EVSE the station does not have or
        whose connector is not of the ``connectorType`` asked for, and without ``evseId``
        when ``NonEvseSpecific`` is false (H01.FR.19, secondary source). With an ``evseId``
        as before (:meth:`reserve`: Faulted, Unavailable, Occupied when busy, reserved or
        needed by the reservations of an unspecified EVSE); without one, see
        :meth:`_reserve_unspecified`. ``connectorType`` Unknown means any type."""
        if self.dm.actual(_key("ReservationCtrlr", "Enabled")) == "false":
            return {"status": "Rejected"}
        group = _opt(req.group_id_token)
        wanted = _opt(req.connector_type)
        reservation = Reservation(
            id=req.id,
            id_token=req.id_token.id_token,
            expires_at=req.expiry_date_time,
            parent_id=None if group is None else group.id_token,
            connector_type=None if wanted in (None, v201.ConnectorEnum.UNKNOWN) else str(wanted),
        )
        evse_id = _opt(req.evse_id)
        if evse_id is None:
            status = self._reserve_unspecified(reservation)
            await self.st.save()
            return {"status": status}
        port = self.ports.get(evse_id)
        if port is None or not self._fits(port, reservation):
            return {"status": "Rejected"}
        return await self.answer_reserve(port, reservation)

    def _reserve_unspecified(self, reservation: Reservation) -> str:
        """H01 S1 "Reserve an unspecified EVSE" (and S3, a connector type): no EVSE is bound;
        the station keeps, at any time until it ends, an EVSE free for it (the 2025-01 errata
        introduction: "the Charging Station will make sure that at least one EVSE remains
        available for the EV Driver"). Accepted when every reservation of an unspecified EVSE,
        this one included, can still have an EVSE of its own that fits its connector type
        (:meth:`_assignable`); the EVSEs that are then just enough go Reserved
        (:meth:`_hold_for_unspecified`, OCTT TC_H_14: "all available EVSE to reserved, when
        the amount of EVSEs available equals the amount of reservations"). Refused: Rejected
        when no connector is of the type asked for (secondary source: EVerest libocpp); else
        Occupied when an EVSE of that type is in use or reserved, Faulted when they are all
        faulted or unavailable and one is faulted, Unavailable when all are unavailable
        (OCTT TC_H_09/10/12, secondary source). A reservation with the same id, of an EVSE
        or not, is replaced (H01.FR.02) only when the new one is accepted."""
        if self.dm.actual(_key("ReservationCtrlr", "NonEvseSpecific")) != "true":
            return "Rejected"
        fitting = [p for p in self.ports.values() if self._fits(p, reservation)]
        if not fitting:
            return "Rejected"
        others = [r for r in self.unbound if r.id != reservation.id]
        free = [p for p in self.ports.values() if self._free_for_unspecified(p, reservation.id)]
        if not self._assignable([*others, reservation], free):
            return self._refusal(fitting)
        with self._holds_settled():
            for port in self.ports.values():  # its EVSE stays Reserved if it is still needed
                own = port.reservation
                if own is not None and own.id == reservation.id and self._holdable(port):
                    self.handle(port.id, Event.HOLD)
            self.cancel_reservation(reservation.id)
            self.unbound.append(reservation)
        self.st.wake_timer()
        return "Accepted"

    def _refusal(self, fitting: list[Port]) -> str:
        """Why no EVSE of ``fitting`` can be kept: Occupied while one is in service (in use,
        reserved or held), else Faulted if one is faulted, else Unavailable."""
        facts = [self.facts(p.id) for p in fitting]
        if any(f.fault is None and not f.inoperative for f in facts):
            return "Occupied"
        return "Faulted" if any(f.fault is not None for f in facts) else "Unavailable"

    def _fits(self, port: Port, reservation: Reservation) -> bool:
        """``port``'s connector is of the type ``reservation`` asks for (its
        ``Connector.ConnectorType``), or the reservation asks for none."""
        wanted = reservation.connector_type
        if wanted is None:
            return True
        key = VariableKey("Connector", "ConnectorType", evse=port.id, connector=1)
        return self.dm.actual(key) == wanted

    def _free_for_unspecified(self, port: Port, without: int | None = None) -> bool:
        """``port`` can be kept for a reservation of an unspecified EVSE: operative, not
        faulted, no reservation of its own (but the one with id ``without``, about to be
        replaced), no user being served (an accepted id token, an authorized transaction),
        and nothing in it - unless it is held already: a cable or an EV in the bay keeps a
        held EVSE Reserved (status rule 11, G01.FR.09 errata 2025-01), the holder may come."""
        facts = self.facts(port.id)
        own = port.reservation
        if own is not None and own.id != without:
            return False
        if facts.inoperative or facts.fault is not None or facts.authorized:
            return False
        if port.token is not None or (port.tx is not None and port.tx.authorized):
            return False
        if facts.held and own is None:
            return True
        return not (facts.plugged or facts.parked or port.tx is not None)

    def _assignable(self, reservations: list[Reservation], ports: list[Port]) -> bool:
        """Whether each reservation can have a port of its own that fits it: a bipartite
        matching (augmenting paths; a station has a handful of EVSEs)."""
        if len(reservations) > len(ports):
            return False
        owner: dict[int, int] = {}
        """port id -> the index of the reservation placed there"""

        def place(index: int, seen: set[int]) -> bool:
            for port in ports:
                if port.id in seen or not self._fits(port, reservations[index]):
                    continue
                seen.add(port.id)
                if port.id not in owner or place(owner[port.id], seen):
                    owner[port.id] = index
                    return True
            return False

        return all(place(index, set()) for index in range(len(reservations)))

    def _hold_for_unspecified(self) -> None:
        """Hold (status Reserved) exactly the free EVSEs the reservations of an unspecified
        EVSE cannot do without - those without which they could no longer all have an EVSE
        each - and release the others (H02.FR.05/06 errata 2025-02: "allow charging on all
        EVSE which were not reserved explicitly", StatusNotification Available). Called after
        every status change; more reservations than free EVSEs (one faulted meanwhile) hold
        every free one and keep the reservations."""
        if self._holding:
            return
        held = [p for p in self.ports.values() if self.facts(p.id).held]
        if not self.unbound and not held:
            return
        self._holding = True
        try:
            free = [p for p in self.ports.values() if self._free_for_unspecified(p)]
            needed = {
                p.id
                for p in free
                if not self._assignable(self.unbound, [q for q in free if q is not p])
            }
            for port in self.ports.values():
                connector = self.model.connector(port.id)
                if port.id in needed and not connector.facts.held:
                    if self._holdable(port):
                        self.handle(port.id, Event.HOLD)
                elif port.id not in needed and connector.facts.held:
                    self.handle(port.id, Event.RELEASE)
        finally:
            self._holding = False

    def _holdable(self, port: Port) -> bool:
        """HOLD would be accepted (not on a faulted, inoperative or authorized connector)."""
        return self.model.connector(port.id).accepts(Event.HOLD)

    @contextlib.contextmanager
    def _holds_settled(self) -> Iterator[None]:
        """The status changes inside do not re-balance the held EVSEs; one re-balance at the
        end, on the final state (no passing Available / Reserved while a reservation is
        replaced or used)."""
        if self._holding:
            yield
            return
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
        self._hold_for_unspecified()

    def post_statuses(self, notes: Any) -> None:
        """Every status change may change which EVSEs the reservations of an unspecified
        EVSE need (a cable in, a fault, an availability change, a session over)."""
        super().post_statuses(notes)
        self._hold_for_unspecified()

    def reserve(self, port: Port, reservation: Reservation) -> str:
        """The base's, the held EVSEs re-balanced once at the end (a reservation of an
        unspecified EVSE replaced by one of this EVSE, H01.FR.02, passes no status)."""
        with self._holds_settled():
            return super().reserve(port, reservation)

    def may_reserve(self, port: Port, reservation: Reservation) -> bool:
        """A reservation of ``port`` leaves the reservations of an unspecified EVSE an EVSE
        each (a held EVSE is needed by them: Occupied, OCTT TC_H_09 the other way round)."""
        others = [r for r in self.unbound if r.id != reservation.id]
        if not others:
            return True
        free = [
            p
            for p in self.ports.values()
            if p is not port and self._free_for_unspecified(p, reservation.id)
        ]
        return self._assignable(others, free)

    def cancel_reservation(self, reservation_id: int) -> bool:
        """H02 (and H04, H01.FR.02): also a reservation of an unspecified EVSE; the EVSEs it
        held are released (H02.FR.06 errata 2025-02)."""
        if super().cancel_reservation(reservation_id):
            return True
        for reservation in self.unbound:
            if reservation.id == reservation_id:
                self.unbound = [r for r in self.unbound if r is not reservation]
                self._hold_for_unspecified()
                return True
        return False

    async def claim_reservation(
        self, port: Port, token: str, token_type: str | None, status: str | None
    ) -> tuple[Reservation | None, str | None]:
        """H03 S3 (errata 2025-01): an id token matching a reservation of an unspecified EVSE
        (its idToken, or its groupIdToken as the authorization says, H03 S2) uses it at any
        EVSE that fits it, Available, held or with the holder's cable already in. An EVSE
        reserved for its own reservation goes first (H03 S1/S2). On a held EVSE any other
        id token "is not authorized to charge" (H03 remark): Invalid."""
        if port.reservation is not None or not self.unbound:
            return await super().claim_reservation(port, token, token_type, status)
        fitting = [r for r in self.unbound if self._fits(port, r)]
        for reservation in fitting:
            if self._token_matches(token, reservation.id_token):
                return reservation, status
        groups = [r for r in fitting if r.parent_id is not None]
        if groups:
            status, group = await self.authorize_info(token, token_type)
            for reservation in groups:
                if status == "Accepted" and self._token_matches(reservation.parent_id or "", group):
                    return reservation, status
        if self.facts(port.id).held:
            return None, "Invalid"
        return None, status

    def use_reservation(self, port: Port, reservation: Reservation) -> int | None:
        """H03.FR.09: a reservation of an unspecified EVSE used ends as one of the EVSE does
        (the caller's next status change re-balances the held EVSEs)."""
        if any(r is reservation for r in self.unbound):
            self.unbound = [r for r in self.unbound if r is not reservation]
            return reservation.id
        return super().use_reservation(port, reservation)

    async def on_timer(self) -> float | None:
        """The base timer, then the reservations of an unspecified EVSE that expired (H04:
        the EVSEs they held turn Available, then ReservationStatusUpdate Expired)."""
        due = await super().on_timer()
        wall = self.st.now()
        for reservation in [r for r in self.unbound if wall >= r.expires_at]:
            self.cancel_reservation(reservation.id)
            self.reservation_expired(None, reservation)
            await self.st.save()
        if not self.unbound:
            return due
        soonest = min(r.expires_at for r in self.unbound)
        at = self.st.clock() + (soonest - wall).total_seconds()
        return at if due is None else min(due, at)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["unbound_reservations"] = [r.to_dict() for r in self.unbound]
        return data

    def load_dict(self, data: dict[str, Any]) -> list[tuple[Port, Tx]]:
        # first: the held EVSEs restored with the facts are re-balanced against these
        self.unbound = [Reservation.from_dict(r) for r in data.get("unbound_reservations", [])]
        return super().load_dict(data)

    async def on_cancel_reservation(
        self, req: v201.CancelReservationRequest, _: Any
    ) -> dict[str, Any]:
        return await self.answer_cancel_reservation(req.reservation_id)

    def reservation_expired(self, port: Port | None, reservation: Reservation) -> None:
        self.st.post(
            "ReservationStatusUpdate",
            {"reservationId": reservation.id, "reservationUpdateStatus": "Expired"},
        )

    async def on_update_firmware(self, req: v201.UpdateFirmwareRequest, _: Any) -> dict[str, Any]:
        """L01 (secure: ``signingCertificate``, ``signature``) and L02 (neither).

        A signing certificate is validated before the answer (L01.FR.21, secondary source):
        not issued by an installed ManufacturerRootCertificate, outside its validity, or
        absent next to a signature: InvalidCertificate (L01.FR.22, secondary source) and
        the security event InvalidFirmwareSigningCertificate (L01.FR.02), committed before
        the answer. An update with neither field is the non-secure L02 one: accepted by a
        station without manufacturer roots, Rejected by one that has them and so supports
        secure updates (the spec has no variable for it; OCTT TC_L_18_CS expects Rejected
        or InvalidCertificate). Accepted (AcceptedCanceled when an update was running,
        L01.FR.24 secondary source) goes on in :meth:`update_firmware`, every
        FirmwareStatusNotification with the requestId (L01.FR.10): DownloadScheduled and
        InstallScheduled for future ``retrieveDateTime`` / ``installDateTime`` (L01.FR.13/16,
        L02.FR.07/10), the installation once no transaction runs with the free EVSEs
        Unavailable meanwhile (L01.FR.06/07, L02.FR.03/04), FirmwareUpdated after Installed
        (L01.FR.31); ids secondary source."""
        firmware = req.firmware
        certificate = _opt(firmware.signing_certificate)
        signature = _opt(firmware.signature)
        signer = None
        if certificate is None and signature is None:
            if self.supports_secure_firmware():
                return {
                    "status": "Rejected",
                    "statusInfo": {
                        "reasonCode": "UnsignedFirmware",
                        "additionalInfo": "this station installs signed firmware only",
                    },
                }
        else:
            try:
                signer = self.firmware_signer(certificate)
            except CertificateError as exc:
                await self.security_event("InvalidFirmwareSigningCertificate", str(exc))
                return {"status": "InvalidCertificate"}
        self.firmware_request_id = req.request_id
        report = functools.partial(self._firmware_status, request_id=req.request_id)
        return self.start_signed_update(req, signer, report)

    async def _firmware_status(self, status: str, request_id: int) -> None:
        self.firmware_status = status
        self.st.post("FirmwareStatusNotification", {"status": status, "requestId": request_id})
        await self.st.save()

    def set_firmware_hold(self, port_id: int, *, held: bool) -> None:
        """L01.FR.07 / L02.FR.04 (secondary source): the EVSE's connector's availability;
        given back, it stays Unavailable while the station or the EVSE is set Inoperative.
        ``ChargingStation.AllowNewSessionsPendingFirmwareUpdate`` (which would waive the
        hold) is not in the device model: absent means the hold applies."""
        _, notes = self.model.change_availability(
            operative=not held, now=self.st.now(), evse_id=port_id, connector_id=1
        )
        self.post_statuses(notes)

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
            # queued security events (A04.FR.02) are no transaction's messages
            return {"messagesInQueue": any(m.tx_key is not None for m in pending)}
        queued = any(m.tx_key == tx_id for m in pending)
        return {"messagesInQueue": queued, "ongoingIndicator": self.find_tx(tx_id) is not None}

    async def on_cost_updated(self, req: v201.CostUpdatedRequest, _: Any) -> dict[str, Any]:
        """I02 "Show EV Driver running total cost during charging": the station keeps the
        running total for its display (persisted with the transaction). A transaction
        that is not running here is answered all the same (the response has no status)."""
        port = self.find_tx(req.transaction_id)
        if port is not None and port.tx is not None:
            port.tx.total_cost = float(req.total_cost)
            self.st.log.info(
                "running cost", transaction_id=req.transaction_id, total_cost=port.tx.total_cost
            )
            await self.st.save()
        return {}

    def on_data_transfer(self, req: v201.DataTransferRequest, _: Any) -> dict[str, Any]:
        return {"status": "UnknownVendorId"}

    # -- certificates (A02/A03, M03-M05) ---------------------------------------------------------

    def csr_organization(self) -> str:
        """A02.FR.13: SecurityCtrlr.OrganizationName."""
        return self.dm.actual(_key("SecurityCtrlr", "OrganizationName")) or ""

    def cert_signing_retry(self) -> tuple[float, int]:
        """SecurityCtrlr.CertSigningWaitMinimum / CertSigningRepeatTimes (A02.FR.17-19)."""
        return float(self.dm.cert_signing_wait_minimum), self.dm.cert_signing_repeat_times

    def sign_request(self, csr: str, use: str) -> dict[str, Any]:
        """SignCertificateRequest with the certificateType asked for (ChargingStation or
        V2G), so the CSMS answers with the same type (A02.FR.14)."""
        return {"csr": csr, "certificateType": use}

    def certificate_store_max(self) -> int | None:
        """The maxLimit of ``SecurityCtrlr.CertificateEntries``."""
        return self.dm.certificate_entries_max

    def additional_root_certificate_check(self) -> bool:
        """``SecurityCtrlr.AdditionalRootCertificateCheck`` (M05)."""
        return self.dm.additional_root_certificate_check

    def certificates_changed(self) -> None:
        """``SecurityCtrlr.CertificateEntries``: how many roots are installed."""
        with contextlib.suppress(DeviceModelError):
            self.dm.set_actual(_key("SecurityCtrlr", "CertificateEntries"), str(self.certs.count()))

    def after_boot(self) -> None:
        super().after_boot()
        self.confirm_root_certificates()

    async def on_certificate_signed(
        self, req: v201.CertificateSignedRequest, _: Any
    ) -> dict[str, Any]:
        """A02/A03: the chain of the certificateType given (omitted: the charging-station
        certificate); a V2GCertificate must chain to a V2GRootCertificate and is kept apart
        from the charging-station certificate."""
        use = _opt(req.certificate_type)
        return await self._certificate_signed(
            req.certificate_chain, CS_USE if use is None else str(use)
        )

    async def on_install_certificate(
        self, req: v201.InstallCertificateRequest, _: Any
    ) -> dict[str, Any]:
        return await self._install_certificate(str(req.certificate_type), req.certificate)

    def on_get_installed_certificate_ids(
        self, req: v201.GetInstalledCertificateIdsRequest, _: Any
    ) -> dict[str, Any]:
        """M03: the hash data of the installed roots of the asked types (all: none asked);
        V2GCertificateChain: the station's V2G certificate with its sub-CAs as
        childCertificateHashData."""
        types = _opt(req.certificate_type)
        wanted = None if types is None else [str(t) for t in types]
        chain: list[dict[str, Any]] = [
            {"certificateType": t, "certificateHashData": d.to_wire()}
            for t, d in self.certs.installed(wanted)
        ]
        v2g = self.certs.v2g_chain_hash_data()
        if v2g is not None and (wanted is None or V2G_CHAIN_TYPE in wanted):
            leaf, children = v2g
            item: dict[str, Any] = {
                "certificateType": V2G_CHAIN_TYPE,
                "certificateHashData": leaf.to_wire(),
            }
            if children:
                item["childCertificateHashData"] = [c.to_wire() for c in children]
            chain.append(item)
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
