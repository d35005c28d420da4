"""CertificateHashDataType (:mod:`ocppkit.protocol.certificate_hash`), shared by station and CSMS.

Every expected value is computed here independently of the module: the name hash with
``hashlib`` over the issuer's DER name, the key hash with ``hashlib`` over the key encoding
that the subjectPublicKey BIT STRING holds for that key type (RFC 6960 §4.1.1 CertID; the
2.x schemas: "the value (excluding tag and length) of the subject public key field in the
issuer's certificate"): the uncompressed point of an EC key, the PKCS#1 DER of an RSA key,
the raw 32 bytes of an Ed25519 key — while the module reads the BIT STRING out of the DER.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from ocppkit.protocol.certificate_hash import (
    HASH_ALGORITHMS,
    HashData,
    hash_data,
    subject_public_key_bits,
)

ALGORITHMS = {"SHA256": hashlib.sha256, "SHA384": hashlib.sha384, "SHA512": hashlib.sha512}


def certificate(
    name: str, key: Any, *, issuer: str | None = None, issuer_key: Any = None, serial: int = 0xABC
) -> x509.Certificate:
    now = datetime.now(UTC)
    signer = issuer_key if issuer_key is not None else key
    digest = None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or name)]))
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(signer, digest)
    )


def key_bits(key: Any) -> bytes:
    """The BIT STRING contents of each key type, by the key type's own encoding."""
    public = key.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        return public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    if isinstance(public, rsa.RSAPublicKey):
        return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)  # type: ignore[no-any-return]


KEYS = {
    "ec-p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "ec-p521": lambda: ec.generate_private_key(ec.SECP521R1()),  # a long-form DER length
    "rsa-2048": lambda: rsa.generate_private_key(65537, 2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
@pytest.mark.parametrize("key_type", list(KEYS))
def test_root_hash_data_is_the_ocsp_cert_id_under_each_algorithm(
    algorithm: str, key_type: str
) -> None:
    """A self-signed root (2.1 hashRootCertificate, M03 for roots): the issuer name is its
    own, the key hashed its own, under SHA256 / SHA384 / SHA512 (HashAlgorithmEnumType); the
    serial in hex without leading zeroes."""
    key = KEYS[key_type]()
    root = certificate("Root", key, serial=0x00ABCDEF)
    digest = ALGORITHMS[algorithm]
    assert hash_data(root, algorithm=algorithm) == HashData(
        issuer_name_hash=digest(root.issuer.public_bytes()).hexdigest(),
        issuer_key_hash=digest(key_bits(key)).hexdigest(),
        serial_number="abcdef",
        hash_algorithm=algorithm,
    )
    assert subject_public_key_bits(root) == key_bits(key)


def test_hash_data_of_a_child_hashes_its_issuers_name_and_key() -> None:
    """RFC 6960 CertID: a certificate below a root hashes its *issuer's* DN (its own issuer
    field) and the issuer's public key, never its own."""
    root_key = ec.generate_private_key(ec.SECP384R1())
    sub_key = ec.generate_private_key(ec.SECP256R1())
    root = certificate("Root", root_key)
    sub = certificate("Sub", sub_key, issuer="Root", issuer_key=root_key, serial=17)
    data = hash_data(sub, root, algorithm="SHA384")
    assert data.issuer_name_hash == hashlib.sha384(root.subject.public_bytes()).hexdigest()
    assert data.issuer_key_hash == hashlib.sha384(key_bits(root_key)).hexdigest()
    assert data.serial_number == "11"
    assert data.issuer_key_hash != hash_data(sub, algorithm="SHA384").issuer_key_hash


def test_default_algorithm_is_sha256_and_unknown_ones_are_refused() -> None:
    root = certificate("Root", ec.generate_private_key(ec.SECP256R1()))
    assert hash_data(root).hash_algorithm == "SHA256" == hash_data(root).to_wire()["hashAlgorithm"]
    assert set(HASH_ALGORITHMS) == {"SHA256", "SHA384", "SHA512"}
    with pytest.raises(ValueError, match="SHA1"):
        hash_data(root, algorithm="SHA1")


def test_matches_wire_and_snake_case_but_not_another_algorithm() -> None:
    """Hex compared case-insensitively, a serial with leading zeroes still the same; the
    same hashes labelled with another algorithm name another certificate."""
    data = HashData("aa", "bb", "abcdef", "SHA384")
    wire = {"hashAlgorithm": "SHA384", "issuerNameHash": "AA", "issuerKeyHash": "Bb"}
    assert data.matches(wire | {"serialNumber": "00ABCDEF"})
    snake = {"hash_algorithm": "sha384", "issuer_name_hash": "aa", "issuer_key_hash": "bb"}
    assert data.matches(snake | {"serial_number": "abcdef"})
    assert not data.matches(wire | {"serialNumber": "abcdef", "hashAlgorithm": "SHA256"})
    assert not data.matches(wire | {"serialNumber": "abcdee"})
    assert not data.matches({})
