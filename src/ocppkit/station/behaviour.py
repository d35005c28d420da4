"""What an emulated station does, shared by both OCPP versions: sessions, meters, timers.

Why a shared base: the life of a charging session is the same in 1.6 and 2.0.1 (a cable, an
id token, a transaction, meter values, a stop with a reason, reservations, charging-profile
limits); only the messages that report it differ. :class:`Behaviour` runs that life on the
pure modules (:mod:`.status` tables, :mod:`.meter` physics, :mod:`.authorization`,
:mod:`.charging_profile`) and leaves the messages to :class:`~.behaviour_v16.Behaviour16`
and :class:`~.behaviour_v201.Behaviour201`, which also answer the CSMS's CALLs.

Theory of operation
-------------------
* Each connector (1.6) / EVSE (2.0.1, one connector each) is a :class:`Port`: its meter,
  its charging profiles, the transaction running on it and its reservation.
* A user or CSMS action feeds an :class:`~.status.Event` to the version's status machine;
  the StatusNotifications it yields are *posted* (non-transaction messages: sent when
  online, forgotten offline, since every status is reported again after the next boot).
* Transaction messages are *enqueued* in the persistent store together with the station's
  state blob (one commit), then delivered by the runtime (:mod:`.station`), FIFO. So are
  security events (A04.FR.02, guaranteed delivery): every SecurityEventNotification goes
  through :meth:`Behaviour.security_event`.
* Certificates (A02/A03, M03-M05): :attr:`Behaviour.certs` holds the roots and the
  station's own certificates; a SignCertificate flow per certificate use repeats the CSR
  while no certificate comes (A02.FR.17-19); :meth:`Behaviour.on_timer` starts the
  renewal of the charging-station certificate before it expires (A03.FR.02), and again,
  backing off to at most daily, while a renewal ends without a certificate.
* Firmware (1.6 §5.19, whitepaper "Secure Firmware Update", 2.0.1 L01/L02): the version's
  handler checks a signing certificate against the installed manufacturer roots before it
  answers (:meth:`Behaviour.firmware_signer`), then :meth:`Behaviour.update_firmware` walks
  the statuses, downloading for real or not (``StationConfig.firmware_download``, see
  :mod:`.firmware`), waiting for the retrieve and install times (DownloadScheduled,
  InstallScheduled) and, to install, for the transactions to end, the free ports held
  Unavailable meanwhile; a new update cancels the one running.
* 1.6: a transaction starts when a cable and an accepted id token are both there (§4.1);
  it stops on the same id token, a remote stop, an unplug
  (``StopTransactionOnEVSideDisconnect``), a reset, or an unlock. 2.0.1 starts and ends it
  where ``TxCtrlr.TxStartPoint`` / ``TxStopPoint`` say (:mod:`.tx_points`, E01-E07): the
  version's half overrides the hooks :meth:`Behaviour.token_accepted`,
  :meth:`Behaviour.authorize_transaction` and :meth:`Behaviour.end_authorization` (and
  plug/unplug, park/leave_bay); a running transaction may then wait for its authorization
  (:attr:`Tx.authorized`) or its cable (:attr:`Tx.awaiting_cable`).
* The parking bay (:meth:`Behaviour.park` / :meth:`Behaviour.leave_bay`, an emulated bay
  sensor; status rule 10) is a fact of its own: 1.6 reports it (Preparing / Finishing) and
  starts nothing; 2.0.1 may start and end transactions on it (TxStartPoint / TxStopPoint
  ParkingBayOccupancy). Without those actions the bay follows the cable.
* :meth:`Behaviour.on_timer` is called by the runtime's one timer: periodic and
  clock-aligned meter values, reservation expiry, the EV reaching its target SoC, a
  charging-profile limit of 0 (SuspendedEVSE). The meter is advanced lazily (at each
  sample, stop and profile change): :meth:`.meter.Meter.advance` integrates in steps.

* An accepted id token without a cable is forgotten after ``ConnectionTimeOut`` (1.6) /
  ``TxCtrlr.EVConnectionTimeOut`` (2.0.1).

Decisions: a fault does not stop a running transaction (the EV draws nothing while it
lasts); a remote start plugs the cable in by itself (``StationConfig.auto_plug``), as the
emulated driver who asked for it would; a transaction found running after a crash is ended
with reason PowerLoss (see :meth:`Behaviour.recover`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import datetime
import math
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
from cryptography import x509

from ocppkit.protocol import (
    CallErrorReceived,
    CallTimeoutError,
    PayloadError,
    Router,
    SessionClosedError,
)
from ocppkit.station.authorization import AuthInfo, AuthSettings, DecisionKind, LocalAuthorization
from ocppkit.station.certificates import (
    CS_USE,
    CSMS_ROOT_TYPES,
    CertificateError,
    CertificateStore,
    renewal_retry_delay,
)
from ocppkit.station.charging_profile import Profile, ProfileSet, Purpose
from ocppkit.station.firmware import (
    FETCH,
    MANUFACTURER_ROOT,
    FirmwareError,
    FirmwareJob,
    attempts_and_interval,
    check_signing_certificate,
    download,
    verify_signature,
)
from ocppkit.station.meter import (
    SUPPORTED_MEASURANDS,
    AcSupply,
    DcSupply,
    EvBattery,
    Meter,
    StopCause,
    next_clock_aligned,
)
from ocppkit.station.status import Event, Facts, InvalidEvent

if TYPE_CHECKING:
    from ocppkit.station.station import Station

__all__ = ["ActionRefused", "Behaviour", "Port", "Reservation", "Tx", "stop_cause"]

#: Longest the timer sleeps with a transaction running (EV-full and profile checks).
MAX_TIMER_SLEEP = 30.0
#: A firmware retrieve / install time less than this many seconds ahead is waited for
#: without DownloadScheduled / InstallScheduled (clock skew, millisecond clocks).
SCHEDULE_MARGIN = 0.5


class ActionRefused(Exception):
    """An operator/EV action the station cannot do now (e.g. start on a faulted connector)."""


def stop_cause(reason: str) -> StopCause:
    """The :class:`StopCause` for a reason name in either version's spelling."""
    wanted = reason.replace("_", "").casefold()
    for cause in StopCause:
        names = {cause.name.replace("_", "").casefold(), *(v.casefold() for v in cause.value)}
        if wanted in names:
            return cause
    raise ValueError(f"unknown stop reason {reason!r}")


@dataclass(slots=True, kw_only=True)
class Tx:
    """A transaction running on a port."""

    key: str
    """Station-generated id: the 2.0.1 transactionId, the 1.6 queue key."""
    id_token: str | None
    token_type: str | None = None
    started_at: datetime.datetime
    meter_start: int
    remote_start_id: int | None = None
    reservation_id: int | None = None
    authorized: bool = True
    """An id token authorizes it now (2.0.1: a transaction started by TxStartPoint
    EVConnected waits for one; the same token again may end only the authorization)."""
    awaiting_cable: bool = False
    """2.0.1: started by its authorization, no cable plugged in yet (E03.FR.05)."""
    deauthorized: str | None = None
    """2.0.1: the :class:`StopCause` name its authorization ended with while it went on
    (TxStopPoint without Authorized); the Ended event at the EV's departure reports it as
    its stoppedReason (OCTT TC_E_19_CS: Local, or Remote after RequestStopTransaction)."""
    total_cost: float | None = None
    """2.0.1: the running cost the CSMS last sent (CostUpdated, I02), for the display."""
    last_periodic: float = 0.0
    """Runtime clock of the last periodic sample (not persisted: restarts count anew)."""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["started_at"] = self.started_at.isoformat()
        del data["last_periodic"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tx:
        values = dict(data)
        values["started_at"] = datetime.datetime.fromisoformat(values["started_at"])
        return cls(**values)


@dataclass(slots=True, kw_only=True)
class Reservation:
    """A ReserveNow taken: on one port (:attr:`Port.reservation`), or, 2.0.1 without an
    ``evseId``, on none (``Behaviour201.unbound``, H01)."""

    id: int
    id_token: str
    expires_at: datetime.datetime
    parent_id: str | None = None
    connector_type: str | None = None
    """2.0.1: the connector type asked for (ReserveNow ``connectorType``), None for any."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "id_token": self.id_token,
            "expires_at": self.expires_at.isoformat(),
            "parent_id": self.parent_id,
            "connector_type": self.connector_type,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reservation:
        return cls(
            id=int(data["id"]),
            id_token=str(data["id_token"]),
            expires_at=datetime.datetime.fromisoformat(data["expires_at"]),
            parent_id=data.get("parent_id"),
            connector_type=data.get("connector_type"),
        )


@dataclass(slots=True, kw_only=True)
class Port:
    """One connector (1.6) or EVSE (2.0.1): meter, profiles, transaction, reservation."""

    id: int
    meter: Meter
    profiles: ProfileSet = field(default_factory=ProfileSet)
    raw_profiles: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Profile id -> the wire form received (what is persisted and reported)."""
    tx: Tx | None = None
    reservation: Reservation | None = None
    token: str | None = None
    """An accepted id token waiting for the cable (no transaction yet)."""
    token_type: str | None = None
    remote_start_id: int | None = None
    token_at: float = 0.0
    """Runtime clock when :attr:`token` was accepted (ConnectionTimeOut counts from it)."""
    token_reservation: int | None = None
    """The reservation the waiting id token used (its id goes into the start message)."""
    last_advance: float = 0.0

    def keep_profile(self, profile: Profile, raw: dict[str, Any]) -> None:
        """Install ``profile``, received as ``raw``; forget the wire forms it replaced."""
        self.profiles.install(profile)
        self.raw_profiles[profile.id] = raw
        self.prune_raw_profiles()

    def prune_raw_profiles(self) -> None:
        """Forget the wire forms of the profiles no longer installed."""
        for pid in [p for p in self.raw_profiles if p not in {x.id for x in self.profiles}]:
            del self.raw_profiles[pid]


def _check_signature(signer: x509.Certificate, digest: bytes | None, signature: str | None) -> bool:
    """A secure update's signature: True when verified over the file's SHA-256 ``digest``
    (L01.FR.04), False when there is no file to check it on (simulated download);
    :class:`.firmware.FirmwareError` when it is missing (whitepaper L01 step 5: "missing
    entirely") or does not verify."""
    if not signature:
        raise FirmwareError("the firmware signature is missing")
    if digest is None:
        return False
    verify_signature(signer, digest, signature)
    return True


class Behaviour(abc.ABC):
    """The version-neutral half of an emulated station (see the module docstring)."""

    version: str

    def __init__(self, station: Station) -> None:
        self.st = station
        cfg = station.config
        self.ports: dict[int, Port] = {
            i: Port(id=i, meter=Meter(supply=self._supply(), rng=station.rng))
            for i in range(1, cfg.connectors + 1)
        }
        self.auth = LocalAuthorization()
        self.router = Router()
        self._next_aligned: datetime.datetime | None = None
        self.firmware_status = "Idle"
        self.diagnostics_status = "Idle"
        self._firmware_task: asyncio.Task[Any] | None = None
        """The firmware update running (a new one cancels it, L01.FR.26 / L01.FR.24)."""
        self.firmware_held: set[int] = set()
        """Ports made Unavailable while an installation waits for transactions (L01.FR.07);
        persisted, and given back at the next start when the process died meanwhile."""
        self._signing: dict[str, asyncio.Task[Any]] = {}
        """Certificate use -> its SignCertificate flow waiting for CertificateSigned."""
        self._renewal_started_for: datetime.datetime | None = None
        """The expiry of the certificate whose A03 renewal was started."""
        self._renewal_failures = 0
        """How many A03 renewals of that certificate ended without a new one."""
        self._renewal_retry_at: datetime.datetime | None = None
        """When the A03 renewal that ended without a certificate starts again."""
        self.register_handlers()

    # -- the version's half ---------------------------------------------------------------------

    @property
    @abc.abstractmethod
    def settings(self) -> AuthSettings: ...

    @abc.abstractmethod
    def register_handlers(self) -> None: ...

    @abc.abstractmethod
    def facts(self, port: int) -> Facts: ...

    @abc.abstractmethod
    def handle(self, port: int, event: Event, *, error_code: str = "OtherError") -> bool:
        """Feed ``event``; post its StatusNotifications; True when a transaction is due."""

    @abc.abstractmethod
    def boot_request(self, reason: str) -> msgspec.Struct: ...

    @abc.abstractmethod
    def status_notifications(self) -> list[msgspec.Struct]: ...

    @abc.abstractmethod
    async def authorize_online(self, token: str, token_type: str | None) -> AuthInfo: ...

    @abc.abstractmethod
    async def enqueue_start(self, port: Port, tx: Tx, trigger: str) -> None: ...

    @abc.abstractmethod
    async def enqueue_sample(self, port: Port, tx: Tx, *, aligned: bool, trigger: str) -> None: ...

    @abc.abstractmethod
    async def enqueue_stop(self, port: Port, tx: Tx, cause: StopCause, trigger: str) -> None: ...

    @abc.abstractmethod
    def on_delivered(self, action: str, payload: bytes, tx_key: str | None, reply: Any) -> None:
        """A queued transaction message got its CALLRESULT (before it leaves the queue)."""

    @abc.abstractmethod
    def prepare(self, action: str, payload: bytes, tx_key: str | None) -> dict[str, Any]:
        """The payload to send for a queued message (1.6: the transactionId resolved)."""

    @abc.abstractmethod
    def sample_interval(self) -> int: ...

    @abc.abstractmethod
    def aligned_interval(self) -> int: ...

    @abc.abstractmethod
    def heartbeat_interval(self) -> int: ...

    @abc.abstractmethod
    def set_heartbeat_interval(self, seconds: int) -> None: ...

    @abc.abstractmethod
    def model_to_dict(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def model_from_dict(self, data: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def reboot_model(self) -> None:
        """Apply settings accepted with RebootRequired."""

    @abc.abstractmethod
    def tx_ref(self, tx: Tx) -> str:
        """The transaction id a TxProfile names (1.6: the CSMS's id; 2.0.1: ours)."""

    @abc.abstractmethod
    def status_of(self, port: int) -> str: ...

    @abc.abstractmethod
    def heartbeat_request(self) -> msgspec.Struct: ...

    def on_dropped(self, action: str, tx_key: str | None) -> None:  # noqa: B027 (optional hook)
        """A queued transaction message was given up on (last attempt failed)."""

    def merge_seq(self, counters: dict[str, int]) -> None:  # noqa: B027 (optional hook)
        """2.0.1: fold in the seqNo counters the store kept."""

    def after_boot(self) -> None:  # noqa: B027 (optional hook)
        """Called once per accepted boot, after the StatusNotifications were posted."""

    def connection_timeout(self) -> int:
        """Seconds an accepted id token waits for the cable (0: forever)."""
        return 60

    def call_timeout(self) -> float:
        return self.st.config.call_timeout

    def trigger_for(self, cause: StopCause) -> str:
        """The 2.0.1 triggerReason of a stop with ``cause`` (1.6 ignores it)."""
        return {
            StopCause.LOCAL: "StopAuthorized",
            StopCause.REMOTE: "RemoteStop",
            StopCause.EV_DISCONNECTED: "EVCommunicationLost",
            StopCause.DE_AUTHORIZED: "Deauthorized",
            StopCause.HARD_RESET: "ResetCommand",
            StopCause.SOFT_RESET: "ResetCommand",
            StopCause.UNLOCK_COMMAND: "UnlockCommand",
            StopCause.EV_FULL: "EVDeparted",
            StopCause.ENERGY_LIMIT_REACHED: "EnergyLimitReached",
            StopCause.TIME_LIMIT_REACHED: "TimeLimitReached",
            StopCause.TIMEOUT: "EVConnectTimeout",
        }.get(cause, "AbnormalCondition")

    def composite_periods(
        self, port: Port, start: datetime.datetime, duration: int, unit: str
    ) -> list[dict[str, Any]]:
        """The composite schedule of ``port`` from ``start`` for ``duration`` seconds, as
        chargingSchedulePeriod items in ``unit`` ("A" or "W"): the active limit (profiles,
        capped by the supply) at ``start`` and at every moment a profile's period may change
        (:meth:`ProfileSet.boundaries`, rounded up to whole seconds as startPeriod is), equal
        neighbours merged. Exact: no change between two of those moments is missed."""
        meter = port.meter
        supply_w = meter.supply_max_w(meter.nominal_voltage)
        tx = port.tx
        tx_start = tx.started_at if tx else None
        end = start + datetime.timedelta(seconds=max(duration, 1))
        offsets = [0]
        for moment in port.profiles.boundaries(start, end, tx_start):
            offset = math.ceil((moment - start).total_seconds())
            if offset > offsets[-1] and offset < max(duration, 1):
                offsets.append(offset)
        periods: list[dict[str, Any]] = []
        last: float | None = None
        for offset in offsets:
            limit = port.profiles.limit_w(
                start + datetime.timedelta(seconds=offset),
                voltage=meter.nominal_voltage,
                phases=meter.phases,
                tx_start=tx_start,
                transaction_id=self.tx_ref(tx) if tx else None,
            )
            watts = supply_w if limit is None else min(limit, supply_w)
            value = watts if unit == "W" else watts / (meter.nominal_voltage * meter.phases)
            value = round(value, 1)
            if value != last:
                periods.append({"startPeriod": offset, "limit": value})
                last = value
        return periods

    def password(self) -> str | None:
        """The Basic-auth password (configuration key, else the configured one)."""
        return self.st.config.password

    def retry_policy(self) -> tuple[int, float]:
        """(attempts, interval) for transaction messages."""
        return (3, 60.0)

    def backoff(self) -> tuple[float, float, int] | None:
        """(wait minimum, random range, repeat times) from the configuration, or None."""
        return None

    def ping_interval(self) -> float | None:
        return None

    def register(self, action: str, handler: Callable[[Any, Any], Any]) -> None:
        """Route ``action`` to ``handler``; it may answer a wire-named dict (the session
        validates it against the response schema like a Struct)."""
        self.router.register(action, handler)

    # -- model helpers -----------------------------------------------------------------------------

    def _supply(self) -> AcSupply | DcSupply:
        cfg = self.st.config
        if cfg.supply == "dc":
            return DcSupply(max_power=cfg.max_power_w)
        return AcSupply(phases=cfg.phases, voltage=cfg.voltage, max_current=cfg.max_current)

    def port(self, port_id: int) -> Port:
        try:
            return self.ports[port_id]
        except KeyError:
            raise ActionRefused(f"no connector {port_id}") from None

    def new_battery(self) -> EvBattery:
        rng = self.st.rng
        if self.st.config.supply == "dc":
            return EvBattery(
                capacity_wh=rng.choice((50_000.0, 77_000.0, 100_000.0)),
                soc=round(rng.uniform(10, 50), 1),
                max_power=rng.choice((50_000.0, 100_000.0, 150_000.0)),
                target_soc=80.0 + rng.choice((0.0, 10.0, 20.0)),
            )
        return EvBattery(
            capacity_wh=rng.choice((40_000.0, 60_000.0, 77_000.0)),
            soc=round(rng.uniform(10, 60), 1),
            max_power=rng.choice((7_400.0, 11_000.0, 22_000.0)),
            ac_phases=min(3, self.st.config.phases),
        )

    def measurands(self, names: Sequence[str]) -> list[str]:
        """The configured measurands the meter can compute (others are skipped)."""
        out = [str(m) for m in names if str(m) in SUPPORTED_MEASURANDS]
        return out or ["Energy.Active.Import.Register"]

    def limit_w(self, port: Port) -> float | None:
        now = self.st.now()
        tx = port.tx
        return port.profiles.limit_w(
            now,
            voltage=port.meter.nominal_voltage,
            phases=port.meter.phases,
            tx_start=tx.started_at if tx else None,
            transaction_id=self.tx_ref(tx) if tx else None,
        )

    def advance(self, port: Port) -> None:
        """Integrate the meter up to now."""
        now = self.st.clock()
        seconds = max(0.0, now - port.last_advance)
        port.last_advance = now
        facts = self.facts(port.id)
        drawing = (
            port.tx is not None
            and facts.ev_drawing
            and not facts.evse_suspended
            and facts.fault is None
            and port.meter.battery is not None
        )
        port.meter.advance(seconds, limit_w=self.limit_w(port), drawing=drawing)

    def any_transaction(self) -> bool:
        return any(p.tx is not None for p in self.ports.values())

    def find_tx(self, key: str) -> Port | None:
        for port in self.ports.values():
            if port.tx is not None and port.tx.key == key:
                return port
        return None

    # -- operator and EV actions -----------------------------------------------------------------

    def _event(self, port: Port, event: Event, **kw: Any) -> bool:
        try:
            return self.handle(port.id, event, **kw)
        except InvalidEvent as exc:
            raise ActionRefused(str(exc)) from None

    async def plug(self, port_id: int) -> None:
        port = self.port(port_id)
        self.advance(port)
        due = self._event(port, Event.PLUG_IN)
        port.meter.battery = self.new_battery()
        if due:
            await self.start(port, "CablePluggedIn")
        else:
            await self.st.save()

    async def unplug(self, port_id: int) -> None:
        port = self.port(port_id)
        if not self.facts(port_id).plugged:
            raise ActionRefused(f"no cable is plugged in on connector {port_id}")
        if port.tx is not None and self.stop_on_ev_disconnect():
            await self.stop(port, StopCause.EV_DISCONNECTED, "EVCommunicationLost")
        elif port.tx is not None:
            self.advance(port)
            self.handle(port.id, Event.EV_STOPS_DRAWING)
        self._event(port, Event.UNPLUG)
        port.meter.battery = None
        await self.st.save()

    async def park(self, port_id: int) -> None:
        """An EV drives into the parking bay (a bay sensor detects it; status rule 10). 1.6:
        a fact only, ``Preparing`` (§4.9), no transaction starts without a cable and an id
        tag. 2.0.1 overrides it (TxStartPoint ParkingBayOccupancy)."""
        port = self.port(port_id)
        if self.facts(port_id).parked:
            raise ActionRefused(f"an EV is already in the parking bay of connector {port_id}")
        self._event(port, Event.BAY_OCCUPIED)
        await self.st.save()

    async def leave_bay(self, port_id: int) -> None:
        """The EV drives out of the parking bay (refused while its cable is plugged in). 1.6:
        a fact only, ``Finishing`` turns ``Available`` (§4.9 "the vehicle has left the
        parking bay"). 2.0.1 overrides it (TxStopPoint ParkingBayOccupancy)."""
        port = self.port(port_id)
        if not self.facts(port_id).parked:
            raise ActionRefused(f"no EV is in the parking bay of connector {port_id}")
        self._event(port, Event.BAY_VACATED)
        await self.st.save()

    def stop_on_ev_disconnect(self) -> bool:
        return True

    def _token_matches(self, token: str, other: str | None) -> bool:
        return other is not None and token.casefold() == other.casefold()

    async def present_token(
        self, token: str, port_id: int, *, token_type: str | None = None, remote: bool = False
    ) -> str:
        """An id token at connector ``port_id``: stop its transaction (same token) or
        authorize a new session; the authorization status."""
        port = self.port(port_id)
        tx = port.tx
        if tx is not None and tx.authorized:
            if self._token_matches(token, tx.id_token):
                await self.end_authorization(port, StopCause.LOCAL, "StopAuthorized")
                return "Accepted"
            raise ActionRefused(f"a transaction of another id token runs on {port_id}")
        if tx is None:
            refusal = self.facts_refusal(port_id, Event.AUTHORIZE)
            if refusal is not None:
                raise ActionRefused(refusal)
        # A reservation binds a running transaction still waiting for its id token too (2.0.1
        # TxStartPoint EVConnected on a reserved EVSE, H03 S1 #2): only its holder authorizes it.
        status = "Accepted" if remote and not self.authorize_remote() else None
        reservation, status = await self.claim_reservation(port, token, token_type, status)
        if status is None:
            status = await self.authorize(token, token_type)
        if status != "Accepted":
            return status
        if tx is not None:
            if port.tx is not tx:
                raise ActionRefused(f"the transaction on {port_id} ended meanwhile")
            await self.authorize_transaction(
                port, token, token_type, remote=remote, reservation=reservation
            )
            return "Accepted"
        port.token, port.token_type = token, token_type
        await self.token_accepted(port, reservation, remote=remote)
        return "Accepted"

    async def claim_reservation(
        self, port: Port, token: str, token_type: str | None, status: str | None
    ) -> tuple[Reservation | None, str | None]:
        """The reservation ``token`` would use at ``port``, and its authorization status when
        finding that out asked for it (else ``status`` as given); ``(None, "Invalid")`` when
        the port is reserved for someone else. The port's own reservation is its holder's,
        or of a token of the reservation's group (its parentIdTag / groupIdToken, as the
        authorization says: 1.6 §5.13, 2.0.1 H01.FR.09)."""
        reservation = port.reservation
        if reservation is None or self._token_matches(token, reservation.id_token):
            return reservation, status
        if reservation.parent_id is None:
            return None, "Invalid"
        status, group = await self.authorize_info(token, token_type)
        if status == "Accepted" and not self._token_matches(reservation.parent_id, group):
            return None, "Invalid"
        return reservation, status

    def use_reservation(self, port: Port, reservation: Reservation) -> int | None:
        """``reservation``, claimed at ``port``, is used by the id token just accepted (1.6
        §5.13, 2.0.1 H03.FR.09): it ends without a ReservationStatusUpdate. Its id, or None
        when it ended meanwhile (expired or cancelled while the authorization was asked)."""
        if port.reservation is not reservation:
            return None
        port.reservation = None
        return reservation.id

    async def token_accepted(
        self, port: Port, reservation: Reservation | None, *, remote: bool
    ) -> None:
        """An accepted id token (``port.token``) and no transaction: start one when the cable
        is there too (1.6 §4.1), else wait ConnectionTimeOut for it."""
        due = self._event(port, Event.AUTHORIZE)
        if reservation is not None:
            port.reservation = None
            port.token_reservation = reservation.id
        if not due and remote and self.st.config.auto_plug and not self.facts(port.id).plugged:
            due = self._event(port, Event.PLUG_IN)
            port.meter.battery = self.new_battery()
        if due:
            await self.start(port, "RemoteStart" if remote else "Authorized")
        else:
            port.token_at = self.st.clock()  # the cable has ConnectionTimeOut to arrive
            self.st.wake_timer()
            await self.st.save()

    async def end_authorization(self, port: Port, cause: StopCause, trigger: str) -> None:
        """The running transaction's authorization ends (same id token again, a remote
        stop, an invalid idTokenInfo): 1.6 ends the transaction; 2.0.1 as TxStopPoint says."""
        await self.stop(port, cause, trigger)

    async def authorize_transaction(
        self,
        port: Port,
        token: str,
        token_type: str | None,
        *,
        remote: bool,
        reservation: Reservation | None = None,
    ) -> None:
        """An accepted id token for a transaction running without one (2.0.1 only: started by
        TxStartPoint EVConnected / ParkingBayOccupancy); ``reservation``: the one it uses."""
        raise ActionRefused(f"a transaction already runs on connector {port.id}")

    def authorize_remote(self) -> bool:
        return True

    def facts_refusal(self, port_id: int, event: Event) -> str | None:
        return None

    async def authorize(self, token: str, token_type: str | None = None) -> str:
        """The authorization status of ``token``: local decision, else Authorize."""
        return (await self.authorize_info(token, token_type))[0]

    async def authorize_info(
        self, token: str, token_type: str | None = None
    ) -> tuple[str, str | None]:
        """(status, group / parent id) of ``token``: the local list or cache when the flags
        allow (1.6 §3.5, 2.0.1 C12-C15), else Authorize, else the offline rules."""
        now = self.st.now()
        key = self.token_object(token, token_type)
        decision = self.auth.decide(key, online=self.st.online, now=now, config=self.settings)
        if decision.kind is DecisionKind.AUTHORIZE:
            try:
                info = await self.authorize_online(token, token_type)
            except Exception:  # offline, timeout, CALLERROR: decide as offline
                decision = self.auth.decide(key, online=False, now=now, config=self.settings)
            else:
                self.auth.remember(key, info, now=now, config=self.settings)
                return info.status_at(now), info.group_id
        known = decision.info
        group = None if known is None else known.group_id
        if decision.kind is DecisionKind.ACCEPT:
            return "Accepted", group
        return (known.status_at(now) if known else "Invalid"), group

    def token_object(self, token: str, token_type: str | None) -> Any:
        return token

    async def start(self, port: Port, trigger: str) -> None:
        """Start a transaction on ``port`` (cable and id token are there)."""
        self.advance(port)
        tx = Tx(
            key=str(uuid.uuid4()),
            id_token=port.token,
            token_type=port.token_type,
            started_at=self.st.now(),
            meter_start=port.meter.meter_wh,
            remote_start_id=port.remote_start_id,
            reservation_id=port.token_reservation,
            authorized=port.token is not None,
            # an id token waits EVConnectionTimeOut for the cable; an EV in the bay (TxStartPoint
            # ParkingBayOccupancy) needs no deadline: the transaction ends when it leaves
            awaiting_cable=port.token is not None and not self.facts(port.id).plugged,
            last_periodic=self.st.clock(),
        )
        port.token = port.token_type = None
        port.remote_start_id = None
        port.token_reservation = None
        port.tx = tx
        self.st.hold_posts()  # the statuses follow the start message
        try:
            self.handle(port.id, Event.TRANSACTION_STARTED)
            if tx.authorized and self.ev_accepts(port):
                self.handle(port.id, Event.EV_STARTS_DRAWING)
            await self.enqueue_start(port, tx, trigger)
        finally:
            self.st.release_posts()
        self.st.wake_timer()
        self.st.changed()

    def ev_accepts(self, port: Port) -> bool:
        """A plugged-in EV whose battery takes energy (it draws once the power path closes)."""
        battery = port.meter.battery
        return self.facts(port.id).plugged and battery is not None and battery.acceptance() > 0

    async def stop(self, port: Port, cause: StopCause, trigger: str) -> None:
        """End the transaction on ``port`` with ``cause``."""
        tx = port.tx
        if tx is None:
            raise ActionRefused(f"no transaction runs on connector {port.id}")
        self.advance(port)
        port.tx = None
        port.profiles.end_transaction(self.tx_ref(tx))
        for pid in [p for p in port.raw_profiles if p not in {x.id for x in port.profiles}]:
            del port.raw_profiles[pid]
        self.st.hold_posts()
        try:
            self.handle(port.id, Event.TRANSACTION_STOPPED)
            await self.enqueue_stop(port, tx, cause, trigger)
        finally:
            self.st.release_posts()
        port.meter.advance(0.0, drawing=False)  # power reads 0 from now on
        self.st.changed()

    async def stop_all(self, cause: StopCause, trigger: str) -> None:
        for port in self.ports.values():
            if port.tx is not None:
                await self.stop(port, cause, trigger)

    async def fault(self, port_id: int, error_code: str) -> None:
        if port_id != 0:
            port = self.port(port_id)
            self.advance(port)
        try:
            self.handle(port_id, Event.FAULT_RAISED, error_code=error_code)
        except (InvalidEvent, ValueError) as exc:
            raise ActionRefused(str(exc)) from None
        await self.st.save()

    async def clear_fault(self, port_id: int) -> None:
        if port_id != 0:
            port = self.port(port_id)
            port.last_advance = self.st.clock()
        try:
            self.handle(port_id, Event.FAULT_CLEARED)
        except InvalidEvent as exc:
            raise ActionRefused(str(exc)) from None
        await self.st.save()

    async def ev_suspend(self, port_id: int) -> None:
        port = self.port(port_id)
        self.advance(port)
        self._event(port, Event.EV_STOPS_DRAWING)
        await self.st.save()

    async def ev_resume(self, port_id: int) -> None:
        port = self.port(port_id)
        self.advance(port)
        self._event(port, Event.EV_STARTS_DRAWING)
        await self.st.save()

    # -- reservations ------------------------------------------------------------------------------

    def reserve(self, port: Port, reservation: Reservation) -> str:
        """ReserveNow on ``port``: Accepted, Occupied, Faulted or Unavailable."""
        facts = self.facts(port.id)
        if port.reservation is not None and port.reservation.id == reservation.id:
            port.reservation = reservation  # same id: replaces (1.6 §5.13, H01.FR.02)
            return "Accepted"
        if facts.fault is not None:
            return "Faulted"
        if facts.inoperative:
            return "Unavailable"
        if facts.transaction or facts.plugged or facts.parked or facts.authorized or facts.reserved:
            return "Occupied"
        if not self.may_reserve(port, reservation):
            return "Occupied"
        self.cancel_reservation(reservation.id)  # the same id elsewhere: replaced (H01.FR.02)
        self.handle(port.id, Event.RESERVE)
        port.reservation = reservation
        self.st.wake_timer()
        return "Accepted"

    def may_reserve(self, port: Port, reservation: Reservation) -> bool:
        """Whether ``port``, free, may take ``reservation`` (2.0.1: not when the reservations
        of an unspecified EVSE need it, H01); Occupied otherwise."""
        return True

    def cancel_reservation(self, reservation_id: int) -> bool:
        """End the reservation ``reservation_id`` (its connector turns Available); False
        when there is none."""
        for port in self.ports.values():
            if port.reservation is not None and port.reservation.id == reservation_id:
                port.reservation = None
                if self.facts(port.id).reserved:
                    self.handle(port.id, Event.RESERVATION_ENDED)
                return True
        return False

    def post_idle_aligned(self, port: Port) -> None:  # noqa: B027 (optional hook)
        """A clock-aligned sample of a connector without a transaction (not queued)."""

    def reservation_expired(self, port: Port, reservation: Reservation) -> None:  # noqa: B027 (optional hook)
        """Hook: a reservation expired (2.0.1 sends ReservationStatusUpdate)."""

    # -- the CSMS handlers' shared steps -----------------------------------------------------------

    def post_statuses(self, notes: Iterable[Any]) -> None:
        """Post the StatusNotifications of a status change; drop the reservations it ended
        (an availability change cancels a reservation, 1.6 rule 3)."""
        for note in notes:
            self.st.post("StatusNotification", note)
        for port in self.ports.values():
            if port.reservation is not None and not self.facts(port.id).reserved:
                port.reservation = None

    def _may_start(self, port: Port) -> bool:
        """Free for a remote start: no transaction (and the connector takes an id token), or
        a 2.0.1 transaction still waiting for its authorization (F02)."""
        if port.tx is not None:
            return not port.tx.authorized
        return self.facts_refusal(port.id, Event.AUTHORIZE) is None

    def remote_start_port(self, port_id: int | None, profile: Any, tx_profile: Any) -> Port | None:
        """The port a remote start goes to (without ``port_id``, the first free one), with the
        ``profile`` it brought installed; None: Rejected (no such port, not free, or a profile
        whose purpose is not ``tx_profile`` or that cannot be evaluated: 1.6 §5.11, F01.FR.12)."""
        if port_id is None:
            free = [p for p in self.ports.values() if self._may_start(p)]
            if not free:
                return None
            port = free[0]
        elif port_id not in self.ports or not self._may_start(self.ports[port_id]):
            return None
        else:
            port = self.ports[port_id]
        if profile is not None:
            if profile.charging_profile_purpose is not tx_profile:
                return None
            try:
                self.install_profile(port, msgspec.to_builtins(profile))
            except (ValueError, msgspec.ValidationError):
                return None
        return port

    async def reboot_when_sent(self, reason: str) -> None:
        """Reboot with ``reason`` once the queue is empty (2 s at most)."""
        with contextlib.suppress(TimeoutError):
            await self.st.wait_for_state(lambda s: s["queued"] == 0, 2.0)
        self.st.request_reboot(reason)

    async def answer_reserve(self, port: Port, reservation: Reservation) -> dict[str, Any]:
        """ReserveNow's answer, the reservation (if taken) saved."""
        status = self.reserve(port, reservation)
        await self.st.save()
        return {"status": status}

    async def answer_cancel_reservation(self, reservation_id: int) -> dict[str, Any]:
        """CancelReservation's answer: Rejected for an unknown reservation."""
        cancelled = self.cancel_reservation(reservation_id)
        await self.st.save()
        return {"status": "Accepted" if cancelled else "Rejected"}

    async def answer_set_profile(
        self, port_id: int, profile: msgspec.Struct, invalid: tuple[type[Exception], ...]
    ) -> dict[str, Any]:
        """Install a checked SetChargingProfile ``profile`` on ``port_id`` (0: on every port);
        Rejected when it raises one of ``invalid`` (it cannot be evaluated)."""
        raw = msgspec.to_builtins(profile)
        targets = list(self.ports.values()) if port_id == 0 else [self.ports[port_id]]
        try:
            for port in targets:
                self.install_profile(port, raw)
        except invalid:
            return {"status": "Rejected"}
        await self.st.save()
        self.st.wake_timer()
        return {"status": "Accepted"}

    async def answer_clear_profiles(
        self,
        port_id: int | None,
        *,
        profile_id: int | None,
        purpose: Purpose | None,
        stack_level: int | None,
    ) -> dict[str, Any]:
        """ClearChargingProfile on ``port_id`` (None or 0: every port): Unknown when no
        profile matched."""
        removed = 0
        for port in self.ports.values():
            if port_id not in (None, 0) and port.id != port_id:
                continue
            ids = port.profiles.clear(
                profile_id=profile_id, purpose=purpose, stack_level=stack_level
            )
            for pid in ids:
                port.raw_profiles.pop(pid, None)
            removed += len(ids)
        await self.st.save()
        self.st.wake_timer()
        return {"status": "Accepted" if removed else "Unknown"}

    def firmware_signer(self, certificate: str | None) -> x509.Certificate:
        """The checked signing certificate of a secure firmware update, else
        :class:`~.certificates.CertificateError` (whitepaper L01.FR.23/24, 2.0.1 L01.FR.21/22
        secondary source: :func:`.firmware.check_signing_certificate` against the installed
        ManufacturerRootCertificate roots; none given: "could not be verified")."""
        if not certificate:
            raise CertificateError("the request has no signing certificate")
        anchors = self.certs.anchors([MANUFACTURER_ROOT])
        return check_signing_certificate(certificate, anchors, self.st.now())

    def supports_secure_firmware(self) -> bool:
        """The station can check firmware signatures: a ManufacturerRootCertificate is
        installed (2.0.1: such a station refuses an unsigned update, OCTT TC_L_18_CS)."""
        return bool(self.certs.anchors([MANUFACTURER_ROOT]))

    def start_firmware_update(
        self, job: FirmwareJob, report: Callable[[str], Awaitable[None]]
    ) -> bool:
        """Run ``job`` in the background, cancelling the update still running (whitepaper
        L01.FR.26, 2.0.1 L01.FR.24 secondary source: AcceptedCanceled); True when one was."""
        running = self._firmware_task
        cancelled = running is not None and not running.done()
        if running is not None and cancelled:
            running.cancel()
        self._firmware_task = self.st.spawn(self.update_firmware(job, report))
        return cancelled

    def start_signed_update(
        self, request: Any, signer: Any, report: Callable[[str], Awaitable[None]]
    ) -> dict[str, Any]:
        """Start a 1.6 SignedUpdateFirmware or a 2.0.1 UpdateFirmware (the same fields:
        ``firmware.location`` / ``retrieveDateTime`` / ``installDateTime`` / ``signature``,
        ``retries``, ``retryInterval``) whose signing certificate was checked; ``signer`` None:
        an unsigned 2.0.1 update (L02). The answer: Accepted, or AcceptedCanceled when it
        replaced one."""
        firmware = request.firmware
        job = FirmwareJob(
            location=firmware.location,
            retrieve=firmware.retrieve_date_time,
            retries=_unset_is_none(request.retries),
            retry_interval=_unset_is_none(request.retry_interval),
            signer=signer,
            signature=_unset_is_none(firmware.signature),
            install=_unset_is_none(firmware.install_date_time),
        )
        cancelled = self.start_firmware_update(job, report)
        return {"status": "AcceptedCanceled" if cancelled else "Accepted"}

    async def update_firmware(
        self, job: FirmwareJob, report: Callable[[str], Awaitable[None]]
    ) -> None:
        """Firmware update (1.6 §5.19, whitepaper "Secure Firmware Update", 2.0.1 L01/L02):
        DownloadScheduled until ``job.retrieve`` (whitepaper L01.FR.13; 2.0.1 L01.FR.13 /
        L02.FR.07 secondary source: "retrieveDateTime is in the future"), Downloading,
        Downloaded (or DownloadFailed), for a secure update SignatureVerified (or
        InvalidSignature and the security event InvalidFirmwareSignature, L01.FR.03),
        InstallScheduled until ``job.install`` (L01.FR.16, 2.0.1 L02.FR.10 secondary source),
        then :meth:`_install_firmware`. Each status is passed to ``report``; a plain 1.6
        update (``job.legacy``) has no scheduled statuses and waits silently.

        ``StationConfig.firmware_download`` "fetch": an http(s) location is downloaded for
        real (:func:`.firmware.download`, ``retries`` / ``retryInterval``) and a secure
        update's signature checked over the file (L01.FR.04); "simulate": each step takes
        ``firmware_step_seconds`` and, the file never being there, no SignatureVerified is
        claimed (a signature missing entirely is still InvalidSignature)."""
        step = self.st.config.firmware_step_seconds
        await self._firmware_wait(job.retrieve, None if job.legacy else "DownloadScheduled", report)
        await report("Downloading")
        digest: bytes | None = None
        if self.st.config.firmware_download == FETCH:
            try:
                digest = await self._fetch_firmware(job)
            except FirmwareError:
                await report("DownloadFailed")
                return
        else:
            await asyncio.sleep(step)
        await report("Downloaded")
        if job.signer is not None:
            try:
                verified = _check_signature(job.signer, digest, job.signature)
            except FirmwareError as exc:
                await report("InvalidSignature")
                await self.security_event("InvalidFirmwareSignature", str(exc))
                return
            if verified:
                await report("SignatureVerified")
        await self._firmware_wait(job.install, None if job.legacy else "InstallScheduled", report)
        await asyncio.sleep(step)
        await self._install_firmware(digest, report)

    async def _firmware_wait(
        self,
        until: datetime.datetime | None,
        status: str | None,
        report: Callable[[str], Awaitable[None]],
    ) -> None:
        """Wait for ``until`` (retrieve or install time), first reporting ``status`` when
        the version has that status and the time is at least :data:`SCHEDULE_MARGIN` ahead
        (a time set to "now" by a CSMS is a hair ahead of our millisecond clock)."""
        if until is None:
            return
        delay = (until - self.st.now()).total_seconds()
        if delay <= 0:
            return
        if status is not None and delay >= SCHEDULE_MARGIN:
            await report(status)
        await asyncio.sleep(delay)

    async def _install_firmware(
        self, digest: bytes | None, report: Callable[[str], Awaitable[None]]
    ) -> None:
        """Installing, Installed, the security event FirmwareUpdated, a reboot.

        Installing waits for the running transactions to end (whitepaper L01.FR.06/18, 2.0.1
        L01.FR.06 / L02.FR.03 secondary source, 1.6 errata v4.0 §3.49 "RECOMMENDED"): the
        emulated charger cannot charge while it installs and reboots. Meanwhile every port
        not in use is made Unavailable, and so is each one that becomes free, until the
        firmware is installed (L01.FR.07/19, L02.FR.04; :meth:`_hold_free_ports`); the held
        ports are given back before the reboot, also when a new update cancels this one.

        FirmwareUpdated (a critical event of the whitepaper's §8 and 2.0.1's security event
        list; 2.0.1 L01.FR.31, secondary source: "after L01.FR.28", i.e. with Installed) is
        queued with guaranteed delivery; the reboot waits (2 s at most) until it is sent,
        and with it, the messages being sent in order, Installed and the status changes (an
        offline station sends the event after the reboot). The BootNotification keeps
        ``StationConfig.firmware_version``: no request carries the new version, and the
        emulated image has none to read."""
        step = self.st.config.firmware_step_seconds
        try:
            while self.any_transaction():
                await self.st.wait_for_state(self._firmware_wait_over(self._hold_free_ports()), 1e9)
            await report("Installing")
            await asyncio.sleep(step)
            await report("Installed")
        finally:
            if self.firmware_held:
                self._release_held_ports()
                await self.st.save()
        info = "no file (simulated update)" if digest is None else f"SHA-256 {digest.hex()}"
        await self.security_event("FirmwareUpdated", f"firmware installed: {info}")
        await self.reboot_when_sent("FirmwareUpdate")

    def _free_ports(self) -> set[int]:
        """Ports a firmware wait makes Unavailable (L01.FR.07): not Unavailable yet nor
        about to be, and not promised to a reservation (reserved, or 2.0.1 held for one of
        an unspecified EVSE: the reservation is honoured; the port is taken once it ends).
        A port in a session is included: its change is scheduled for the session's end."""
        free = set()
        for port in self.ports.values():
            facts = self.facts(port.id)
            if facts.inoperative or facts.scheduled is not None:
                continue
            if port.reservation is not None or facts.reserved or facts.held:
                continue
            free.add(port.id)
        return free

    def _firmware_wait_over(self, held: set[int]) -> Callable[[Any], bool]:
        """Wake the installation wait when no transaction runs or a port not just ``held``
        became free."""
        return lambda _: not self.any_transaction() or bool(self._free_ports() - held)

    def _hold_free_ports(self) -> set[int]:
        """Hold the free ports; their ids (the wait does not wake for these again, so a
        port the hold could not take never makes it spin)."""
        free = self._free_ports()
        for port_id in sorted(free):
            self.firmware_held.add(port_id)
            self.set_firmware_hold(port_id, held=True)
        return free

    def _release_held_ports(self) -> None:
        for port_id in sorted(self.firmware_held):
            self.set_firmware_hold(port_id, held=False)
        self.firmware_held.clear()

    @abc.abstractmethod
    def set_firmware_hold(self, port_id: int, *, held: bool) -> None:
        """Make port ``port_id`` Unavailable for a pending firmware installation (``held``)
        or give it back, posting the StatusNotifications (1.6: the connector's own
        availability; 2.0.1: the EVSE's connector's), the CSMS's station-wide choice kept."""

    async def _fetch_firmware(self, job: FirmwareJob) -> bytes:
        """The SHA-256 of the downloaded file; :class:`.firmware.FirmwareError` when every
        attempt failed (each failure is logged)."""
        attempts, interval = attempts_and_interval(job.retries, job.retry_interval)

        async def failed(attempt: int, error: FirmwareError) -> None:
            self.st.log.info(
                "firmware download failed", attempt=attempt, attempts=attempts, error=str(error)
            )

        digest, size = await download(
            job.location, attempts=attempts, interval=interval, on_failure=failed
        )
        self.st.log.info("firmware downloaded", size=size, sha256=digest.hex())
        return digest

    # -- the timer ---------------------------------------------------------------------------------

    async def on_timer(self) -> float | None:
        """Do what is due now; the runtime clock time of the next thing due (None: nothing)."""
        clock = self.st.clock()
        wall = self.st.now()
        due: list[float] = []
        interval = self.sample_interval()
        timeout = self.connection_timeout()
        for port in self.ports.values():
            waiting = (port.tx is None and port.token is not None) or (
                port.tx is not None and port.tx.awaiting_cable
            )
            if waiting and timeout > 0:
                if clock - port.token_at >= timeout:
                    await self.cable_timeout(port)
                else:
                    due.append(port.token_at + timeout)
            reservation = port.reservation
            if reservation is not None:
                if wall >= reservation.expires_at:
                    self.cancel_reservation(reservation.id)
                    self.reservation_expired(port, reservation)
                    await self.st.save()
                else:
                    due.append(clock + (reservation.expires_at - wall).total_seconds())
            tx = port.tx
            if tx is None:
                continue
            await self._check_drawing(port)
            if interval > 0:
                if clock - tx.last_periodic >= interval:
                    tx.last_periodic = clock
                    self.advance(port)
                    await self.enqueue_sample(port, tx, aligned=False, trigger="MeterValuePeriodic")
                due.append(tx.last_periodic + interval)
            due.append(clock + MAX_TIMER_SLEEP)
        aligned = self.aligned_interval()
        if aligned > 0:
            if self._next_aligned is None:
                self._next_aligned = next_clock_aligned(wall, aligned)
            if wall >= self._next_aligned:
                self._next_aligned = next_clock_aligned(wall, aligned)
                for port in self.ports.values():
                    self.advance(port)
                    if port.tx is not None:
                        await self.enqueue_sample(
                            port, port.tx, aligned=True, trigger="MeterValueClock"
                        )
                    else:
                        self.post_idle_aligned(port)
            due.append(clock + (self._next_aligned - wall).total_seconds())
        else:
            self._next_aligned = None
        renewal = self.certificate_timer(clock, wall)
        if renewal is not None:
            due.append(renewal)
        return min(due) if due else None

    async def cable_timeout(self, port: Port) -> None:
        """1.6 ConnectionTimeOut / 2.0.1 EVConnectionTimeOut: no cable came. The accepted id
        token is forgotten (2.0.1 C01.FR.26); a transaction its authorization started ends
        with stoppedReason Timeout, triggerReason EVConnectTimeout (E03.FR.05)."""
        if port.tx is not None:
            await self.stop(port, StopCause.TIMEOUT, "EVConnectTimeout")
            return
        port.token = port.token_type = None
        port.remote_start_id = port.token_reservation = None
        if self.facts(port.id).authorized:
            self.handle(port.id, Event.AUTHORIZATION_ENDED)
        await self.st.save()

    async def _check_drawing(self, port: Port) -> None:
        """The EV reaching its target SoC stops drawing; a profile limit of 0 suspends."""
        facts = self.facts(port.id)
        self.advance(port)
        limit = self.limit_w(port)
        if limit is not None and limit <= 0 and not facts.evse_suspended:
            self.handle(port.id, Event.EVSE_SUSPENDS)
        elif (limit is None or limit > 0) and facts.evse_suspended:
            self.handle(port.id, Event.EVSE_RESUMES)
        battery = port.meter.battery
        if facts.ev_drawing and battery is not None and battery.acceptance() <= 0:
            self.handle(port.id, Event.EV_STOPS_DRAWING)

    # -- persistence -------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        ports = {}
        for port in self.ports.values():
            battery = port.meter.battery
            ports[str(port.id)] = {
                "facts": dataclasses.asdict(self.facts(port.id)),
                "register_wh": port.meter.register_wh,
                "battery": None if battery is None else dataclasses.asdict(battery),
                "tx": None if port.tx is None else port.tx.to_dict(),
                "reservation": None if port.reservation is None else port.reservation.to_dict(),
                "profiles": list(port.raw_profiles.values()),
            }
        return {
            "ocpp": self.version,
            "ports": ports,
            "auth": self.auth.to_dict(),
            "model": self.model_to_dict(),
            "firmware_status": self.firmware_status,
            "firmware_held": sorted(self.firmware_held),
        }

    def load_dict(self, data: dict[str, Any]) -> list[tuple[Port, Tx]]:
        """Restore from :meth:`to_dict`; returns the transactions that were running."""
        self.model_from_dict(data.get("model", {}))
        self.auth.load_dict(data.get("auth", {}))
        self.firmware_status = str(data.get("firmware_status", "Idle"))
        running: list[tuple[Port, Tx]] = []
        for key, item in data.get("ports", {}).items():
            port = self.ports.get(int(key))
            if port is None:
                continue
            port.meter.register_wh = float(item.get("register_wh", 0.0))
            battery = item.get("battery")
            if battery is not None:
                battery["taper"] = tuple(tuple(p) for p in battery["taper"])
                port.meter.battery = EvBattery(**battery)
            if item.get("reservation"):
                port.reservation = Reservation.from_dict(item["reservation"])
            for raw in item.get("profiles", []):
                self.install_profile(port, raw)
            facts = Facts(**item.get("facts", {}))
            tx = Tx.from_dict(item["tx"]) if item.get("tx") else None
            if tx is not None:
                running.append((port, tx))
            self.restore_facts(
                port,
                dataclasses.replace(
                    facts,
                    transaction=False,
                    authorized=False,
                    ev_drawing=False,
                    finishing=(facts.plugged or facts.parked) and tx is not None,
                    scheduled=None,
                ),
            )
        # the update that held these ports died with the process: give them back
        self.firmware_held = {int(p) for p in data.get("firmware_held", []) if int(p) in self.ports}
        self._release_held_ports()
        return running

    @abc.abstractmethod
    def restore_facts(self, port: Port, facts: Facts) -> None: ...

    @abc.abstractmethod
    def install_profile(self, port: Port, raw: dict[str, Any]) -> None: ...

    async def recover(self, running: list[tuple[Port, Tx]]) -> None:
        """Transactions that were running when the process died end with PowerLoss.

        We end rather than resume them (2.1 E17 resumes): an emulator killed mid-session
        models a charger that lost power, and 1.6 / 2.0.1 have no resume. The meter reading
        is the last one persisted (the energy while the process was dead is unknown), so
        the CSMS sees no energy that was never measured.
        """
        for port, tx in running:
            port.last_advance = self.st.clock()
            port.profiles.end_transaction(self.tx_ref(tx))
            port.prune_raw_profiles()
            await self.enqueue_stop(port, tx, StopCause.POWER_LOSS, "AbnormalCondition")

    # -- security events (A04) and certificates (A02/A03, M03-M05; 1.6 Security whitepaper) -----
    #: SecurityEventNotification type for a refused CertificateSigned (per version).
    invalid_certificate_event = "InvalidChargingStationCertificate"
    #: The version's typed SecurityEventNotification request.
    security_event_request: type[msgspec.Struct]
    #: Certificate use -> the installed root types its chain must lead to (A02.FR.06).
    certificate_anchors: Mapping[str, tuple[str, ...]]
    certs: CertificateStore

    async def security_event(self, event_type: str, tech_info: str | None = None) -> None:
        """Report a security event: the one way the station sends SecurityEventNotification.

        A04.FR.01/02 (2.0.1 and the 1.6 Security whitepaper): the event is *enqueued* in the
        persistent store (:func:`~.delivery.is_queued_message`), online or not, so it is
        delivered after an offline period or a restart, FIFO, at least once; returns after
        the commit. ``type`` is cut to 50 characters, ``techInfo`` to 255 (the schemas')."""
        fields: dict[str, Any] = {"type": event_type[:50], "timestamp": self.st.now()}
        if tech_info:
            fields["tech_info"] = tech_info[:255]
        request = self.security_event_request(**fields)
        await self.st.enqueue("SecurityEventNotification", request, tx_key=None)

    def raise_security_event(self, event_type: str, tech_info: str | None = None) -> None:
        """:meth:`security_event` from code that cannot await (in the background)."""
        self.st.spawn(self.security_event(event_type, tech_info))

    @abc.abstractmethod
    def csr_organization(self) -> str:
        """The O of a CSR (A02.FR.13: 1.6 CpoName, 2.0.1 SecurityCtrlr.OrganizationName)."""

    @abc.abstractmethod
    def cert_signing_retry(self) -> tuple[float, int]:
        """(CertSigningWaitMinimum seconds, CertSigningRepeatTimes) from the configuration."""

    def sign_request(self, csr: str, use: str) -> dict[str, Any]:
        """The SignCertificate payload (2.0.1 adds ``certificateType``)."""
        return {"csr": csr}

    def start_certificate_signing(self, use: str = CS_USE) -> None:
        """A02 (the CSMS's trigger) / A03 (renewal): a fresh key pair and SignCertificate.

        A flow of ``use`` already waiting for its certificate is replaced: a new trigger
        means a new key pair (A02.FR.02) and starts the repetitions again (A02.FR.19 stops
        them "until triggered again")."""
        old = self._signing.pop(use, None)
        if old is not None:
            old.cancel()
        self._signing[use] = self.st.spawn(self._signing_flow(use))

    async def _signing_flow(self, use: str) -> None:
        """Send the CSR; while no CertificateSigned installs a certificate, send the same CSR
        again after CertSigningWaitMinimum, doubling the wait each time, at most
        CertSigningRepeatTimes times (A02.FR.17-19, A03.FR.17-19). The same CSR, so a
        certificate the CA signed late for an earlier transmission still fits the pending
        key. A SignCertificate.conf Rejected ends the flow (A02.FR.12: the CSMS cannot
        process it; retrying would not change that); an unanswered or offline attempt counts
        as one that got no certificate.

        CN = the serial number, else the station id (A00.FR.405); O = :meth:`csr_organization`.
        The private key stays in :attr:`certs` (A02.FR.05)."""
        me = asyncio.current_task()
        try:
            await asyncio.sleep(0.05)  # the .conf of the triggering CALL goes out first
            common_name = self.st.config.serial_number or self.st.station_id
            csr = self.certs.make_csr(common_name, self.csr_organization(), use)
            await self.st.save()
            wait, repeats = self.cert_signing_retry()
            for attempt in range(repeats + 1):
                if attempt:
                    self.st.log.info("no CertificateSigned: SignCertificate again", use=use)
                if await self._request_signature(csr, use) == "Rejected":
                    return
                await asyncio.sleep(wait)
                if self.certs.slot(use).pending_csr != csr:
                    return  # installed (or replaced) meanwhile
                wait *= 2
            self.st.log.warning("no CertificateSigned after the repetitions", use=use)
        finally:
            if self._signing.get(use) is me:
                del self._signing[use]
                self.st.wake_timer()  # an A03 renewal that got nothing is retried later

    async def _request_signature(self, csr: str, use: str) -> str | None:
        """One SignCertificate; its status, or None when it got no answer."""
        from ocppkit.station.station import Offline

        try:
            reply = await self.st.request(
                "SignCertificate", self.sign_request(csr, use), while_pending=True
            )
        except (Offline, CallErrorReceived, CallTimeoutError, PayloadError, SessionClosedError):
            return None
        return str(reply.status)

    def certificate_timer(self, clock: float, wall: datetime.datetime) -> float | None:
        """A03.FR.02: the charging-station certificate expires within
        ``StationConfig.certificate_renewal_margin`` (the spec's "one month" by default):
        start SignCertificate by ourselves. One flow at a time per use: none starts while one
        of ``CS_USE`` (ours or a trigger's) is waiting for its certificate. A flow that ended
        without a certificate (its repetitions, A02.FR.19, or a Rejected SignCertificate)
        starts again by itself after :func:`.certificates.renewal_retry_delay` (the doubling
        continued, at most daily), each time with a new key pair, as long as the same
        certificate is about to expire; a new certificate starts the count again. Returns the
        runtime clock time this is next due (None: nothing to wait for)."""
        expires = self.certs.expires_at(CS_USE)
        if expires is None:
            return None
        renew_at = expires - datetime.timedelta(seconds=self.st.config.certificate_renewal_margin)
        if wall < renew_at:
            return clock + (renew_at - wall).total_seconds()
        if CS_USE in self._signing:
            return None  # the flow's end wakes the timer
        if self._renewal_started_for != expires:
            self._renewal_started_for = expires
            self._renewal_failures, self._renewal_retry_at = 0, None
            self.st.log.info("station certificate due for renewal", expires=expires.isoformat())
            self.start_certificate_signing(CS_USE)
            return None
        if self._renewal_retry_at is None:
            wait, repeats = self.cert_signing_retry()
            delay = renewal_retry_delay(self._renewal_failures, wait, repeats, self.st.rng)
            self._renewal_failures += 1
            self._renewal_retry_at = wall + datetime.timedelta(seconds=delay)
            self.st.log.warning("certificate renewal got no certificate", retry_in=delay)
        if wall < self._renewal_retry_at:
            return clock + (self._renewal_retry_at - wall).total_seconds()
        self._renewal_retry_at = None
        self.st.log.info("station certificate renewal again", expires=expires.isoformat())
        self.start_certificate_signing(CS_USE)
        return None

    async def _certificate_signed(self, chain: str, use: str = CS_USE) -> dict[str, Any]:
        """A02/A03 CertificateSigned: Accepted when the chain is for the pending key of
        ``use``, within its validity period and leads to an installed root of the use's type
        (A02.FR.06, :meth:`.certificates.CertificateStore.accept_signed`); else the
        certificate is discarded, a security event raised (A02.FR.07; 1.6
        InvalidChargePointCertificate, 2.0.1 InvalidChargingStationCertificate) and the
        answer is Rejected. The event is committed to the queue before the answer. An
        accepted charging-station certificate is switched to by reconnecting the TLS
        connection (A02.FR.08 / A03.FR.08, errata 2025-01:
        :meth:`.station.Station.switch_client_certificate`)."""
        anchors = self.certificate_anchors.get(use, ())
        try:
            self.certs.accept_signed(chain, self.st.now(), anchors=anchors, use=use)
        except CertificateError as exc:
            await self.security_event(self.invalid_certificate_event, str(exc))
            return {"status": "Rejected"}
        flow = self._signing.pop(use, None)
        if flow is not None:
            flow.cancel()
        await self.st.save()
        self.st.wake_timer()  # the renewal time (A03) follows the new certificate
        if use == CS_USE:  # A02.FR.08 / A03.FR.08: reconnect with it (after this answer)
            self.st.switch_client_certificate()
        return {"status": "Accepted"}

    def certificate_store_max(self) -> int | None:
        """Most roots the store holds (1.6 CertificateStoreMaxLength, 2.0.1 the maxLimit of
        SecurityCtrlr.CertificateEntries); None: no limit."""
        return None

    def additional_root_certificate_check(self) -> bool:
        """1.6 / 2.0.1 ``AdditionalRootCertificateCheck``."""
        return False

    def certificates_changed(self) -> None:  # noqa: B027 (optional hook)
        """The installed roots changed (2.0.1 keeps SecurityCtrlr.CertificateEntries)."""

    async def _install_certificate(self, certificate_type: str, pem: str) -> dict[str, Any]:
        """M05: Accepted (stored); Rejected for a certificate that is invalid or incorrect
        (M05.FR.06: does not parse, outside its validity period, not a CA), one that would
        overfill the store (1.6 M05.FR.03, :meth:`certificate_store_max`), or, with
        ``AdditionalRootCertificateCheck``, a CSMS root not signed by the installed one it
        replaces (M05.FR.10; the old one stays as the fallback until the next connection,
        M05.FR.11/12)."""
        check = self.additional_root_certificate_check() and certificate_type in CSMS_ROOT_TYPES
        try:
            self.certs.install(
                certificate_type,
                pem,
                self.st.now(),
                max_entries=self.certificate_store_max(),
                replace_signed=check,
            )
        except CertificateError as exc:
            self.st.log.info("InstallCertificate refused", reason=str(exc))
            return {"status": "Rejected"}
        self.certificates_changed()
        await self.st.save()
        return {"status": "Accepted"}

    def confirm_root_certificates(self) -> None:
        """M05.FR.12: connected (and booted) after a CSMS root was replaced, the server
        certificate verified by the new root without the fallback
        (:attr:`.station.Station.new_root_verified`, :meth:`.station.Station._dial`): the
        fallback root goes. A connection the fallback verified (M05.FR.13), or one without
        TLS, keeps it."""
        if not self.st.new_root_verified:
            return
        if self.certs.drop_fallbacks():
            self.certificates_changed()
            self.st.spawn(self.st.save())

    async def _delete_certificate(self, hash_data: Any) -> dict[str, Any]:
        """M04: Accepted, NotFound, or Failed for the station's own certificate (M04.FR.05)."""
        status = self.certs.delete(msgspec.to_builtins(hash_data))
        if status == "Accepted":
            self.certificates_changed()
            await self.st.save()
        return {"status": status}


def _unset_is_none(value: Any) -> Any:
    return None if value is msgspec.UNSET else value
