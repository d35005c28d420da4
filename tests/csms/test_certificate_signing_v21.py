"""Station certificate signing for OCPP 2.1 stations: SignCertificate -> CertificateSigned.

What 2.1 adds to the 2.0.1 use cases A02/A03 (tested for 1.6 and 2.0.1 in
``test_certificate_signing.py``), read from the 2.1 JSON schemas (the generated
:mod:`ocppkit.messages.v21` types follow them):

* ``requestId`` (optional in both messages): SignCertificateRequest "RequestId to match this
  message with the CertificateSignedRequest", CertificateSignedRequest "RequestId to
  correlate this message with the SignCertificateRequest" — the CSMS echoes it, and sends
  none when the station sent none;
* ``CertificateSigningUseEnumType`` gains ``V2G20Certificate`` (the ISO 15118-20 SECC
  certificate), which like ``V2GCertificate`` is the certificate of the TLS server of the EV
  link (serverAuth), echoed in CertificateSigned as A02.FR.14 asks for the 2.0.1 types;
* ``hashRootCertificate`` (optional, CertificateHashDataType under SHA256, SHA384 or SHA512):
  "the hash of the root certificate to identify the PKI to use" ((secondary source) A02.FR.27
  has a station name the root its V2G certificate is to be issued under). The spec has no
  CSMS-side rule for a root it does not serve; ocppkit answers Rejected with reasonCode
  ``UnknownRootCert`` (its own) and stores CsrRejected, rather than sign under another PKI.

Unchanged from 2.0.1 and checked here on a 2.1 connection: A02.FR.11 (Accepted), A02.FR.12
(Rejected, which in 2.x carries statusInfo with a reasonCode), A00.FR.404/405 (O = CPO
name, CN = station id), and the security events the CSMS stores for the operator.

The peer is the mobilityhouse ``ocpp`` 2.1 ChargePoint (an independent implementation that
validates every payload, ours included, against the official 2.1 schemas) over a real
loopback WebSocket with Basic auth (security profile 1), against our CSMS with a real
SQLite file; the raw frames it receives are recorded for the wire-level checks.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ocpp.v21 import call as c21
from ocpp.v21 import call_result as r21

from ocppkit.csms.certificate_signing import CERTIFICATE_ISSUED, CSR_REJECTED, UNKNOWN_ROOT
from ocppkit.messages import v21
from ocppkit.node import RunningCsms
from ocppkit.protocol import validate_payload
from tests.csms.test_certificate_signing import (
    CPO,
    PASSWORD,
    Ca,
    _Recording,
    chain_of,
    events,
    make_ca,
    make_csr,
    subject,
    write_ca,
)
from tests.helpers.mobilityhouse import Station21 as MhStation21
from tests.helpers.schemas import reference_errors, schema_cases
from tests.helpers.security import basic, open_socket, register


@pytest.fixture
def ca(tmp_path: Path) -> Ca:
    return make_ca(tmp_path)


class Station21(_Recording, MhStation21):
    """A 2.1 station that records the frames it receives and answers CertificateSigned."""

    results = r21


async def connect21(
    node: RunningCsms, station_id: str, *, profile: int = 1
) -> tuple[Any, Station21, asyncio.Task[None]]:
    """A registered 2.1 station (profile 1: Basic auth) that booted Accepted: (ws, cp, task)."""
    await register(node, station_id, PASSWORD, profile=profile)
    authorization = basic(station_id, PASSWORD) if profile else None
    ws = await open_socket(node, station_id, "2.1", authorization=authorization)
    assert ws.subprotocol == "ocpp2.1"
    cp = Station21(station_id, ws)
    task = asyncio.create_task(cp.start())
    boot = await cp.call(
        c21.BootNotification(charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp")
    )
    assert boot.status == "Accepted"
    return ws, cp, task


def frames_of(cp: Station21, message_type: int, action: str | None = None) -> list[list[Any]]:
    """The raw frames of one type (and, for CALLs, one action) the station received."""
    return [f for f in cp.frames if f[0] == message_type and (action is None or f[2] == action)]


def certificate_signed_payload(cp: Station21) -> dict[str, Any]:
    """The one CertificateSigned CALL's wire payload, checked against the official 2.1
    schema and decoded into our generated type (both must accept it)."""
    (frame,) = frames_of(cp, 2, "CertificateSigned")
    payload: dict[str, Any] = frame[3]
    case = next(c for c in schema_cases() if c.id == "2.1-CertificateSignedRequest")
    assert reference_errors(case, payload) == []
    typed = validate_payload("2.1", "CertificateSigned", msgspec.json.encode(payload))
    assert isinstance(typed, v21.CertificateSignedRequest)
    return payload


def root_hash(certificate: x509.Certificate, algorithm: str = "SHA256") -> dict[str, str]:
    """CertificateHashDataType of a self-signed root, computed here with ``hashlib``: the
    fields of an OCSP CertID (RFC 6960 §4.1.1), hashes of the issuer's DER name and of its
    public key's bit string (an EC point), and the serial in hex."""
    key = certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    digest = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}
    return {
        "hash_algorithm": algorithm,
        "issuer_name_hash": digest[algorithm](certificate.issuer.public_bytes()).hexdigest(),
        "issuer_key_hash": digest[algorithm](point).hexdigest(),
        "serial_number": format(certificate.serial_number, "x"),
    }


async def sign_and_receive(
    node: RunningCsms, cp: Station21, request: c21.SignCertificate
) -> tuple[Any, dict[str, Any]]:
    """SignCertificate, then the CertificateSigned it leads to (and the station's answer
    stored): (the reply, the CertificateSigned wire payload)."""
    reply = await cp.call(request)
    assert reply.status == "Accepted", reply
    assert reply.status_info is None  # statusInfo only explains a rejection
    await asyncio.wait_for(cp.signed.get(), 10)
    await node.service.certificate_signing.drain()
    # The reply reaches the station before CertificateSigned (module docstring, "Ordering"):
    # the frames are Boot's CALLRESULT, SignCertificate's CALLRESULT, then the CALL.
    assert [f[0] for f in cp.frames] == [3, 3, 2]
    assert cp.frames[1][2]["status"] == "Accepted" and cp.frames[2][2] == "CertificateSigned"
    return reply, certificate_signed_payload(cp)


def eku_of(leaf: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


# -- 1. ChargingStationCertificate with requestId -------------------------------------------------


@pytest.mark.parametrize("request_id", [0, 42, 2**31 - 1], ids=["zero", "42", "int32-max"])
async def test_a02_fr_11_21_charging_station_certificate_names_its_request(
    request_id: int, csms: Callable[..., Any], ca: Ca
) -> None:
    """A 2.1 station asks for its ChargingStationCertificate with a requestId: Accepted
    (A02.FR.11); CertificateSigned carries the same requestId (0 included: present, not
    falsy) and certificateType (A02.FR.14), and a chain of leaf + CA whose leaf has CN = the
    station id (A00.FR.405), O = cpo_name (A00.FR.404), the CSR's key, clientAuth only (the
    station is the TLS client of profile 3), and is signed by the configured CA. The
    issuance and the station's answer are stored as a security event."""
    node = await csms(**ca.settings())
    station_id = f"CA21-CS-{request_id}"
    ws, cp, task = await connect21(node, station_id)
    csr, key = make_csr(station_id)
    try:
        _, payload = await sign_and_receive(
            node,
            cp,
            c21.SignCertificate(
                csr=csr, certificate_type="ChargingStationCertificate", request_id=request_id
            ),
        )
    finally:
        task.cancel()
        await ws.close()
    assert payload["requestId"] == request_id
    assert payload["certificateType"] == "ChargingStationCertificate"
    leaf, issuer = chain_of(payload["certificateChain"])
    assert issuer == ca.certificate
    leaf.verify_directly_issued_by(ca.certificate)
    assert subject(leaf, NameOID.COMMON_NAME) == [station_id]
    assert subject(leaf, NameOID.ORGANIZATION_NAME) == [CPO]
    assert leaf.public_key() == key.public_key()
    assert eku_of(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    (event,) = await events(node, station_id, CERTIFICATE_ISSUED)
    tech_info = event.tech_info or ""
    assert f"serial={format(leaf.serial_number, 'x')}" in tech_info
    assert "type=ChargingStationCertificate" in tech_info
    assert "CertificateSigned=Accepted" in tech_info


# -- 2. The V2G types, 2.1's V2G20Certificate included --------------------------------------------


@pytest.mark.parametrize(
    ("certificate_type", "curve", "digest"),
    [
        pytest.param("V2GCertificate", ec.SECP256R1(), hashes.SHA256(), id="V2GCertificate"),
        # ISO 15118-20's ECDSA suite: secp521r1 keys, SHA-512 signatures.
        pytest.param("V2G20Certificate", ec.SECP521R1(), hashes.SHA512(), id="V2G20Certificate"),
    ],
)
async def test_a02_21_v2g_certificates_are_the_ev_links_server_certificates(
    certificate_type: str,
    curve: ec.EllipticCurve,
    digest: hashes.SHA256 | hashes.SHA512,
    csms: Callable[..., Any],
    ca: Ca,
) -> None:
    """A V2G certificate (2.0.1's V2GCertificate, 2.1's V2G20Certificate for ISO 15118-20)
    is the certificate of the TLS server of the EV link: serverAuth only. CertificateSigned
    echoes the type (A02.FR.14) and the requestId. The station names the CA's root in
    hashRootCertificate (2.1): it is this CA's, so the CSMS signs."""
    node = await csms(**ca.settings())
    station_id = f"CA21-{certificate_type}"
    ws, cp, task = await connect21(node, station_id)
    key = ec.generate_private_key(curve)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, CPO),
                    x509.NameAttribute(NameOID.COMMON_NAME, station_id),
                ]
            )
        )
        .sign(key, digest)
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    try:
        _, payload = await sign_and_receive(
            node,
            cp,
            c21.SignCertificate(
                csr=csr,
                certificate_type=certificate_type,
                request_id=7,
                hash_root_certificate=root_hash(ca.certificate),
            ),
        )
    finally:
        task.cancel()
        await ws.close()
    assert payload["certificateType"] == certificate_type
    assert payload["requestId"] == 7
    leaf, issuer = chain_of(payload["certificateChain"])
    assert issuer == ca.certificate
    leaf.verify_directly_issued_by(ca.certificate)
    assert subject(leaf, NameOID.COMMON_NAME) == [station_id]
    assert subject(leaf, NameOID.ORGANIZATION_NAME) == [CPO]
    assert leaf.public_key() == key.public_key()
    assert eku_of(leaf) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_agreement  # A00.FR.512, EC key
    (event,) = await events(node, station_id, CERTIFICATE_ISSUED)
    assert f"type={certificate_type}" in (event.tech_info or "")


# -- 3. Without requestId -------------------------------------------------------------------------


@pytest.mark.parametrize("certificate_type", ["ChargingStationCertificate", None])
async def test_a02_21_without_request_id_certificate_signed_has_none(
    certificate_type: str | None, csms: Callable[..., Any], ca: Ca
) -> None:
    """requestId is optional in SignCertificateRequest (2.1 schema: only ``csr`` is
    required): without one, CertificateSigned carries no requestId on the wire. Without
    certificateType too, the certificate serves both links (schema: "When omitted the
    certificate is to be used for both"): no certificateType echoed, both EKUs."""
    node = await csms(**ca.settings())
    station_id = f"CA21-NOID-{certificate_type or 'untyped'}"
    ws, cp, task = await connect21(node, station_id)
    csr, _ = make_csr(station_id)
    try:
        _, payload = await sign_and_receive(
            node, cp, c21.SignCertificate(csr=csr, certificate_type=certificate_type)
        )
    finally:
        task.cancel()
        await ws.close()
    assert "requestId" not in payload
    leaf, _ = chain_of(payload["certificateChain"])
    if certificate_type is None:
        assert set(payload) == {"certificateChain"}
        assert eku_of(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
    else:
        assert set(payload) == {"certificateChain", "certificateType"}
        assert eku_of(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH]


# -- 4. Rejected ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "reason_code"),
    [("bad-csr", "InvalidCSR"), ("no-ca", "NotEnabled"), ("profile-0", "NoAuth")],
)
async def test_a02_fr_12_21_rejected_carries_status_info(
    cause: str, reason_code: str, csms: Callable[..., Any], ca: Ca
) -> None:
    """A02.FR.12 on 2.1: a CSR the CSMS cannot process is answered Rejected with statusInfo
    (reasonCode, additionalInfo saying why) — a CSR naming another station (A00.FR.405),
    no CA configured, or a profile-0 port (nobody authenticated the station). No
    CertificateSigned follows, whatever the requestId; a bad CSR is stored as a CsrRejected
    security event naming the reason (A02 "Error handling": the operator must hear of it)."""
    settings = {
        "bad-csr": ca.settings(),
        "no-ca": {"security_profile": 1},
        "profile-0": ca.settings(security_profile=0),
    }[cause]
    node = await csms(**settings)
    station_id = f"CA21-REJ-{cause}"
    ws, cp, task = await connect21(node, station_id, profile=0 if cause == "profile-0" else 1)
    csr = make_csr("SOMEONE-ELSE" if cause == "bad-csr" else station_id)[0]
    try:
        reply = await cp.call(
            c21.SignCertificate(
                csr=csr, certificate_type="ChargingStationCertificate", request_id=9
            )
        )
        assert reply.status == "Rejected"
        await node.service.certificate_signing.drain()
        await asyncio.sleep(0.3)
        assert cp.signed.empty()
    finally:
        task.cancel()
        await ws.close()
    result = frames_of(cp, 3)[-1]  # Boot's reply, then SignCertificate's
    assert result[2]["status"] == "Rejected"
    info = result[2]["statusInfo"]
    assert info["reasonCode"] == reason_code
    assert info["additionalInfo"]
    case = next(c for c in schema_cases() if c.id == "2.1-SignCertificateResponse")
    assert reference_errors(case, result[2]) == []
    assert not frames_of(cp, 2, "CertificateSigned")
    assert not await events(node, station_id, CERTIFICATE_ISSUED)
    rejected = await events(node, station_id, CSR_REJECTED)
    if cause == "bad-csr":
        (event,) = rejected
        assert "CN is not the station id" in (event.tech_info or "")
        assert "CN is not the station id" in info["additionalInfo"]
    else:
        assert rejected == []


# -- 5. hashRootCertificate: the root the station wants its certificate under ---------------------

ALGORITHMS = ["SHA256", "SHA384", "SHA512"]


def sub_ca(folder: Path, root: Ca, *, with_root: bool) -> Ca:
    """A sub-CA signed by ``root``: the CA the CSMS signs with; its ``ca_cert`` file holds the
    sub-CA, then the root when ``with_root`` (the chain up to the root), else the sub-CA only."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = root.certificate.not_valid_before_utc
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CPO Sub-CA")]))
        .issuer_name(root.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(root.certificate.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root.key, hashes.SHA256())
    )
    chain = [certificate, root.certificate] if with_root else [certificate]
    return write_ca(folder, "sub", chain, key)


async def sign_naming_root(
    node: RunningCsms, station_id: str, hash_root: dict[str, str]
) -> tuple[Station21, dict[str, Any]]:
    """A 2.1 station asks for a ChargingStationCertificate under ``hash_root``: (the station,
    the SignCertificate CALLRESULT payload on the wire, checked against the 2.1 schema). When
    Accepted it waits for CertificateSigned; when Rejected it checks that none follows."""
    ws, cp, task = await connect21(node, station_id)
    csr, _ = make_csr(station_id)
    try:
        reply = await cp.call(
            c21.SignCertificate(
                csr=csr,
                certificate_type="ChargingStationCertificate",
                request_id=5,
                hash_root_certificate=hash_root,
            )
        )
        if reply.status == "Accepted":
            await asyncio.wait_for(cp.signed.get(), 10)
        await node.service.certificate_signing.drain()
        await asyncio.sleep(0.2 if reply.status == "Rejected" else 0)
    finally:
        task.cancel()
        await ws.close()
    payload: dict[str, Any] = frames_of(cp, 3)[1][2]  # Boot's reply, then SignCertificate's
    case = next(c for c in schema_cases() if c.id == "2.1-SignCertificateResponse")
    assert reference_errors(case, payload) == []
    return cp, payload


async def assert_rejected_for_root(
    node: RunningCsms, station_id: str, cp: Station21, payload: dict[str, Any]
) -> None:
    """Rejected with statusInfo reasonCode UnknownRootCert (ocppkit's own) and a reason; no
    CertificateSigned; the CsrRejected security event names the cause and the root named."""
    assert payload["status"] == "Rejected"
    assert payload["statusInfo"]["reasonCode"] == UNKNOWN_ROOT
    assert len(UNKNOWN_ROOT) <= 20  # StatusInfoType.reasonCode maxLength
    assert "hashRootCertificate" in payload["statusInfo"]["additionalInfo"]
    assert not frames_of(cp, 2, "CertificateSigned")
    assert not await events(node, station_id, CERTIFICATE_ISSUED)
    (event,) = await events(node, station_id, CSR_REJECTED)
    assert "hashRootCertificate names another root" in (event.tech_info or "")
    assert "serialNumber=" in (event.tech_info or "")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a02_21_hash_root_certificate_naming_the_cas_root_is_signed(
    algorithm: str, csms: Callable[..., Any], ca: Ca
) -> None:
    """hashRootCertificate naming the root of the CA the CSMS signs with (here the CA is the
    root), under each HashAlgorithmEnumType value: Accepted (A02.FR.11), CertificateSigned
    follows with a leaf issued by that CA; no CsrRejected event."""
    node = await csms(**ca.settings())
    station_id = f"CA21-ROOT-{algorithm}"
    cp, payload = await sign_naming_root(node, station_id, root_hash(ca.certificate, algorithm))
    assert payload == {"status": "Accepted"}
    leaf, issuer = chain_of(certificate_signed_payload(cp)["certificateChain"])
    assert issuer == ca.certificate
    leaf.verify_directly_issued_by(ca.certificate)
    assert not await events(node, station_id, CSR_REJECTED)
    assert len(await events(node, station_id, CERTIFICATE_ISSUED)) == 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
async def test_a02_21_hash_root_certificate_naming_another_root_is_rejected(
    algorithm: str, csms: Callable[..., Any], ca: Ca, tmp_path: Path
) -> None:
    """hashRootCertificate naming a root the CSMS's CA does not chain to (another CPO's
    root), under each algorithm: Rejected with statusInfo (UnknownRootCert, a reason), no
    CertificateSigned, a CsrRejected security event for the operator (A02 "Error
    handling") — signing would give the station a certificate of a PKI it did not ask for."""
    (tmp_path / "other").mkdir()
    other = make_ca(tmp_path / "other", name="Other")
    node = await csms(**ca.settings())
    station_id = f"CA21-OTHER-{algorithm}"
    cp, payload = await sign_naming_root(node, station_id, root_hash(other.certificate, algorithm))
    await assert_rejected_for_root(node, station_id, cp, payload)


@pytest.mark.parametrize(
    "change",
    ["algorithm-label", "serial", "key-hash"],
)
async def test_a02_21_hash_root_certificate_must_match_in_every_field(
    change: str, csms: Callable[..., Any], ca: Ca
) -> None:
    """The CA's own root, with one field wrong: SHA256 hashes labelled SHA384 (the hashes
    are compared under the algorithm named), another serial, another key hash: Rejected."""
    named = root_hash(ca.certificate)
    if change == "algorithm-label":
        named["hash_algorithm"] = "SHA384"
    elif change == "serial":
        named["serial_number"] = format(ca.certificate.serial_number + 1, "x")
    else:
        named["issuer_key_hash"] = hashlib.sha256(b"another key").hexdigest()
    node = await csms(**ca.settings())
    station_id = f"CA21-FIELD-{change}"
    cp, payload = await sign_naming_root(node, station_id, named)
    await assert_rejected_for_root(node, station_id, cp, payload)


@pytest.mark.parametrize(
    ("ca_file", "named", "accepted"),
    [
        pytest.param("chain", "root", True, id="chain-names-root"),
        pytest.param("chain", "sub-ca", False, id="chain-names-sub-ca"),
        pytest.param("sub-ca-only", "root", True, id="sub-ca-only-names-root"),
        pytest.param("sub-ca-only", "other-root", False, id="sub-ca-only-names-other-root"),
    ],
)
async def test_a02_21_hash_root_certificate_is_the_top_of_the_cas_chain(
    ca_file: str, named: str, accepted: bool, csms: Callable[..., Any], tmp_path: Path
) -> None:
    """The CSMS signs with a sub-CA. With the ``ca_cert`` file holding the chain up to the
    root, only the root (the top) is the root: naming it is Accepted, naming the sub-CA
    Rejected. With the sub-CA alone in the file the root's key and serial are unknown and its
    name is what is checked (certificate_authority's docstring): the root's name Accepted,
    another root's Rejected."""
    (tmp_path / "root").mkdir()
    (tmp_path / "other").mkdir()
    root = make_ca(tmp_path / "root", name="Root")
    other = make_ca(tmp_path / "other", name="Other")
    signing = sub_ca(tmp_path, root, with_root=ca_file == "chain")
    hashes_of = {
        "root": root_hash(root.certificate, "SHA512"),
        "other-root": root_hash(other.certificate, "SHA512"),
        # The sub-CA's own CertID as a root would be named (its issuer is the root, so its
        # name hash is the root's: only the key hash and serial tell them apart).
        "sub-ca": root_hash(signing.certificate, "SHA512"),
    }
    node = await csms(**signing.settings())
    station_id = f"CA21-CHAIN-{ca_file}-{named}"
    cp, payload = await sign_naming_root(node, station_id, hashes_of[named])
    if not accepted:
        await assert_rejected_for_root(node, station_id, cp, payload)
        return
    assert payload == {"status": "Accepted"}
    leaf, *above = chain_of(certificate_signed_payload(cp)["certificateChain"])
    leaf.verify_directly_issued_by(signing.certificate)
    assert above == (
        [signing.certificate, root.certificate] if ca_file == "chain" else [signing.certificate]
    )
