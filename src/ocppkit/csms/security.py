"""The CSMS's gatekeeper: who may upgrade to an OCPP WebSocket, decided before the upgrade.

Why here and not in the transport: the transport hands every upgrade request to an
:data:`~ocppkit.transport.server.Authenticator` and knows nothing of stations; the policy —
profiles, the registry, the limiter, security events — is the CSMS's.

Per security profile (reliability.md §1.2, checklist A3/A5/A7/A8):

* **0** — no credentials. With ``station_policy = reject`` an unknown id is answered HTTP 404
  before the upgrade (1.6J §3.2, 2.0.1-P4 §3.2); otherwise everyone is let in.
* **1 / 2** — HTTP Basic (RFC 7617) in the upgrade request; the user-id must equal the
  station id from the path (A00.FR.204), the password is checked against the station's
  salted hash (:mod:`ocppkit.csms.credentials`, run in a worker thread so the event loop
  keeps serving). Profile 2 differs only in the TLS underneath (server certificate).
* **3** — the TLS layer has already verified the client certificate's chain and dates
  (``CERT_REQUIRED``, :mod:`ocppkit.transport.tls`); here its subject must have exactly one
  CN, equal to the station id (A00.FR.405: CN = serial number; ocppkit requires stations to
  use their serial number as their id under profile 3), and, when ``cpo_name`` is set,
  exactly one O equal to it (A00.FR.404). An unknown station with a valid certificate is let
  in by ``station_policy`` accept / pending (its Boot decides the rest), refused by reject.

Refusals are uniform: an unknown id, a missing or malformed header, a wrong user-id, a wrong
password, a password of the wrong length and a bad certificate subject all get the same
``401`` with the same body, after the same work (the database lookup and one scrypt compare
against a dummy hash when the station has none), so the answer does not tell whether an id
exists (station-id enumeration, reliability.md §3.3). A station whose registered
``security_profile`` is higher than this port's is refused too (A00.FR.002: the station
connects with another profile than the one it is configured for; no silent downgrade).

Attempt limiter (CWE-307, checklist A5): failed attempts are counted per station id and per
peer IP in a sliding window of 60 s; once either count reaches ``auth_attempts_per_minute``
further attempts from that IP or for that id are answered ``429 Too Many Requests`` without
looking at the credentials, until old failures leave the window. 429 rather than a silent
401: it is equally uniform (known and unknown ids are counted alike), it tells a
misconfigured station to back off (1.6J errata 3.3), and it makes an attack visible in
access logs. Successful attempts are not counted, so a fleet behind one NAT address can
reconnect at any rate. The price, as with any per-id lockout: someone who knows a station id
can keep that station out while they keep failing (a denial of service, not a takeover); the
per-IP count limits how fast one address can do it.

What is recorded: every refusal is logged (``structlog``, warning) with ``station_id``,
the peer IP and a short reason — never the password nor the ``Authorization`` header. For a
*known* station the refusal is also stored as a security event (``security_events`` has a
foreign key to ``stations``, so unknown ids are only logged), written in the background
after the answer, since a write for known ids only would time them apart: type
``FailedToAuthenticateAtCentralSystem`` for credentials, ``InvalidChargePointCertificate``
for a profile-3 subject mismatch. Refusals by the limiter are logged but not stored (they
would let an attacker fill the table).

Handshakes refused by TLS itself (profiles 2/3: an expired, untrusted or missing client
certificate, plain HTTP on the TLS port, an old protocol version or no shared suite,
A00.FR.316-323/403-407) never reach the authenticator: no upgrade request, so no station id.
The transport tells :func:`tls_refusal_recorder` of each one
(:func:`~ocppkit.transport.tls.report_refused_handshakes`), which logs one warning line
(``TLS handshake refused``, with ``remote_ip``, ``reason`` — OpenSSL's text, e.g.
``certificate verify failed: unable to get local issuer certificate`` — and ``category``,
the bounded label) and counts it in ``ocppkit_tls_handshake_failures_total{reason}``
(A00.FR.323/408 RECOMMEND logging them). Nothing is stored: ``security_events`` needs a
known station, and a port scanner must not be able to fill a table.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import http
import secrets
import ssl
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

import structlog

from ocppkit.csms.credentials import PASSWORD_LENGTH, verify_password
from ocppkit.csms.metrics import CsmsMetrics
from ocppkit.csms.settings import CsmsSettings, SettingsError, StationPolicy
from ocppkit.storage import Database, repositories
from ocppkit.storage.models import Station
from ocppkit.transport.server import HandshakeRequest
from ocppkit.transport.tls import TlsRefusal, server_context

__all__ = [
    "AttemptLimiter",
    "CsmsAuthenticator",
    "certificate_subject",
    "parse_basic_authorization",
    "server_ssl_context",
    "tls_refusal_recorder",
]

_log = structlog.get_logger("ocppkit.csms.security")

#: Security event types stored for refused upgrades (names from the OCPP security event list).
EVENT_BAD_CREDENTIALS: Final = "FailedToAuthenticateAtCentralSystem"
EVENT_BAD_CERTIFICATE: Final = "InvalidChargePointCertificate"
#: Sliding window of the attempt limiter, seconds.
LIMIT_WINDOW: Final = 60.0
#: Keys a limiter keeps before it evicts the oldest (bounds memory under an id-spraying attack).
LIMIT_MAX_KEYS: Final = 100_000
#: Stations whose verified password is remembered (a fleet of this size reconnects fast).
MAX_VERIFIED_CACHE: Final = 100_000


def server_ssl_context(settings: CsmsSettings) -> ssl.SSLContext | None:
    """The TLS context of the OCPP port: None for profiles 0 and 1.

    Raises:
        SettingsError: a TLS file is missing, unreadable, or the key does not match.
    """
    if settings.security_profile < 2:
        return None
    assert settings.tls_cert is not None and settings.tls_key is not None  # check_supported
    client_ca = settings.tls_client_ca if settings.security_profile == 3 else None
    try:
        return server_context(settings.tls_cert, settings.tls_key, client_ca=client_ca)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
        raise SettingsError(f"cannot load the TLS certificate, key or CA: {reason}") from None


def tls_refusal_recorder(metrics: CsmsMetrics) -> Callable[[TlsRefusal], None]:
    """The CSMS's observer of refused TLS handshakes: a log line and a count (module
    docstring); give it to :func:`~ocppkit.transport.server.serve` as ``on_tls_refusal``."""

    def refused(refusal: TlsRefusal) -> None:
        _log.warning(
            "TLS handshake refused",
            remote_ip=refusal.remote_ip,
            reason=refusal.detail,
            category=refusal.reason,
        )
        metrics.tls_handshake_failed(refusal.reason)

    return refused


def parse_basic_authorization(header: str | None) -> tuple[str, str] | None:
    """``(user_id, password)`` from an RFC 7617 ``Basic`` credential, or None if malformed.

    The scheme is case-insensitive; the token must be strict base64 of UTF-8 text holding a
    colon; the user-id is what precedes the first colon (it cannot contain one, which is why
    OCPP forbids ``:`` in station ids, 2.0.1-P4 §3.1.1), the password may contain colons.
    """
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "basic" or not token:
        return None
    try:
        text = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    user_id, colon, password = text.partition(":")
    if not colon:
        return None
    return user_id, password


def certificate_subject(certificate: Mapping[str, Any], name: str) -> list[str]:
    """Every value of attribute ``name`` (e.g. ``"commonName"``) in a certificate subject as
    :meth:`ssl.SSLSocket.getpeercert` decodes it."""
    return [
        str(value) for rdn in certificate.get("subject", ()) for key, value in rdn if key == name
    ]


class AttemptLimiter:
    """Failed attempts per key in a sliding window; :meth:`blocked` once ``limit`` is reached.

    Memory is bounded: at most ``limit`` timestamps per key and ``max_keys`` keys (the keys
    seen longest ago are dropped first).
    """

    def __init__(
        self,
        limit: int,
        *,
        window: float = LIMIT_WINDOW,
        max_keys: int = LIMIT_MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def blocked(self, key: str) -> bool:
        """True while ``key`` has ``limit`` failures in the last ``window`` seconds."""
        failures = self._failures.get(key)
        if failures is None:
            return False
        horizon = self.clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return False
        return len(failures) >= self.limit

    def failed(self, key: str) -> None:
        """Count one failure for ``key``."""
        failures = self._failures.pop(key, None)
        if failures is None:
            failures = deque(maxlen=self.limit)
            if len(self._failures) >= self.max_keys:
                self._evict()
        failures.append(self.clock())
        self._failures[key] = failures  # re-inserted: dict order is "last failed" order

    def _evict(self) -> None:
        horizon = self.clock() - self.window
        for key in [k for k, v in self._failures.items() if not v or v[-1] <= horizon]:
            del self._failures[key]
        while len(self._failures) >= self.max_keys:
            del self._failures[next(iter(self._failures))]


class CsmsAuthenticator:
    """The CSMS's :data:`~ocppkit.transport.server.Authenticator` (module docstring).

    Args:
        settings: ``security_profile``, ``station_policy``, ``cpo_name`` and
            ``auth_attempts_per_minute`` are read.
        database: where stations (password hashes, registered profile) are looked up and
            security events stored.
        clock: the wall clock for security-event timestamps.
        monotonic: the limiter's clock.
    """

    def __init__(
        self,
        settings: CsmsSettings,
        database: Database,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.db = database
        self.clock = clock
        limit = settings.auth_attempts_per_minute
        self.by_id = AttemptLimiter(limit, clock=monotonic)
        self.by_ip = AttemptLimiter(limit, clock=monotonic)
        self._writes: set[asyncio.Task[None]] = set()
        # Stations whose password was verified: id -> (stored hash, keyed digest of the
        # password). A reconnect storm at profile 1/2 then costs an HMAC per station instead
        # of a ~10 ms scrypt; a changed stored hash (rotation) invalidates the entry. The
        # key lives only in this process's memory.
        self._verified: dict[str, tuple[str, bytes]] = {}
        self._verified_key = secrets.token_bytes(32)

    @property
    def needed(self) -> bool:
        """False when nothing is ever refused (profile 0 with policy accept or pending)."""
        return (
            self.settings.security_profile > 0
            or self.settings.station_policy is StationPolicy.REJECT
        )

    async def __call__(self, request: HandshakeRequest) -> int | None:
        identity = request.identity
        profile = self.settings.security_profile
        if profile == 0:
            refuse_unknown = self.settings.station_policy is StationPolicy.REJECT
            if refuse_unknown and await self._station(identity) is None:
                _log.info("unknown station refused", station_id=identity)
                return http.HTTPStatus.NOT_FOUND
            return None
        if self.by_id.blocked(identity) or self.by_ip.blocked(request.remote_ip):
            _log.warning(
                "authentication attempts limited",
                station_id=identity,
                remote_ip=request.remote_ip,
            )
            return http.HTTPStatus.TOO_MANY_REQUESTS
        station = await self._station(identity)
        if profile == 3:
            event = EVENT_BAD_CERTIFICATE
            reason = self._check_certificate(request, station)
        else:
            event = EVENT_BAD_CREDENTIALS
            reason = await self._check_password(request, station)
        if reason is None and station is not None and station.security_profile > profile:
            event = EVENT_BAD_CREDENTIALS
            reason = f"station is registered for security profile {station.security_profile}"
        if reason is None:
            return None
        self.by_id.failed(identity)
        self.by_ip.failed(request.remote_ip)
        _log.warning(
            "authentication failed",
            station_id=identity,
            remote_ip=request.remote_ip,
            reason=reason,
            known=station is not None,
        )
        if station is not None:  # written after the answer (a write must not be timed)
            task = asyncio.create_task(
                self._record(identity, event, f"{reason}; peer {request.remote_ip}")
            )
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
        return http.HTTPStatus.UNAUTHORIZED

    async def _station(self, identity: str) -> Station | None:
        async with self.db.session() as session:
            return await session.get(Station, identity)

    async def _check_password(
        self, request: HandshakeRequest, station: Station | None
    ) -> str | None:
        credentials = parse_basic_authorization(request.authorization)
        user_id, password = credentials or ("", "")
        stored = station.password_hash if station is not None else None
        digest = hmac.new(self._verified_key, password.encode(), hashlib.sha256).digest()
        cached = self._verified.get(request.identity)
        if (
            cached is not None
            and stored is not None
            and cached[0] == stored
            and hmac.compare_digest(cached[1], digest)
        ):
            matches = True  # verified before against this very hash
        else:
            # One scrypt compare (a dummy one without a stored hash): uniform timing for
            # unknown ids and wrong passwords.
            matches = await asyncio.to_thread(verify_password, password, stored)
            if matches and stored is not None and len(self._verified) < MAX_VERIFIED_CACHE:
                self._verified[request.identity] = (stored, digest)
        if request.authorization is None:
            return "no Authorization header"
        if credentials is None:
            return "malformed Basic credentials"
        if user_id != request.identity:
            return "user-id differs from the station id"
        if station is None:
            return "unknown station"
        if len(password) not in PASSWORD_LENGTH:
            return "password length out of range"
        if not matches:
            return "wrong password" if stored is not None else "station has no password"
        return None

    def _check_certificate(self, request: HandshakeRequest, station: Station | None) -> str | None:
        certificate = request.peer_certificate
        if not certificate:  # cannot happen with CERT_REQUIRED; refuse rather than assume
            return "no verified client certificate"
        if certificate_subject(certificate, "commonName") != [request.identity]:
            return "certificate CN is not the station id"
        cpo = self.settings.cpo_name
        if cpo is not None and certificate_subject(certificate, "organizationName") != [cpo]:
            return "certificate O is not the CPO name"
        if station is None and self.settings.station_policy is StationPolicy.REJECT:
            return "unknown station"
        return None

    async def _record(self, identity: str, event: str, tech_info: str) -> None:
        try:
            async with self.db.write_session() as session:
                await repositories.add_security_event(
                    session, identity, type=event, timestamp=self.clock(), tech_info=tech_info[:255]
                )
                await session.commit()
        except Exception:  # the refusal stands even when the event cannot be stored
            _log.exception("security event not stored", station_id=identity)
