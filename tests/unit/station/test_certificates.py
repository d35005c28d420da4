"""The station's certificate store (:mod:`ocppkit.station.certificates`): hash data as 2.0.1
CertificateHashDataType defines it (M03), install/delete (M04/M05, M04.FR.05), CSR and the
signed chain (A02/A03, A02.FR.05), persistence. Expected values are computed here from the
DER with ``hashlib``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ocppkit.station.certificates import (
    CertificateError,
    CertificateStore,
    HashData,
    hash_data,
    parse_chain,
    verify_chain,
)


def _cert(
    name: str, key: object, issuer: x509.Certificate | None = None, issuer_key: object = None
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(0x00AB_CDEF)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(issuer_key or key, hashes.SHA256())  # type: ignore[arg-type]
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_m03_hash_data_of_an_ec_root_is_the_ocsp_cert_id() -> None:
    """M03 CertificateHashDataType: SHA256 of the issuer DN (DER), of the issuer key (the
    BIT STRING contents: for P-256 the last 65 bytes of the SPKI), serial in hex without
    leading zeroes."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert("Root", key)
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    data = hash_data(cert)
    assert data == HashData(
        issuer_name_hash=hashlib.sha256(cert.issuer.public_bytes()).hexdigest(),
        issuer_key_hash=hashlib.sha256(spki[-65:]).hexdigest(),
        serial_number="abcdef",
    )
    assert data.to_wire()["hashAlgorithm"] == "SHA256"


def test_m03_hash_data_of_an_rsa_root_hashes_the_pkcs1_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _cert("RSA Root", key)
    pkcs1 = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki.endswith(pkcs1)  # the BIT STRING contents end the SPKI
    assert hash_data(cert).issuer_key_hash == hashlib.sha256(pkcs1).hexdigest()


def test_hash_data_matches_wire_and_snake_case_ignoring_hex_case_and_leading_zeroes() -> None:
    data = HashData("aa", "bb", "abcdef")
    assert data.matches(
        {
            "hashAlgorithm": "SHA256",
            "issuerNameHash": "AA",
            "issuerKeyHash": "bb",
            "serialNumber": "00ABCDEF",
        }
    )
    assert data.matches(
        {
            "hash_algorithm": "SHA256",
            "issuer_name_hash": "aa",
            "issuer_key_hash": "bb",
            "serial_number": "abcdef",
        }
    )
    assert not data.matches({**data.to_wire(), "hashAlgorithm": "SHA384"})


def test_m05_install_m03_list_m04_delete_roots() -> None:
    store = CertificateStore()
    root = _cert("Root", ec.generate_private_key(ec.SECP256R1()))
    other = _cert("Other", ec.generate_private_key(ec.SECP256R1()))
    data = store.install("CSMSRootCertificate", _pem(root))
    store.install("CSMSRootCertificate", _pem(root))  # the same again: kept once
    store.install("V2GRootCertificate", _pem(other))
    assert store.installed(["CSMSRootCertificate"]) == [("CSMSRootCertificate", data)]
    assert len(store.installed()) == 2
    assert store.find(data.to_wire()) == "CSMSRootCertificate"
    assert store.delete(data.to_wire()) == "Accepted"
    assert store.delete(data.to_wire()) == "NotFound"
    assert store.installed(["CSMSRootCertificate"]) == []


@pytest.mark.parametrize("algorithm", ["SHA384", "SHA512"])
def test_m04_delete_by_hash_data_of_another_algorithm(algorithm: str) -> None:
    """2.1 (and 2.0.1's HashAlgorithmEnumType) lets the CSMS name a certificate by SHA384 or
    SHA512 hash data: the store computes the hashes in the algorithm named. The expected
    issuerNameHash is computed here with hashlib, apart from the store's code."""
    store = CertificateStore()
    root = _cert("Root", ec.generate_private_key(ec.SECP256R1()))
    store.install("CSMSRootCertificate", _pem(root))
    wanted = hash_data(root, algorithm=algorithm).to_wire()
    digest = hashlib.new(algorithm.lower(), root.issuer.public_bytes()).hexdigest()
    assert wanted["issuerNameHash"] == digest
    assert store.find({**wanted, "hashAlgorithm": "SHA1"}) is None  # not an OCPP algorithm
    assert store.find(wanted) == "CSMSRootCertificate"
    assert store.delete(wanted) == "Accepted"
    assert store.delete(wanted) == "NotFound"
    assert store.installed() == []


def test_m05_unparsable_certificate_is_refused() -> None:
    with pytest.raises(CertificateError):
        CertificateStore().install("CSMSRootCertificate", "not a pem")
    with pytest.raises(CertificateError):
        parse_chain("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


def test_hash_data_of_a_non_root_uses_the_installed_issuer_key() -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("CA", ca_key)
    sub = _cert("Sub", ec.generate_private_key(ec.SECP256R1()), ca, ca_key)
    store = CertificateStore()
    store.install("CSMSRootCertificate", _pem(ca))
    data = store.install("ManufacturerRootCertificate", _pem(sub))
    assert data == hash_data(sub, ca) and data.issuer_key_hash == hash_data(ca).issuer_key_hash


def _ca(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None = None,
    issuer_key: ec.EllipticCurvePrivateKey | None = None,
    *,
    ca: bool = True,
    days: tuple[int, int] = (-1, 365),
) -> x509.Certificate:
    """A certificate with basic constraints (cA ``ca``), valid ``days`` around now."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key or key, hashes.SHA256())
    )


def _leaf_for(
    csr_pem: str,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    days: tuple[int, int] = (-1, 365),
) -> x509.Certificate:
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(issuer.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + timedelta(days=days[0]))
        .not_valid_after(now + timedelta(days=days[1]))
        .sign(issuer_key, hashes.SHA256())
    )


NOW = datetime.now(UTC)
CSMS = ["CSMSRootCertificate"]


def test_a02_csr_keeps_the_key_and_accepts_only_a_chain_for_it() -> None:
    """A02: CN = station id, O = organization, signed by the new key; A02.FR.05 the private
    key stays in the store; a chain for another key is refused and changes nothing."""
    store = CertificateStore()
    with pytest.raises(CertificateError):
        store.accept_signed("garbage", NOW, anchors=CSMS)
    with pytest.raises(CertificateError, match="no pending"):
        stray = _cert("x", ec.generate_private_key(ec.SECP256R1()))
        store.accept_signed(_pem(stray), NOW, anchors=CSMS)
    csr = x509.load_pem_x509_csr(store.make_csr("CP-1", "ACME").encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-1"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ACME"
    assert store.pending_key is not None and "PRIVATE KEY" in store.pending_key
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("CA", ca_key)
    store.install("CSMSRootCertificate", _pem(ca), NOW)
    stranger = _cert("CP-1", ec.generate_private_key(ec.SECP256R1()), ca, ca_key)
    with pytest.raises(CertificateError, match="pending key"):
        store.accept_signed(_pem(stranger), NOW, anchors=CSMS)
    assert store.own_chain == []
    now = datetime.now(UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(7)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    store.accept_signed(_pem(leaf) + _pem(ca), NOW, anchors=CSMS)
    assert store.own_chain == [_pem(leaf), _pem(ca)]
    assert store.pending_key is None and store.own_key is not None
    assert store.expires_at() == leaf.not_valid_after_utc
    own = hash_data(leaf, ca)
    assert store.own_hash_data() == own
    assert store.delete(own.to_wire()) == "Failed"  # M04.FR.05
    restored = CertificateStore.from_dict(store.to_dict())
    assert restored.to_dict() == store.to_dict()
    assert restored.delete(own.to_wire()) == "Failed"


def test_empty_dict_restores_an_empty_store() -> None:
    store = CertificateStore.from_dict({})
    assert store.installed() == [] and store.own_chain == [] and store.pending_key is None
    assert store.expires_at() is None and store.own_hash_data() is None


def test_a_blob_of_the_one_certificate_layout_restores_into_the_charging_station_slot() -> None:
    """State files written before certificates were kept per use still load."""
    store = CertificateStore.from_dict(
        {"roots": {}, "own_chain": ["A"], "own_key": "K", "pending_key": "P"}
    )
    assert store.own_chain == ["A"] and store.own_key == "K" and store.pending_key == "P"
    assert CertificateStore.from_dict(store.to_dict()).to_dict() == store.to_dict()


def test_a02_fr_06_a_certificate_not_valid_now_is_refused() -> None:
    """A02.FR.06: the station validates the returned certificate, at least its validity
    period at the station's time; A02.FR.07 it is discarded, the key stays pending."""
    store = CertificateStore()
    csr = store.make_csr("CP-1", "ACME")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _ca("CA", ca_key)
    store.install("CSMSRootCertificate", _pem(ca), NOW)
    expired = _leaf_for(csr, ca, ca_key, days=(-10, -1))
    with pytest.raises(CertificateError, match="not valid now"):
        store.accept_signed(_pem(expired), NOW, anchors=CSMS)
    future = _leaf_for(csr, ca, ca_key, days=(1, 10))
    with pytest.raises(CertificateError, match="not valid now"):
        store.accept_signed(_pem(future), NOW, anchors=CSMS)
    assert store.own_chain == [] and store.pending_key is not None
    good = _leaf_for(csr, ca, ca_key)
    store.accept_signed(_pem(good), NOW, anchors=CSMS)
    assert store.own_chain == [_pem(good)]


def test_a02_fr_06_the_chain_must_lead_to_an_installed_root_of_the_use_s_type() -> None:
    """A02.FR.06 "part of the Charging Station Operator certificate hierarchy": leaf ->
    sub-CA -> an installed CSMSRootCertificate. The same chain is refused when that root is
    missing, installed under another type (a ManufacturerRootCertificate never anchors the
    station certificate), or when the chain names a self-made root of the same name."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _ca("CPO Root", root_key)
    sub_key = ec.generate_private_key(ec.SECP256R1())
    sub = _ca("CPO Sub-CA", sub_key, root, root_key)
    store = CertificateStore()
    leaf = _leaf_for(store.make_csr("CP-1", "ACME"), sub, sub_key)
    chain = _pem(leaf) + _pem(sub)
    with pytest.raises(CertificateError, match="does not chain to an installed root"):
        store.accept_signed(chain, NOW, anchors=CSMS)
    store.install("ManufacturerRootCertificate", _pem(root), NOW)
    with pytest.raises(CertificateError, match="does not chain"):
        store.accept_signed(chain, NOW, anchors=CSMS)
    impostor_key = ec.generate_private_key(ec.SECP256R1())
    impostor = _ca("CPO Root", impostor_key)  # same name, another key
    store.install("CSMSRootCertificate", _pem(impostor), NOW)
    with pytest.raises(CertificateError, match="does not chain"):
        store.accept_signed(chain + _pem(root), NOW, anchors=CSMS)
    store.install("CSMSRootCertificate", _pem(root), NOW)
    store.accept_signed(chain + _pem(root), NOW, anchors=CSMS)  # may end with the root
    assert store.own_chain == [_pem(leaf), _pem(sub), _pem(root)]


def test_verify_chain_rules() -> None:
    """Each certificate signed by the next, every issuer a CA, all valid now; an expired
    anchor anchors nothing; returns the anchor."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _ca("Root", root_key)
    sub_key = ec.generate_private_key(ec.SECP256R1())
    sub = _ca("Sub", sub_key, root, root_key)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _ca("Leaf", leaf_key, sub, sub_key, ca=False)
    assert verify_chain([leaf, sub], [root], NOW) == root
    assert verify_chain([leaf, sub, root], [root], NOW) == root
    with pytest.raises(CertificateError, match="not issued by"):
        verify_chain([leaf, root], [root], NOW)  # the sub-CA is missing
    not_ca = _ca("Sub", sub_key, root, root_key, ca=False)
    with pytest.raises(CertificateError, match="not a CA"):
        verify_chain([leaf, not_ca], [root], NOW)
    old_sub = _ca("Sub", sub_key, root, root_key, days=(-10, -2))
    with pytest.raises(CertificateError, match="not valid now"):
        verify_chain([leaf, old_sub], [root], NOW)
    old_root = _ca("Root", root_key, days=(-10, -2))
    with pytest.raises(CertificateError, match="does not chain"):
        verify_chain([leaf, sub], [old_root], NOW)
    with pytest.raises(CertificateError, match="empty"):
        verify_chain([], [root], NOW)


def test_m05_fr_06_an_invalid_root_is_refused() -> None:
    """M05.FR.06: a certificate that is invalid (outside its validity period) or incorrect
    (basic constraints say it is no CA) is not installed."""
    key = ec.generate_private_key(ec.SECP256R1())
    store = CertificateStore()
    with pytest.raises(CertificateError, match="not valid now"):
        store.install("CSMSRootCertificate", _pem(_ca("Old", key, days=(-10, -1))), NOW)
    with pytest.raises(CertificateError, match="not a CA"):
        store.install("CSMSRootCertificate", _pem(_ca("Leaf", key, ca=False)), NOW)
    assert store.installed() == []


def test_v2g_certificate_is_kept_apart_and_reported_as_a_chain() -> None:
    """2.0.1 A02 with certificateType V2GCertificate: its own key, chained to a
    V2GRootCertificate (a CSMS root does not do); M03 V2GCertificateChain gives the leaf's
    hash data and the sub-CA's as the child; M04 may delete it."""
    v2g_root_key = ec.generate_private_key(ec.SECP256R1())
    v2g_root = _ca("V2G Root", v2g_root_key)
    sub_key = ec.generate_private_key(ec.SECP256R1())
    sub = _ca("CPO Sub-CA 1", sub_key, v2g_root, v2g_root_key)
    store = CertificateStore()
    store.install("V2GRootCertificate", _pem(v2g_root), NOW)
    store.install("CSMSRootCertificate", _pem(_ca("CSMS Root", sub_key)), NOW)
    cs_csr = store.make_csr("CP-1", "ACME")
    v2g_csr = store.make_csr("CP-1", "ACME", use="V2GCertificate")
    assert store.own["V2GCertificate"].pending_key != store.pending_key
    cs_leaf = _leaf_for(cs_csr, sub, sub_key)
    with pytest.raises(CertificateError, match="pending key"):  # not the V2G key
        store.accept_signed(
            _pem(cs_leaf) + _pem(sub), NOW, anchors=["V2GRootCertificate"], use="V2GCertificate"
        )
    v2g_leaf = _leaf_for(v2g_csr, sub, sub_key)
    with pytest.raises(CertificateError, match="does not chain"):
        store.accept_signed(_pem(v2g_leaf) + _pem(sub), NOW, anchors=CSMS, use="V2GCertificate")
    assert store.v2g_chain_hash_data() is None
    store.accept_signed(
        _pem(v2g_leaf) + _pem(sub), NOW, anchors=["V2GRootCertificate"], use="V2GCertificate"
    )
    assert store.own_chain == [] and store.pending_key is not None  # the CS slot untouched
    reported = store.v2g_chain_hash_data()
    assert reported == (hash_data(v2g_leaf, sub), [hash_data(sub, v2g_root)])
    assert store.find(hash_data(v2g_leaf, sub).to_wire()) == "V2GCertificateChain"
    assert store.delete(hash_data(v2g_leaf, sub).to_wire()) == "Accepted"
    assert store.v2g_chain_hash_data() is None
