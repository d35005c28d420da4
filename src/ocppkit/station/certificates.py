"""A station's certificates: installed roots by type, its own key and certificate, CSRs.

- Roots (1.6 Security whitepaper "InstallCertificate" / 2.0.1 M05): PEM strings kept by
  certificate type (1.6 CentralSystemRootCertificate, ManufacturerRootCertificate; 2.0.1
  CSMSRootCertificate, ManufacturerRootCertificate, V2GRootCertificate, MORootCertificate).
- Hash data (2.0.1 CertificateHashDataType, as OCSP's CertID, RFC 6960 §4.1.1): SHA256 of
  the DER issuer name, SHA256 of the issuer's public key (the subjectPublicKey BIT STRING
  contents), the serial number as hex without leading zeroes.
- The station's own certificate (A02/A03): :meth:`CertificateStore.make_csr` makes a fresh
  EC P-256 key pair and a CSR (CN = the serial number or station id, O = the CPO name); the
  private key stays in the store (A02.FR.05) until :meth:`CertificateStore.accept_signed`
  installs a chain whose leaf matches it (and is valid at the station's time).

Pure: no I/O; persisted with the station state through :meth:`to_dict` / :meth:`from_dict`.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "CertificateError",
    "CertificateStore",
    "HashData",
    "hash_data",
    "parse_chain",
]

ROOT_TYPES_V16 = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
ROOT_TYPES_V201 = (
    "CSMSRootCertificate",
    "ManufacturerRootCertificate",
    "V2GRootCertificate",
    "MORootCertificate",
)
OWN_TYPE = "ChargingStationCertificate"
"""The type :meth:`CertificateStore.find` reports for the station's own certificate."""


class CertificateError(ValueError):
    """A PEM that does not parse, or a chain that does not fit the pending key."""


@dataclasses.dataclass(frozen=True)
class HashData:
    """CertificateHashDataType (hashAlgorithm SHA256)."""

    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    hash_algorithm: str = "SHA256"

    def to_wire(self) -> dict[str, str]:
        return {
            "hashAlgorithm": self.hash_algorithm,
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        }

    def matches(self, other: dict[str, Any]) -> bool:
        """Compare with a wire (camelCase) or snake_case dict; hex case-insensitive."""

        def get(camel: str, snake: str) -> str:
            return str(other.get(camel, other.get(snake, ""))).lower()

        serial = get("serialNumber", "serial_number").lstrip("0") or "0"
        return (
            get("hashAlgorithm", "hash_algorithm") == self.hash_algorithm.lower()
            and get("issuerNameHash", "issuer_name_hash") == self.issuer_name_hash
            and get("issuerKeyHash", "issuer_key_hash") == self.issuer_key_hash
            and serial == self.serial_number
        )


def _key_bits(key: Any) -> bytes:
    """The subjectPublicKey BIT STRING contents of a public key (what OCSP hashes)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)  # type: ignore[no-any-return]


def hash_data(cert: x509.Certificate, issuer: x509.Certificate | None = None) -> HashData:
    """The certificate's hash data; ``issuer`` gives the issuer key (None: self-signed)."""
    key_of = issuer if issuer is not None else cert
    return HashData(
        issuer_name_hash=hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
        issuer_key_hash=hashlib.sha256(_key_bits(key_of.public_key())).hexdigest(),
        serial_number=format(cert.serial_number, "x"),
    )


def parse_chain(pem: str) -> list[x509.Certificate]:
    """All certificates of a PEM string (leaf first); :class:`CertificateError` if none."""
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None
    if not certs:
        raise CertificateError("no certificate")
    return certs


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class CertificateStore:
    """One station's installed roots, own certificate chain and pending key."""

    def __init__(self) -> None:
        self.roots: dict[str, list[str]] = {}
        """certificate type -> PEM strings."""
        self.own_chain: list[str] = []
        """The station certificate (leaf first) and the intermediates that came with it."""
        self.own_key: str | None = None
        """PEM (PKCS8) of the key of :attr:`own_chain`."""
        self.pending_key: str | None = None
        """PEM of the key of the last CSR, until a matching chain is accepted."""

    # -- roots ------------------------------------------------------------------------------

    def install(self, cert_type: str, pem: str) -> HashData:
        """Add a root of ``cert_type`` (replacing an identical one); its hash data."""
        (cert,) = parse_chain(pem)[:1]
        data = hash_data(cert, self._issuer_of(cert))
        kept = self.roots.setdefault(cert_type, [])
        for old in list(kept):
            if self._data_of(old) == data:
                kept.remove(old)
        kept.append(_pem(cert))
        return data

    def installed(self, cert_types: list[str] | None = None) -> list[tuple[str, HashData]]:
        """(type, hash data) of the installed roots, of ``cert_types`` (None: all)."""
        return [
            (t, self._data_of(pem))
            for t, pems in self.roots.items()
            if cert_types is None or t in cert_types
            for pem in pems
        ]

    def find(self, wanted: dict[str, Any]) -> str | None:
        """The type of the installed certificate with this hash data (the own one reports
        :data:`OWN_TYPE`), None if there is none."""
        if self.own_chain and self.own_hash_data().matches(wanted):
            return OWN_TYPE
        for cert_type, data in self.installed():
            if data.matches(wanted):
                return cert_type
        return None

    def delete(self, wanted: dict[str, Any]) -> str:
        """M04: Accepted (removed), NotFound, or Failed for the station's own certificate
        (M04.FR.05: it cannot be deleted this way)."""
        found = self.find(wanted)
        if found is None:
            return "NotFound"
        if found == OWN_TYPE:
            return "Failed"
        self.roots[found] = [p for p in self.roots[found] if not self._data_of(p).matches(wanted)]
        if not self.roots[found]:
            del self.roots[found]
        return "Accepted"

    def _data_of(self, pem: str) -> HashData:
        cert = parse_chain(pem)[0]
        return hash_data(cert, self._issuer_of(cert))

    def _issuer_of(self, cert: x509.Certificate) -> x509.Certificate | None:
        if cert.issuer == cert.subject:
            return None
        for pems in self.roots.values():
            for pem in pems:
                other = parse_chain(pem)[0]
                if other.subject == cert.issuer:
                    return other
        return None

    # -- the station's own certificate ----------------------------------------------------

    def make_csr(self, common_name: str, organization: str) -> str:
        """A fresh EC P-256 key (kept as :attr:`pending_key`) and a PEM CSR for it."""
        key = ec.generate_private_key(ec.SECP256R1())
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64])]
        if organization:
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization[:64]))
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name(attrs))
            .sign(key, hashes.SHA256())
        )
        self.pending_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def accept_signed(self, chain_pem: str, now: datetime.datetime | None = None) -> None:
        """A02/A03 CertificateSigned: install the chain if its leaf is for the pending key
        and valid at ``now`` (None: not checked); else :class:`CertificateError`, nothing
        changes."""
        chain = parse_chain(chain_pem)
        if self.pending_key is None:
            raise CertificateError("no pending certificate signing request")
        leaf = chain[0]
        if now is not None and not (leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc):
            raise CertificateError("the certificate is not valid now")
        key = serialization.load_pem_private_key(self.pending_key.encode(), None)
        if _key_bits(chain[0].public_key()) != _key_bits(key.public_key()):
            raise CertificateError("the certificate is not for the station's pending key")
        self.own_chain = [_pem(c) for c in chain]
        self.own_key, self.pending_key = self.pending_key, None

    def own_hash_data(self) -> HashData:
        chain = [parse_chain(p)[0] for p in self.own_chain]
        issuer = chain[1] if len(chain) > 1 else self._issuer_of(chain[0])
        return hash_data(chain[0], issuer)

    # -- persistence ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "roots": {t: list(p) for t, p in self.roots.items()},
            "own_chain": list(self.own_chain),
            "own_key": self.own_key,
            "pending_key": self.pending_key,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CertificateStore:
        store = cls()
        store.roots = {str(t): [str(p) for p in ps] for t, ps in data.get("roots", {}).items()}
        store.own_chain = [str(p) for p in data.get("own_chain", [])]
        store.own_key = data.get("own_key")
        store.pending_key = data.get("pending_key")
        return store
