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


def test_a02_csr_keeps_the_key_and_accepts_only_a_chain_for_it() -> None:
    """A02: CN = station id, O = organization, signed by the new key; A02.FR.05 the private
    key stays in the store; a chain for another key is refused and changes nothing."""
    store = CertificateStore()
    with pytest.raises(CertificateError):
        store.accept_signed("garbage")
    csr = x509.load_pem_x509_csr(store.make_csr("CP-1", "ACME").encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-1"
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "ACME"
    assert store.pending_key is not None and "PRIVATE KEY" in store.pending_key
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("CA", ca_key)
    stranger = _cert("CP-1", ec.generate_private_key(ec.SECP256R1()), ca, ca_key)
    with pytest.raises(CertificateError):
        store.accept_signed(_pem(stranger))
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
    store.accept_signed(_pem(leaf) + _pem(ca))
    assert store.own_chain == [_pem(leaf), _pem(ca)]
    assert store.pending_key is None and store.own_key is not None
    own = hash_data(leaf, ca)
    assert store.own_hash_data() == own
    assert store.delete(own.to_wire()) == "Failed"  # M04.FR.05
    restored = CertificateStore.from_dict(store.to_dict())
    assert restored.to_dict() == store.to_dict()
    assert restored.delete(own.to_wire()) == "Failed"


def test_empty_dict_restores_an_empty_store() -> None:
    store = CertificateStore.from_dict({})
    assert store.installed() == [] and store.own_chain == [] and store.pending_key is None


def test_a02_fr_06_a_certificate_not_valid_now_is_refused() -> None:
    """A02.FR.06: the station validates the returned certificate (here: its validity
    period at the station's time); the pending key stays pending."""
    store = CertificateStore()
    csr = x509.load_pem_x509_csr(store.make_csr("CP-1", "ACME").encode())
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("CA", ca_key)
    now = datetime.now(UTC)
    expired = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(ca.subject)
        .public_key(csr.public_key())
        .serial_number(8)
        .not_valid_before(now - timedelta(days=10))
        .not_valid_after(now - timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    with pytest.raises(CertificateError, match="not valid now"):
        store.accept_signed(_pem(expired), now)
    assert store.own_chain == [] and store.pending_key is not None
    store.accept_signed(_pem(expired), None)  # no clock given: only the key is checked
    assert store.own_chain == [_pem(expired)]
