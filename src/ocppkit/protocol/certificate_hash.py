"""OCPP's CertificateHashDataType: how a certificate is named on the wire, for both sides.

Why here: the station names its installed certificates with it (2.0.1 M03
GetInstalledCertificateIds, M04 DeleteCertificate; the 1.6 Security whitepaper alike) and a
2.1 station names the root it wants its certificate under (SignCertificateRequest
``hashRootCertificate``), which the CSMS checks. One computation serves both, in a layer
below both (design.md "Layers"); like the rest of :mod:`ocppkit.protocol` it does no I/O
(``cryptography`` computes, nothing more).

The fields are those of OCSP's CertID (RFC 6960 §4.1.1), as the 2.x JSON schemas describe them:

* ``issuerNameHash`` — the hash of the DER encoding of the certificate's *issuer* name;
* ``issuerKeyHash`` — the hash of the issuer's public key: "the value (excluding tag and
  length) of the subject public key field in the issuer's certificate", i.e. the contents of
  the subjectPublicKey BIT STRING without its unused-bits octet, as OpenSSL's CertID does
  (for an RSA key the PKCS#1 DER, for an EC key the uncompressed point);
* ``serialNumber`` — the certificate's serial number in hex, without "0x" and without
  leading zeroes;
* ``hashAlgorithm`` — ``SHA256``, ``SHA384`` or ``SHA512`` (HashAlgorithmEnumType), the
  hash of the first two fields.

A self-signed root is its own issuer: its hash data hashes its own name and key.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

__all__ = ["HASH_ALGORITHMS", "HashData", "hash_data", "subject_public_key_bits"]

#: HashAlgorithmEnumType -> the hash it names (the same in 1.6 whitepaper, 2.0.1 and 2.1).
HASH_ALGORITHMS: Final[Mapping[str, Callable[[bytes], Any]]] = {
    "SHA256": hashlib.sha256,
    "SHA384": hashlib.sha384,
    "SHA512": hashlib.sha512,
}


@dataclasses.dataclass(frozen=True)
class HashData:
    """One CertificateHashDataType; hashes in lower-case hex, the serial without leading 0s."""

    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    hash_algorithm: str = "SHA256"

    def to_wire(self) -> dict[str, str]:
        """The wire form (camelCase keys)."""
        return {
            "hashAlgorithm": self.hash_algorithm,
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        }

    def matches(self, other: Mapping[str, Any]) -> bool:
        """Compare with a wire (camelCase) or snake_case mapping.

        The algorithm must be the same; hex is compared case-insensitively and the serial
        also with leading zeroes (the schemas forbid them, some stations send them).
        """

        def get(camel: str, snake: str) -> str:
            value = other.get(camel, other.get(snake, ""))
            return str(getattr(value, "value", value)).lower()  # an enum member: its text

        serial = get("serialNumber", "serial_number").lstrip("0") or "0"
        return (
            get("hashAlgorithm", "hash_algorithm") == self.hash_algorithm.lower()
            and get("issuerNameHash", "issuer_name_hash") == self.issuer_name_hash
            and get("issuerKeyHash", "issuer_key_hash") == self.issuer_key_hash
            and serial == self.serial_number
        )


def hash_data(
    cert: x509.Certificate,
    issuer: x509.Certificate | None = None,
    *,
    algorithm: str = "SHA256",
) -> HashData:
    """The hash data of ``cert`` under ``algorithm``.

    Args:
        cert: the certificate named.
        issuer: the certificate whose key signed ``cert``; None when ``cert`` is
            self-signed (a root), whose own key is then hashed.
        algorithm: ``SHA256``, ``SHA384`` or ``SHA512``.

    Raises:
        ValueError: ``algorithm`` is not one of the three.
    """
    digest = HASH_ALGORITHMS.get(algorithm)
    if digest is None:
        raise ValueError(f"unknown hashAlgorithm {algorithm!r} (SHA256, SHA384 or SHA512)")
    key_of = issuer if issuer is not None else cert
    return HashData(
        issuer_name_hash=digest(cert.issuer.public_bytes()).hexdigest(),
        issuer_key_hash=digest(subject_public_key_bits(key_of)).hexdigest(),
        serial_number=format(cert.serial_number, "x"),
        hash_algorithm=algorithm,
    )


def subject_public_key_bits(cert: x509.Certificate) -> bytes:
    """The contents of the certificate's subjectPublicKey BIT STRING, unused-bits octet
    excluded: what RFC 6960 hashes for issuerKeyHash, whatever the key type.

    Read from the DER SubjectPublicKeyInfo (SEQUENCE { AlgorithmIdentifier, BIT STRING }).
    """
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    _, body = _der_value(spki, 0, tag=0x30)  # SubjectPublicKeyInfo SEQUENCE
    algorithm_end, _ = _der_value(spki, body, tag=0x30)  # AlgorithmIdentifier
    end, bits = _der_value(spki, algorithm_end, tag=0x03)  # subjectPublicKey BIT STRING
    return spki[bits + 1 : end]  # the first content octet counts the unused bits


def _der_value(der: bytes, at: int, *, tag: int) -> tuple[int, int]:
    """(end of the element, start of its contents) of the DER element at ``at``."""
    if der[at] != tag:
        raise ValueError(f"unexpected DER tag {der[at]:#x} at {at}, expected {tag:#x}")
    first = der[at + 1]
    if first < 0x80:
        return at + 2 + first, at + 2
    count = first & 0x7F
    length = int.from_bytes(der[at + 2 : at + 2 + count], "big")
    start = at + 2 + count
    return start + length, start
