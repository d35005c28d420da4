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
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201

from ocppkit.station.certificates import CertificateError
from ocppkit.station.firmware import (
    FETCHED_SCHEMES,
    DownloadLimits,
    FirmwareError,
    check_signing_certificate,
    fetch_digest,
    verify_signature,
)
from ocppkit.station.station import ActionRefused, Station, StationConfig
from ocppkit.station.store import StationStore
from tests.helpers.certificates import make_cert, pem
from tests.station.peers import Recorder, with_their_csms

FIRMWARE = b"ocppkit test firmware image\n" * 4096
"""About 110 kB: several reads of the download loop."""


# -- the PKI and the signatures ------------------------------------------------------------------


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


async def install_root(point: Any, version: str, root: x509.Certificate) -> None:
    """InstallCertificate ``root`` as the ManufacturerRootCertificate (1.6 or 2.0.1): Accepted."""
    calls: Any = c16 if version == "1.6" else c201
    reply = await call(
        point,
        calls.InstallCertificate(
            certificate_type="ManufacturerRootCertificate", certificate=pem(root)
        ),
    )
    assert reply.status == "Accepted"


@contextlib.asynccontextmanager
async def peer(
    store: StationStore, version: str, *, root: x509.Certificate | None = None, **config: Any
) -> AsyncIterator[tuple[Station, Recorder, Any]]:
    """Their CSMS and our station (firmware_download "fetch" unless set), any ``root`` installed."""
    settings = {"firmware_download": "fetch", **config}
    sid = f"EMU-FW{version.replace('.', '')}"
    statuses = 3 if version == "1.6" else 2
    async with with_their_csms(store, sid, version, statuses=statuses, **settings) as running:
        if root is not None:
            await install_root(running[2], version, root)
        yield running


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
    firmware = {
        "location": location,
        "retrieve_date_time": kw.pop("retrieve", iso()),
        "signing_certificate": pem(cert),
        "signature": signature,
    }
    if "install" in kw:
        firmware["install_date_time"] = kw.pop("install")
    return c16.SignedUpdateFirmware(request_id=request_id, firmware=firmware, **kw)


def update201(request_id: int, location: str, **firmware: Any) -> Any:
    extra = {k: firmware.pop(k) for k in ("retries", "retry_interval") if k in firmware}
    return c201.UpdateFirmware(
        request_id=request_id,
        firmware={"location": location, "retrieve_date_time": iso(), **firmware},
        **extra,
    )


def signed201(
    request_id: int, location: str, cert: x509.Certificate, signature: str, **kw: Any
) -> Any:
    """A secure (L01) 2.0.1 UpdateFirmware: ``update201`` with a signing certificate."""
    return update201(request_id, location, signing_certificate=pem(cert), signature=signature, **kw)


async def security_events(rec: Recorder, count: int) -> list[str]:
    """The types of the SecurityEventNotifications, once ``count`` of them arrived."""
    await rec.wait_count("SecurityEventNotification", count)
    return [k["type"] for k in rec.of("SecurityEventNotification")]


def request_statuses(rec: Recorder, action: str, request_id: int) -> list[str]:
    """The statuses of ``action``, after checking that each carries ``request_id``."""
    assert {k["request_id"] for k in rec.of(action)} == {request_id}
    return statuses(rec, action)


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
    Installed, each with the request's requestId (L01.FR.10), and a reboot. The one security
    event is FirmwareUpdated (whitepaper §8, critical), naming the installed file's SHA-256."""
    async with peer(store, "1.6", root=pki.root) as (_station, rec, point):
        reply = await call(
            point, signed16(5, server.url("/fw.bin"), pki.ec_cert, sign_ecdsa(pki.ec_key, FIRMWARE))
        )
        assert reply.status == "Accepted"
        await rec.wait_count("BootNotification", 2)
        assert request_statuses(rec, "SignedFirmwareStatusNotification", 5) == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "Installed",
        ]
        assert len(server.hits("/fw.bin")) == 1
        assert await security_events(rec, 1) == ["FirmwareUpdated"]
        updated = rec.of("SecurityEventNotification")[0]
        assert hashlib.sha256(FIRMWARE).hexdigest() in updated["tech_info"]


async def test_v16_signed_update_bad_signature_invalid_signature_event_l01_fr_03(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """Whitepaper L01.FR.03: a signature that does not verify over the downloaded file
    (it signs another image): Downloading, Downloaded, InvalidSignature, nothing installed,
    and SecurityEventNotification InvalidFirmwareSignature."""
    async with peer(store, "1.6", root=pki.root) as (_station, rec, point):
        wrong = sign_ecdsa(pki.ec_key, b"another image")
        reply = await call(point, signed16(6, server.url("/fw.bin"), pki.ec_cert, wrong))
        assert reply.status == "Accepted"
        assert (await security_events(rec, 1))[0] == "InvalidFirmwareSignature"
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
        await install_root(point, "1.6", pki.root)
        for n, cert in enumerate((pki.other_cert, pki.expired_cert), start=2):
            reply = await call(point, signed16(n, location, cert, signature))
            assert reply.status == "InvalidCertificate"
        assert set(await security_events(rec, 3)) == {"InvalidFirmwareSigningCertificate"}
        await asyncio.sleep(0.3)
        assert rec.of("SignedFirmwareStatusNotification") == []
        assert server.requests == []


async def test_v16_signed_download_failed_after_retries_spaced_by_interval(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """Whitepaper L01 step 4 / 1.6 SignedUpdateFirmware ``retries``, ``retryInterval``: a
    location that answers 404 is tried ``retries`` (3) times, ``retryInterval`` (1 s)
    apart, then DownloadFailed; nothing installed."""
    async with peer(store, "1.6", root=pki.root) as (_station, rec, point):
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
    """Whitepaper L01.FR.26: an update waiting for its retrieve time (DownloadScheduled,
    L01.FR.13) is cancelled by a new SignedUpdateFirmware, answered AcceptedCanceled; only
    the new one runs."""
    async with peer(store, "1.6", root=pki.root) as (_station, rec, point):
        signature = sign_ecdsa(pki.ec_key, FIRMWARE)
        later = signed16(1, server.url("/fw.bin"), pki.ec_cert, signature, retrieve=iso(3600))
        assert (await call(point, later)).status == "Accepted"
        await rec.wait_count("SignedFirmwareStatusNotification", 1)
        now = signed16(2, server.url("/fw.bin"), pki.ec_cert, signature)
        assert (await call(point, now)).status == "AcceptedCanceled"
        await rec.wait_count("BootNotification", 2)
        walked = rec.of("SignedFirmwareStatusNotification")
        assert [(k["request_id"], k["status"]) for k in walked[:2]] == [
            (1, "DownloadScheduled"),
            (2, "Downloading"),
        ]
        assert {k["request_id"] for k in walked[1:]} == {2}


async def test_v16_simulated_signed_update_claims_no_signature_verified(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """firmware_download "simulate": the certificate is still checked (Accepted: it is the
    manufacturer's), but nothing is downloaded, so no SignatureVerified is claimed:
    Downloading, Downloaded, Installing, Installed, and the server saw no request."""
    async with peer(store, "1.6", root=pki.root, firmware_download="simulate") as (_, rec, point):
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
    async with peer(store, "2.0.1", root=pki.root) as (_station, rec, point):
        request = signed201(
            11, server.url("/fw.bin"), pki.rsa_cert, sign_rsa_pss(pki.rsa_key, FIRMWARE)
        )
        assert (await call(point, request)).status == "Accepted"
        await rec.wait_count("BootNotification", 2)
        assert request_statuses(rec, "FirmwareStatusNotification", 11) == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "Installing",
            "Installed",
        ]
        assert rec.of("BootNotification")[1]["reason"] == "FirmwareUpdate"
        assert len(server.hits("/fw.bin")) == 1


async def test_v201_bad_signature_invalid_signature_event_l01_fr_03(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """L01.FR.03: the file served is not the one signed: InvalidSignature after Downloaded,
    SecurityEventNotification InvalidFirmwareSignature, no installation, no reboot."""
    async with peer(store, "2.0.1", root=pki.root) as (_station, rec, point):
        request = signed201(
            12, server.url("/other.bin"), pki.ec_cert, sign_ecdsa(pki.ec_key, FIRMWARE)
        )
        assert (await call(point, request)).status == "Accepted"
        assert (await security_events(rec, 1))[0] == "InvalidFirmwareSignature"
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
        await install_root(point, "2.0.1", pki.root)
        signature = sign_ecdsa(pki.other_key, FIRMWARE)
        other = signed201(21, server.url("/fw.bin"), pki.other_cert, signature)
        assert (await call(point, other)).status == "InvalidCertificate"
        bare = update201(22, server.url("/fw.bin"), signature=signature)
        assert (await call(point, bare)).status == "InvalidCertificate"
        assert set(await security_events(rec, 2)) == {"InvalidFirmwareSigningCertificate"}
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
    async with peer(store, "2.0.1", root=pki.root) as (_station, rec, point):
        request = signed201(
            30,
            server.url("/missing.bin"),
            pki.ec_cert,
            sign_ecdsa(pki.ec_key, FIRMWARE),
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


# -- scheduling: retrieveDateTime and installDateTime in the future ------------------------------


def arrival(rec: Recorder, action: str, status: str, key: str = "status") -> float:
    """The loop time the first ``action`` with ``status`` arrived."""
    return next(
        t
        for t, (_, a, kw) in zip(rec.times, rec.calls, strict=True)
        if a == action and kw[key] == status
    )


async def test_v16_signed_scheduled_download_and_install_l01_fr_13_16(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """Whitepaper L01.FR.13 / L01.FR.16: retrieveDateTime 1 s and installDateTime 2.5 s
    ahead: DownloadScheduled at once, the file fetched no earlier than the retrieve time,
    then Downloading, Downloaded, SignatureVerified, InstallScheduled, and Installing no
    earlier than the install time, Installed, FirmwareUpdated, a reboot."""
    loop = asyncio.get_running_loop()
    async with peer(store, "1.6", root=pki.root) as (_station, rec, point):
        signature = sign_ecdsa(pki.ec_key, FIRMWARE)
        sent = loop.time()
        request = signed16(
            8, server.url("/fw.bin"), pki.ec_cert, signature, retrieve=iso(1.0), install=iso(2.5)
        )
        assert (await call(point, request)).status == "Accepted"
        await rec.wait_count("BootNotification", 2, timeout=15)
        action = "SignedFirmwareStatusNotification"
        assert request_statuses(rec, action, 8) == [
            "DownloadScheduled",
            "Downloading",
            "Downloaded",
            "SignatureVerified",
            "InstallScheduled",
            "Installing",
            "Installed",
        ]
        assert arrival(rec, action, "DownloadScheduled") - sent < 0.9
        assert server.hits("/fw.bin")[0] - sent >= 0.9
        assert arrival(rec, action, "InstallScheduled") - sent < 2.4
        assert arrival(rec, action, "Installing") - sent >= 2.4
        assert await security_events(rec, 1) == ["FirmwareUpdated"]


async def test_v16_update_firmware_waits_for_retrieve_date_silently_5_19(
    store: StationStore, server: FileServer
) -> None:
    """1.6 §5.19 / §6.55 (errata v4.0 §3.63: retrieveDate is when the Charge Point "is
    allowed to retrieve" the firmware): a retrieveDate 1.5 s ahead is waited for, but 1.6's
    FirmwareStatus has no DownloadScheduled, so the first status is Downloading, sent with
    the download no earlier than the retrieve date."""
    loop = asyncio.get_running_loop()
    async with peer(store, "1.6") as (_station, rec, point):
        sent = loop.time()
        await call(
            point, c16.UpdateFirmware(location=server.url("/fw.bin"), retrieve_date=iso(1.5))
        )
        await rec.wait_count("BootNotification", 2, timeout=15)
        assert statuses(rec, "FirmwareStatusNotification") == [
            "Downloading",
            "Downloaded",
            "Installing",
            "Installed",
        ]
        assert arrival(rec, "FirmwareStatusNotification", "Downloading") - sent >= 1.4
        assert server.hits("/fw.bin")[0] - sent >= 1.4


async def test_v201_unsigned_scheduled_download_and_install_l02_fr_07_10(
    store: StationStore, server: FileServer
) -> None:
    """2.0.1 L02.FR.07 / L02.FR.10 (secondary source): an unsigned update (no manufacturer
    root: L02) with retrieveDateTime 1 s and installDateTime 2.5 s ahead: DownloadScheduled,
    Downloading, Downloaded, InstallScheduled, Installing (after the install time),
    Installed, all with the requestId, then FirmwareUpdated and a reboot (FirmwareUpdate)."""
    loop = asyncio.get_running_loop()
    async with peer(store, "2.0.1") as (_station, rec, point):
        sent = loop.time()
        request = update201(
            40, server.url("/fw.bin"), retrieve_date_time=iso(1.0), install_date_time=iso(2.5)
        )
        assert (await call(point, request)).status == "Accepted"
        await rec.wait_count("BootNotification", 2, timeout=15)
        assert request_statuses(rec, "FirmwareStatusNotification", 40) == [
            "DownloadScheduled",
            "Downloading",
            "Downloaded",
            "InstallScheduled",
            "Installing",
            "Installed",
        ]
        assert server.hits("/fw.bin")[0] - sent >= 0.9
        assert arrival(rec, "FirmwareStatusNotification", "Installing") - sent >= 2.4
        assert await security_events(rec, 1) == ["FirmwareUpdated"]
        assert rec.of("BootNotification")[1]["reason"] == "FirmwareUpdate"


# -- installing waits for the transactions; free ports are held Unavailable ----------------------


def sent_before_reboot(rec: Recorder) -> list[dict[str, Any]]:
    """The StatusNotifications that arrived before the second BootNotification (the reboot)."""
    boot = rec.times_of("BootNotification")[1]
    return [
        k
        for t, (_, a, k) in zip(rec.times, rec.calls, strict=True)
        if a == "StatusNotification" and t < boot
    ]


def evse_statuses(rec: Recorder, evse: int) -> list[str]:
    return [k["connector_status"] for k in rec.of("StatusNotification") if k["evse_id"] == evse]


def connector_statuses(rec: Recorder, connector: int) -> list[str]:
    return [k["status"] for k in rec.of("StatusNotification") if k["connector_id"] == connector]


async def test_v201_install_waits_for_transaction_free_evse_unavailable_l01_fr_06_07(
    store: StationStore, server: FileServer, pki: Pki
) -> None:
    """L01.FR.06 / L01.FR.07 (secondary source): a secure update downloaded and verified
    while EVSE 1 charges is not installed: EVSE 2 (free) turns Unavailable and refuses a new
    session; when the transaction ends EVSE 1 turns Unavailable too, then Installing,
    Installed, FirmwareUpdated, both EVSEs given back (not Unavailable) and the reboot."""
    async with peer(store, "2.0.1", root=pki.root) as (station, rec, point):
        await station.start_transaction(1, "TAG-FW")
        request = signed201(
            50, server.url("/fw.bin"), pki.ec_cert, sign_ecdsa(pki.ec_key, FIRMWARE)
        )
        assert (await call(point, request)).status == "Accepted"
        await rec.wait_for(lambda r: "Unavailable" in evse_statuses(r, 2))
        assert await settled(rec, "FirmwareStatusNotification") == [
            "Downloading",
            "Downloaded",
            "SignatureVerified",
        ]
        with pytest.raises(ActionRefused):
            await station.start_transaction(2, "TAG-NEW")
        await station.unplug(2)  # the refused driver leaves
        assert "Unavailable" not in evse_statuses(rec, 1)
        await station.stop_transaction(1)
        await rec.wait_count("BootNotification", 2)
        assert statuses(rec, "FirmwareStatusNotification")[3:] == ["Installing", "Installed"]
        assert arrival(rec, "FirmwareStatusNotification", "Installing") > arrival(
            rec, "TransactionEvent", "Ended", key="event_type"
        )
        before_boot = sent_before_reboot(rec)
        one = [k["connector_status"] for k in before_boot if k["evse_id"] == 1]
        two = [k["connector_status"] for k in before_boot if k["evse_id"] == 2]
        assert "Unavailable" in one
        assert one[-1] != "Unavailable"
        assert two[-2:] == ["Unavailable", "Available"]
        assert await security_events(rec, 1) == ["FirmwareUpdated"]


async def test_v16_update_firmware_waits_for_transaction_errata_3_49(
    store: StationStore, server: FileServer
) -> None:
    """1.6 errata v4.0 §3.49 (RECOMMENDED: wait until the charging session has ended, set
    connectors not in use to UNAVAILABLE): Downloading, Downloaded, then connector 2
    Unavailable while connector 1 charges; after the stop, Installing, Installed, connector 2
    Available again, a reboot."""
    async with peer(store, "1.6") as (station, rec, point):
        await station.start_transaction(1, "TAG-FW16")
        await call(point, c16.UpdateFirmware(location=server.url("/fw.bin"), retrieve_date=iso()))
        await rec.wait_for(lambda r: "Unavailable" in connector_statuses(r, 2))
        assert await settled(rec, "FirmwareStatusNotification") == ["Downloading", "Downloaded"]
        await station.stop_transaction(1)
        await rec.wait_count("BootNotification", 2)
        assert statuses(rec, "FirmwareStatusNotification")[2:] == ["Installing", "Installed"]
        assert (
            arrival(rec, "FirmwareStatusNotification", "Installing")
            > rec.times_of("StopTransaction")[0]
        )
        two = [k["status"] for k in sent_before_reboot(rec) if k["connector_id"] == 2]
        assert two[-2:] == ["Unavailable", "Available"]


async def test_v201_new_update_gives_held_evses_back_l01_fr_24(
    store: StationStore, server: FileServer
) -> None:
    """L01.FR.24 / L02.FR.15 (secondary source) with L01.FR.07: an update waiting for a
    transaction holds EVSE 2 Unavailable; a new UpdateFirmware (retrieve in an hour) is
    AcceptedCanceled and the cancelled one gives EVSE 2 back (Available) at once, while the
    transaction still runs; the new one only reports DownloadScheduled."""
    async with peer(store, "2.0.1") as (station, rec, point):
        await station.start_transaction(1, "TAG-FW2")
        first = await call(point, update201(60, server.url("/fw.bin")))
        assert first.status == "Accepted"
        await rec.wait_for(lambda r: "Unavailable" in evse_statuses(r, 2))
        later = update201(61, server.url("/fw.bin"), retrieve_date_time=iso(3600))
        assert (await call(point, later)).status == "AcceptedCanceled"
        await rec.wait_for(lambda r: evse_statuses(r, 2)[-1] == "Available")
        assert station.behaviour.port(1).tx is not None
        assert station.behaviour.firmware_held == set()
        await rec.wait_for(
            lambda r: statuses(r, "FirmwareStatusNotification")[-1:] == ["DownloadScheduled"]
        )
        assert rec.of("FirmwareStatusNotification")[-1]["request_id"] == 61
        await station.stop_transaction(1)
        await asyncio.sleep(0.3)
        assert "Installing" not in statuses(rec, "FirmwareStatusNotification")


async def test_held_ports_given_back_after_a_restart_l01_fr_07(store: StationStore) -> None:
    """L01.FR.07 holds ports only until the firmware is installed: a station whose process
    died while an installation waited (ports held, persisted) gives them back at the next
    start, since that update is gone; a port the CSMS had set Inoperative stays so."""
    config = StationConfig(
        station_id="EMU-FWHOLD",
        csms_url="ws://127.0.0.1:9/ocpp",
        ocpp_version="2.0.1",
        connectors=3,
    )
    first = Station(config, store=store)
    await first.restore()
    behaviour = first.behaviour
    behaviour.model.change_availability(operative=False, now=first.now(), evse_id=3)
    behaviour.firmware_held = {1, 2}
    for port_id in (1, 2):
        behaviour.set_firmware_hold(port_id, held=True)
    await store.save_state(config.station_id, first.state_blob())
    assert [behaviour.status_of(p) for p in (1, 2, 3)] == ["Unavailable"] * 3
    second = Station(config, store=store)
    await second.restore()
    assert [second.behaviour.status_of(p) for p in (1, 2, 3)] == [
        "Available",
        "Available",
        "Unavailable",
    ]
    assert second.behaviour.firmware_held == set()


# -- what the station announces: file transfer protocols -----------------------------------------


async def test_v16_supported_file_transfer_protocols_key_errata_3_90(store: StationStore) -> None:
    """1.6 errata v4.0 §3.90 (9.5.1) and the whitepaper's L01 remark: the read-only CSL key
    SupportedFileTransferProtocols says what the station downloads (HTTP,HTTPS, the
    fetched schemes); ChangeConfiguration of it is Rejected."""
    async with peer(store, "1.6") as (_station, _rec, point):
        reply = await call(point, c16.GetConfiguration(key=["SupportedFileTransferProtocols"]))
        assert reply.configuration_key == [
            {"key": "SupportedFileTransferProtocols", "readonly": True, "value": "HTTP,HTTPS"}
        ]
        assert reply.configuration_key[0]["value"] == ",".join(
            scheme.upper() for scheme in FETCHED_SCHEMES
        )
        change = c16.ChangeConfiguration(key="SupportedFileTransferProtocols", value="FTP")
        assert (await call(point, change)).status == "Rejected"


async def test_v201_file_transfer_protocols_variable(store: StationStore) -> None:
    """2.0.1 L01 remark (secondary source): the required OCPPCommCtrlr.FileTransferProtocols
    reports HTTP,HTTPS, the schemes a fetching station downloads."""
    async with peer(store, "2.0.1") as (_station, _rec, point):
        reply = await call(
            point,
            c201.GetVariables(
                get_variable_data=[
                    {
                        "component": {"name": "OCPPCommCtrlr"},
                        "variable": {"name": "FileTransferProtocols"},
                    }
                ]
            ),
        )
        result = reply.get_variable_result[0]
        assert result["attribute_status"] == "Accepted"
        assert result["attribute_value"] == ",".join(s.upper() for s in FETCHED_SCHEMES)
