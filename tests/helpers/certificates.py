"""Test certificates made with ``cryptography``, and the CSMS side of M05 / A02 sent by our
CSMS: shared by the station's certificate, firmware and TLS tests and the CSMS's
certificate-signing tests.

* :func:`make_cert` / :func:`make_ca` / :func:`sign` / :func:`pem`: a minimal X.509 PKI (CN
  only, SHA-256, valid from a day ago by default) — roots, sub-CAs, leaves, and certificates
  for a CSR the way a CA signs it (A02: the CSMS's CA; the firmware's signing certificate);
* :func:`install_root` (M05 InstallCertificate of the CSMS root) and :func:`trigger_csr`
  (A02: 1.6 ExtendedTriggerMessage SignChargePointCertificate, 2.0.1 TriggerMessage
  SignChargingStationCertificate), sent by our CSMS over the station's live connection.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ocppkit.messages import v16, v201
from ocppkit.node import RunningCsms

__all__ = [
    "ROOT_TYPE",
    "Key",
    "install_root",
    "make_ca",
    "make_cert",
    "pem",
    "sign",
    "trigger_csr",
]

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

ROOT_TYPE = {"1.6": "CentralSystemRootCertificate", "2.0.1": "CSMSRootCertificate"}
"""The certificate type of the CSMS root per version (InstallCertificate, M05)."""


def make_cert(
    name: str,
    key: Key,
    issuer: tuple[Key, x509.Certificate] | None = None,
    *,
    ca: bool = False,
    valid_days: tuple[int, int] = (-1, 365),
) -> x509.Certificate:
    """A certificate for ``key``: self-signed, or issued by ``issuer`` (key, certificate)."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    signer, issuer_name = (key, subject) if issuer is None else (issuer[0], issuer[1].subject)
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=valid_days[0]))
        .not_valid_after(now + timedelta(days=valid_days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


def make_ca(
    name: str,
    issuer: tuple[Key, x509.Certificate] | None = None,
    *,
    valid_days: tuple[int, int] = (-1, 365),
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A CA with a new EC key (valid for a year by default): self-signed, or a sub-CA of
    ``issuer``; (key, certificate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key, make_cert(name, key, issuer, ca=True, valid_days=valid_days)


def sign(
    csr: x509.CertificateSigningRequest,
    ca_key: Key,
    ca: x509.Certificate,
    *,
    valid_days: tuple[int, int] = (-1, 365),
) -> x509.Certificate:
    """The CA's certificate for the CSR, valid from/to ``valid_days`` around now."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=valid_days[0]))
        .not_valid_after(now + timedelta(days=valid_days[1]))
        .sign(ca_key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


async def install_root(node: RunningCsms, station_id: str, version: str, root_pem: str) -> str:
    """M05 InstallCertificate of the CSMS root, sent by our CSMS; the station's status."""
    connection = node.service.connections[station_id]
    if version == "1.6":
        reply = await connection.call(
            "InstallCertificate",
            v16.InstallCertificateRequest(
                certificate_type=v16.CertificateUseEnum(ROOT_TYPE[version]), certificate=root_pem
            ),
        )
    else:
        reply = await connection.call(
            "InstallCertificate",
            v201.InstallCertificateRequest(
                certificate_type=v201.InstallCertificateUseEnum(ROOT_TYPE[version]),
                certificate=root_pem,
            ),
        )
    return str(reply.status)


async def trigger_csr(node: RunningCsms, station_id: str, version: str) -> str:
    """A02: our CSMS asks for a CSR (1.6 ExtendedTriggerMessage SignChargePointCertificate,
    2.0.1 TriggerMessage SignChargingStationCertificate); the station's status."""
    connection = node.service.connections[station_id]
    if version == "1.6":
        reply = await connection.call(
            "ExtendedTriggerMessage",
            v16.ExtendedTriggerMessageRequest(
                requested_message=v16.MessageTriggerEnum("SignChargePointCertificate")
            ),
        )
    else:
        reply = await connection.call(
            "TriggerMessage",
            v201.TriggerMessageRequest(
                requested_message=v201.MessageTriggerEnum("SignChargingStationCertificate")
            ),
        )
    return str(reply.status)
