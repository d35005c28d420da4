"""Station certificate signing: SignCertificate -> CertificateSigned with a configured CA.

2.0.1 A02/A03 and the 1.6 Security whitepaper's "Update Charge Point Certificate" use cases
(same requirement ids): A02.FR.11 Accepted when the CSMS can process the CSR, A02.FR.12
Rejected when it cannot (no CA, a CSR that fails a check), A02.FR.14 the certificateType is
echoed; the CSR and certificate properties of the whitepaper §2.6.1 / 2.0.1 A00
(A00.FR.404/405 O and CN, A00.FR.501-503 key sizes, A00.FR.504/506 digests, A00.FR.508
serial, A00.FR.512 key usage). OCTT: TC_A_11_CSMS (success, then reconnect with the new
certificate), TC_A_14_CSMS (the station rejects the certificate).

The CA is made here with ``cryptography``; the peers are real: mobilityhouse ``ocpp``
ChargePoints (1.6 and 2.0.1, an independent implementation) and our own emulated station,
over loopback WebSockets, against our CSMS with a real SQLite file.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ocpp.routing import on
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201
from sqlalchemy import select

from ocppkit.csms import CsmsSettings
from ocppkit.csms.certificate_authority import (
    CertificateAuthority,
    CertificateAuthorityError,
    CsrRejected,
)
from ocppkit.csms.certificate_signing import CERTIFICATE_ISSUED, CSR_REJECTED
from ocppkit.csms.settings import SettingsError, load_settings
from ocppkit.node import RunningCsms, start_csms
from ocppkit.station.station import StationConfig
from ocppkit.station.store import StationStore
from ocppkit.storage.models import SecurityEvent
from ocppkit.transport.tls import client_context
from tests.helpers.certificates import install_root, trigger_csr
from tests.helpers.mobilityhouse import Station16 as MhStation16
from tests.helpers.mobilityhouse import Station201 as MhStation201
from tests.helpers.security import basic, make_pki, open_socket, register
from tests.station.peers import online, running

CPO = "ocppkit"  # the emulator's default O (1.6 CpoName unset: the vendor; 2.0.1 OrganizationName)
PASSWORD = "0123456789abcdef0123"


# -- a CA and CSRs, made here -----------------------------------------------------------------


@dataclass
class Ca:
    certificate: x509.Certificate
    key: Any
    cert_file: Path
    key_file: Path

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """CsmsSettings keywords: profile 1 (stations authenticated), this CA, O = CPO."""
        values = {
            "security_profile": 1,
            "ca_cert": str(self.cert_file),
            "ca_key": str(self.key_file),
            "cpo_name": CPO,
        }
        return values | overrides


def make_ca(folder: Path, *, use_rsa: bool = False, days: int = 3650, name: str = "CPO") -> Ca:
    key: Any = (
        rsa.generate_private_key(65537, 2048)
        if use_rsa
        else ec.generate_private_key(ec.SECP256R1())
    )
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CPO),
            x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Station CA"),
        ]
    )
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return write_ca(folder, name, [certificate], key)


def write_ca(folder: Path, name: str, chain: list[x509.Certificate], key: Any) -> Ca:
    """Write a CA's ``chain`` (its own certificate first) and key as the CSMS's ``ca_cert`` /
    ``ca_key`` files ``<name>-ca.pem`` and ``<name>-ca-key.pem``."""
    cert_file, key_file = folder / f"{name}-ca.pem", folder / f"{name}-ca-key.pem"
    cert_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Ca(chain[0], key, cert_file, key_file)


@pytest.fixture
def ca(tmp_path: Path) -> Ca:
    return make_ca(tmp_path)


def make_csr(
    common_name: str | None,
    organization: str | None = CPO,
    *,
    key: Any = None,
) -> tuple[str, Any]:
    """A PEM CSR (and its key) with the given subject, as a station makes it (A02.FR.02/03)."""
    key = key if key is not None else ec.generate_private_key(ec.SECP256R1())
    attributes = []
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if common_name is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM).decode(), key


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 128:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def sha1_csr(station_id: str) -> str:
    """A CSR self-signed with ECDSA-SHA1 (``cryptography`` no longer builds one: assembled
    here from RFC 2986's CertificationRequest = info, algorithm, signature)."""
    pem, key = make_csr(station_id)
    info = x509.load_pem_x509_csr(pem.encode()).tbs_certrequest_bytes
    signature = key.sign(info, ec.ECDSA(hashes.SHA1()))
    ecdsa_with_sha1 = _der(0x30, bytes.fromhex("06072a8648ce3d0401"))
    der = _der(0x30, info + ecdsa_with_sha1 + _der(0x03, b"\x00" + signature))
    return x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM).decode()


def tampered_csr(station_id: str) -> str:
    """A CSR whose CN was changed after signing: it parses, its signature does not verify."""
    forged = station_id[:-1] + ("X" if station_id[-1] != "X" else "Y")
    pem, _ = make_csr(forged)
    der = x509.load_pem_x509_csr(pem.encode()).public_bytes(serialization.Encoding.DER)
    der = der.replace(forged.encode(), station_id.encode())
    csr = x509.load_der_x509_csr(der)
    assert not csr.is_signature_valid
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def chain_of(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def subject(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


# -- the CA on its own (pure) -------------------------------------------------------------------


def test_a02_signed_certificate_properties(ca: Ca) -> None:
    """The issued leaf: issued by the CA and verifiable with its key, the CSR's subject and
    key, a random serial (A00.FR.508), BasicConstraints CA=false, KeyUsage digitalSignature
    + keyAgreement for EC (A00.FR.512), EKU clientAuth for a ChargingStationCertificate,
    validity from a little before now for certificate_validity_days; the chain is leaf + CA."""
    authority = CertificateAuthority([ca.certificate], ca.key, validity_days=30, organization=CPO)
    pem, key = make_csr("CP-1")
    now = datetime.now(UTC).replace(microsecond=0)
    issued = authority.sign(
        authority.check(pem, "CP-1"), now=now, certificate_type="ChargingStationCertificate"
    )
    leaf, issuer = chain_of(issued.chain_pem)
    assert issuer == ca.certificate and leaf == issued.certificate
    leaf.verify_directly_issued_by(ca.certificate)
    assert subject(leaf, NameOID.COMMON_NAME) == ["CP-1"]
    assert subject(leaf, NameOID.ORGANIZATION_NAME) == [CPO]
    assert leaf.public_key() == key.public_key()
    assert leaf.serial_number > 1 << 64 and issued.serial_hex == format(leaf.serial_number, "x")
    constraints = leaf.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_agreement and not usage.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.not_valid_before_utc < now <= leaf.not_valid_after_utc
    assert leaf.not_valid_after_utc == now + timedelta(days=30)
    other = authority.sign(authority.check(pem, "CP-1"), now=now)
    assert other.certificate.serial_number != leaf.serial_number


def test_v2g_and_untyped_requests_get_their_key_usage(ca: Ca) -> None:
    """2.0.1 CertificateSigningUseEnumType: a V2GCertificate is the ISO 15118 TLS server's
    (serverAuth); without certificateType the certificate serves both links (both EKUs)."""
    authority = CertificateAuthority([ca.certificate], ca.key)
    csr = authority.check(make_csr("CP-1")[0], "CP-1")
    now = datetime.now(UTC)

    def eku(certificate_type: str | None) -> list[x509.ObjectIdentifier]:
        leaf = authority.sign(csr, now=now, certificate_type=certificate_type).certificate
        return list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)

    assert eku("V2GCertificate") == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert eku(None) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]


def test_validity_never_outlives_the_ca(tmp_path: Path) -> None:
    """A certificate valid after its issuer would fail path validation (RFC 5280 §6)."""
    short = make_ca(tmp_path, days=10)
    authority = CertificateAuthority([short.certificate], short.key, validity_days=365)
    leaf = authority.sign(
        authority.check(make_csr("CP-1")[0], "CP-1"), now=datetime.now(UTC)
    ).certificate
    assert leaf.not_valid_after_utc == short.certificate.not_valid_after_utc


def test_a00_fr_505_rsa_ca_signs_with_rsa_pss_and_rsa_keys_get_key_encipherment(
    tmp_path: Path,
) -> None:
    """A00.FR.505: RSA-PSS (or ECDSA) for CA signatures; an RSA station key gets
    keyEncipherment instead of keyAgreement (A00.FR.512)."""
    rsa_ca = make_ca(tmp_path, use_rsa=True)
    authority = CertificateAuthority([rsa_ca.certificate], rsa_ca.key)
    pem, _ = make_csr("CP-1", key=rsa.generate_private_key(65537, 2048))
    leaf = authority.sign(authority.check(pem, "CP-1"), now=datetime.now(UTC)).certificate
    assert isinstance(leaf.signature_algorithm_parameters, padding.PSS)
    leaf.verify_directly_issued_by(rsa_ca.certificate)
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_encipherment and not usage.key_agreement


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        pytest.param(lambda: "not a csr", "not a PEM", id="A02.FR.03-not-PEM"),
        pytest.param(lambda: tampered_csr("CP-1"), "signature is not valid", id="bad-signature"),
        pytest.param(lambda: make_csr("CP-2")[0], "CN is not the station id", id="A00.FR.405-CN"),
        pytest.param(lambda: make_csr(None)[0], "CN is not the station id", id="A00.FR.405-no-CN"),
        pytest.param(lambda: make_csr("CP-1", "Other CPO")[0], "O is not the CPO", id="A00.FR.404"),
        pytest.param(lambda: make_csr("CP-1", None)[0], "exactly one O", id="A00.FR.509-no-O"),
        pytest.param(
            lambda: make_csr("CP-1", key=rsa.generate_private_key(65537, 1024))[0],
            "RSA key of 1024 bits",
            id="A00.FR.502-rsa-1024",
        ),
        pytest.param(
            lambda: make_csr("CP-1", key=ec.generate_private_key(ec.SECP224R1()))[0],
            "curve secp224r1 is not accepted",
            id="A00.FR.504-bsi-curve",
        ),
        pytest.param(
            lambda: sha1_csr("CP-1"),
            "signed with sha1",
            id="A00.FR.506-sha1",
        ),
    ],
)
def test_a02_fr_12_csr_checks(ca: Ca, csr: Callable[[], str], reason: str) -> None:
    """Each failed check is a CsrRejected naming it (the CSMS answers Rejected)."""
    authority = CertificateAuthority([ca.certificate], ca.key, organization=CPO)
    with pytest.raises(CsrRejected, match=reason):
        authority.check(csr(), "CP-1")


def test_without_cpo_name_any_single_o_is_accepted(ca: Ca) -> None:
    authority = CertificateAuthority([ca.certificate], ca.key, organization=None)
    assert authority.check(make_csr("CP-1", "Someone")[0], "CP-1")


def test_unusable_ca_files_are_refused(tmp_path: Path, ca: Ca) -> None:
    """A missing file, a non-CA certificate, a key of another certificate and an encrypted
    key each give one clear CertificateAuthorityError."""
    with pytest.raises(CertificateAuthorityError, match="cannot read the CA certificate file"):
        CertificateAuthority.from_files(tmp_path / "missing.pem", ca.key_file)
    leaf_csr, leaf_key = make_csr("CP-1")
    leaf_authority = CertificateAuthority([ca.certificate], ca.key)
    leaf = leaf_authority.sign(
        leaf_authority.check(leaf_csr, "CP-1"), now=datetime.now(UTC)
    ).certificate
    with pytest.raises(CertificateAuthorityError, match="not a CA"):
        CertificateAuthority([leaf], leaf_key)
    other = make_ca(tmp_path, name="Other")
    with pytest.raises(CertificateAuthorityError, match="does not belong"):
        CertificateAuthority.from_files(ca.cert_file, other.key_file)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        ca.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    with pytest.raises(CertificateAuthorityError, match="is encrypted"):
        CertificateAuthority.from_files(ca.cert_file, encrypted)
    with pytest.raises(CertificateAuthorityError, match="holds no PEM certificate"):
        CertificateAuthority.from_files(ca.key_file, ca.key_file)


# -- settings -------------------------------------------------------------------------------------


def test_settings_ca_options_from_environment_and_their_checks(ca: Ca) -> None:
    """design.md "Configuration": OCPPKIT_CA_CERT / _CA_KEY / _CERTIFICATE_VALIDITY_DAYS;
    one without the other, or a validity out of range, is one clear SettingsError."""
    settings = load_settings(
        environ={
            "OCPPKIT_CA_CERT": str(ca.cert_file),
            "OCPPKIT_CA_KEY": str(ca.key_file),
            "OCPPKIT_CERTIFICATE_VALIDITY_DAYS": "90",
        }
    )
    assert (settings.ca_cert, settings.ca_key) == (str(ca.cert_file), str(ca.key_file))
    assert settings.certificate_validity_days == 90
    assert load_settings(environ={}).certificate_validity_days == 365
    with pytest.raises(SettingsError, match="ca_cert and ca_key go together"):
        load_settings(environ={"OCPPKIT_CA_CERT": str(ca.cert_file)})
    with pytest.raises(SettingsError, match="invalid OCPPKIT_CERTIFICATE_VALIDITY_DAYS='0'"):
        load_settings(environ={"OCPPKIT_CERTIFICATE_VALIDITY_DAYS": "0"})


async def test_bad_ca_file_stops_the_start_with_a_settings_error(tmp_path: Path, ca: Ca) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'ca.sqlite3'}"
    settings = CsmsSettings(
        port=0,
        api_port=0,
        database=database,
        ca_cert=str(tmp_path / "missing.pem"),
        ca_key=str(ca.key_file),
    )
    with pytest.raises(SettingsError, match="cannot use the CA for station certificates"):
        await start_csms(settings)


def test_cli_bad_ca_path_is_one_line(tmp_path: Path, ca: Ca) -> None:
    """The CLI flags --ca-cert / --ca-key: an unreadable file gets one line and exit 2."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ocppkit",
            "csms",
            "--port",
            "0",
            "--api-port",
            "0",
            "--ca-cert",
            str(tmp_path / "missing.pem"),
            "--ca-key",
            str(ca.key_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("OCPPKIT_")},
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: cannot use the CA for station certificates: ")
    assert "missing.pem" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


# -- end to end with mobilityhouse ``ocpp`` stations -------------------------------------------


class _Recording:
    """Mixin for a mobilityhouse ChargePoint of any version: every frame the station
    receives, in order; each CertificateSigned kept and answered ``answer`` with the
    version's ``results`` module (``ocpp.v16.call_result``, ``ocpp.v201.call_result``...)."""

    answer = "Accepted"
    results: Any

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[list[Any]] = []
        self.signed: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def route_message(self, raw_msg: str) -> None:
        self.frames.append(msgspec.json.decode(raw_msg))
        await super().route_message(raw_msg)  # type: ignore[misc]

    @on("CertificateSigned")
    async def on_certificate_signed(self, certificate_chain: str, **kwargs: Any) -> Any:
        self.signed.put_nowait({"certificate_chain": certificate_chain, **kwargs})
        return self.results.CertificateSigned(status=self.answer)


class Station16(_Recording, MhStation16):
    results = r16


class Station201(_Recording, MhStation201):
    results = r201


async def connect(
    node: RunningCsms, station_id: str, version: str, *, profile: int = 1
) -> tuple[Any, Any, asyncio.Task[None]]:
    """A registered, Accepted station (profile 1: Basic auth) that booted: (ws, cp, task)."""
    await register(node, station_id, PASSWORD, profile=profile)
    authorization = basic(station_id, PASSWORD) if profile else None
    ws = await open_socket(node, station_id, version, authorization=authorization)
    cp = (Station16 if version == "1.6" else Station201)(station_id, ws)
    task = asyncio.create_task(cp.start())
    if version == "1.6":
        boot = await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
    else:
        boot = await cp.call(
            c201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            )
        )
    assert boot.status == "Accepted"
    return ws, cp, task


async def sign_request(cp: Any, version: str, csr: str) -> Any:
    if version == "1.6":
        return await cp.call(c16.SignCertificate(csr=csr))
    return await cp.call(
        c201.SignCertificate(csr=csr, certificate_type="ChargingStationCertificate")
    )


async def events(node: RunningCsms, station_id: str, type_: str) -> list[SecurityEvent]:
    await node.service.certificate_signing.drain()
    async with node.service.db.session() as session:
        rows = await session.scalars(
            select(SecurityEvent).where(
                SecurityEvent.station_id == station_id, SecurityEvent.type == type_
            )
        )
        return list(rows.all())


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a02_fr_11_accepted_then_certificate_signed_chain_verifies(
    version: str, csms: Callable[..., Any], ca: Ca, tmp_path: Path
) -> None:
    """TC_A_11_CSMS: SignCertificate with a valid CSR -> Accepted (A02.FR.11); the reply
    reaches the station before CertificateSigned; the chain's leaf is issued by the CA, has
    CN = the station id and the CSR's key; 2.0.1 echoes certificateType (A02.FR.14); the
    issuance and the station's answer are stored as a security event. Then (2.0.1, TC_A_11
    steps 2-3) the station connects to a profile-3 port with its new certificate."""
    node = await csms(**ca.settings())
    station_id = f"CA-OK-{version}"
    ws, cp, task = await connect(node, station_id, version)
    try:
        csr, key = make_csr(station_id)
        reply = await sign_request(cp, version, csr)
        assert reply.status == "Accepted"
        signed = await asyncio.wait_for(cp.signed.get(), 10)
        await node.service.certificate_signing.drain()  # the station's answer is in
    finally:
        task.cancel()
        await ws.close()
    kinds = [(f[0], f[2] if f[0] == 2 else f[2].get("status")) for f in cp.frames]
    # Boot's reply and SignCertificate's (both Accepted) come before CertificateSigned.
    assert kinds[: kinds.index((2, "CertificateSigned"))].count((3, "Accepted")) == 2
    leaf, issuer = chain_of(signed["certificate_chain"])
    assert issuer == ca.certificate
    leaf.verify_directly_issued_by(ca.certificate)
    assert subject(leaf, NameOID.COMMON_NAME) == [station_id]
    assert leaf.public_key() == key.public_key()
    if version == "2.0.1":
        assert signed["certificate_type"] == "ChargingStationCertificate"
    else:
        assert "certificate_type" not in signed
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]  # 1.6: the Charge Point certificate
    (event,) = await events(node, station_id, CERTIFICATE_ISSUED)
    assert f"serial={format(leaf.serial_number, 'x')}" in (event.tech_info or "")
    assert "CertificateSigned=Accepted" in (event.tech_info or "")
    if version == "2.0.1":
        await reconnect_with_new_certificate(csms, tmp_path, ca, station_id, signed, key)


async def reconnect_with_new_certificate(
    csms: Callable[..., Any], tmp_path: Path, ca: Ca, station_id: str, signed: Any, key: Any
) -> None:
    """A profile-3 CSMS trusting the station CA lets the station in with the new chain
    (A00.FR.403-405: path valid, O = CPO name, CN = station id)."""
    pki = make_pki(tmp_path)
    secure = await csms(
        **pki.settings(3, tls_client_ca=str(ca.cert_file), cpo_name=CPO),
        database=f"sqlite+aiosqlite:///{tmp_path / 'profile3.sqlite3'}",
        unknown_stations="accept",
    )
    cert_file, key_file = tmp_path / "new-cert.pem", tmp_path / "new-key.pem"
    cert_file.write_text(signed["certificate_chain"])
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = client_context(pki.server_ca_file, certfile=cert_file, keyfile=key_file)
    ws = await open_socket(secure, station_id, "2.0.1", ssl_context=context)
    await ws.close()


async def test_station_rejecting_the_certificate_is_recorded(
    csms: Callable[..., Any], ca: Ca
) -> None:
    """TC_A_14_CSMS: the station answers CertificateSigned Rejected; the CSMS keeps the
    record (for the operator, A02 "Error handling")."""
    node = await csms(**ca.settings())
    station_id = "CA-REFUSED"
    ws, cp, task = await connect(node, station_id, "2.0.1")
    cp.answer = "Rejected"
    try:
        assert (await sign_request(cp, "2.0.1", make_csr(station_id)[0])).status == "Accepted"
        await asyncio.wait_for(cp.signed.get(), 10)
        await node.service.certificate_signing.drain()
    finally:
        task.cancel()
        await ws.close()
    (event,) = await events(node, station_id, CERTIFICATE_ISSUED)
    assert "CertificateSigned=Rejected" in (event.tech_info or "")


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("bad", ["wrong-cn", "bad-signature"])
async def test_a02_fr_12_bad_csr_rejected_and_nothing_signed(
    version: str, bad: str, csms: Callable[..., Any], ca: Ca
) -> None:
    """A CSR with another station's CN (A00.FR.405) or a broken signature: Rejected
    (A02.FR.12; 2.0.1 with statusInfo InvalidCSR), no CertificateSigned follows, and a
    CsrRejected security event names the reason."""
    node = await csms(**ca.settings())
    station_id = f"CA-BAD-{version}"
    ws, cp, task = await connect(node, station_id, version)
    csr = make_csr("SOMEONE-ELSE")[0] if bad == "wrong-cn" else tampered_csr(station_id)
    try:
        reply = await sign_request(cp, version, csr)
        assert reply.status == "Rejected"
        if version == "2.0.1":
            assert reply.status_info["reason_code"] == "InvalidCSR"
        await node.service.certificate_signing.drain()
        await asyncio.sleep(0.3)
        assert cp.signed.empty()
    finally:
        task.cancel()
        await ws.close()
    assert not any(f[0] == 2 and f[2] == "CertificateSigned" for f in cp.frames)
    (event,) = await events(node, station_id, CSR_REJECTED)
    expected = "CN is not the station id" if bad == "wrong-cn" else "signature is not valid"
    assert expected in (event.tech_info or "")
    assert not await events(node, station_id, CERTIFICATE_ISSUED)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a02_fr_12_without_a_ca_rejected_with_a_log_line(
    version: str, csms: Callable[..., Any]
) -> None:
    """No ca_cert / ca_key: the CSMS cannot process a CSR, so Rejected, and says why."""
    node = await csms(security_profile=1)
    station_id = f"CA-NONE-{version}"
    ws, cp, task = await connect(node, station_id, version)
    try:
        with structlog.testing.capture_logs() as logged:
            reply = await sign_request(cp, version, make_csr(station_id)[0])
        assert reply.status == "Rejected"
        await asyncio.sleep(0.3)
        assert cp.signed.empty()
    finally:
        task.cancel()
        await ws.close()
    assert any(
        "no CA configured" in e["event"] and e.get("station_id") == station_id for e in logged
    )


async def test_profile_0_never_signs(csms: Callable[..., Any], ca: Ca) -> None:
    """At security profile 0 nobody proved to be the station: a certificate with CN = the
    claimed id would let anyone into a profile-3 port as that station, so Rejected."""
    node = await csms(**ca.settings(security_profile=0))
    station_id = "CA-PROFILE0"
    ws, cp, task = await connect(node, station_id, "1.6", profile=0)
    try:
        reply = await sign_request(cp, "1.6", make_csr(station_id)[0])
        assert reply.status == "Rejected"
        await asyncio.sleep(0.3)
        assert cp.signed.empty()
    finally:
        task.cancel()
        await ws.close()


# -- end to end with our emulated station --------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[StationStore]:
    """The emulated station's persistent store (as in tests/station/conftest.py)."""
    async with await StationStore.open(tmp_path / "station.sqlite3") as opened:
        yield opened


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_our_station_gets_and_accepts_its_certificate(
    version: str, csms: Callable[..., Any], ca: Ca, store: StationStore
) -> None:
    """M05 then A02 with ocppkit on both sides: the CSMS installs its CA as the station's
    CSMS root, triggers a CSR (1.6 ExtendedTriggerMessage SignChargePointCertificate, 2.0.1
    TriggerMessage SignChargingStationCertificate), signs it, and the station — which checks
    the chain against that root (A02.FR.06) and the pending key — answers Accepted."""
    node = await csms(**ca.settings())
    station_id = f"EMU-CA-{version}"
    await register(node, station_id, PASSWORD, profile=1)
    config = StationConfig(
        station_id=station_id,
        csms_url=f"ws://127.0.0.1:{node.port}/ocpp",
        ocpp_version=version,
        security_profile=1,
        password=PASSWORD,
    )
    root_pem = ca.cert_file.read_text()
    async with running(config, store) as station:
        await online(station)
        assert await install_root(node, station_id, version, root_pem) == "Accepted"
        assert await trigger_csr(node, station_id, version) == "Accepted"
        issued: list[SecurityEvent] = []
        for _ in range(100):
            issued = await events(node, station_id, CERTIFICATE_ISSUED)
            if issued:
                break
            await asyncio.sleep(0.1)
    (event,) = issued
    assert "CertificateSigned=Accepted" in (event.tech_info or ""), event.tech_info
    assert not await events(node, station_id, CSR_REJECTED)
