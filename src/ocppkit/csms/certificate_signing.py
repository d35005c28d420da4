"""SignCertificate -> CertificateSigned: the CSMS's side of a station certificate update.

Use cases: 2.0.1 A02 (by request of the CSMS: TriggerMessage SignChargingStationCertificate /
SignV2GCertificate) and A03 (initiated by the station before expiry); in the 1.6 Security
whitepaper the same ids, "Update Charge Point Certificate by request of Central System"
(ExtendedTriggerMessage SignChargePointCertificate) and "... initiated by the Charge Point".

Theory of operation: the handler decides the answer at once, and only then does slow work.

1. Without a CA (``ca_cert`` / ``ca_key`` unset) the answer is Rejected (A02.FR.12: the
   CSMS is not able to process the request), with a log line saying why.
2. On a security-profile-0 port the answer is Rejected too: nobody proved to be the
   station, and a certificate is a credential that outlives the connection (with CN = the
   claimed id it would open a profile-3 port to whoever asked). Profiles 1-3 authenticate
   the station before the upgrade (:mod:`ocppkit.csms.security`).
3. A 2.1 station may name the root it wants its certificate under (``hashRootCertificate``,
   CertificateHashDataType under SHA256, SHA384 or SHA512). When it names another root than
   the one this CSMS's CA chains to (:meth:`CertificateAuthority.issues_under`), signing
   would hand it a certificate of the wrong PKI: the answer is Rejected with reasonCode
   ``UnknownRootCert`` (ocppkit's own code, not from the spec, which gives no CSMS-side
   rule for it; (secondary source) A02.FR.27 only has the station name the root) and the
   CsrRejected security event is stored, as for a bad CSR. 2.1 says nothing of a station
   naming no root: it gets this CA's.
4. The CSR is checked and signed in a worker thread (:class:`CertificateAuthority`; RSA
   signing takes milliseconds and must not stall thousands of other stations). A CSR that
   fails a check is answered Rejected (A02.FR.12); a signed one Accepted (A02.FR.11).
5. After the CALLRESULT is out, a background task sends CertificateSigned with the chain
   (1.6: ``certificateChain``; 2.x: plus the request's ``certificateType``, A02.FR.14, and
   2.1's ``requestId``) over the station's connection — the same ``Connection.call`` the HTTP
   API's commands use, so it queues behind any CALL in flight (one outstanding CALL,
   OCPP-J §4.1.1). Ordering: the task is created as the handler's last step and only runs
   once the handler worker has queued the CALLRESULT (the session emits frames in order),
   so the station always sees the SignCertificate reply first.
6. Every outcome an operator must hear of (A02 "Error handling": a wrong CSR "is something
   an operator at the CPO needs to be notified of") is logged and stored in
   ``security_events`` with ocppkit's own types: ``CsrRejected`` (the reason) and
   ``StationCertificateIssued`` (serial, type, end of validity, and what the station
   answered to CertificateSigned, or that it did not). Stored after the reply, never
   failing it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, Final, TypeVar

import msgspec
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from ocppkit.csms.certificate_authority import (
    CertificateAuthority,
    CertificateAuthorityError,
    CsrRejected,
    IssuedCertificate,
)
from ocppkit.csms.settings import CsmsSettings, SettingsError
from ocppkit.protocol.errors import CallErrorReceived, OcppError
from ocppkit.storage import repositories
from ocppkit.storage.group_commit import Unit
from ocppkit.transport import Connection

__all__ = [
    "CERTIFICATE_ISSUED",
    "CSR_REJECTED",
    "UNKNOWN_ROOT",
    "CertificateSigning",
    "load_authority",
]

_log = structlog.get_logger("ocppkit.csms")
T = TypeVar("T")

#: security_events types (ocppkit's own, not in OCPP's security-event list).
CSR_REJECTED: Final = "CsrRejected"
CERTIFICATE_ISSUED: Final = "StationCertificateIssued"
#: 2.x statusInfo reasonCode when hashRootCertificate names another root (ocppkit's own).
UNKNOWN_ROOT: Final = "UnknownRootCert"
_UNSET = msgspec.UNSET
_CLIENT_USE: Final = "ChargingStationCertificate"


def load_authority(settings: CsmsSettings) -> CertificateAuthority | None:
    """The CA of ``ca_cert`` / ``ca_key`` (None when unset), read once at start.

    Raises:
        SettingsError: a CA file is unreadable or unusable (one line for the terminal).
    """
    if settings.ca_cert is None or settings.ca_key is None:
        return None
    try:
        return CertificateAuthority.from_files(
            settings.ca_cert,
            settings.ca_key,
            validity_days=settings.certificate_validity_days,
            organization=settings.cpo_name,
        )
    except CertificateAuthorityError as exc:
        raise SettingsError(f"cannot use the CA for station certificates: {exc}") from None


class CertificateSigning:
    """Answers SignCertificate and delivers CertificateSigned (see the module docstring).

    Args:
        authority: the CA; None answers every CSR Rejected.
        security_profile: the port's profile; 0 answers every CSR Rejected.
        write: runs a storage unit in a committed transaction (the service's group commit).
        clock: the current time, timezone-aware.
    """

    def __init__(
        self,
        authority: CertificateAuthority | None,
        *,
        security_profile: int,
        write: Callable[[Unit[Any]], Awaitable[Any]],
        clock: Callable[[], datetime],
    ) -> None:
        self.authority = authority
        self.security_profile = security_profile
        self._write = write
        self._clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def handler(self, messages: Any) -> Callable[[Any, Connection], Awaitable[msgspec.Struct]]:
        """The SignCertificate handler for one version's message module (v16, v201, v21)."""

        async def sign_certificate(request: Any, connection: Connection) -> msgspec.Struct:
            return await self._answer(messages, request, connection)

        return sign_certificate

    async def _answer(self, m: Any, request: Any, connection: Connection) -> msgspec.Struct:
        station_id = connection.identity
        certificate_type = _text(getattr(request, "certificate_type", _UNSET))
        if self.authority is None:
            _log.warning(
                "SignCertificate rejected: no CA configured (set ca_cert and ca_key)",
                station_id=station_id,
            )
            return _response(
                m, accepted=False, info="no certificate authority configured", code="NotEnabled"
            )
        if self.security_profile == 0:
            _log.warning(
                "SignCertificate rejected: security profile 0 does not authenticate stations",
                station_id=station_id,
            )
            return _response(
                m, accepted=False, info="station not authenticated (profile 0)", code="NoAuth"
            )
        now = self._clock()
        hash_root = getattr(request, "hash_root_certificate", _UNSET)  # 2.1 only
        if hash_root is not _UNSET and hash_root is not None:
            named = msgspec.to_builtins(hash_root)
            if not self.authority.issues_under(named):
                return self._reject_root(m, station_id, named, now)
        # 1.6 has no certificateType: its Charge Point certificate is the TLS client's.
        use = certificate_type if hasattr(request, "certificate_type") else _CLIENT_USE
        try:
            issued = await asyncio.to_thread(
                _check_and_sign, self.authority, request.csr, station_id, now, use
            )
        except CsrRejected as exc:
            reason = str(exc)
            _log.warning("SignCertificate rejected: bad CSR", station_id=station_id, reason=reason)
            self._spawn(self._record(station_id, CSR_REJECTED, now, reason))
            return _response(m, accepted=False, info=reason, code="InvalidCSR")
        _log.info(
            "station certificate issued",
            station_id=station_id,
            serial=issued.serial_hex,
            certificate_type=use,
            not_after=issued.certificate.not_valid_after_utc.isoformat(),
        )
        fields: dict[str, Any] = {"certificate_chain": issued.chain_pem}
        if certificate_type is not None:  # A02.FR.14: echo the type asked for
            fields["certificate_type"] = m.CertificateSigningUseEnum(certificate_type)
        request_id = getattr(request, "request_id", _UNSET)
        if request_id is not _UNSET:  # 2.1: CertificateSigned names the request it answers
            fields["request_id"] = request_id
        # Last step before returning: see "Ordering" in the module docstring.
        signed = m.CertificateSignedRequest(**fields)
        self._spawn(self._deliver(connection, signed, issued, now, use))
        return _response(m, accepted=True)

    def _reject_root(
        self, m: Any, station_id: str, named: dict[str, Any], now: datetime
    ) -> msgspec.Struct:
        """Rejected: the station asked for a certificate under a root this CA does not
        chain to (module docstring, step 3)."""
        reason = "hashRootCertificate names another root than this CSMS's CA chains to"
        root = (
            f"hashAlgorithm={named.get('hashAlgorithm')} "
            f"issuerNameHash={str(named.get('issuerNameHash'))[:16]}... "
            f"serialNumber={named.get('serialNumber')}"
        )
        _log.warning(
            "SignCertificate rejected: unknown root", station_id=station_id, named_root=root
        )
        self._spawn(self._record(station_id, CSR_REJECTED, now, f"{reason} ({root})"))
        return _response(m, accepted=False, info=reason, code=UNKNOWN_ROOT)

    async def _deliver(
        self,
        connection: Connection,
        request: msgspec.Struct,
        issued: IssuedCertificate,
        issued_at: datetime,
        use: str | None,
    ) -> None:
        """Send CertificateSigned; log and store what the station made of it."""
        station_id = connection.identity
        try:
            response = await connection.call("CertificateSigned", request)
        except CallErrorReceived as exc:
            outcome = f"CALLERROR {exc.code}"
        except OcppError as exc:  # timeout, connection closed, invalid reply
            outcome = f"not delivered ({type(exc).__name__})"
        else:
            outcome = _text(response.status) or "?"
        (_log.info if outcome == "Accepted" else _log.warning)(
            "CertificateSigned sent",
            station_id=station_id,
            serial=issued.serial_hex,
            outcome=outcome,
        )
        parts = [f"serial={issued.serial_hex}", f"type={use or 'ChargingStation+V2G'}"]
        parts.append(f"notAfter={issued.certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}")
        parts.append(f"CertificateSigned={outcome}")
        tech_info = " ".join(parts)
        await self._record(station_id, CERTIFICATE_ISSUED, issued_at, tech_info)

    async def _record(self, station_id: str, type_: str, at: datetime, tech_info: str) -> None:
        """Store a security event; a storage failure is logged, never raised."""

        async def store(session: AsyncSession) -> None:
            await repositories.ensure_station(session, station_id, now=at)
            await repositories.add_security_event(
                session, station_id, type=type_, timestamp=at, tech_info=tech_info[:255]
            )

        try:
            await self._write(store)
        except Exception:
            _log.exception("certificate event not stored", station_id=station_id, type=type_)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)  # a reference, so the task is not collected half-way
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the deliveries and records in progress (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


def _check_and_sign(
    authority: CertificateAuthority,
    csr_pem: str,
    station_id: str,
    now: datetime,
    certificate_type: str | None,
) -> IssuedCertificate:
    """Runs in a worker thread: both steps are CPU work."""
    csr = authority.check(csr_pem, station_id)
    return authority.sign(csr, now=now, certificate_type=certificate_type)


def _response(m: Any, *, accepted: bool, info: str = "", code: str = "") -> msgspec.Struct:
    """SignCertificateResponse; 2.x Rejected carries statusInfo (1.6 has no such field)."""
    status = m.GenericStatusEnum.ACCEPTED if accepted else m.GenericStatusEnum.REJECTED
    fields: dict[str, Any] = {"status": status}
    if not accepted and hasattr(m, "StatusInfo"):
        fields["status_info"] = m.StatusInfo(reason_code=code, additional_info=info[:512])
    response: msgspec.Struct = m.SignCertificateResponse(**fields)
    return response


def _text(value: Any) -> str | None:
    """An optional enum field as its wire text (None when unset)."""
    if value is None or value is _UNSET:
        return None
    return str(value.value if hasattr(value, "value") else value)
