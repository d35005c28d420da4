"""The station runtime: one emulated charging station over a real WebSocket connection.

Why: the pure modules of this package say *what* a station does; this one does it, over
time and a network that fails: it connects with the spec's back-off, boots, sends
heartbeats, samples meters, delivers its transaction messages from the persistent queue, and
answers the CSMS, until :meth:`Station.stop`. One :class:`Station` per station id; a fleet
runs thousands in one event loop over one shared :class:`~.store.StationStore`.

Theory of operation
-------------------
:meth:`Station.run` restores the state blob from the store (a transaction found running
is ended with reason PowerLoss, :meth:`.behaviour.Behaviour.recover`; :meth:`Station.restore`,
which also refuses security profile 3 with no client certificate, neither configured nor in
the certificate store, :class:`StationConfigError`) and then loops:

1. **connect** to ``csms_url + "/" + station_id`` offering the configured version (Basic
   auth header for profiles 1-2, TLS context for ``wss://``, client certificate for 3; the
   TLS context comes from the certificate store, :meth:`Station._ssl`);
   a 2.0.1 station dials the network profile slots of ``NetworkConfigurationPriority``
   instead, switching slots after ``NetworkProfileConnectionAttempts`` failed attempts
   (B10, :mod:`.network_profiles`; the configured URL is slot 0's);
   a failed attempt or a lost connection waits :class:`~.backoff.Backoff` (2.0.1 Part 4
   §5.3: minimum x 2^n + U(0, range)) before the next one, a reboot (Reset, firmware) does
   not wait, nor does the switch to a new station certificate (A02.FR.08 / A03.FR.08,
   :meth:`Station.switch_client_certificate`); while a new station certificate has not
   connected, the old one is kept and tried when a round of attempts with the new one
   failed, alternately (A02.FR.28 / A03.FR.24); the first connection with either discards
   the other (A02.FR.10); after a CSMS root was replaced under
   ``AdditionalRootCertificateCheck``, each attempt first trusts the new root without the
   fallback, and only a server certificate it verified lets the fallback go (M05.FR.12/13,
   :meth:`Station._dial`);
2. **boot**: BootNotification until Accepted; Pending/Rejected retry after the interval
   given (only CSMS-triggered messages go out meanwhile, B02/B03); every connection boots,
   because CSMSs (ours too) only accept CALLs on a connection that booted;
3. **online**: StatusNotification for every connector (and 1.6 connector 0), Heartbeat
   every interval, and the **sender**: the only task that sends our CALLs after boot. It
   takes the oldest of (a) the head of the persistent transaction queue, when its retry
   time has come, and (b) the in-memory outbox of other messages, in the order they were
   made, so a StatusNotification made after a StartTransaction goes after it; messages
   queued before this connection (the offline backlog) let the outbox overtake them
   (1.6 §3.7 MAY). A queued message leaves the store only after its CALLRESULT
   (:func:`.delivery.after_outcome` decides retry / drop on CALLERROR or timeout).

A **timer** task, independent of the connection, samples meters (periodic and
clock-aligned values are enqueued offline too, 2.0.1 with ``offline=true``) and expires
reservations. Every change that matters is written to the store, the transaction ones in the
same commit as their message. At ``queue_limit`` queued messages every second Updated event
is dropped, never a Start/Stop (checklist F8). Messages that are not transaction messages
are not kept offline: every status is reported again after the next boot. The exception is
SecurityEventNotification, queued like a transaction message (A04.FR.02,
:func:`.delivery.is_queued_message`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import itertools
import os
import random
import ssl
import tempfile
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _pkg_version
from pathlib import Path
from typing import Any, Protocol, TextIO

import msgspec
import structlog

from ocppkit.protocol import (
    CallErrorReceived,
    CallTimeoutError,
    OutgoingMessageError,
    PayloadError,
    Router,
    SessionClosedError,
)
from ocppkit.station.backoff import Backoff, BackoffSettings
from ocppkit.station.behaviour import ActionRefused, Behaviour, stop_cause
from ocppkit.station.delivery import (
    DEFAULT_QUEUE_LIMIT,
    Drop,
    Outcome,
    Remove,
    Resend,
    Retry,
    RetryPolicy,
    ThinCandidate,
    after_outcome,
    should_thin,
    thin_updates,
)
from ocppkit.station.network_profiles import Endpoint, Failover, ProfileHost, station_url
from ocppkit.station.store import NewMessage, QueuedMessage, StationStore
from ocppkit.transport import Connection, connect

__all__ = ["ActionRefused", "Station", "StationConfig", "StationConfigError", "StationObserver"]

_log = structlog.get_logger("ocppkit.station")


def _ocppkit_version() -> str:
    try:
        return _pkg_version("ocppkit")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


@dataclass(frozen=True, kw_only=True)
class StationConfig:
    """What one emulated station is (see the module docstring of :mod:`ocppkit.station`)."""

    station_id: str
    csms_url: str
    """``ws[s]://host:port/<any prefix>``; the station id is appended as the last segment."""
    ocpp_version: str = "1.6"
    vendor: str = "ocppkit"
    model: str = "Emulator"
    serial_number: str | None = None
    firmware_version: str = field(default_factory=_ocppkit_version)
    connectors: int = 1
    """1.6: connectors 1..n (+ connector 0); 2.0.1: EVSEs 1..n with one connector each."""
    supply: str = "ac"
    phases: int = 3
    voltage: float = 230.0
    max_current: float = 32.0
    max_power_w: float = 50_000.0
    security_profile: int = 0
    password: str | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    seed: int = 0
    heartbeat_interval: int | None = None
    """None: the CSMS's interval from BootNotification."""
    meter_values_interval: int = 60
    """1.6 MeterValueSampleInterval / 2.0.1 SampledDataCtrlr.TxUpdatedInterval at first start."""
    clock_aligned_interval: int = 0
    """1.6 ClockAlignedDataInterval / 2.0.1 AlignedDataCtrlr.Interval at first start (0: none)."""
    measurands: tuple[str, ...] = ("Energy.Active.Import.Register", "Power.Active.Import")
    trace_file: str | None = None
    """Every frame is appended here (with timestamps) while :attr:`Station.trace` is on."""
    backoff: BackoffSettings | None = None
    """Reconnect back-off; None: 2.0.1 reads OCPPCommCtrlr.RetryBackOff*, 1.6 the defaults."""
    call_timeout: float = 30.0
    """Seconds to wait for a CALLRESULT (2.0.1: OCPPCommCtrlr.MessageTimeout overrides)."""
    transaction_attempts: int | None = None
    """TransactionMessageAttempts at first start (None: the configuration's default, 3)."""
    transaction_retry_interval: int | None = None
    """TransactionMessageRetryInterval (s) at first start (None: the default, 60)."""
    auto_plug: bool = True
    """A remote start plugs the cable in (the emulated driver who asked for it does)."""
    firmware_step_seconds: float = 1.0
    """Time each firmware / diagnostics status step takes."""
    firmware_download: str = "simulate"
    """``simulate``: firmware is not downloaded, its statuses are walked in steps and no
    signature is claimed verified; ``fetch``: http(s) locations are downloaded and a secure
    update's signature checked over the file (:mod:`.firmware`). The default keeps fleets
    and scenarios that name made-up locations working."""
    boot_retry_seconds: float = 30.0
    """Wait before the next BootNotification after a timeout or an interval of 0."""
    queue_limit: int = DEFAULT_QUEUE_LIMIT
    """Queued transaction messages at which every second Updated event is dropped (F8)."""
    certificate_renewal_margin: float = 30 * 86400.0
    """Seconds before its expiry the station renews its own certificate by itself (A03.FR.02:
    "will expire in one month"; neither version has a configuration key for it)."""

    def __post_init__(self) -> None:
        if self.ocpp_version not in ("1.6", "2.0.1"):
            raise ValueError(f"ocpp_version must be 1.6 or 2.0.1, not {self.ocpp_version!r}")
        if self.connectors < 1:
            raise ValueError("a station has at least one connector")
        if self.supply not in ("ac", "dc"):
            raise ValueError(f"supply must be 'ac' or 'dc', not {self.supply!r}")
        if self.firmware_download not in ("fetch", "simulate"):
            raise ValueError(
                f"firmware_download must be 'fetch' or 'simulate', not {self.firmware_download!r}"
            )
        if not 0 <= self.security_profile <= 3:
            raise ValueError("security_profile is 0..3")
        scheme = urllib.parse.urlsplit(self.csms_url).scheme
        if scheme not in ("ws", "wss"):
            raise ValueError(f"the CSMS URL must be ws:// or wss://, not {self.csms_url!r}")
        if self.security_profile >= 2 and scheme != "wss":
            raise ValueError("security profiles 2 and 3 need a wss:// URL")
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("client_cert and client_key go together: give both or neither")

    @property
    def url(self) -> str:
        """The URL the station connects to first (2.0.1: slot 0's, see
        :mod:`.network_profiles`)."""
        return station_url(self.csms_url, self.station_id)

    @property
    def endpoint(self) -> Endpoint:
        """The configured URL and security profile (2.0.1: slot 0's factory profile)."""
        return Endpoint(slot=0, csms_url=self.csms_url, security_profile=self.security_profile)


V16_CERTIFICATE_ATTEMPTS = 3
"""1.6: failed attempts with one client certificate before the other is tried (A02.FR.28
counts a round over the network profiles; 1.6 has one URL and no attempts setting, so the
2.0.1 default of NetworkProfileConnectionAttempts is used)."""


class StationConfigError(ValueError):
    """The configuration cannot work with the state the station restored (e.g. security
    profile 3 with neither a configured client certificate nor one in the certificate
    store). Raised by :meth:`Station.restore` / :meth:`Station.run`; one line."""


def _private_file(folder: str, name: str, text: str) -> str:
    """Write ``text`` to a new file ``name`` in ``folder``, readable by this user only."""
    path = os.path.join(folder, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


class StationObserver(Protocol):
    """Optional callbacks (the fleet's statistics); implement any subset."""

    def on_frame(self, station_id: str, direction: str, frame: str, at: float) -> None: ...

    def on_call(
        self, station_id: str, action: str, latency: float, error: str | None, queued_for: float
    ) -> None: ...

    def on_state(self, station_id: str, state: str) -> None: ...


class Offline(Exception):
    """A message needs a booted connection and there is none."""


@dataclass(slots=True)
class _Outgoing:
    stamp: int
    action: str
    payload: Any
    future: asyncio.Future[Any] | None


class Station:
    """One emulated station (see the module docstring)."""

    def __init__(
        self,
        config: StationConfig,
        *,
        store: StationStore,
        observer: StationObserver | None = None,
        clock: Callable[[], float] | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``clock``: monotonic seconds (default the loop's); ``sleep``: the back-off wait
        (tests pass a fake); ``wall_clock``: UTC seconds for timestamps and the queue."""
        self.config = config
        self.store = store
        self.observer = observer
        self.rng = rng if rng is not None else random.Random(config.seed)
        self._clock = clock
        self._sleep = sleep
        self._wall = wall_clock
        self.log = _log.bind(station_id=config.station_id)
        self.trace = config.trace_file is not None
        self._trace_fh: TextIO | None = None
        self.registration: str | None = None
        self.connection: Connection | None = None
        self.online = False
        self.state = "idle"
        self._link = "disconnected"
        self._stopping = False
        self._reboot: str | None = None
        self._reconnect_now = False
        """The connection was closed to switch certificates: connect again at once."""
        self._session_endpoint: Endpoint | None = None
        """Where the current connection goes (None: not connected)."""
        self._restored = False
        self.new_root_verified = False
        """The current connection's server certificate was verified by the installed CSMS
        roots without a fallback root, while one was kept (M05.FR.12: the fallback may go)."""
        self._previous_certificate = False
        """The next attempt presents the old station certificate, not an unconfirmed new one
        (A02.FR.28)."""
        self._certificate_failures = 0
        """Failed profile-3 attempts with the certificate :attr:`_previous_certificate` says."""
        self._boot_reason = "PowerUp"
        self._boot_now = asyncio.Event()
        self._timer_wake = asyncio.Event()
        self._sender_wake = asyncio.Event()
        self._heartbeat_wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._stop_event = asyncio.Event()
        self._outbox: deque[_Outgoing] = deque()
        self._held: list[tuple[str, Any]] | None = None
        self._hold_depth = 0
        self._stamps: dict[int, int] = {}
        self._stamp = itertools.count()
        self._queued = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._csms_calls: dict[str, deque[dict[str, Any]]] = {}
        self._csms_call_event = asyncio.Event()
        self.connects = 0
        self.boots = 0
        self._incidents_reported = False
        self.behaviour: Behaviour
        if config.ocpp_version == "1.6":
            from ocppkit.station.behaviour_v16 import Behaviour16

            self.behaviour = Behaviour16(self)
        else:
            from ocppkit.station.behaviour_v201 import Behaviour201

            self.behaviour = Behaviour201(self)
        self._backoff = Backoff(self._backoff_settings(), self.rng)
        self._failover: Failover | None = None
        """2.0.1: which network profile slot the next attempt dials (B10); None for 1.6."""

    # -- clocks and small helpers -----------------------------------------------------------

    @property
    def station_id(self) -> str:
        return self.config.station_id

    def clock(self) -> float:
        if self._clock is not None:
            return self._clock()
        return asyncio.get_running_loop().time()

    def wall(self) -> float:
        return self._wall()

    def now(self) -> datetime.datetime:
        """The wall-clock time as an aware UTC datetime (millisecond precision)."""
        stamp = datetime.datetime.fromtimestamp(self._wall(), datetime.UTC)
        return stamp.replace(microsecond=stamp.microsecond // 1000 * 1000)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` in the background (kept referenced; errors logged)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            self.log.warning("background task failed", error=repr(exc))

    def changed(self) -> None:
        """Wake :meth:`wait_for_state` waiters; report charging/idle/faulted."""
        self._changed.set()
        self._changed = asyncio.Event()
        snap_ports = self.behaviour.ports
        if any(self.behaviour.facts(p).fault for p in snap_ports):
            state = "faulted"
        elif any(p.tx is not None for p in snap_ports.values()):
            state = "charging"
        else:
            state = "idle"
        if state != self.state:
            self.state = state
            self._emit_state(state)

    def _emit_state(self, state: str) -> None:
        if self.observer is not None and hasattr(self.observer, "on_state"):
            self.observer.on_state(self.station_id, state)

    def _set_link(self, state: str) -> None:
        self._link = state
        self._emit_state(state)
        self.changed()

    def wake_timer(self) -> None:
        self._timer_wake.set()

    def wake_heartbeat(self) -> None:
        self._heartbeat_wake.set()

    def _backoff_settings(self) -> BackoffSettings:
        if self.config.backoff is not None:
            return self.config.backoff
        values = self.behaviour.backoff()
        if values is None:
            return BackoffSettings()
        return BackoffSettings(
            wait_minimum=values[0], random_range=values[1], repeat_times=values[2]
        )

    # -- persistence ---------------------------------------------------------------------------

    def state_blob(self) -> dict[str, Any]:
        return {"schema": 1, **self.behaviour.to_dict()}

    async def save(self) -> None:
        """Persist the state blob and wake waiters."""
        await self.store.save_state(self.station_id, self.state_blob())
        self.changed()

    async def enqueue(self, action: str, request: msgspec.Struct, *, tx_key: str | None) -> None:
        """A transaction message: committed with the state blob, then delivered FIFO."""
        message = NewMessage.from_struct(
            self.station_id, action, request, tx_key=tx_key, enqueued_at=self.wall()
        )
        stamp = next(self._stamp)
        self._queued += 1  # counted from now: a snapshot never shows a message in commit as gone
        try:
            queued = await self.store.enqueue(message, state=self.state_blob())
        except BaseException:
            self._queued -= 1
            raise
        self._stamps[queued.id] = stamp
        if should_thin(self._queued, limit=self.config.queue_limit):
            await self._thin()
        self._sender_wake.set()
        self.changed()

    async def _thin(self) -> None:
        """Checklist F8 (libocpp): at the queue limit, drop every second Updated event /
        transaction MeterValues of each transaction, never a Started/Ended (Start/Stop)
        nor the message on the wire."""
        pending = await self.store.pending(self.station_id)
        ids = thin_updates(
            ThinCandidate(m.id, m.tx_key, m.kind, in_flight=m.attempts > m.failures)
            for m in pending
        )
        dropped = await self.store.drop_many(ids, "queue limit reached: Updated thinned (F8)")
        self._queued -= dropped
        if dropped:
            self.log.warning("transaction queue thinned", dropped=dropped, left=self._queued)

    # -- non-transaction messages ----------------------------------------------------------------

    def post(self, action: str, payload: Any, *, triggered: bool = False) -> None:
        """Send a non-transaction message when online, in order; forget it offline.

        ``triggered``: the CSMS asked for it (TriggerMessage), so it also goes out while the
        registration is Pending (2.0.1 B02.FR.02, 1.6 §4.2)."""
        if self._held is not None:
            self._held.append((action, payload))
            return
        if not self.online:
            conn = self.connection
            if triggered and conn is not None and not conn.closed:
                self.spawn(self._timed_call(conn, action, payload, 0.0))
            return
        self._outbox.append(_Outgoing(next(self._stamp), action, payload, None))
        self._sender_wake.set()

    def hold_posts(self) -> None:
        """Keep posted messages back until :meth:`release_posts` (so a StatusNotification
        caused by a transaction event follows the event's message). Nests."""
        self._hold_depth += 1
        if self._held is None:
            self._held = []

    def release_posts(self) -> None:
        self._hold_depth -= 1
        if self._hold_depth > 0:
            return
        held, self._held = self._held or [], None
        for action, payload in held:
            self.post(action, payload)

    async def request(self, action: str, payload: Any, *, while_pending: bool = False) -> Any:
        """Send a non-transaction CALL and return its typed reply.

        Raises :class:`Offline` without a booted connection (``while_pending``: a connected,
        not yet accepted one will do, for CSMS-triggered messages), else what
        :meth:`Connection.call` raises.
        """
        conn = self.connection
        if self.online:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._outbox.append(_Outgoing(next(self._stamp), action, payload, future))
            self._sender_wake.set()
            return await future
        if while_pending and conn is not None and not conn.closed:
            return await self._timed_call(conn, action, payload, 0.0)
        raise Offline(f"{action} needs a connection to the CSMS")

    async def _timed_call(
        self, conn: Connection, action: str, payload: Any, queued_for: float
    ) -> Any:
        started = self.clock()
        error: str | None = None
        try:
            return await conn.call(action, payload)
        except CallErrorReceived as exc:
            error = exc.code
            raise
        except CallTimeoutError:
            error = "Timeout"
            raise
        except SessionClosedError:
            error = "Disconnected"
            raise
        finally:
            if self.observer is not None and hasattr(self.observer, "on_call"):
                self.observer.on_call(
                    self.station_id, action, self.clock() - started, error, queued_for
                )

    # -- the run loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, boot, run and reconnect until :meth:`stop`. Raises
        :class:`StationConfigError` at once when :meth:`restore` does (and logs it: a fleet
        runs stations as tasks)."""
        try:
            await self.restore()
        except StationConfigError as exc:
            self.log.error("station not started", error=str(exc))
            raise
        self._plan_network()
        timer = self.spawn(self._timer_loop())
        try:
            first = True
            while not self._stopping:
                if not first:
                    if self._reboot is not None:
                        self._boot_reason = self._reboot
                        self._reboot = None
                        self._plan_network()  # B10.FR.04: after a reboot, the first entry
                    elif self._reconnect_now:  # not a loss: the same slot, no back-off
                        self.log.info("reconnecting with the new station certificate")
                    else:
                        self._backoff.settings = self._backoff_settings()  # may have changed
                        delay = self._backoff.next_delay()
                        self.log.info("reconnecting", delay=round(delay, 3))
                        await self._interruptible_sleep(delay)
                    self._reconnect_now = False
                    if self._stopping:
                        break
                first = False
                await self._connection_once()
        finally:
            pending = [timer, *self._tasks]  # firmware steps, remote starts... end with the run
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if self._trace_fh is not None:
                self._trace_fh.close()
                self._trace_fh = None

    async def _interruptible_sleep(self, delay: float) -> None:
        if self._sleep is not None:
            await self._sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), delay)

    async def restore(self) -> None:
        """Load the persisted state (once; :meth:`run` calls it) and check what only that
        state can tell: security profile 3 needs a client certificate, the configured files
        or one the certificate store holds (e.g. from an earlier CertificateSigned); with
        neither, :class:`StationConfigError`."""
        if self._restored:
            return
        await self._restore()
        self._restored = True
        if self.config.security_profile == 3 and not self.has_client_certificate():
            raise StationConfigError(
                "security profile 3 needs a client certificate and key (client_cert, "
                "client_key), and the station's certificate store holds none"
            )

    def has_client_certificate(self) -> bool:
        """A TLS client certificate to present: the store's charging-station certificate or
        the configured ``client_cert`` / ``client_key`` (B09.FR.02 asks it of a profile-3
        network profile, :func:`.network_profiles.profile_problem`)."""
        configured = bool(self.config.client_cert and self.config.client_key)
        return configured or self.behaviour.certs.client_certificate() is not None

    async def _restore(self) -> None:
        self._queued = await self.store.count(self.station_id)
        blob = await self.store.load_state(self.station_id)
        running = []
        if blob is not None:
            try:
                running = self.behaviour.load_dict(blob)
            except Exception as exc:  # a state blob we cannot read: start afresh, say so
                self.log.warning("station state unreadable; starting fresh", error=repr(exc))
        seq = await self.store.seq_counters(self.station_id)
        self.behaviour.merge_seq(seq)
        if running:
            self.log.warning("transactions ended after a restart", count=len(running))
            await self.behaviour.recover(running)
        await self.save()

    def _plan_network(self) -> None:
        """2.0.1: a fresh fail-over over the stored network profiles (B10.FR.04)."""
        if isinstance(self.behaviour, ProfileHost):
            self._failover = self.behaviour.network_failover()

    def _endpoint(self) -> Endpoint:
        """Where the next attempt goes: the fail-over's slot (2.0.1), else the configured
        URL and security profile."""
        behaviour = self.behaviour
        if self._failover is not None and isinstance(behaviour, ProfileHost):
            endpoint = behaviour.network_endpoints().get(self._failover.slot)
            if endpoint is not None:
                return endpoint
        return self.config.endpoint

    def _attempt_failed(self, endpoint: Endpoint) -> None:
        """B10.FR.03: count the failed attempt on the slot; maybe switch to the next. A02.FR.28:
        count it for the station certificate it presented."""
        failover = self._failover
        if failover is not None and failover.failed():
            self.log.info("switching network profile", slot=endpoint.slot, to=failover.slot)
        self._client_certificate_failed(endpoint)

    def _client_certificate_failed(self, endpoint: Endpoint) -> None:
        """A02.FR.28 / A03.FR.24 (2.0.1 errata 2025-01; the 1.6 whitepaper keeps the old
        certificate as a fallback too): while a new station certificate has not connected,
        a round of failed profile-3 attempts with it (every NetworkConfigurationPriority
        entry its NetworkProfileConnectionAttempts; 1.6: :data:`V16_CERTIFICATE_ATTEMPTS`)
        switches to the old one, and a round failed with the old one back to the new one:
        the fail-over starts the list over after its last entry (B10.FR.08), so the two
        alternate, and the station never stops trying (B10.FR.09). Only profile 3 counts:
        elsewhere the certificate is not what the CSMS checks. The old one is the store's
        previous chain, else the configured ``client_cert``; with neither there is nothing
        to fall back to."""
        certs = self.behaviour.certs
        if endpoint.security_profile != 3 or not certs.unconfirmed:
            return
        configured = bool(self.config.client_cert and self.config.client_key)
        if certs.client_certificate(previous=True) is None and not configured:
            return
        self._certificate_failures += 1
        failover = self._failover
        round_size = (
            len(failover.order) * failover.attempts
            if failover is not None
            else V16_CERTIFICATE_ATTEMPTS
        )
        if self._certificate_failures < round_size:
            return
        self._certificate_failures = 0
        self._previous_certificate = not self._previous_certificate
        which = "old" if self._previous_certificate else "new"
        self.log.warning("no connection with the station certificate: trying the " + which)

    def _ssl(self, endpoint: Endpoint, *, fallback_root: bool = True) -> Any:
        """The TLS client context for ``endpoint`` (None for ``ws://``), made afresh for each
        attempt from the certificate store, so what the CSMS installed is what is used:

        * trust: ``StationConfig.ca_file`` plus every installed CSMS root (2.0.1
          CSMSRootCertificate, 1.6 CentralSystemRootCertificate; M05: the root installed is
          the one the station verifies the CSMS's server certificate with), a fallback root
          included (M05.FR.13); with neither, the system's trust store. ``fallback_root``
          False: the installed roots without the fallbacks and without ``ca_file``, the
          trust that proves the new root verified the server (M05.FR.12; the caller makes
          sure it is not empty, which would mean the system's store);
        * client certificate: the store's charging-station certificate chain and key (A02 /
          A03, installed by CertificateSigned; the one before it while the station falls
          back, A02.FR.28), else ``client_cert`` / ``client_key``.

        Every trusted certificate is a trust anchor on its own (OpenSSL's partial-chain
        flag): a CSMS root installed under ``AdditionalRootCertificateCheck`` is signed by
        the root it replaced (M05.FR.09), not by itself, and must verify the server once that
        one is gone (M05.FR.12).

        ``ssl`` loads a certificate chain and key from files only: they are written, mode
        0600, into a private temporary directory (mode 0700) and removed as soon as the
        context holds them. The key is never logged."""
        if not endpoint.csms_url.startswith("wss"):
            return None
        from ocppkit.transport.tls import client_context

        certs = self.behaviour.certs
        roots = certs.trusted_pem(fallback=fallback_root) or None
        ca_file = self.config.ca_file if fallback_root else None
        own = certs.client_certificate(previous=self._previous_certificate)
        if own is None:
            context = client_context(
                ca_file,
                cadata=roots,
                certfile=self.config.client_cert,
                keyfile=self.config.client_key,
            )
        else:
            chain, key = own
            with tempfile.TemporaryDirectory(prefix="ocppkit-tls-") as folder:
                chain_file = _private_file(folder, "chain.pem", "".join(chain))
                key_file = _private_file(folder, "key.pem", key)
                context = client_context(
                    ca_file, cadata=roots, certfile=chain_file, keyfile=key_file
                )
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context

    def switch_client_certificate(self) -> None:
        """A02.FR.08 / A03.FR.08 (2.0.1 errata 2025-01; 1.6 whitepaper TC_074_CS step 7): a
        new charging-station certificate was accepted: close the connection (1000) once the
        CertificateSigned answer is out, and connect again at once with the new certificate.

        Only on a TLS (``wss://``, profile 2 or 3) connection: the FRs have no security
        profile precondition, and on profile 2 the reconnect is harmless (the server does not
        ask for the certificate); on ``ws://`` there is no TLS connection to switch. The
        reconnect is not a failed attempt (the connection was up: no back-off, no
        network-profile fail-over count, B10.FR.03)."""
        self._previous_certificate, self._certificate_failures = False, 0  # the new one first
        conn, endpoint = self.connection, self._session_endpoint
        if conn is None or endpoint is None or not endpoint.csms_url.startswith("wss"):
            return
        self.spawn(self._close_for_certificate(conn))

    async def _close_for_certificate(self, conn: Connection) -> None:
        await asyncio.sleep(0.05)  # the CertificateSigned answer goes out first
        if self.connection is conn and not conn.closed and not self._stopping:
            self._reconnect_now = True
            await conn.close(1000, "new station certificate")

    def _headers(self, endpoint: Endpoint) -> dict[str, str]:
        password = self.behaviour.password()
        if password is None or endpoint.security_profile == 3:
            return {}
        raw = f"{self.station_id}:{password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}

    async def _connection_once(self) -> None:
        self._set_link("connecting")
        endpoint = self._endpoint()
        previous = self._previous_certificate
        try:
            async with contextlib.AsyncExitStack() as stack:
                conn = await self._dial(stack, endpoint)
                await self._online_session(conn, endpoint, previous_certificate=previous)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused, handshake rejected, TLS failure, ...
            self.log.info("connection failed", slot=endpoint.slot, error=str(exc)[:200])
            if self.connection is None:  # the attempt failed (not a session that ended)
                self._attempt_failed(endpoint)
        finally:
            self.connection = None
            self._session_endpoint = None
            self.online = False
            self._fail_outbox()
            if not self._stopping:
                self._set_link("disconnected")

    async def _dial(self, stack: contextlib.AsyncExitStack, endpoint: Endpoint) -> Connection:
        """Open the connection of one attempt (closed with ``stack``).

        M05.FR.12/13 (``AdditionalRootCertificateCheck``): while a fallback CSMS root is
        kept, the server certificate is first verified with the installed roots alone, the
        fallback and ``ca_file`` left out; verified so, :attr:`new_root_verified` is set and
        the fallback goes after the boot (:meth:`.behaviour.Behaviour.confirm_root_certificates`).
        When that trust does not verify it, the same attempt connects again trusting the
        fallback (and ``ca_file``) too, and the fallback stays."""
        self.new_root_verified = False
        certs = self.behaviour.certs
        wss = endpoint.csms_url.startswith("wss")
        if wss and certs.has_fallback() and certs.trusted_pem(fallback=False):
            try:
                conn: Connection = await stack.enter_async_context(self._connect(endpoint, False))
            except ssl.SSLCertVerificationError as exc:
                self.log.info(
                    "server certificate not verified by the new CSMS root; trying the fallback",
                    error=str(exc)[:200],
                )
            else:
                self.new_root_verified = True
                return conn
        fallback: Connection = await stack.enter_async_context(self._connect(endpoint, True))
        return fallback

    def _connect(self, endpoint: Endpoint, fallback_root: bool) -> Any:
        ping = self.behaviour.ping_interval()
        timeout = endpoint.message_timeout or self.behaviour.call_timeout()
        return connect(
            endpoint.url(self.station_id),
            versions=[self.config.ocpp_version],
            routers={self._version(): self._router()},
            session_options={"call_timeout": timeout},
            ping_interval=ping,
            ping_timeout=ping,
            additional_headers=self._headers(endpoint),
            ssl=self._ssl(endpoint, fallback_root=fallback_root),
        )

    def _version(self) -> Any:
        from ocppkit.protocol import parse_version

        return parse_version(self.config.ocpp_version)

    def _router(self) -> Any:
        return _RecordingRouter(self)

    async def _online_session(
        self, conn: Connection, endpoint: Endpoint, *, previous_certificate: bool = False
    ) -> None:
        self.connection = conn
        self._session_endpoint = endpoint
        conn.observer = self._on_frame
        self.connects += 1
        self._backoff.reset()
        if endpoint.security_profile == 3 and endpoint.csms_url.startswith("wss"):
            await self._client_certificate_connected(previous_certificate)
        if self._failover is not None and isinstance(self.behaviour, ProfileHost):
            self._failover.connected()
            self.behaviour.network_connected(endpoint)  # saved with the boot (B10.FR.10)
        self._set_link("connected")
        self._stamps.clear()  # the backlog may be overtaken by this connection's messages
        if not await self._boot(conn):
            return
        self.online = True
        self._set_link("booted")
        sender = self.spawn(self._sender(conn))
        heartbeat = self.spawn(self._heartbeat_loop(conn))
        for notification in self.behaviour.status_notifications():
            self.post("StatusNotification", notification)
        self._report_incidents()
        self.behaviour.after_boot()
        try:
            await conn.wait_closed()
        finally:
            self.online = False
            for task in (sender, heartbeat):
                task.cancel()
            for task in (sender, heartbeat):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _client_certificate_connected(self, previous: bool) -> None:
        """A02.FR.10 / A03.FR.10 (errata 2025-01): a profile-3 connection is up with the new
        station certificate (``previous`` False) or the old one: the other is discarded,
        persisted at once; a discarded new one is reported with a SecurityEventNotification
        DiscardedRenewedClientCertificate (A02.FR.29 / A03.FR.25), queued like every
        security event (A04.FR.02), in the same commit."""
        outcome = self.behaviour.certs.confirm_client_certificate(previous=previous)
        self._previous_certificate, self._certificate_failures = False, 0
        if outcome == "discarded":
            self.log.warning("the new station certificate never connected: discarded")
            await self.behaviour.security_event(
                "DiscardedRenewedClientCertificate",
                "no connection with the renewed certificate; the old one connected",
            )
        elif outcome == "confirmed":
            self.log.info("connected with the new station certificate: the old one discarded")
            await self.save()

    async def _boot(self, conn: Connection) -> bool:
        while not conn.closed:
            self._boot_now.clear()
            request = self.behaviour.boot_request(self._boot_reason)
            wait = self.config.boot_retry_seconds
            try:
                reply = await self._timed_call(conn, "BootNotification", request, 0.0)
            except SessionClosedError:
                return False
            except (CallTimeoutError, CallErrorReceived, PayloadError) as exc:
                self.log.info("BootNotification failed", error=str(exc)[:200])
            else:
                status = str(reply.status)
                self.registration = status
                if status == "Accepted":
                    self.boots += 1
                    self._boot_reason = "Unknown"  # a later connection is not a power-up
                    if self.config.heartbeat_interval is not None:
                        self.behaviour.set_heartbeat_interval(self.config.heartbeat_interval)
                    elif reply.interval > 0:
                        self.behaviour.set_heartbeat_interval(reply.interval)
                    await self.save()
                    return True
                if status == "Rejected":
                    self._emit_state("rejected")
                if reply.interval > 0:
                    wait = reply.interval
                self.changed()
            closed = asyncio.ensure_future(conn.wait_closed())
            trigger = asyncio.ensure_future(self._boot_now.wait())
            try:
                await asyncio.wait({closed, trigger}, timeout=wait, return_when="FIRST_COMPLETED")
            finally:
                closed.cancel()
                trigger.cancel()
        return False

    def _report_incidents(self) -> None:
        """A damaged state file set aside on open (checklist F7) is reported once, after the
        first accepted boot, as a SecurityEventNotification (type InvalidMessages; 1.6
        Security whitepaper / 2.0.1 A04)."""
        if self._incidents_reported:
            return
        self._incidents_reported = True
        for incident in self.store.incidents:
            if incident.station_ids and self.station_id not in incident.station_ids:
                continue
            info = f"state store {incident.kind}: set aside as {incident.quarantined_to.name}"
            self.behaviour.raise_security_event("InvalidMessages", info)

    def trigger_boot(self) -> None:
        """TriggerMessage(BootNotification): send one now (accepted or pending)."""
        if self.online:
            self._boot_reason = "Triggered"
            self.spawn(self._triggered_boot())
        else:
            self._boot_reason = "Triggered"
            self._boot_now.set()

    async def _triggered_boot(self) -> None:
        reply = await self.request("BootNotification", self.behaviour.boot_request("Triggered"))
        if str(reply.status) == "Accepted" and reply.interval > 0:
            if self.config.heartbeat_interval is None:
                self.behaviour.set_heartbeat_interval(reply.interval)
            self.wake_heartbeat()

    async def _heartbeat_loop(self, conn: Connection) -> None:
        while not conn.closed:
            self._heartbeat_wake.clear()
            interval = self.behaviour.heartbeat_interval()
            if interval <= 0:
                await self._heartbeat_wake.wait()
                continue
            try:
                await asyncio.wait_for(self._heartbeat_wake.wait(), interval)
                continue  # the interval changed: start again
            except TimeoutError:
                pass
            with contextlib.suppress(
                Offline, CallErrorReceived, CallTimeoutError, PayloadError, SessionClosedError
            ):
                await self.request("Heartbeat", self.behaviour.heartbeat_request())

    async def _timer_loop(self) -> None:
        while True:
            self._timer_wake.clear()
            try:
                due = await self.behaviour.on_timer()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("station timer failed")
                due = self.clock() + 5.0
            timeout = None if due is None else max(0.0, due - self.clock())
            # asyncio.timeout, not wait_for: on 3.11 wait_for returns normally when the wake
            # and the task's cancellation (stop) meet, and the loop would never end
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._timer_wake.wait()

    # -- the sender -------------------------------------------------------------------------------

    def _fail_outbox(self) -> None:
        while self._outbox:
            item = self._outbox.popleft()
            if item.future is not None and not item.future.done():
                item.future.set_exception(SessionClosedError("connection closed"))

    async def _sender(self, conn: Connection) -> None:
        while not conn.closed:
            self._sender_wake.clear()
            head = await self.store.head(self.station_id) if self._queued else None
            wall = self.wall()
            head_due = head is not None and (head.not_before is None or wall >= head.not_before)
            if self._outbox and (
                head is None
                or not head_due
                or self._stamps.get(head.id, 1 << 62) > self._outbox[0].stamp
            ):
                await self._send_outgoing(conn, self._outbox.popleft())
                continue
            if head is not None and head_due:
                if not await self._deliver(conn, head):
                    return
                continue
            timeout = None
            if head is not None and head.not_before is not None:
                timeout = max(0.0, head.not_before - wall)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sender_wake.wait(), timeout)

    async def _send_outgoing(self, conn: Connection, item: _Outgoing) -> None:
        try:
            reply = await self._timed_call(conn, item.action, item.payload, 0.0)
        except Exception as exc:
            if item.future is not None and not item.future.done():
                item.future.set_exception(exc)
            elif not isinstance(exc, SessionClosedError | CallErrorReceived | CallTimeoutError):
                self.log.warning("message failed", action=item.action, error=repr(exc))
            return
        if item.future is not None and not item.future.done():
            item.future.set_result(reply)

    async def _deliver(self, conn: Connection, head: QueuedMessage) -> bool:
        """Send the queue head once; False when the connection went away."""
        behaviour = self.behaviour
        try:
            payload = behaviour.prepare(head.action, head.payload, head.tx_key)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self.store.drop(head.id, f"unreadable payload: {exc}", state=self.state_blob())
            self._queued -= 1
            return True
        wall = self.wall()
        await self.store.mark_sent(head.id, at=wall)
        queued_for = max(0.0, wall - head.enqueued_at)
        code: str | None = None
        reply: Any = None
        try:
            reply = await self._timed_call(conn, head.action, payload, queued_for)
            outcome = Outcome.RESULT
        except CallErrorReceived as exc:
            outcome, code = Outcome.CALL_ERROR, exc.code
        except CallTimeoutError:
            outcome = Outcome.TIMEOUT
        except PayloadError as exc:  # a CALLRESULT that fails its schema: not processed
            outcome, code = Outcome.CALL_ERROR, exc.code
        except SessionClosedError:
            outcome = Outcome.DISCONNECTED
        except OutgoingMessageError as exc:  # our own payload is invalid: never deliverable
            await self.store.drop(head.id, f"invalid payload: {exc}", state=self.state_blob())
            self._queued -= 1
            return True
        policy = RetryPolicy(*behaviour.retry_policy())
        decision = after_outcome(
            outcome, failures=head.failures, now=self.wall(), policy=policy, error_code=code
        )
        if isinstance(decision, Remove):
            behaviour.on_delivered(head.action, head.payload, head.tx_key, reply)
            await self.store.remove(head.id, state=self.state_blob())
            self._queued -= 1
            self._stamps.pop(head.id, None)
        elif isinstance(decision, Retry):
            await self.store.mark_failed(
                head.id, failures=decision.failures, not_before=decision.at, error=code
            )
        elif isinstance(decision, Drop):
            self.log.warning(
                "transaction message dropped", action=head.action, reason=decision.reason
            )
            behaviour.on_dropped(head.action, head.tx_key)
            await self.store.drop(head.id, decision.reason, state=self.state_blob())
            self._queued -= 1
            self._stamps.pop(head.id, None)
        elif isinstance(decision, Resend):
            return False
        self.changed()
        return True

    # -- frames -----------------------------------------------------------------------------------

    def _on_frame(self, conn: Connection, direction: str, frame: str | bytes) -> None:
        text = frame.decode("utf-8", "replace") if isinstance(frame, bytes) else frame
        if self.observer is not None and hasattr(self.observer, "on_frame"):
            self.observer.on_frame(self.station_id, direction, text, self.clock())
        if self.trace and self.config.trace_file is not None:
            if self._trace_fh is None:
                self._trace_fh = Path(self.config.trace_file).open("a", encoding="utf-8")  # noqa: SIM115
            stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
            self._trace_fh.write(f"{stamp} {self.station_id} {direction} {text}\n")
            self._trace_fh.flush()

    def record_csms_call(self, action: str, request: msgspec.Struct) -> None:
        calls = self._csms_calls.setdefault(action, deque(maxlen=100))
        calls.append(msgspec.to_builtins(request))
        self._csms_call_event.set()
        self._csms_call_event = asyncio.Event()

    def request_reboot(self, reason: str) -> None:
        """Reboot: apply RebootRequired settings, drop the connection, boot again now."""
        self._reboot = reason
        self.behaviour.reboot_model()
        self.spawn(self._close_for_reboot())

    async def _close_for_reboot(self) -> None:
        await self.save()
        conn = self.connection
        if conn is not None:
            await conn.close(1000, "reboot")

    # -- the public interface ----------------------------------------------------------------------

    async def stop(self, reason: str = "", *, drain_timeout: float = 0.0) -> None:
        """Stop :meth:`run`: close the socket (1000) and persist the state.

        ``drain_timeout``: when online, first wait up to this long for the transaction queue
        to empty (what is left stays queued in the store for the next run)."""
        if drain_timeout > 0 and self.online and self._queued:
            with contextlib.suppress(TimeoutError):
                await self.wait_for_state(lambda s: s["queued"] == 0, drain_timeout)
        self._stopping = True
        self._stop_event.set()
        conn = self.connection
        if conn is not None:
            await conn.close(1000, reason[:120])
        with contextlib.suppress(Exception):
            await self.store.save_state(self.station_id, self.state_blob())

    async def plug(self, connector: int = 1) -> None:
        await self.behaviour.plug(connector)

    async def unplug(self, connector: int = 1) -> None:
        await self.behaviour.unplug(connector)

    async def park(self, connector: int = 1) -> None:
        """An EV drives into the parking bay of ``connector`` (an emulated bay sensor): 1.6
        Preparing; 2.0.1 Occupied, and a transaction at TxStartPoint ParkingBayOccupancy."""
        await self.behaviour.park(connector)

    async def leave_bay(self, connector: int = 1) -> None:
        """The EV leaves the bay (unplug first): 2.0.1 ends the transaction at TxStopPoint
        ParkingBayOccupancy (EVDeparted)."""
        await self.behaviour.leave_bay(connector)

    async def present_token(self, id_token: str, connector: int = 1) -> str:
        return await self.behaviour.present_token(id_token, connector)

    async def start_transaction(self, connector: int = 1, id_token: str = "EMULATOR") -> None:
        """Plug (if needed) and present ``id_token``; raises :class:`ActionRefused` when no
        transaction could start."""
        port = self.behaviour.port(connector)
        if port.tx is not None:
            raise ActionRefused(f"a transaction already runs on connector {connector}")
        if not self.behaviour.facts(connector).plugged:
            await self.plug(connector)
        if port.tx is None or not port.tx.authorized:  # 2.0.1 TxStartPoint EVConnected
            status = await self.present_token(id_token, connector)
            if status != "Accepted" or port.tx is None:
                raise ActionRefused(f"id token {id_token!r} not accepted: {status}")

    async def stop_transaction(self, connector: int = 1, reason: str = "Local") -> None:
        port = self.behaviour.port(connector)
        cause = stop_cause(reason)
        await self.behaviour.stop(port, cause, self.behaviour.trigger_for(cause))

    async def ev_suspend(self, connector: int = 1) -> None:
        await self.behaviour.ev_suspend(connector)

    async def ev_resume(self, connector: int = 1) -> None:
        await self.behaviour.ev_resume(connector)

    async def fault(self, connector: int = 1, error_code: str = "OtherError") -> None:
        await self.behaviour.fault(connector, error_code)

    async def clear_fault(self, connector: int = 1) -> None:
        await self.behaviour.clear_fault(connector)

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send any CALL (validated against its schema); the reply payload in wire names."""
        conn = self.connection
        if conn is None or conn.closed:
            raise Offline("not connected")
        if self.online:
            reply = await self.request(action, payload)
        else:
            reply = await self._timed_call(conn, action, payload, 0.0)
        result = msgspec.to_builtins(reply)
        return result if isinstance(result, dict) else {}

    async def send_raw(self, frame: str) -> None:
        """Put an arbitrary text frame on the wire (scenario and fault testing)."""
        conn = self.connection
        if conn is None or conn.closed:
            raise Offline("not connected")
        await conn.websocket.send(frame)
        self._on_frame(conn, "out", frame)

    async def wait_for_state(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float,  # noqa: ASYNC109 (the fleet's contract)
    ) -> dict[str, Any]:
        """The first :meth:`snapshot` that satisfies ``predicate``; TimeoutError after
        ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while True:
                waiter = self._changed
                snap = self.snapshot()
                if predicate(snap):
                    return snap
                await waiter.wait()

    async def wait_for_csms_call(
        self,
        action: str,
        timeout: float,  # noqa: ASYNC109 (the fleet's contract)
    ) -> dict[str, Any]:
        """The next CALL of ``action`` from the CSMS not yet taken (its payload, wire names)."""
        async with asyncio.timeout(timeout):
            while True:
                calls = self._csms_calls.get(action)
                if calls:
                    return calls.popleft()
                await self._csms_call_event.wait()

    def snapshot(self) -> dict[str, Any]:
        """The station as the console, the HTTP API's ``/status`` and scenarios see it:
        connection, connectors (with the reservation bound to each) and, 2.0.1, the
        reservations of an unspecified EVSE (ReserveNow without evseId, H01), which no
        connector lists (empty for 1.6)."""
        behaviour = self.behaviour
        connectors = []
        for port in behaviour.ports.values():
            facts = behaviour.facts(port.id)
            tx = port.tx
            connectors.append(
                {
                    "id": port.id,
                    "status": str(behaviour.status_of(port.id)),
                    "plugged": facts.plugged,
                    "parked": facts.parked,
                    "fault": facts.fault,
                    "transaction": None
                    if tx is None
                    else {
                        "key": tx.key,
                        "id": behaviour.tx_ref(tx),
                        "id_token": tx.id_token,
                        "started_at": tx.started_at.isoformat(),
                        "meter_start": tx.meter_start,
                    },
                    "reservation": None if port.reservation is None else port.reservation.id,
                    "energy_wh": port.meter.meter_wh,
                    "power_w": round(port.meter.power_w, 1),
                    "soc": None if port.meter.battery is None else round(port.meter.battery.soc, 1),
                }
            )
        return {
            "station_id": self.station_id,
            "version": self.config.ocpp_version,
            "link": self._link,
            "connected": self.connection is not None and not self.connection.closed,
            "online": self.online,
            "registration": self.registration,
            "state": self.state,
            "connectors": connectors,
            "unspecified_evse_reservations": [
                {
                    "id": r.id,
                    "id_token": r.id_token,
                    "expires_at": r.expires_at.isoformat(),
                    "connector_type": r.connector_type,
                }
                for r in getattr(behaviour, "unbound", ())
            ],
            "queued": self._queued,
            "connects": self.connects,
            "reconnect_attempt": self._backoff.attempt,
            "boots": self.boots,
            "firmware_status": behaviour.firmware_status,
        }


class _RecordingRouter(Router):
    """The behaviour's router, recording each CSMS CALL for :meth:`Station.wait_for_csms_call`."""

    def __init__(self, station: Station) -> None:
        super().__init__()
        self._station = station

    async def dispatch(self, action: str, request: msgspec.Struct, context: Any) -> msgspec.Struct:
        self._station.record_csms_call(action, request)
        try:
            return await self._station.behaviour.router.dispatch(action, request, context)
        finally:
            self._station.changed()
