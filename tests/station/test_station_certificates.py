"""Certificate and security messages against an independent CSMS (mobilityhouse ``ocpp``):
the 1.6 Security whitepaper (edition 3) use cases and their 2.0.1 equivalents (A02/A03
update the station certificate, with chain validation A02.FR.06/07, renewal before expiry
A03.FR.02 and the repetitions A02.FR.17-19; M03 list, M04 delete, M05 install; the 2.0.1
V2G certificate). The roots and the CAs that sign the station's CSRs are made with
``cryptography`` (``tests/helpers/certificates.py``); the expected hash data is computed here
from the DER, independently of ``ocppkit.station.certificates``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201

from ocppkit.station.station import Station, StationConfig
from ocppkit.station.store import StationStore
from tests.helpers.certificates import make_ca, pem, sign
from tests.station.peers import Recorder, online, running, their_csms, with_their_csms

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


def own(station: Station, use: str = "ChargingStationCertificate") -> dict[str, Any]:
    """The station's persisted certificate of ``use`` (chain, key, pending key and CSR)."""
    slot: dict[str, Any] = station.state_blob()["model"]["certs"]["own"].get(use, {})
    return slot


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
    """Whitepaper "Install CA certificate in a Charge Point" (Rejected when it does not
    parse or has expired, M05.FR.06), "Retrieve list of available certificates" (hash data
    as in 2.0.1 M03), "Delete a specific certificate"."""
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
    _, expired = make_ca("Old Root", valid_days=(-30, -1))
    old = await call(
        point,
        c16.InstallCertificate(
            certificate_type="ManufacturerRootCertificate", certificate=pem(expired)
        ),
    )
    assert old.status == "Rejected", "M05.FR.06: an invalid certificate"
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
    station id, O = CpoName A02.FR.13, valid signature); CertificateSigned refused (A02.FR.06/
    07: Rejected + SecurityEventNotification InvalidChargePointCertificate, queued) for
    garbage, a certificate for another key, an expired one, one of a CA that is not under
    an installed CentralSystemRootCertificate; the right chain -> Accepted; deleting the
    station's own certificate -> Failed (M04.FR.05)."""
    station, rec, point = peer16
    changed = await call(point, c16.ChangeConfiguration(key="CpoName", value="ACME CPO"))
    assert changed.status == "Accepted"
    root_key, root = make_ca("CSMS Root")
    installed = await call(
        point,
        c16.InstallCertificate(
            certificate_type="CentralSystemRootCertificate", certificate=pem(root)
        ),
    )
    assert installed.status == "Accepted"
    ca_key, ca = make_ca("CPO Sub-CA", (root_key, root))
    trig = await call(
        point, c16.ExtendedTriggerMessage(requested_message="SignChargePointCertificate")
    )
    assert trig.status == "Accepted"
    await rec.wait_count("SignCertificate", 1)
    csr = x509.load_pem_x509_csr(rec.of("SignCertificate")[0]["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SID16
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ACME CPO"

    other = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(csr.subject)
        .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
    )
    stranger_key, stranger = make_ca("CPO Sub-CA")  # same kind of name, not under the root
    refused = {
        "garbage": "not a certificate",
        "another key": pem(sign(other, ca_key, ca)) + pem(ca),
        "expired": pem(sign(csr, ca_key, ca, valid_days=(-30, -1))) + pem(ca),
        "wrong root": pem(sign(csr, stranger_key, stranger)) + pem(stranger),
    }
    for n, (why, chain) in enumerate(refused.items(), start=1):
        reply = await call(point, c16.CertificateSigned(certificate_chain=chain))
        assert reply.status == "Rejected", why
        await rec.wait_count("SecurityEventNotification", n)
        event = rec.of("SecurityEventNotification")[-1]
        assert event["type"] == "InvalidChargePointCertificate", why
    assert own(station)["chain"] == [] and own(station)["pending_key"]

    leaf = sign(csr, ca_key, ca)
    ok = await call(point, c16.CertificateSigned(certificate_chain=pem(leaf) + pem(ca)))
    assert ok.status == "Accepted"
    assert own(station)["chain"] == [pem(leaf), pem(ca)] and own(station)["pending_key"] is None
    mine = await call(point, c16.DeleteCertificate(certificate_hash_data=expected_hash(leaf, ca)))
    assert mine.status == "Failed"


async def test_v16_get_log_and_signed_update_firmware_walk_their_statuses(
    peer16: tuple[Station, Recorder, Any],
) -> None:
    """Whitepaper "Get Security Log": Accepted + filename, LogStatusNotification Uploading,
    Uploaded (requestId); "Secure Firmware Update" on a station that simulates downloads
    (the default): a signing certificate that is not a certificate -> InvalidCertificate
    (L01.FR.24) and InvalidFirmwareSigningCertificate (L01.FR.02); one issued by the
    installed ManufacturerRootCertificate -> Accepted, SignedFirmwareStatusNotification
    Downloading, Downloaded, Installing, Installed (no SignatureVerified: nothing was
    downloaded to verify; see test_station_firmware for the real check), then a reboot;
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

    def update(request_id: int, signing_certificate: str) -> Any:
        return c16.SignedUpdateFirmware(
            request_id=request_id,
            firmware={
                "location": "https://example.com/fw.bin",
                "retrieve_date_time": datetime.now(UTC).isoformat(),
                "signing_certificate": signing_certificate,
                "signature": "c2lnbmF0dXJl",
            },
        )

    junk = await call(point, update(8, "-----BEGIN CERTIFICATE-----"))
    assert junk.status == "InvalidCertificate"
    await rec.wait_count("SecurityEventNotification", 1)
    assert rec.of("SecurityEventNotification")[0]["type"] == "InvalidFirmwareSigningCertificate"
    root_key, root = make_ca("Manufacturer Root")
    installed = await call(
        point,
        c16.InstallCertificate(
            certificate_type="ManufacturerRootCertificate", certificate=pem(root)
        ),
    )
    assert installed.status == "Accepted"
    _, signer = make_ca("Firmware Signer", (root_key, root))
    fw = await call(point, update(9, pem(signer)))
    assert fw.status == "Accepted"
    await rec.wait_count("SignedFirmwareStatusNotification", 4)
    walked = rec.of("SignedFirmwareStatusNotification")
    assert [k["status"] for k in walked] == ["Downloading", "Downloaded", "Installing", "Installed"]
    assert {k["request_id"] for k in walked} == {9}
    await rec.wait_count("BootNotification", 2)


# -- 2.0.1 ----------------------------------------------------------------------------------------


async def test_v201_m05_install_m03_list_m04_delete(
    peer201: tuple[Station, Recorder, Any],
) -> None:
    """M05 InstallCertificate (Accepted; Rejected when it does not parse or has expired,
    M05.FR.06), M03 GetInstalledCertificateIds (hash data per type, a filter by type,
    NotFound), M04 DeleteCertificate (Accepted, then NotFound)."""
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
    _, expired = make_ca("Old Root", valid_days=(-30, -1))
    old = await call(
        point,
        c201.InstallCertificate(certificate_type="MORootCertificate", certificate=pem(expired)),
    )
    assert old.status == "Rejected", "M05.FR.06: an invalid certificate"
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
    with garbage, an expired certificate, or a chain not under an installed
    CSMSRootCertificate (a ManufacturerRootCertificate does not count) -> Rejected +
    SecurityEventNotification InvalidChargingStationCertificate (A02.FR.06/07); with the
    chain for the CSR -> Accepted; M04.FR.05: deleting it -> Failed."""
    station, rec, point = peer201
    root_key, root = make_ca("CSMS Root")
    ca_key, ca = make_ca("CPO Sub-CA", (root_key, root))
    as_manufacturer = await call(
        point,
        c201.InstallCertificate(
            certificate_type="ManufacturerRootCertificate", certificate=pem(root)
        ),
    )
    assert as_manufacturer.status == "Accepted"
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
    leaf = sign(csr, ca_key, ca)
    refused = [
        "garbage",
        pem(sign(csr, ca_key, ca, valid_days=(-30, -1))) + pem(ca),
        pem(leaf) + pem(ca),  # only a manufacturer root is installed so far
    ]
    for n, chain in enumerate(refused, start=1):
        reply = await call(point, c201.CertificateSigned(certificate_chain=chain))
        assert reply.status == "Rejected"
        await rec.wait_count("SecurityEventNotification", n)
        assert rec.of("SecurityEventNotification")[-1]["type"] == (
            "InvalidChargingStationCertificate"
        )
    csms_root = await call(
        point,
        c201.InstallCertificate(certificate_type="CSMSRootCertificate", certificate=pem(root)),
    )
    assert csms_root.status == "Accepted"
    ok = await call(point, c201.CertificateSigned(certificate_chain=pem(leaf) + pem(ca)))
    assert ok.status == "Accepted"
    assert own(station)["chain"][0] == pem(leaf)
    mine = await call(point, c201.DeleteCertificate(certificate_hash_data=expected_hash(leaf, ca)))
    assert mine.status == "Failed"


# -- renewal (A03), repetitions (A02.FR.17-19), V2G (2.0.1) -------------------------------------


@contextlib.asynccontextmanager
async def station_with(
    store: StationStore, station_id: str, version: str, **config: Any
) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    """Their CSMS and our station online with extra :class:`StationConfig` fields."""
    async with their_csms() as (port, rec):
        cfg = StationConfig(
            station_id=station_id,
            csms_url=f"ws://127.0.0.1:{port}/ocpp",
            ocpp_version=version,
            **config,
        )
        async with running(cfg, store) as station:
            await online(station)
            yield station, rec, rec.points[station_id]


async def set_variable201(point: Any, component: str, variable: str, value: str) -> None:
    reply = await call(
        point,
        c201.SetVariables(
            set_variable_data=[
                {
                    "attribute_value": value,
                    "component": {"name": component},
                    "variable": {"name": variable},
                }
            ]
        ),
    )
    assert reply.set_variable_result[0]["attribute_status"] == "Accepted"


async def signed_for(rec: Recorder, index: int) -> x509.CertificateSigningRequest:
    await rec.wait_count("SignCertificate", index + 1)
    return x509.load_pem_x509_csr(rec.of("SignCertificate")[index]["csr"].encode())


async def test_v201_a03_fr_02_renewal_starts_by_itself_within_the_margin(
    store: StationStore,
) -> None:
    """A03.FR.02: a station certificate that expires within the renewal margin (here
    StationConfig.certificate_renewal_margin = 5 days instead of the spec's month) makes
    the station send SignCertificate by itself, with a new key pair; one that expires later
    does not."""
    async with station_with(
        store, "EMU-RENEW", "2.0.1", certificate_renewal_margin=5 * 86400.0
    ) as (station, rec, point):
        root_key, root = make_ca("CSMS Root")
        await call(
            point,
            c201.InstallCertificate(certificate_type="CSMSRootCertificate", certificate=pem(root)),
        )
        trig = c201.TriggerMessage(requested_message="SignChargingStationCertificate")
        assert (await call(point, trig)).status == "Accepted"
        first = await signed_for(rec, 0)
        ten_days = sign(first, root_key, root, valid_days=(-1, 10))
        reply = await call(point, c201.CertificateSigned(certificate_chain=pem(ten_days)))
        assert reply.status == "Accepted"
        await asyncio.sleep(0.5)
        assert len(rec.of("SignCertificate")) == 1, "10 days left: outside the 5-day margin"

        assert (await call(point, trig)).status == "Accepted"
        second = await signed_for(rec, 1)
        three_days = sign(second, root_key, root, valid_days=(-1, 3))
        reply = await call(point, c201.CertificateSigned(certificate_chain=pem(three_days)))
        assert reply.status == "Accepted"
        renewal = await signed_for(rec, 2)
        assert rec.of("SignCertificate")[2]["certificate_type"] == "ChargingStationCertificate"
        assert renewal.public_key() != three_days.public_key(), "a new key pair (A03.FR.02)"
        assert own(station)["chain"] == [pem(three_days)]  # kept until the new one comes
        renewed = sign(renewal, root_key, root)
        reply = await call(point, c201.CertificateSigned(certificate_chain=pem(renewed)))
        assert reply.status == "Accepted"
        assert own(station)["chain"] == [pem(renewed)]
        await asyncio.sleep(0.5)
        assert len(rec.of("SignCertificate")) == 3


async def test_v201_a02_fr_17_19_sign_certificate_repeated_with_doubling_wait(
    store: StationStore,
) -> None:
    """A02.FR.17-19: no CertificateSigned within SecurityCtrlr.CertSigningWaitMinimum (1 s)
    -> the same CSR again, the wait doubling (1 s, 2 s), CertSigningRepeatTimes (2) times,
    then no more until a new TriggerMessage, which starts over with a new key pair."""
    async with station_with(store, "EMU-REPEAT", "2.0.1") as (_station, rec, point):
        await set_variable201(point, "SecurityCtrlr", "CertSigningWaitMinimum", "1")
        await set_variable201(point, "SecurityCtrlr", "CertSigningRepeatTimes", "2")
        trig = c201.TriggerMessage(requested_message="SignChargingStationCertificate")
        assert (await call(point, trig)).status == "Accepted"
        await rec.wait_count("SignCertificate", 3, timeout=10)
        times = rec.times_of("SignCertificate")
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert 0.9 <= gaps[0] < 1.8 and 1.9 <= gaps[1] < 2.8, gaps
        assert len({kw["csr"] for kw in rec.of("SignCertificate")}) == 1, "the same CSR"
        await asyncio.sleep(times[2] + 4.6 - asyncio.get_running_loop().time())
        assert len(rec.of("SignCertificate")) == 3, "CertSigningRepeatTimes reached"
        assert (await call(point, trig)).status == "Accepted"
        fresh = await signed_for(rec, 3)
        assert rec.of("SignCertificate")[3]["csr"] != rec.of("SignCertificate")[0]["csr"]
        root_key, root = make_ca("CSMS Root")
        await call(
            point,
            c201.InstallCertificate(certificate_type="CSMSRootCertificate", certificate=pem(root)),
        )
        leaf = sign(fresh, root_key, root)
        reply = await call(point, c201.CertificateSigned(certificate_chain=pem(leaf)))
        assert reply.status == "Accepted"


async def test_v16_a02_fr_17_a_certificate_ends_the_repetitions(store: StationStore) -> None:
    """1.6 whitepaper keys CertSigningWaitMinimum (1 s) / CertSigningRepeatTimes (3): the
    CSR is sent again after 1 s; the CertificateSigned for it ends the repetitions (the next
    would have come 2 s later)."""
    async with station_with(store, "EMU-REPEAT16", "1.6") as (station, rec, point):
        for key, value in (("CertSigningWaitMinimum", "1"), ("CertSigningRepeatTimes", "3")):
            changed = await call(point, c16.ChangeConfiguration(key=key, value=value))
            assert changed.status == "Accepted"
        root_key, root = make_ca("Central System Root")
        await call(
            point,
            c16.InstallCertificate(
                certificate_type="CentralSystemRootCertificate", certificate=pem(root)
            ),
        )
        trig = c16.ExtendedTriggerMessage(requested_message="SignChargePointCertificate")
        assert (await call(point, trig)).status == "Accepted"
        csr = await signed_for(rec, 1)
        assert rec.of("SignCertificate")[0]["csr"] == rec.of("SignCertificate")[1]["csr"]
        leaf = sign(csr, root_key, root)
        reply = await call(point, c16.CertificateSigned(certificate_chain=pem(leaf)))
        assert reply.status == "Accepted"
        await asyncio.sleep(2.8)
        assert len(rec.of("SignCertificate")) == 2
        assert own(station)["chain"] == [pem(leaf)]


async def test_v201_v2g_certificate_sign_install_and_m03_chain(
    peer201: tuple[Station, Recorder, Any],
) -> None:
    """2.0.1 TriggerMessage(SignV2GCertificate) -> SignCertificate(certificateType
    V2GCertificate, a CSR); CertificateSigned(V2GCertificate) must chain to a
    V2GRootCertificate (a CSMS root: Rejected + InvalidChargingStationCertificate); the
    accepted one is kept apart from the charging-station certificate; M03
    GetInstalledCertificateIds reports it as V2GCertificateChain with its sub-CA as the
    child hash data."""
    station, rec, point = peer201
    v2g_root_key, v2g_root = make_ca("V2G Root")
    csms_root_key, csms_root = make_ca("CSMS Root")
    for cert_type, cert in (("V2GRootCertificate", v2g_root), ("CSMSRootCertificate", csms_root)):
        reply = await call(
            point, c201.InstallCertificate(certificate_type=cert_type, certificate=pem(cert))
        )
        assert reply.status == "Accepted"
    none = await call(
        point, c201.GetInstalledCertificateIds(certificate_type=["V2GCertificateChain"])
    )
    assert none.status == "NotFound"
    trig = await call(point, c201.TriggerMessage(requested_message="SignV2GCertificate"))
    assert trig.status == "Accepted"
    csr = await signed_for(rec, 0)
    assert csr.is_signature_valid
    assert rec.of("SignCertificate")[0]["certificate_type"] == "V2GCertificate"

    csms_sub_key, csms_sub = make_ca("CPO Sub-CA", (csms_root_key, csms_root))
    wrong_root = pem(sign(csr, csms_sub_key, csms_sub)) + pem(csms_sub)
    reply = await call(
        point,
        c201.CertificateSigned(certificate_chain=wrong_root, certificate_type="V2GCertificate"),
    )
    assert reply.status == "Rejected"
    await rec.wait_count("SecurityEventNotification", 1)
    assert rec.of("SecurityEventNotification")[0]["type"] == "InvalidChargingStationCertificate"

    sub_key, sub = make_ca("CPO Sub-CA 1", (v2g_root_key, v2g_root))
    leaf = sign(csr, sub_key, sub)
    chain = pem(leaf) + pem(sub)
    as_station = await call(
        point,
        c201.CertificateSigned(
            certificate_chain=chain, certificate_type="ChargingStationCertificate"
        ),
    )
    assert as_station.status == "Rejected", "no charging-station CSR is pending"
    reply = await call(
        point, c201.CertificateSigned(certificate_chain=chain, certificate_type="V2GCertificate")
    )
    assert reply.status == "Accepted"
    assert own(station, "V2GCertificate")["chain"] == [pem(leaf), pem(sub)]
    assert not own(station).get("chain"), "the charging-station certificate is another one"

    only = await call(
        point, c201.GetInstalledCertificateIds(certificate_type=["V2GCertificateChain"])
    )
    assert only.status == "Accepted"
    (item,) = only.certificate_hash_data_chain
    assert item["certificate_type"] == "V2GCertificateChain"
    assert snake(item["certificate_hash_data"]) == expected_hash(leaf, sub)
    assert [snake(c) for c in item["child_certificate_hash_data"]] == [expected_hash(sub, v2g_root)]
    everything = await call(point, c201.GetInstalledCertificateIds())
    assert sorted(i["certificate_type"] for i in everything.certificate_hash_data_chain) == [
        "CSMSRootCertificate",
        "V2GCertificateChain",
        "V2GRootCertificate",
    ]
