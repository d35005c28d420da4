"""Certificate and security messages against an independent CSMS (mobilityhouse ``ocpp``):
the 1.6 Security whitepaper (edition 3) use cases and their 2.0.1 equivalents (A02/A03
update the station certificate, M03 list, M04 delete, M05 install). The roots and the CA
that signs the station's CSR are made here with ``cryptography``; the expected hash data is
computed here from the DER, independently of ``ocppkit.station.certificates``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201

from ocppkit.station.station import Station
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, with_their_csms

SID16 = "EMU-SEC16"
SID201 = "EMU-SEC201"


@pytest.fixture
async def peer16(store: StationStore) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    async with with_their_csms(store, SID16, "1.6", statuses=3) as peer:
        yield peer


@pytest.fixture
async def peer201(store: StationStore) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    async with with_their_csms(store, SID201, "2.0.1", statuses=2) as peer:
        yield peer


async def call(point: Any, payload: Any) -> Any:
    return await point.call(payload, suppress=False)


def make_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def sign(
    csr: x509.CertificateSigningRequest, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
) -> x509.Certificate:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def expected_hash(cert: x509.Certificate, issuer: x509.Certificate) -> dict[str, str]:
    """RFC 6960 CertID as OCPP uses it: SHA256 over the issuer DN DER and over the issuer's
    subjectPublicKey BIT STRING (for P-256: the last 65 bytes of the SPKI DER)."""
    spki = issuer.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "hash_algorithm": "SHA256",
        "issuer_name_hash": hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
        "issuer_key_hash": hashlib.sha256(spki[-65:]).hexdigest(),
        "serial_number": format(cert.serial_number, "x"),
    }


def snake(item: dict[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in item.items()}


# -- 1.6 Security extension ----------------------------------------------------------------------


async def test_v16_install_list_delete_root_certificate_use_cases(
    peer16: tuple[Station, Recorder, Any],
) -> None:
    """Whitepaper "Install CA certificate in a Charge Point", "Retrieve list of available
    certificates" (hash data as in 2.0.1 M03), "Delete a specific certificate"."""
    station, _rec, point = peer16
    _, root = make_ca("CSMS Root")
    installed = await call(
        point,
        c16.InstallCertificate(
            certificate_type="CentralSystemRootCertificate", certificate=pem(root)
        ),
    )
    assert installed.status == "Accepted"
    bad = await call(
        point,
        c16.InstallCertificate(certificate_type="ManufacturerRootCertificate", certificate="junk"),
    )
    assert bad.status == "Rejected"
    listed = await call(
        point, c16.GetInstalledCertificateIds(certificate_type="CentralSystemRootCertificate")
    )
    assert listed.status == "Accepted"
    assert [snake(d) for d in listed.certificate_hash_data] == [expected_hash(root, root)]
    none = await call(
        point, c16.GetInstalledCertificateIds(certificate_type="ManufacturerRootCertificate")
    )
    assert none.status == "NotFound"
    assert station.state_blob()["model"]["certs"]["roots"]["CentralSystemRootCertificate"]
    deleted = await call(
        point, c16.DeleteCertificate(certificate_hash_data=expected_hash(root, root))
    )
    assert deleted.status == "Accepted"
    again = await call(
        point, c16.DeleteCertificate(certificate_hash_data=expected_hash(root, root))
    )
    assert again.status == "NotFound"
    gone = await call(
        point, c16.GetInstalledCertificateIds(certificate_type="CentralSystemRootCertificate")
    )
    assert gone.status == "NotFound"


async def test_v16_update_charge_point_certificate_use_case_and_own_certificate_kept(
    peer16: tuple[Station, Recorder, Any],
) -> None:
    """Whitepaper "Update Charge Point Certificate by request of Central System":
    ExtendedTriggerMessage(SignChargePointCertificate) -> SignCertificate with a CSR (CN =
    station id, O = CpoName, valid signature); CertificateSigned garbage / a certificate for
    another key -> Rejected + SecurityEventNotification InvalidChargePointCertificate; the
    right chain -> Accepted; deleting the station's own certificate -> Failed (M04.FR.05)."""
    station, rec, point = peer16
    changed = await call(point, c16.ChangeConfiguration(key="CpoName", value="ACME CPO"))
    assert changed.status == "Accepted"
    trig = await call(
        point, c16.ExtendedTriggerMessage(requested_message="SignChargePointCertificate")
    )
    assert trig.status == "Accepted"
    await rec.wait_count("SignCertificate", 1)
    csr = x509.load_pem_x509_csr(rec.of("SignCertificate")[0]["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SID16
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ACME CPO"

    garbage = await call(point, c16.CertificateSigned(certificate_chain="not a certificate"))
    assert garbage.status == "Rejected"
    await rec.wait_count("SecurityEventNotification", 1)
    assert rec.of("SecurityEventNotification")[0]["type"] == "InvalidChargePointCertificate"
    ca_key, ca = make_ca("CPO Sub-CA")
    other = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(csr.subject)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    wrong = await call(point, c16.CertificateSigned(certificate_chain=pem(sign(other, ca_key, ca))))
    assert wrong.status == "Rejected"
    await rec.wait_count("SecurityEventNotification", 2)

    leaf = sign(csr, ca_key, ca)
    ok = await call(point, c16.CertificateSigned(certificate_chain=pem(leaf) + pem(ca)))
    assert ok.status == "Accepted"
    certs = station.state_blob()["model"]["certs"]
    assert certs["own_chain"][0] == pem(leaf) and certs["pending_key"] is None
    own = await call(point, c16.DeleteCertificate(certificate_hash_data=expected_hash(leaf, ca)))
    assert own.status == "Failed"


async def test_v16_get_log_and_signed_update_firmware_walk_their_statuses(
    peer16: tuple[Station, Recorder, Any],
) -> None:
    """Whitepaper "Get Security Log": Accepted + filename, LogStatusNotification Uploading,
    Uploaded (requestId); "Secure Firmware Update": SignedFirmwareStatusNotification
    Downloading, Downloaded, SignatureVerified, Installing, Installed, then a reboot;
    ExtendedTriggerMessage(LogStatusNotification) when idle: Idle."""
    _station, rec, point = peer16
    log = await call(
        point,
        c16.GetLog(
            log={"remote_location": "ftp://example.com/logs"}, log_type="SecurityLog", request_id=7
        ),
    )
    assert log.status == "Accepted" and log.filename.startswith("security-")
    await rec.wait_count("LogStatusNotification", 2)
    assert [(k["status"], k["request_id"]) for k in rec.of("LogStatusNotification")] == [
        ("Uploading", 7),
        ("Uploaded", 7),
    ]
    trig = await call(point, c16.ExtendedTriggerMessage(requested_message="LogStatusNotification"))
    assert trig.status == "Accepted"
    await rec.wait_count("LogStatusNotification", 3)
    assert rec.of("LogStatusNotification")[-1]["status"] == "Idle"
    fw = await call(
        point,
        c16.SignedUpdateFirmware(
            request_id=9,
            firmware={
                "location": "https://example.com/fw.bin",
                "retrieve_date_time": datetime.now(UTC).isoformat(),
                "signing_certificate": "-----BEGIN CERTIFICATE-----",
                "signature": "c2lnbmF0dXJl",
            },
        ),
    )
    assert fw.status == "Accepted"
    await rec.wait_count("SignedFirmwareStatusNotification", 5)
    walked = rec.of("SignedFirmwareStatusNotification")
    assert [k["status"] for k in walked] == [
        "Downloading",
        "Downloaded",
        "SignatureVerified",
        "Installing",
        "Installed",
    ]
    assert {k["request_id"] for k in walked} == {9}
    await rec.wait_count("BootNotification", 2)


# -- 2.0.1 ----------------------------------------------------------------------------------------


async def test_v201_m05_install_m03_list_m04_delete(
    peer201: tuple[Station, Recorder, Any],
) -> None:
    """M05 InstallCertificate (Accepted; Rejected when it does not parse), M03
    GetInstalledCertificateIds (hash data per type, a filter by type, NotFound), M04
    DeleteCertificate (Accepted, then NotFound)."""
    station, _rec, point = peer201
    _, csms_root = make_ca("CSMS Root")
    _, v2g_root = make_ca("V2G Root")
    for cert_type, cert in (("CSMSRootCertificate", csms_root), ("V2GRootCertificate", v2g_root)):
        reply = await call(
            point, c201.InstallCertificate(certificate_type=cert_type, certificate=pem(cert))
        )
        assert reply.status == "Accepted"
    bad = await call(
        point, c201.InstallCertificate(certificate_type="MORootCertificate", certificate="junk")
    )
    assert bad.status == "Rejected"
    everything = await call(point, c201.GetInstalledCertificateIds())
    assert everything.status == "Accepted"
    listed = {
        item["certificate_type"]: snake(item["certificate_hash_data"])
        for item in everything.certificate_hash_data_chain
    }
    assert listed == {
        "CSMSRootCertificate": expected_hash(csms_root, csms_root),
        "V2GRootCertificate": expected_hash(v2g_root, v2g_root),
    }
    only = await call(
        point, c201.GetInstalledCertificateIds(certificate_type=["V2GRootCertificate"])
    )
    assert [i["certificate_type"] for i in only.certificate_hash_data_chain] == [
        "V2GRootCertificate"
    ]
    none = await call(
        point, c201.GetInstalledCertificateIds(certificate_type=["MORootCertificate"])
    )
    assert none.status == "NotFound"
    assert "V2GRootCertificate" in station.state_blob()["model"]["certs"]["roots"]
    target = expected_hash(v2g_root, v2g_root)
    assert (await call(point, c201.DeleteCertificate(certificate_hash_data=target))).status == (
        "Accepted"
    )
    assert (await call(point, c201.DeleteCertificate(certificate_hash_data=target))).status == (
        "NotFound"
    )


async def test_v201_a02_sign_certificate_certificate_signed_and_m04_fr_05(
    peer201: tuple[Station, Recorder, Any],
) -> None:
    """A02 via F06 TriggerMessage(SignChargingStationCertificate): SignCertificate with a CSR
    (CN = station id, O = SecurityCtrlr.OrganizationName, valid signature); CertificateSigned
    with garbage -> Rejected + SecurityEventNotification InvalidChargingStationCertificate;
    with the chain for the CSR -> Accepted; M04.FR.05: deleting it -> Failed."""
    station, rec, point = peer201
    trig = await call(
        point, c201.TriggerMessage(requested_message="SignChargingStationCertificate")
    )
    assert trig.status == "Accepted"
    await rec.wait_count("SignCertificate", 1)
    sent = rec.of("SignCertificate")[0]
    assert sent["certificate_type"] == "ChargingStationCertificate"
    csr = x509.load_pem_x509_csr(sent["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SID201
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ocppkit"
    garbage = await call(point, c201.CertificateSigned(certificate_chain="garbage"))
    assert garbage.status == "Rejected"
    await rec.wait_count("SecurityEventNotification", 1)
    assert rec.of("SecurityEventNotification")[0]["type"] == "InvalidChargingStationCertificate"
    ca_key, ca = make_ca("CPO Sub-CA")
    leaf = sign(csr, ca_key, ca)
    ok = await call(point, c201.CertificateSigned(certificate_chain=pem(leaf) + pem(ca)))
    assert ok.status == "Accepted"
    assert station.state_blob()["model"]["certs"]["own_chain"][0] == pem(leaf)
    own = await call(point, c201.DeleteCertificate(certificate_hash_data=expected_hash(leaf, ca)))
    assert own.status == "Failed"
