"""A station's certificates: installed roots by type, its own certificates and keys, CSRs.

- Roots (1.6 Security whitepaper "InstallCertificate" / 2.0.1 M05): PEM strings kept by
  certificate type (1.6 CentralSystemRootCertificate, ManufacturerRootCertificate; 2.0.1
  CSMSRootCertificate, ManufacturerRootCertificate, V2GRootCertificate, MORootCertificate).
  :meth:`CertificateStore.install` refuses what is invalid or incorrect (M05.FR.06): a PEM
  that does not parse, a certificate outside its validity period, one whose basic
  constraints say it is not a CA, a self-signed one whose signature does not verify.
- Hash data (2.0.1 CertificateHashDataType, as OCSP's CertID, RFC 6960 §4.1.1): SHA256 of
  the DER issuer name, SHA256 of the issuer's public key (the subjectPublicKey BIT STRING
  contents), the serial number as hex without leading zeroes. :class:`HashData` and
  :func:`hash_data` are :mod:`ocppkit.protocol.certificate_hash`'s (shared with the CSMS,
  which checks a 2.1 station's ``hashRootCertificate``), re-exported here.
- The station's own certificates, one per *use* (2.0.1 CertificateSigningUseEnumType):
  ``ChargingStationCertificate`` (the TLS client certificate towards the CSMS; 1.6 calls it
  the Charge Point certificate) and ``V2GCertificate`` (the ISO 15118 SECC certificate, kept
  apart: it chains to another root and is reported as V2GCertificateChain, M03).
  :meth:`CertificateStore.make_csr` makes a fresh EC P-256 key pair and a CSR (A02.FR.02/03);
  the private key stays in the store (A02.FR.05) until :meth:`CertificateStore.accept_signed`
  installs a chain that passes :func:`verify_chain` (A02.FR.06): every certificate within
  its validity period, each one signed by the next, every issuer a CA, the last one issued
  by (or equal to) an installed root of the use's type, and the leaf's public key the
  pending private key's.

- Capacity (1.6 whitepaper M05.FR.03, key ``CertificateStoreMaxLength``; 2.0.1 the maxLimit
  of ``SecurityCtrlr.CertificateEntries``): :meth:`CertificateStore.install` with
  ``max_entries`` refuses (:class:`StoreFullError`, status Rejected: "the CPO tries to install
  more certificates than allowed") a root that would leave more than that many roots
  installed. Counted: the roots M05 installs (:meth:`CertificateStore.count`), not the
  station's own certificates, which A02/A03 replace one for one. Re-installing an identical
  root, or a replacement that does not grow the store, is allowed when it is full.
- ``AdditionalRootCertificateCheck`` (1.6 whitepaper M05.FR.08-13, 2.0.1 SecurityCtrlr, M05):
  ``install(..., replace_signed=True)`` keeps one root of the type plus a fallback: a new
  root must be signed by the installed root of that type it replaces (not by a fallback still
  kept), which stays as the fallback (:attr:`CertificateStore.fallback`) while the others go;
  one not signed by it is Rejected. :meth:`CertificateStore.drop_fallbacks` removes the
  fallbacks once a connection's server certificate was verified without them (M05.FR.12;
  ``trusted_pem(fallback=False)`` is that trust, the runtime tries it first, M05.FR.13). A
  root no longer installed but the issuer of an installed one is kept aside
  (:attr:`CertificateStore.issuers`) so the hash data of its child keeps the right
  issuerKeyHash (RFC 6960 CertID).
- Renewal retries (A03): :func:`renewal_retry_delay` is the wait before an A03 renewal that
  got no certificate starts again.
- The old charging-station certificate (2.0.1 errata 2025-01 A02.FR.10/28/29,
  A03.FR.10/24/25; the 1.6 whitepaper's A02.FR.10 recommends keeping it as a fallback):
  :meth:`CertificateStore.accept_signed` keeps the chain and key in use before
  (:attr:`OwnCertificate.previous_chain`) while the new one has not carried a connection
  (:attr:`OwnCertificate.unconfirmed`), so the station can fall back to it when it cannot
  connect with the new one (:meth:`CertificateStore.client_certificate` with ``previous``);
  the first connection with either one discards the other
  (:meth:`CertificateStore.confirm_client_certificate`). Which one an attempt presents, and
  when to switch, is the runtime's (:meth:`.station.Station._client_certificate_failed`).

Which root anchors which use (A02.FR.06 "part of the Charging Station Operator certificate
hierarchy"): the station's only CPO-hierarchy trust anchor is the CSMS root
(2.0.1 ``CSMSRootCertificate``, 1.6 ``CentralSystemRootCertificate``), so the charging-station
certificate must chain to one of those; a V2G certificate to a ``V2GRootCertificate``.
Manufacturer roots verify firmware signatures and never anchor the station's own
certificate (:data:`ANCHORS_V16`, :data:`ANCHORS_V201`).

The runtime (:mod:`.station`) builds its TLS client context from this store: it trusts
:meth:`CertificateStore.trusted_pem` (plus ``StationConfig.ca_file``) and presents
:meth:`CertificateStore.client_certificate` when the store has one.

Pure: no I/O, no clock reads (the caller passes ``now``); persisted with the station state
through :meth:`CertificateStore.to_dict` / :meth:`CertificateStore.from_dict`.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocppkit.protocol.certificate_hash import HASH_ALGORITHMS, HashData, hash_data
from ocppkit.station.backoff import BackoffSettings, backoff_delay

__all__ = [
    "ANCHORS_V16",
    "ANCHORS_V201",
    "CSMS_ROOT_TYPES",
    "CS_USE",
    "MAX_RENEWAL_RETRY",
    "V2G_USE",
    "CertificateError",
    "CertificateStore",
    "HashData",
    "OwnCertificate",
    "StoreFullError",
    "hash_data",
    "parse_chain",
    "renewal_retry_delay",
    "verify_chain",
]

ROOT_TYPES_V16 = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
ROOT_TYPES_V201 = (
    "CSMSRootCertificate",
    "ManufacturerRootCertificate",
    "V2GRootCertificate",
    "MORootCertificate",
)
CS_USE = "ChargingStationCertificate"
"""The use of the station's TLS client certificate (and what :meth:`CertificateStore.find`
reports for it)."""
V2G_USE = "V2GCertificate"
"""The use of the station's ISO 15118 certificate (2.0.1)."""
OWN_TYPE = CS_USE
V2G_CHAIN_TYPE = "V2GCertificateChain"
"""2.0.1 GetCertificateIdUseEnumType for the V2G certificate and its sub-CAs (M03)."""

ANCHORS_V16: Mapping[str, tuple[str, ...]] = {CS_USE: ("CentralSystemRootCertificate",)}
"""1.6: the root types a signed certificate of each use must chain to (A02.FR.06)."""
ANCHORS_V201: Mapping[str, tuple[str, ...]] = {
    CS_USE: ("CSMSRootCertificate",),
    V2G_USE: ("V2GRootCertificate",),
}
"""2.0.1: the root types a signed certificate of each use must chain to (A02.FR.06)."""

#: CertificateHashDataChainType.childCertificateHashData holds at most this many (M03).
MAX_CHILD_HASHES = 4

CSMS_ROOT_TYPES = ("CentralSystemRootCertificate", "CSMSRootCertificate")
"""The root types ``AdditionalRootCertificateCheck`` restricts (1.6, 2.0.1)."""

MAX_RENEWAL_RETRY = 86400.0
"""Longest wait (s) before an A03 renewal that got no certificate starts again: at least
daily while the certificate is about to expire."""
MIN_RENEWAL_RETRY = 1.0
"""Shortest such wait (s), whatever CertSigningWaitMinimum says (0 would spin)."""


class CertificateError(ValueError):
    """A certificate the station refuses: it does not parse, is outside its validity
    period, does not chain to an installed root of the right type, or is not for the
    pending key. The message says which (it becomes the security event's techInfo)."""


class StoreFullError(CertificateError):
    """The root would leave more certificates installed than the store holds (1.6
    whitepaper M05.FR.03: status Rejected, "no more space to install more certificates")."""


def parse_chain(pem: str) -> list[x509.Certificate]:
    """All certificates of a PEM string (leaf first); :class:`CertificateError` if none."""
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None
    if not certs:
        raise CertificateError("no certificate")
    return certs


def renewal_retry_delay(
    failures: int, wait_minimum: float, repeat_times: int, rng: random.Random
) -> float:
    """Seconds before the A03 renewal starts again after ``failures`` (0-based) renewals of the
    same certificate ended without one.

    Why: A02.FR.19 stops the repetitions of one SignCertificate flow, but A03.FR.02's cause
    (the certificate expires within a month) stays true, so the station starts a fresh flow
    by itself. The waits continue the flow's own doubling (A02.FR.17/18): the first is
    ``CertSigningWaitMinimum * 2**(CertSigningRepeatTimes + 1)``, the one the flow would have
    waited next, and each following one doubles (:func:`.backoff.backoff_delay`, plus up to
    a tenth of the first at random, so a fleet renewed together does not retry together),
    never more than :data:`MAX_RENEWAL_RETRY` (daily) nor less than :data:`MIN_RENEWAL_RETRY`.
    """
    first = max(MIN_RENEWAL_RETRY, math.ldexp(max(wait_minimum, 0.0), min(repeat_times + 1, 64)))
    if first >= MAX_RENEWAL_RETRY:
        return MAX_RENEWAL_RETRY
    doublings = math.ceil(math.log2(MAX_RENEWAL_RETRY / first))
    settings = BackoffSettings(wait_minimum=first, random_range=first / 10, repeat_times=doublings)
    return min(MAX_RENEWAL_RETRY, backoff_delay(failures, rng, settings))


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _name(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()[:80]


def _valid_at(cert: x509.Certificate, now: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """``parent``'s subject is ``child``'s issuer and ``parent``'s key signed ``child``."""
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _is_ca(cert: x509.Certificate, *, required: bool) -> bool:
    """The basic constraints say CA; without the extension: ``not required``."""
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return not required
    return constraints.ca


def verify_chain(
    chain: Sequence[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    now: datetime.datetime,
) -> x509.Certificate:
    """Check a leaf-first chain against trust ``anchors`` at ``now`` (A02.FR.06); return the
    anchor it chains to, else raise :class:`CertificateError` saying why.

    Every certificate must be within its validity period; walking from the leaf, each one
    must be issued (name and signature) by an anchor — then the chain is good, whatever
    follows (a chain may end with the root itself) — or by the next certificate of the
    chain, which must be a CA (basic constraints present with cA true). An anchor outside
    its own validity period anchors nothing.
    """
    if not chain:
        raise CertificateError("empty certificate chain")
    for cert in chain:
        if not _valid_at(cert, now):
            raise CertificateError(
                f"certificate {_name(cert)} is not valid now (valid "
                f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})"
            )
    usable = [a for a in anchors if _valid_at(a, now)]
    current = chain[0]
    for parent in [*chain[1:], None]:
        for anchor in usable:
            if _issued_by(current, anchor):
                return anchor
        if parent is None:
            break
        if not _issued_by(current, parent):
            raise CertificateError(f"{_name(current)} is not issued by {_name(parent)}")
        if not _is_ca(parent, required=True):
            raise CertificateError(f"{_name(parent)} is not a CA certificate")
        current = parent
    raise CertificateError(f"{_name(current)} does not chain to an installed root")


@dataclasses.dataclass
class OwnCertificate:
    """The station's certificate of one use: the installed chain (leaf first) with its key,
    and the key and CSR of a signing request still waiting for its certificate."""

    chain: list[str] = dataclasses.field(default_factory=list)
    key: str | None = None
    """PEM (PKCS8) of the key of :attr:`chain`."""
    pending_key: str | None = None
    """PEM of the key of the last CSR, until a matching chain is accepted (A02.FR.05)."""
    pending_csr: str | None = None
    """The last CSR (PEM), resent as it is while no certificate comes (A02.FR.17)."""
    unconfirmed: bool = False
    """:attr:`chain` was accepted and has not carried a connection yet (A02.FR.28): the
    certificate in use before it is kept (:attr:`previous_chain`) as the fallback."""
    previous_chain: list[str] = dataclasses.field(default_factory=list)
    """While :attr:`unconfirmed`: the chain in use before :attr:`chain` (leaf first); empty
    when there was none in the store (the configured ``client_cert`` file, or nothing)."""
    previous_key: str | None = None
    """The key of :attr:`previous_chain`."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OwnCertificate:
        """Restore :meth:`to_dict`; a blob from before the fallback fields is a confirmed
        certificate without a previous one."""
        return cls(
            chain=[str(p) for p in data.get("chain", [])],
            key=data.get("key"),
            pending_key=data.get("pending_key"),
            pending_csr=data.get("pending_csr"),
            unconfirmed=bool(data.get("unconfirmed", False)),
            previous_chain=[str(p) for p in data.get("previous_chain", [])],
            previous_key=data.get("previous_key"),
        )


class CertificateStore:
    """One station's installed roots, own certificates (per use) and pending keys."""

    def __init__(self) -> None:
        self.roots: dict[str, list[str]] = {}
        """certificate type -> PEM strings."""
        self.own: dict[str, OwnCertificate] = {}
        """use (:data:`CS_USE`, :data:`V2G_USE`) -> the station's certificate of that use."""
        self.fallback: dict[str, str] = {}
        """certificate type -> the root a signed replacement replaced, kept installed as the
        fallback until the station connected again (M05.FR.11/12)."""
        self.issuers: list[str] = []
        """Roots no longer installed that issued an installed one (for its hash data)."""

    # -- roots ------------------------------------------------------------------------------

    def install(
        self,
        cert_type: str,
        pem: str,
        now: datetime.datetime | None = None,
        *,
        max_entries: int | None = None,
        replace_signed: bool = False,
    ) -> HashData:
        """M05: add a root of ``cert_type`` (replacing an identical one); its hash data.

        :class:`CertificateError` (M05.FR.06, status Rejected) for a PEM that does not
        parse, a certificate not valid at ``now`` (None: not checked), one whose basic
        constraints say it is not a CA, or a self-signed one whose signature is wrong.
        ``replace_signed`` (``AdditionalRootCertificateCheck``, M05.FR.09-11): with roots of
        the type installed, the new one must be signed by one of them (else
        :class:`CertificateError`, M05.FR.10), which stays as :attr:`fallback` while the
        other roots of the type go. ``max_entries``: :class:`StoreFullError` when more roots
        than that would be installed afterwards (M05.FR.03). Nothing changes on an error.
        """
        (cert,) = parse_chain(pem)[:1]
        if now is not None and not _valid_at(cert, now):
            raise CertificateError(f"certificate {_name(cert)} is not valid now")
        if not _is_ca(cert, required=False):
            raise CertificateError(f"{_name(cert)} is not a CA certificate")
        if cert.issuer == cert.subject and not _issued_by(cert, cert):
            raise CertificateError(f"the self-signature of {_name(cert)} does not verify")
        data = hash_data(cert, self._issuer_of(cert))
        current = self.roots.get(cert_type, [])
        same = [p for p in current if self._data_of(p) == data]
        kept = [p for p in current if p not in same]
        fallback = None
        if replace_signed and kept and not same:
            # The root it replaces is an installed one, not a fallback kept from before
            # (unless only the fallback is left): M05.FR.09 "signed by the old" root.
            signers = [p for p in kept if p != self.fallback.get(cert_type)] or kept
            fallback = next(
                (p for p in reversed(signers) if _issued_by(cert, parse_chain(p)[0])), None
            )
            if fallback is None:
                raise CertificateError(
                    f"{_name(cert)} is not signed by the installed {cert_type} it replaces"
                )
            kept = [fallback]
        if max_entries is not None:
            after = self.count() - len(current) + len(kept) + 1
            if after > max_entries:
                raise StoreFullError(
                    f"the certificate store is full ({self.count()} of {max_entries})"
                )
        removed = [p for p in current if p not in kept and p not in same]
        self.roots[cert_type] = [*kept, _pem(cert)]
        if fallback is not None:
            self.fallback[cert_type] = fallback
        elif self.fallback.get(cert_type) in removed:
            del self.fallback[cert_type]
        self._retire(removed)
        return data

    def count(self) -> int:
        """How many roots are installed (fallbacks included): what the capacity counts."""
        return sum(len(pems) for pems in self.roots.values())

    def drop_fallbacks(self) -> list[str]:
        """M05.FR.12: the station connected again with the new roots: remove the fallbacks
        kept by ``install(..., replace_signed=True)``; the types whose fallback went."""
        dropped = []
        for cert_type, pem in list(self.fallback.items()):
            del self.fallback[cert_type]
            pems = self.roots.get(cert_type, [])
            if pem in pems:
                pems.remove(pem)
                dropped.append(cert_type)
                self._retire([pem])
        return dropped

    def _retire(self, removed: Sequence[str]) -> None:
        """``removed`` roots stay in :attr:`issuers` while they issued an installed root."""
        installed = [parse_chain(p)[0] for pems in self.roots.values() for p in pems]
        keep = [*self.issuers, *removed]
        self.issuers = [
            p
            for i, p in enumerate(keep)
            if p not in keep[:i]
            and not any(p in pems for pems in self.roots.values())
            and any(
                c.issuer == parse_chain(p)[0].subject and c.issuer != c.subject for c in installed
            )
        ]

    def installed(
        self, cert_types: list[str] | None = None, *, algorithm: str = "SHA256"
    ) -> list[tuple[str, HashData]]:
        """(type, hash data under ``algorithm``) of the installed roots, of ``cert_types``
        (None: all)."""
        return [
            (t, self._data_of(pem, algorithm))
            for t, pems in self.roots.items()
            if cert_types is None or t in cert_types
            for pem in pems
        ]

    def trusted_pem(
        self, cert_types: Sequence[str] = CSMS_ROOT_TYPES, *, fallback: bool = True
    ) -> str:
        """The installed roots of ``cert_types`` as one PEM text ("" when none): what the
        station's TLS client trusts for the CSMS's server certificate (M05; 1.6 whitepaper
        InstallCertificate). ``fallback``: include the fallback roots kept by
        ``AdditionalRootCertificateCheck``; without them it is the trust a connection must
        be verified with before the fallbacks go (M05.FR.12), with them the trust a server
        certificate the new root does not verify is tried with again (M05.FR.13)."""
        return "".join(
            p
            for t in cert_types
            for p in self.roots.get(t, [])
            if fallback or p != self.fallback.get(t)
        )

    def has_fallback(self, cert_types: Sequence[str] = CSMS_ROOT_TYPES) -> bool:
        """A fallback root of ``cert_types`` is installed (M05.FR.11)."""
        return any(self.fallback.get(t) in self.roots.get(t, []) for t in cert_types)

    def anchors(self, cert_types: Sequence[str]) -> list[x509.Certificate]:
        """The installed roots of ``cert_types``, parsed."""
        return [parse_chain(p)[0] for t in cert_types for p in self.roots.get(t, [])]

    def find(self, wanted: dict[str, Any]) -> str | None:
        """The type of the installed certificate with this hash data (the charging-station
        certificate reports :data:`CS_USE`, the V2G one :data:`V2G_CHAIN_TYPE`), None if
        there is none. The hash data may use any of the three algorithms (2.1 lets the CSMS
        choose; the certificate's hashes are computed in the one it names)."""
        algorithm = _algorithm_of(wanted)
        if algorithm is None:
            return None
        for use in (CS_USE, V2G_USE):
            data = self.own_hash_data(use, algorithm=algorithm)
            if data is not None and data.matches(wanted):
                return OWN_TYPE if use == CS_USE else V2G_CHAIN_TYPE
        for cert_type, data in self.installed(algorithm=algorithm):
            if data.matches(wanted):
                return cert_type
        return None

    def delete(self, wanted: dict[str, Any]) -> str:
        """M04: Accepted (removed), NotFound, or Failed for the charging-station certificate
        (M04.FR.05: it cannot be deleted this way). The V2G certificate may be deleted."""
        found = self.find(wanted)
        if found is None:
            return "NotFound"
        if found == OWN_TYPE:
            return "Failed"
        if found == V2G_CHAIN_TYPE:
            v2g = self.own[V2G_USE]
            v2g.chain, v2g.key = [], None
            return "Accepted"
        algorithm = _algorithm_of(wanted) or "SHA256"  # find() has checked it
        gone = [p for p in self.roots[found] if self._data_of(p, algorithm).matches(wanted)]
        self.roots[found] = [p for p in self.roots[found] if p not in gone]
        if not self.roots[found]:
            del self.roots[found]
        if self.fallback.get(found) in gone:
            del self.fallback[found]
        self._retire(gone)
        return "Accepted"

    def _data_of(self, pem: str, algorithm: str = "SHA256") -> HashData:
        cert = parse_chain(pem)[0]
        return hash_data(cert, self._issuer_of(cert), algorithm=algorithm)

    def _issuer_of(self, cert: x509.Certificate) -> x509.Certificate | None:
        if cert.issuer == cert.subject:
            return None
        for pem in [*(p for pems in self.roots.values() for p in pems), *self.issuers]:
            other = parse_chain(pem)[0]
            if other.subject == cert.issuer:
                return other
        return None

    # -- the station's own certificates --------------------------------------------------

    def slot(self, use: str) -> OwnCertificate:
        """The station's certificate of ``use`` (created empty on first use)."""
        return self.own.setdefault(use, OwnCertificate())

    @property
    def own_chain(self) -> list[str]:
        """The charging-station certificate chain (leaf first; empty: none)."""
        return self.own[CS_USE].chain if CS_USE in self.own else []

    @property
    def own_key(self) -> str | None:
        return self.own[CS_USE].key if CS_USE in self.own else None

    @property
    def pending_key(self) -> str | None:
        return self.own[CS_USE].pending_key if CS_USE in self.own else None

    @property
    def unconfirmed(self) -> bool:
        """A new charging-station certificate has not carried a connection yet: the one
        before it is kept as the fallback (A02.FR.28)."""
        return CS_USE in self.own and self.own[CS_USE].unconfirmed

    def client_certificate(self, *, previous: bool = False) -> tuple[list[str], str] | None:
        """The charging-station chain (leaf first) and key a TLS connection presents: the
        newest one, or with ``previous`` the one in use before an :attr:`unconfirmed` new
        one (A02.FR.28 fallback). None: the store has none to give (the configured
        ``client_cert`` file, if any, is what is left)."""
        slot = self.own.get(CS_USE)
        if slot is None:
            return None
        if previous and slot.unconfirmed:
            chain, key = slot.previous_chain, slot.previous_key
        else:
            chain, key = slot.chain, slot.key
        return (list(chain), key) if chain and key else None

    def confirm_client_certificate(self, *, previous: bool) -> str | None:
        """A02.FR.10 / A03.FR.10 (errata 2025-01): the station connected with the new
        certificate (``previous`` False) or the old one (True): the one not in use is
        discarded. Returns None when there was no choice to make (nothing unconfirmed),
        ``"confirmed"`` when the new one stays, ``"discarded"`` when the new one went and the
        old one is the station's certificate again (A02.FR.29: then report
        DiscardedRenewedClientCertificate)."""
        slot = self.own.get(CS_USE)
        if slot is None or not slot.unconfirmed:
            return None
        outcome = "confirmed"
        if previous:
            slot.chain, slot.key = slot.previous_chain, slot.previous_key
            outcome = "discarded"
        slot.unconfirmed, slot.previous_chain, slot.previous_key = False, [], None
        return outcome

    def make_csr(self, common_name: str, organization: str, use: str = CS_USE) -> str:
        """A fresh EC P-256 key (kept pending for ``use``) and a PEM CSR for it (A02.FR.02,
        A02.FR.03; CN ``common_name``, O ``organization``, A02.FR.13)."""
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]
        if organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64]))
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name(attrs))
            .sign(key, hashes.SHA256())
        )
        slot = self.slot(use)
        slot.pending_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        slot.pending_csr = csr.public_bytes(serialization.Encoding.PEM).decode()
        return slot.pending_csr

    def accept_signed(
        self,
        chain_pem: str,
        now: datetime.datetime,
        *,
        anchors: Sequence[str],
        use: str = CS_USE,
    ) -> None:
        """A02/A03 CertificateSigned: install the chain as the station's ``use`` certificate
        if it passes :func:`verify_chain` against the installed roots of the ``anchors``
        types at ``now`` and its leaf is for the pending key; else :class:`CertificateError`
        and nothing changes (A02.FR.07: the certificate is discarded).

        A new charging-station certificate is :attr:`OwnCertificate.unconfirmed` until it
        carried a connection, and the one in use before is kept meanwhile (A02.FR.10/28):
        the one that last connected, so a new one replacing a new one that never connected
        keeps the older one as the fallback."""
        chain = parse_chain(chain_pem)
        slot = self.own.get(use)
        if slot is None or slot.pending_key is None:
            raise CertificateError(f"no pending certificate signing request for {use}")
        key = serialization.load_pem_private_key(slot.pending_key.encode(), None)
        if chain[0].public_key() != key.public_key():
            raise CertificateError("the certificate is not for the station's pending key")
        verify_chain(chain, self.anchors(anchors), now)
        if use == CS_USE and not slot.unconfirmed:
            slot.previous_chain, slot.previous_key = slot.chain, slot.key
            slot.unconfirmed = True
        slot.chain = [_pem(c) for c in chain]
        slot.key, slot.pending_key, slot.pending_csr = slot.pending_key, None, None

    def expires_at(self, use: str = CS_USE) -> datetime.datetime | None:
        """The end of the validity period of the station's ``use`` certificate (None: none)."""
        slot = self.own.get(use)
        if slot is None or not slot.chain:
            return None
        return parse_chain(slot.chain[0])[0].not_valid_after_utc

    def own_hash_data(self, use: str = CS_USE, *, algorithm: str = "SHA256") -> HashData | None:
        """The hash data of the station's ``use`` certificate under ``algorithm`` (None: none
        installed)."""
        slot = self.own.get(use)
        if slot is None or not slot.chain:
            return None
        chain = [parse_chain(p)[0] for p in slot.chain]
        issuer = chain[1] if len(chain) > 1 else self._issuer_of(chain[0])
        return hash_data(chain[0], issuer, algorithm=algorithm)

    def v2g_chain_hash_data(self) -> tuple[HashData, list[HashData]] | None:
        """M03 V2GCertificateChain: the V2G certificate's hash data and its sub-CAs' (at most
        :data:`MAX_CHILD_HASHES`, leaf side first); None without a V2G certificate."""
        leaf = self.own_hash_data(V2G_USE)
        if leaf is None:
            return None
        chain = [parse_chain(p)[0] for p in self.own[V2G_USE].chain]
        children = []
        for i, cert in enumerate(chain[1:], start=1):
            if cert.issuer == cert.subject:
                break  # the root itself is reported as a V2GRootCertificate, not a child
            issuer = chain[i + 1] if i + 1 < len(chain) else self._issuer_of(cert)
            children.append(hash_data(cert, issuer))
        return leaf, children[:MAX_CHILD_HASHES]

    # -- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "roots": {t: list(p) for t, p in self.roots.items()},
            "own": {use: slot.to_dict() for use, slot in self.own.items()},
            "fallback": dict(self.fallback),
            "issuers": list(self.issuers),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CertificateStore:
        """Restore :meth:`to_dict`; a blob of the earlier one-certificate layout
        (``own_chain``/``own_key``/``pending_key``) becomes the charging-station slot."""
        store = cls()
        store.roots = {str(t): [str(p) for p in ps] for t, ps in data.get("roots", {}).items()}
        store.own = {
            str(use): OwnCertificate.from_dict(slot) for use, slot in data.get("own", {}).items()
        }
        store.fallback = {str(t): str(p) for t, p in data.get("fallback", {}).items()}
        store.issuers = [str(p) for p in data.get("issuers", [])]
        if CS_USE not in store.own and (data.get("own_chain") or data.get("pending_key")):
            store.own[CS_USE] = OwnCertificate(
                chain=[str(p) for p in data.get("own_chain", [])],
                key=data.get("own_key"),
                pending_key=data.get("pending_key"),
            )
        return store


def _algorithm_of(wanted: Mapping[str, Any]) -> str | None:
    """The hashAlgorithm a CertificateHashData names (wire or snake_case keys, text or
    enum), None when it is none of SHA256, SHA384 and SHA512."""
    value = wanted.get("hashAlgorithm", wanted.get("hash_algorithm", "SHA256"))
    name = str(getattr(value, "value", value)).upper()
    return name if name in HASH_ALGORITHMS else None
