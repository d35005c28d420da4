"""The CSMS's certificate authority: check a station's CSR, sign it, return the PEM chain.

Why it exists: OCPP's certificate update (2.0.1 A02/A03; the 1.6 Security whitepaper's
"Update Charge Point Certificate by request of Central System" and "... initiated by the
Charge Point", same requirement ids) has the station send a PEM CSR in SignCertificate and
expects the CSMS to return the signed chain in CertificateSigned. The whitepaper lets the
CPO be its own CA ("the CA Server may be a local server"); A02.FR.04 only RECOMMENDS a
dedicated CA server, so the key configured here should be a sub-CA kept for station
certificates alone, never the CSMS's TLS key.

Pure apart from :meth:`CertificateAuthority.from_files`, which reads the PEM files once at
start: checking and signing take the CSR text, the station id and the time, and return
values or raise.

Errors (whose fault, what to answer)::

    ValueError
    ├── CertificateAuthorityError   the operator's CA files are unusable: the CSMS refuses
    │                               to start (one line, like a bad TLS file)
    └── CsrRejected                 the station's CSR fails a check: SignCertificate is
                                    answered Rejected (A02.FR.12 / A03.FR.12)

What a CSR must satisfy (the whitepaper's "Certificate Properties", 2.0.1 A00 alike):

* PEM, one CSR (A02.FR.03: RFC 2986, PEM encoded), its self-signature valid (the station
  holds the private key of the public key it asks to certify), signed with SHA-256/384/512
  (A00.FR.504, A00.FR.506: no SHA-1/MD5);
* exactly one CN, equal to the station id (A00.FR.405 / A00.FR.511 ask for the station's
  serial number; ocppkit's convention under profile 3 is station id = serial number, which
  :mod:`ocppkit.csms.security` checks on every TLS connection, so a certificate with another
  CN could never be used);
* exactly one O (A00.FR.509), equal to ``organization`` (the ``cpo_name`` setting) when one
  is configured (A00.FR.404; the station puts CpoName / SecurityCtrlr.OrganizationName
  there, A02.FR.13);
* a key of at least 112-bit security (A00.FR.501-503): RSA >= 2048 bits or an EC key on
  P-256, P-384, P-521 or a Brainpool curve of the same sizes (BSI TR-02102, A00.FR.504).

What is signed: the CSR's subject and public key, nothing else of the CSR — requested
extensions (subjectAltName in particular, which A00.FR.511 says SHOULD NOT be used) are
ignored. The certificate gets a random 159-bit serial (A00.FR.508), a validity of
``validity_days`` starting ``backdate`` ago (station clocks drift; A02.FR.08 has the station
wait for notBefore) and never outliving the CA, BasicConstraints CA=false, KeyUsage
(A00.FR.512) digitalSignature plus keyAgreement for EC keys or keyEncipherment for RSA keys,
and ExtendedKeyUsage clientAuth for a ChargingStationCertificate (the station is the TLS
client of security profile 3), serverAuth for a V2G certificate (the station is the TLS
server of the ISO 15118 link), both when the type is not given (2.0.1: "for both"). ECDSA
CA keys sign with SHA-256; RSA CA keys sign with RSA-PSS and SHA-256 (A00.FR.505).

The root a 2.1 station names (SignCertificateRequest ``hashRootCertificate``, "the hash of the
root certificate to identify the PKI to use"; (secondary source) A02.FR.27 has a station name
the V2G root its certificate is to be issued under): :meth:`CertificateAuthority.issues_under`
says whether that CertificateHashDataType names the root of this CA's chain, under the
algorithm the station chose (:mod:`ocppkit.protocol.certificate_hash`). The root is the last
certificate of the ``ca_cert`` file when it is self-issued (subject = issuer): then all four
fields must match. When the file stops below the root, the root's key and serial are unknown
and only what is known is compared: the algorithm and ``issuerNameHash`` (a root's issuer
is its subject, the issuer name of the file's last certificate). Put the root in the file to
have it checked in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ocppkit.protocol.certificate_hash import HASH_ALGORITHMS, HashData, hash_data

__all__ = [
    "DEFAULT_BACKDATE",
    "CertificateAuthority",
    "CertificateAuthorityError",
    "CsrRejected",
    "IssuedCertificate",
]

#: How long before "now" a new certificate becomes valid (tolerates station clock drift).
DEFAULT_BACKDATE: Final = timedelta(minutes=5)
#: A00.FR.502: RSA keys of at least 2048 bits.
MIN_RSA_BITS: Final = 2048
#: EC curves with at least 128-bit security: NIST (FIPS 186) and Brainpool (RFC 5639).
ACCEPTED_CURVES: Final = frozenset(
    {"secp256r1", "secp384r1", "secp521r1", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1"}
)
#: A00.FR.504/506: digests a CSR may be self-signed with.
ACCEPTED_DIGESTS: Final = frozenset({"sha256", "sha384", "sha512"})
#: certificateType (2.0.1 CertificateSigningUseEnumType, 2.1 adds V2G20) -> extended key usage.
_EKU: Final = {
    "ChargingStationCertificate": (ExtendedKeyUsageOID.CLIENT_AUTH,),
    "V2GCertificate": (ExtendedKeyUsageOID.SERVER_AUTH,),
    "V2G20Certificate": (ExtendedKeyUsageOID.SERVER_AUTH,),
    None: (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH),
}


class CertificateAuthorityError(ValueError):
    """The CA certificate or key cannot be used; the message is one line for the terminal."""


class CsrRejected(ValueError):
    """A CSR fails a check; the message is short (it goes to the log and a security event)."""


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A signed station certificate and the chain to send in CertificateSigned."""

    certificate: x509.Certificate
    chain_pem: str
    """The leaf, then the CA certificate(s) of the ``ca_cert`` file, PEM."""

    @property
    def serial_hex(self) -> str:
        """The serial number as OCPP's CertificateHashData writes it (hex, no leading 0s)."""
        return format(self.certificate.serial_number, "x")


class CertificateAuthority:
    """Checks CSRs and signs station certificates with one CA key.

    Args:
        chain: the CA certificate that signs, first, then any certificates above it that
            stations should receive with their leaf (e.g. a sub-CA's issuer).
        private_key: the key of ``chain[0]`` (EC or RSA).
        validity_days: how long an issued certificate is valid (capped at the CA's end).
        organization: the O every CSR must carry (``cpo_name``); None: any single O.
        backdate: how long before signing time ``notBefore`` is set.

    Raises:
        CertificateAuthorityError: ``chain[0]`` is not a CA certificate, may not sign
            certificates, does not match the key, or the key type is unsupported.
    """

    def __init__(
        self,
        chain: list[x509.Certificate],
        private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
        *,
        validity_days: int = 365,
        organization: str | None = None,
        backdate: timedelta = DEFAULT_BACKDATE,
    ) -> None:
        if not chain:
            raise CertificateAuthorityError("the CA certificate file holds no certificate")
        certificate = chain[0]
        if not isinstance(private_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CertificateAuthorityError("the CA key must be an EC or RSA key")
        if certificate.public_key() != private_key.public_key():
            raise CertificateAuthorityError("the CA key does not belong to the CA certificate")
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            constraints = None
        if constraints is None or not constraints.value.ca:
            raise CertificateAuthorityError("the CA certificate is not a CA (BasicConstraints)")
        try:
            usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not usage.key_cert_sign:
            raise CertificateAuthorityError("the CA certificate may not sign certificates")
        self.chain = list(chain)
        self.certificate = certificate
        self._key = private_key
        self.validity = timedelta(days=validity_days)
        self.organization = organization
        self.backdate = backdate
        self._chain_pem = "".join(
            c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in chain
        )
        top = chain[-1]
        #: The root of the chain, when the ``ca_cert`` file reaches it (else None).
        self.root = top if top.subject == top.issuer else None
        self._root_hashes = {
            algorithm: _root_hash_data(top, algorithm, known=self.root is not None)
            for algorithm in HASH_ALGORITHMS
        }

    @classmethod
    def from_files(
        cls,
        cert_file: str | Path,
        key_file: str | Path,
        *,
        validity_days: int = 365,
        organization: str | None = None,
        backdate: timedelta = DEFAULT_BACKDATE,
    ) -> CertificateAuthority:
        """Read the CA certificate(s) and its unencrypted private key from PEM files.

        Raises:
            CertificateAuthorityError: a file is unreadable or not PEM of the right kind,
                the key is encrypted, or the pair is unusable (see the class).
        """
        cert_bytes = _read(cert_file, "CA certificate")
        key_bytes = _read(key_file, "CA key")
        try:
            chain = x509.load_pem_x509_certificates(cert_bytes)
        except ValueError:
            raise CertificateAuthorityError(
                f"the CA certificate file {cert_file} holds no PEM certificate"
            ) from None
        try:
            key = serialization.load_pem_private_key(key_bytes, password=None)
        except TypeError:
            raise CertificateAuthorityError(
                f"the CA key file {key_file} is encrypted; give an unencrypted PEM key"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise CertificateAuthorityError(
                f"the CA key file {key_file} holds no PEM private key"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CertificateAuthorityError("the CA key must be an EC or RSA key")
        return cls(
            chain,
            key,
            validity_days=validity_days,
            organization=organization,
            backdate=backdate,
        )

    # -- checking ---------------------------------------------------------------------------

    def issues_under(self, hash_root: Mapping[str, Any]) -> bool:
        """Whether a CertificateHashDataType (wire or snake_case keys) names the root this CA
        chains to: in full when the chain holds the root, else its name only (module
        docstring). An unknown ``hashAlgorithm`` names nothing."""
        algorithm = hash_root.get("hashAlgorithm", hash_root.get("hash_algorithm", ""))
        expected = self._root_hashes.get(str(getattr(algorithm, "value", algorithm)).upper())
        if expected is None:
            return False
        if self.root is not None:
            return expected.matches(hash_root)
        name_hash = hash_root.get("issuerNameHash", hash_root.get("issuer_name_hash", ""))
        return str(name_hash).lower() == expected.issuer_name_hash

    def check(self, csr_pem: str, station_id: str) -> x509.CertificateSigningRequest:
        """The parsed CSR, if it passes every check of the module docstring.

        Raises:
            CsrRejected: the first check it fails.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode("utf-8", "replace"))
        except ValueError:
            raise CsrRejected("not a PEM certificate signing request") from None
        try:
            digest = csr.signature_hash_algorithm
        except UnsupportedAlgorithm:
            raise CsrRejected("unsupported CSR signature algorithm") from None
        if digest is None or digest.name not in ACCEPTED_DIGESTS:
            name = "none" if digest is None else digest.name
            raise CsrRejected(f"CSR signed with {name}; SHA-256 or stronger required")
        try:
            valid = csr.is_signature_valid
        except (InvalidSignature, UnsupportedAlgorithm, ValueError):
            valid = False
        if not valid:
            raise CsrRejected("CSR signature is not valid")
        _check_key(csr)
        common_names = _attributes(csr.subject, NameOID.COMMON_NAME)
        if common_names != [station_id]:
            raise CsrRejected("CSR subject CN is not the station id")
        organizations = _attributes(csr.subject, NameOID.ORGANIZATION_NAME)
        if len(organizations) != 1 or not organizations[0]:
            raise CsrRejected("CSR subject needs exactly one O (organizationName)")
        if self.organization is not None and organizations[0] != self.organization:
            raise CsrRejected("CSR subject O is not the CPO name")
        return csr

    # -- signing ----------------------------------------------------------------------------

    def sign(
        self,
        csr: x509.CertificateSigningRequest,
        *,
        now: datetime,
        certificate_type: str | None = None,
    ) -> IssuedCertificate:
        """Sign a CSR that passed :meth:`check`; ``certificate_type`` chooses the EKU."""
        public_key = csr.public_key()
        not_after = min(now + self.validity, self.certificate.not_valid_after_utc)
        ec_key = isinstance(public_key, ec.EllipticCurvePublicKey)
        builder = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - self.backdate)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=not ec_key,
                    data_encipherment=False,
                    key_agreement=ec_key,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage(list(_EKU.get(certificate_type, _EKU[None]))),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
        )
        if isinstance(self._key, rsa.RSAPrivateKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            certificate = builder.sign(self._key, hashes.SHA256(), rsa_padding=pss)
        else:
            certificate = builder.sign(self._key, hashes.SHA256())
        leaf = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        return IssuedCertificate(certificate, leaf + self._chain_pem)

    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        try:
            ski = self.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key())
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)


def _read(path: str | Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CertificateAuthorityError(
            f"cannot read the {what} file {path}: {exc.strerror or exc}"
        ) from None


def _root_hash_data(top: x509.Certificate, algorithm: str, *, known: bool) -> HashData:
    """The root's hash data; when the root is not known (``top`` is below it) only its name
    hash, with the key hash and serial left empty (they are never compared then)."""
    if known:
        return hash_data(top, algorithm=algorithm)
    name_hash = HASH_ALGORITHMS[algorithm](top.issuer.public_bytes()).hexdigest()
    return HashData(name_hash, "", "", algorithm)


def _attributes(name: x509.Name, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(oid)]


def _check_key(csr: x509.CertificateSigningRequest) -> None:
    """A00.FR.501-503: at least 112-bit security, in a key type TLS stations use."""
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise CsrRejected("unsupported CSR public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CsrRejected(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} required")
        return
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ACCEPTED_CURVES:
            raise CsrRejected(f"EC curve {key.curve.name} is not accepted")
        return
    raise CsrRejected("CSR key must be RSA or EC")
