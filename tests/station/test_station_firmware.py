"""Firmware updates with real downloads and real signature checks (:mod:`ocppkit.station.
firmware`), against an independent CSMS (mobilityhouse ``ocpp``): the 1.6 Security
whitepaper "Secure Firmware Update" (SignedUpdateFirmware, requirement ids of the whitepaper's
L01 table, edition 3), 1.6 §5.19 UpdateFirmware, and 2.0.1 L01/L02 (UpdateFirmware; ids
L01.FR.21/22/24 from secondary sources: the OCTT case list and implementations, not the spec
text itself).

The manufacturer root, the signing certificates and the signatures (ECDSA, RSA-PSS, RSA
PKCS#1 v1.5, all SHA-256) are made here with ``cryptography``; the firmware is served by a
real HTTP server on the loopback (``http.server`` in a thread), which records each request
and the time it came.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http.server
import itertools
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201

from ocppkit.station.certificates import CertificateError
from ocppkit.station.firmware import (
    DownloadLimits,
    FirmwareError,
    check_signing_certificate,
    fetch_digest,
    verify_signature,
)
from ocppkit.station.station import Station
from ocppkit.station.store import StationStore
from tests.station.peers import Recorder, with_their_csms

FIRMWARE = b"ocppkit test firmware image\n" * 4096
"""About 110 kB: several reads of the download loop."""

Key = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


# -- the PKI and the signatures ------------------------------------------------------------------


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


def pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


class Pki:
    """A manufacturer root with an EC and an RSA firmware signing certificate, and a
    stranger root with its own signing certificate (untrusted by the station)."""

    def __init__(self) -> None:
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = make_cert("Manufacturer Root", self.root_key, ca=True)
        self.ec_key = ec.generate_private_key(ec.SECP256R1())
        self.ec_cert = make_cert("Firmware Signer EC", self.ec_key, (self.root_key, self.root))
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_cert = make_cert("Firmware Signer RSA", self.rsa_key, (self.root_key, self.root))
        stranger_key = ec.generate_private_key(ec.SECP256R1())
        stranger = make_cert("Someone Else's Root", stranger_key, ca=True)
        self.other_key = ec.generate_private_key(ec.SECP256R1())
        self.other_cert = make_cert("Not Ours", self.other_key, (stranger_key, stranger))
        self.expired_cert = make_cert(
            "Expired Signer", self.ec_key, (self.root_key, self.root), valid_days=(-30, -1)
        )


@pytest.fixture(scope="module")
def pki() -> Pki:
    return Pki()


def sign_ecdsa(key: ec.EllipticCurvePrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, ec.ECDSA(hashes.SHA256()))).decode()


def sign_rsa_pss(key: rsa.RSAPrivateKey, data: bytes) -> str:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    return base64.b64encode(key.sign(data, pss, hashes.SHA256())).decode()


def sign_rsa_pkcs1(key: rsa.RSAPrivateKey, data: bytes) -> str:
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


# -- the firmware server ------------------------------------------------------------------------


class FileServer:
    """A real HTTP server on 127.0.0.1 serving ``files`` (path -> bytes; others: 404) and
    recording (path, time.monotonic()) of every GET; ``redirects`` path -> Location (302)."""

    def __init__(self, files: dict[str, bytes], redirects: dict[str, str] | None = None) -> None:
        self.files = files
        self.redirects = redirects or {}
        self.requests: list[tuple[str, float]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, time.monotonic()))
                if self.path in outer.redirects:
                    self.send_response(302)
                    self.send_header("Location", outer.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def hits(self, path: str) -> list[float]:
        return [t for p, t in self.requests if p == path]


@pytest.fixture
def server() -> Iterator[FileServer]:
    files = FileServer({"/fw.bin": FIRMWARE, "/other.bin": b"another image"})
    files.thread.start()
    try:
        yield files
    finally:
        files.httpd.shutdown()
        files.httpd.server_close()
        files.thread.join(5)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- helpers --------------------------------------------------------------------------------------


async def call(point: Any, payload: Any) -> Any:
    return await point.call(payload, suppress=False)


def iso(delta: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=delta)).isoformat()


@contextlib.asynccontextmanager
async def peer(
    store: StationStore, version: str, **config: Any
) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    """Their CSMS and our station (firmware_download "fetch" unless ``config`` says)."""
    settings = {"firmware_download": "fetch", **config}
    sid = f"EMU-FW{version.replace('.', '')}"
    statuses = 3 if version == "1.6" else 2
    async with with_their_csms(store, sid, version, statuses=statuses, **settings) as running:
        yield running


async def install_root16(point: Any, root: x509.Certificate) -> None:
    reply = await call(
        point,
        c16.InstallCertificate(
            certificate_type="ManufacturerRootCertificate", certificate=pem(root)
        ),
    )
    assert reply.status == "Accepted"


async def install_root201(point: Any, root: x509.Certificate) -> None:
    reply = await call(
        point,
        c201.InstallCertificate(
            certificate_type="ManufacturerRootCertificate", certificate=pem(root)
        ),
    )
    assert reply.status == "Accepted"


def statuses(rec: Recorder, action: str) -> list[str]:
    return [k["status"] for k in rec.of(action)]


async def settled(rec: Recorder, action: str, seconds: float = 0.6) -> list[str]:
    """The statuses of ``action`` once none came for ``seconds`` (steps take 0.1 s)."""
    seen = -1
    while seen != len(rec.of(action)):
        seen = len(rec.of(action))
        await asyncio.sleep(seconds)
    return statuses(rec, action)


def signed16(
    request_id: int, location: str, cert: x509.Certificate, signature: str, **kw: Any
) -> Any:
    return c16.SignedUpdateFirmware(
        request_id=request_id,
        firmware={
            "location": location,
            "retrieve_date_time": kw.pop("retrieve", iso()),
            "signing_certificate": pem(cert),
            "signature": signature,
        },
        **kw,
    )


def update201(request_id: int, location: str, **firmware: Any) -> Any:
    extra = {k: firmware.pop(k) for k in ("retries", "retry_interval") if k in firmware}
    return c201.UpdateFirmware(
        request_id=request_id,
        firmware={"location": location, "retrieve_date_time": iso(), **firmware},
        **extra,
    )


# -- the pure checks, on real certificates and signatures ---------------------------------------


def test_signature_schemes_l01_fr_04(pki: Pki) -> None:
    """L01.FR.04: a signature over the whole file with SHA-256: ECDSA for an EC key, RSA-PSS
    and RSA PKCS#1 v1.5 for an RSA key, verify; a signature of other bytes, of another key,
    an empty one and one that is not base64 do not (FirmwareError)."""
    digest = hashlib.sha256(FIRMWARE).digest()
    verify_signature(pki.ec_cert, digest, sign_ecdsa(pki.ec_key, FIRMWARE))
    verify_signature(pki.rsa_cert, digest, sign_rsa_pss(pki.rsa_key, FIRMWARE))
    verify_signature(pki.rsa_cert, digest, sign_rsa_pkcs1(pki.rsa_key, FIRMWARE))
    bad = [
        (pki.ec_cert, sign_ecdsa(pki.ec_key, FIRMWARE + b"x")),
        (pki.ec_cert, sign_ecdsa(pki.other_key, FIRMWARE)),
        (pki.rsa_cert, sign_ecdsa(pki.ec_key, FIRMWARE)),
        (pki.ec_cert, ""),
        (pki.ec_cert, "not base64 !"),
    ]
    for cert, signature in bad:
        with pytest.raises(FirmwareError):
            verify_signature(cert, digest, signature)


def test_signing_certificate_check_l01_fr_23_24(pki: Pki) -> None:
    """Whitepaper L01.FR.23/24 (2.0.1 L01.FR.21/22, secondary source): the signing
    certificate must be issued directly by an installed manufacturer root and be valid now;
    another root's, an expired one, garbage, or no root installed at all: CertificateError."""
    now = datetime.now(UTC)
    assert check_signing_certificate(pem(pki.ec_cert), [pki.root], now) == pki.ec_cert
    for refused, anchors in [
        (pem(pki.other_cert), [pki.root]),
        (pem(pki.expired_cert), [pki.root]),
        ("-----BEGIN CERTIFICATE-----", [pki.root]),
        (pem(pki.ec_cert), []),
    ]:
        with pytest.raises(CertificateError):
            check_signing_certificate(refused, anchors, now)


def test_fetch_limits_and_schemes(server: FileServer) -> None:
    """The download's limits (style rule 4): a file over ``max_bytes`` fails; an ftp://
    location and a redirect to file:// are refused (HTTP and HTTPS only); a 404 fails with
    the status; the right file gives its SHA-256 and size."""
    digest, size = fetch_digest(server.url("/fw.bin"))
    assert (digest, size) == (hashlib.sha256(FIRMWARE).digest(), len(FIRMWARE))
    with pytest.raises(FirmwareError, match="more than 1000"):
        fetch_digest(server.url("/fw.bin"), DownloadLimits(max_bytes=1000))
    with pytest.raises(FirmwareError, match="ftp"):
        fetch_digest("ftp://127.0.0.1/fw.bin")
    server.redirects["/jump"] = "file:///etc/passwd"
    with pytest.raises(FirmwareError):
        fetch_digest(server.url("/jump"))
    with pytest.raises(FirmwareError, match="404"):
        fetch_digest(server.url("/missing.bin"))


# -- 1.6: SignedUpdateFirmware and UpdateFirmware ------------------------------------------------


async def test_v16_signed_update_good_signature_verified_installed_l01_fr_04_10(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """Whitepaper L01 with a good ECDSA signature: Accepted, the file fetched once, then
    SignedFirmwareStatusNotification Downloading, Downloaded, SignatureVerified, Installing,
    Installed, each with the request's requestId (L01.FR.10), and a reboot."""
    async with peer(store, "1.6") as (_station, rec, point):
        await install_root16(point, pki.root)
        reply = await call(
            point, signed16(5, server.url("/fw.bin"), pki.ec_cert, sign_ecdsa(pki.ec_key, FIRMWARE))
        )
        assert reply.status == "Accepted"
        await rec.wait_count("BootNotification", 2)
        walked = rec.of("SignedFirmwareStatusNotification")
        assert [k["status"] for k in walked] == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "Installed",
        ]
        assert {k["request_id"] for k in walked} == {5}
        assert len(server.hits("/fw.bin")) == 1
        assert rec.of("SecurityEventNotification") == []


async def test_v16_signed_update_bad_signature_invalid_signature_event_l01_fr_03(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """Whitepaper L01.FR.03: a signature that does not verify over the downloaded file
    (it signs another image): Downloading, Downloaded, InvalidSignature, nothing installed,
    and SecurityEventNotification InvalidFirmwareSignature."""
    async with peer(store, "1.6") as (_station, rec, point):
        await install_root16(point, pki.root)
        wrong = sign_ecdsa(pki.ec_key, b"another image")
        reply = await call(point, signed16(6, server.url("/fw.bin"), pki.ec_cert, wrong))
        assert reply.status == "Accepted"
        await rec.wait_count("SecurityEventNotification", 1)
        assert rec.of("SecurityEventNotification")[0]["type"] == "InvalidFirmwareSignature"
        assert await settled(rec, "SignedFirmwareStatusNotification") == [
            "Downloading",
            "Downloaded",
            "InvalidSignature",
        ]
        assert len(server.hits("/fw.bin")) == 1
        assert len(rec.of("BootNotification")) == 1


async def test_v16_untrusted_signing_certificate_invalid_certificate_l01_fr_02_24(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """Whitepaper L01.FR.23/24 + L01.FR.02: the certificate is validated before the answer:
    with no ManufacturerRootCertificate installed ("could not be verified"), then with one
    but a certificate of another root, then an expired one: InvalidCertificate each time,
    a SecurityEventNotification InvalidFirmwareSigningCertificate each time, no status
    notification and no download."""
    async with peer(store, "1.6") as (_station, rec, point):
        signature = sign_ecdsa(pki.ec_key, FIRMWARE)
        location = server.url("/fw.bin")
        first = await call(point, signed16(1, location, pki.ec_cert, signature))
        assert first.status == "InvalidCertificate"
        await install_root16(point, pki.root)
        for n, cert in enumerate((pki.other_cert, pki.expired_cert), start=2):
            reply = await call(point, signed16(n, location, cert, signature))
            assert reply.status == "InvalidCertificate"
        await rec.wait_count("SecurityEventNotification", 3)
        assert {k["type"] for k in rec.of("SecurityEventNotification")} == {
            "InvalidFirmwareSigningCertificate"
        }
        await asyncio.sleep(0.3)
        assert rec.of("SignedFirmwareStatusNotification") == []
        assert server.requests == []


async def test_v16_signed_download_failed_after_retries_spaced_by_interval(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """Whitepaper L01 step 4 / 1.6 SignedUpdateFirmware ``retries``, ``retryInterval``: a
    location that answers 404 is tried ``retries`` (3) times, ``retryInterval`` (1 s)
    apart, then DownloadFailed; nothing installed."""
    async with peer(store, "1.6") as (_station, rec, point):
        await install_root16(point, pki.root)
        signature = sign_ecdsa(pki.ec_key, FIRMWARE)
        request = signed16(
            7, server.url("/missing.bin"), pki.ec_cert, signature, retries=3, retry_interval=1
        )
        assert (await call(point, request)).status == "Accepted"
        await rec.wait_count("SignedFirmwareStatusNotification", 2, timeout=15)
        assert statuses(rec, "SignedFirmwareStatusNotification") == [
            "Downloading",
            "DownloadFailed",
        ]
        hits = server.hits("/missing.bin")
        assert len(hits) == 3
        gaps = [b - a for a, b in itertools.pairwise(hits)]
        assert all(gap >= 0.95 for gap in gaps), gaps
        assert await settled(rec, "SignedFirmwareStatusNotification") == [
            "Downloading",
            "DownloadFailed",
        ]


async def test_v16_new_signed_update_cancels_running_one_l01_fr_26(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """Whitepaper L01.FR.26: an update waiting for its retrieve time is cancelled by a new
    SignedUpdateFirmware, answered AcceptedCanceled; only the new one runs."""
    async with peer(store, "1.6") as (_station, rec, point):
        await install_root16(point, pki.root)
        signature = sign_ecdsa(pki.ec_key, FIRMWARE)
        later = signed16(1, server.url("/fw.bin"), pki.ec_cert, signature, retrieve=iso(3600))
        assert (await call(point, later)).status == "Accepted"
        now = signed16(2, server.url("/fw.bin"), pki.ec_cert, signature)
        assert (await call(point, now)).status == "AcceptedCanceled"
        await rec.wait_count("BootNotification", 2)
        assert {k["request_id"] for k in rec.of("SignedFirmwareStatusNotification")} == {2}


async def test_v16_simulated_signed_update_claims_no_signature_verified(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """firmware_download "simulate": the certificate is still checked (Accepted: it is the
    manufacturer's), but nothing is downloaded, so no SignatureVerified is claimed:
    Downloading, Downloaded, Installing, Installed, and the server saw no request."""
    async with peer(store, "1.6", firmware_download="simulate") as (_station, rec, point):
        await install_root16(point, pki.root)
        reply = await call(
            point, signed16(3, server.url("/fw.bin"), pki.ec_cert, sign_ecdsa(pki.ec_key, b"?"))
        )
        assert reply.status == "Accepted"
        await rec.wait_count("BootNotification", 2)
        assert statuses(rec, "SignedFirmwareStatusNotification") == [
            "Downloading",
            "Downloaded",
            "Installing",
            "Installed",
        ]
        assert server.requests == []


async def test_v16_update_firmware_downloads_then_installs_or_fails_5_19(
    store: StationStore, server: FileServer
) -> None:
    """1.6 §5.19 UpdateFirmware (unsigned) on a fetching station: an unreachable location
    (nobody listens) with retries 2, retryInterval 0 -> Downloading, DownloadFailed; then a
    served one -> Downloading, Downloaded, Installing, Installed (the file fetched once),
    and a reboot."""
    async with peer(store, "1.6") as (_station, rec, point):
        dead = f"http://127.0.0.1:{closed_port()}/fw.bin"
        await call(
            point,
            c16.UpdateFirmware(location=dead, retrieve_date=iso(), retries=2, retry_interval=0),
        )
        await rec.wait_count("FirmwareStatusNotification", 2)
        assert statuses(rec, "FirmwareStatusNotification") == ["Downloading", "DownloadFailed"]
        await call(point, c16.UpdateFirmware(location=server.url("/fw.bin"), retrieve_date=iso()))
        await rec.wait_count("BootNotification", 2)
        assert statuses(rec, "FirmwareStatusNotification")[2:] == [
            "Downloading",
            "Downloaded",
            "Installing",
            "Installed",
        ]
        assert len(server.hits("/fw.bin")) == 1


# -- 2.0.1: UpdateFirmware (L01 secure, L02 non-secure) -----------------------------------------


async def test_v201_secure_update_rsa_pss_verified_installed_l01_fr_04(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """L01 with an RSA-PSS signature (L01.FR.04): Accepted, FirmwareStatusNotification
    Downloading, Downloaded, SignatureVerified, Installing, Installed with the requestId
    (L01.FR.10), then a reboot with reason FirmwareUpdate."""
    async with peer(store, "2.0.1") as (_station, rec, point):
        await install_root201(point, pki.root)
        request = update201(
            11,
            server.url("/fw.bin"),
            signing_certificate=pem(pki.rsa_cert),
            signature=sign_rsa_pss(pki.rsa_key, FIRMWARE),
        )
        assert (await call(point, request)).status == "Accepted"
        await rec.wait_count("BootNotification", 2)
        walked = rec.of("FirmwareStatusNotification")
        assert [k["status"] for k in walked] == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "Installed",
        ]
        assert {k["request_id"] for k in walked} == {11}
        assert rec.of("BootNotification")[1]["reason"] == "FirmwareUpdate"
        assert len(server.hits("/fw.bin")) == 1


async def test_v201_bad_signature_invalid_signature_event_l01_fr_03(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """L01.FR.03: the file served is not the one signed: InvalidSignature after Downloaded,
    SecurityEventNotification InvalidFirmwareSignature, no installation, no reboot."""
    async with peer(store, "2.0.1") as (_station, rec, point):
        await install_root201(point, pki.root)
        request = update201(
            12,
            server.url("/other.bin"),
            signing_certificate=pem(pki.ec_cert),
            signature=sign_ecdsa(pki.ec_key, FIRMWARE),
        )
        assert (await call(point, request)).status == "Accepted"
        await rec.wait_count("SecurityEventNotification", 1)
        assert rec.of("SecurityEventNotification")[0]["type"] == "InvalidFirmwareSignature"
        assert await settled(rec, "FirmwareStatusNotification") == [
            "Downloading",
            "Downloaded",
            "InvalidSignature",
        ]
        assert len(rec.of("BootNotification")) == 1


async def test_v201_invalid_certificate_and_unsigned_update_l01_fr_02_21_22(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """L01.FR.21/22 (secondary source) + L01.FR.02: a signing certificate of another root,
    or a signature without a certificate -> InvalidCertificate and the security event
    InvalidFirmwareSigningCertificate each, nothing starts. L02: with no manufacturer root
    an unsigned update is accepted (a non-secure station); once a root is installed the
    station supports L01 and an unsigned update is Rejected (OCTT TC_L_18_CS)."""
    async with peer(store, "2.0.1") as (_station, rec, point):
        unsigned = await call(point, update201(20, server.url("/missing.bin"), retries=1))
        assert unsigned.status == "Accepted"
        await rec.wait_count("FirmwareStatusNotification", 2)
        assert statuses(rec, "FirmwareStatusNotification") == ["Downloading", "DownloadFailed"]
        await install_root201(point, pki.root)
        signature = sign_ecdsa(pki.other_key, FIRMWARE)
        other = update201(
            21, server.url("/fw.bin"), signing_certificate=pem(pki.other_cert), signature=signature
        )
        assert (await call(point, other)).status == "InvalidCertificate"
        bare = update201(22, server.url("/fw.bin"), signature=signature)
        assert (await call(point, bare)).status == "InvalidCertificate"
        await rec.wait_count("SecurityEventNotification", 2)
        assert {k["type"] for k in rec.of("SecurityEventNotification")} == {
            "InvalidFirmwareSigningCertificate"
        }
        rejected = await call(point, update201(23, server.url("/fw.bin")))
        assert rejected.status == "Rejected"
        await asyncio.sleep(0.3)
        assert len(rec.of("FirmwareStatusNotification")) == 2
        assert server.hits("/fw.bin") == []


async def test_v201_download_failed_after_retries_spaced_by_interval(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """L01 ``retries`` / ``retryInterval``: 404 three times, a second apart, then
    DownloadFailed (no signature check, no installation)."""
    async with peer(store, "2.0.1") as (_station, rec, point):
        await install_root201(point, pki.root)
        request = update201(
            30,
            server.url("/missing.bin"),
            signing_certificate=pem(pki.ec_cert),
            signature=sign_ecdsa(pki.ec_key, FIRMWARE),
            retries=3,
            retry_interval=1,
        )
        assert (await call(point, request)).status == "Accepted"
        await rec.wait_count("FirmwareStatusNotification", 2, timeout=15)
        hits = server.hits("/missing.bin")
        assert len(hits) == 3
        assert all(b - a >= 0.95 for a, b in itertools.pairwise(hits))
        assert await settled(rec, "FirmwareStatusNotification") == [
            "Downloading",
            "DownloadFailed",
        ]
        assert {k["request_id"] for k in rec.of("FirmwareStatusNotification")} == {30}
