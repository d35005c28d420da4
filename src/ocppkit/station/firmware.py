"""Firmware updates: the signing certificate, the download, the signature.

The 1.6 Security whitepaper's "Secure Firmware Update" (SignedUpdateFirmware) and 2.0.1 L01
(UpdateFirmware with ``signingCertificate`` and ``signature``) work the same way:

1. **At request time** the signing certificate is checked against the installed
   ``ManufacturerRootCertificate`` roots (whitepaper L01.FR.23/24; 2.0.1 L01.FR.21/22,
   secondary source: the OCTT case TC_L_05_CS and two implementations cite these ids):
   :func:`check_signing_certificate`. It must be issued *directly* by such a root (whitepaper
   L01 remark: "the manufacturer SHALL NOT use intermediate certificates for the firmware
   signing certificate") and be within its validity period (L01.FR.12: "the rules for X.509
   certificates"). Without any manufacturer root the certificate "could not be verified":
   the answer is InvalidCertificate too (whitepaper L01 scenario step 3). *Revocation is not
   checked*: the station has no CRL or OCSP responder to ask offline, so RevokedCertificate
   (L01.FR.25 / 2.0.1 the same status) is never answered.
2. **The download** (:func:`download`): ``http://`` and ``https://`` locations are fetched
   for real with the standard library (in a worker thread), streamed into a SHA-256 digest,
   never held in memory nor written to disk; at most ``max_bytes`` and ``total_timeout``
   seconds per attempt. ``retries`` attempts (at least one; the station's choice,
   :data:`DEFAULT_ATTEMPTS`, when the request has none) ``retryInterval`` seconds apart, then
   DownloadFailed. Other schemes (ftp, sftp...) fail at once: the station announces HTTP and
   HTTPS only (2.0.1 ``OCPPCommCtrlr.FileTransferProtocols``).
3. **The signature** (:func:`verify_signature`) over the whole file (whitepaper and 2.0.1
   L01.FR.04: "RSA-PSS or ECSchnorr ... and SHA256"): base64 of a signature by the signing
   certificate's key over the file's SHA-256. Accepted: RSA-PSS (MGF1-SHA256, any salt
   length), RSA PKCS#1 v1.5 (what ``openssl dgst -sha256 -sign`` makes with an RSA key),
   ECDSA (DER) for EC keys: ``cryptography`` (like OpenSSL) has no "ECSchnorr", the scheme
   the text names, so an EC signature is taken as ECDSA, the EC scheme those tools make.

The rest of an update is :meth:`.behaviour.Behaviour.update_firmware`'s: the waits for
``retrieveDateTime`` / ``installDateTime`` (DownloadScheduled, InstallScheduled), the wait
for the transactions to end with the free ports held Unavailable (L01.FR.06/07), and the
security event FirmwareUpdated after Installed.

``StationConfig.firmware_download`` chooses between :data:`FETCH` (the above) and
:data:`SIMULATE` (no network: the statuses are walked with the configured step time). A
simulated update *does not claim a verified signature*: it reports no SignatureVerified
(the file was never there to verify); the request-time certificate check still applies,
since it needs no file.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import datetime
import hashlib
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ocppkit.station.certificates import CertificateError, parse_chain, verify_chain

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_RETRY_INTERVAL",
    "DOWNLOAD_MODES",
    "FETCH",
    "FETCHED_SCHEMES",
    "MANUFACTURER_ROOT",
    "MAX_FIRMWARE_BYTES",
    "SIMULATE",
    "DownloadLimits",
    "FirmwareError",
    "FirmwareJob",
    "attempts_and_interval",
    "check_signing_certificate",
    "download",
    "fetch_digest",
    "verify_signature",
]

FETCH = "fetch"
"""``firmware_download``: http(s) locations are really downloaded and the signature checked."""
SIMULATE = "simulate"
"""``firmware_download``: nothing is downloaded; the statuses are walked in time steps."""
DOWNLOAD_MODES = (FETCH, SIMULATE)

MANUFACTURER_ROOT = "ManufacturerRootCertificate"
"""The root type that anchors firmware signing certificates (both versions)."""
FETCHED_SCHEMES = ("http", "https")
"""What a fetching station downloads (2.0.1 ``FileTransferProtocols`` and 1.6
``SupportedFileTransferProtocols`` say HTTP,HTTPS)."""

MAX_FIRMWARE_BYTES = 512 * 1024 * 1024
"""Default size cap of a firmware file (a Linux charger's image is some hundred MB)."""
DEFAULT_ATTEMPTS = 3
"""Download attempts when the request has no ``retries`` (the station decides)."""
DEFAULT_RETRY_INTERVAL = 30.0
"""Seconds between attempts when the request has no ``retryInterval`` (the station decides)."""
_CHUNK = 64 * 1024


class FirmwareError(Exception):
    """The firmware could not be downloaded or its signature does not verify. The message
    says why (it becomes a log line or the security event's techInfo)."""


@dataclasses.dataclass(frozen=True, slots=True)
class DownloadLimits:
    """Limits of one download attempt; every one a safe default."""

    max_bytes: int = MAX_FIRMWARE_BYTES
    """Larger files fail the attempt."""
    read_timeout: float = 30.0
    """Socket timeout (connect and each read), seconds."""
    total_timeout: float = 600.0
    """Longest one attempt may take, seconds (a server that trickles bytes fails)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FirmwareJob:
    """One firmware update as the station runs it (:meth:`.behaviour.Behaviour.update_firmware`)."""

    location: str
    retrieve: datetime.datetime
    retries: int | None = None
    retry_interval: int | None = None
    signer: x509.Certificate | None = None
    """The checked signing certificate of a secure update (None: an unsigned one)."""
    signature: str | None = None
    """Its base64 signature (None with a signer: "missing entirely", InvalidSignature)."""
    install: datetime.datetime | None = None
    """``installDateTime`` (whitepaper and 2.0.1 FirmwareType): install no earlier."""
    legacy: bool = False
    """A plain 1.6 §5.19 UpdateFirmware: its FirmwareStatus has no DownloadScheduled nor
    InstallScheduled, so those waits are silent."""

    @property
    def secure(self) -> bool:
        return self.signer is not None


def check_signing_certificate(
    pem: str, anchors: Sequence[x509.Certificate], now: datetime.datetime
) -> x509.Certificate:
    """The firmware signing certificate of ``pem`` (its first certificate) if it is issued
    directly by one of the manufacturer roots ``anchors`` and valid at ``now``; else
    :class:`~.certificates.CertificateError` saying why (whitepaper L01.FR.23/24, 2.0.1
    L01.FR.21/22 secondary source). Certificates after the first are ignored: no
    intermediate may stand between the root and the signing certificate (whitepaper L01
    remark). Revocation is not checked (no CRL or OCSP offline)."""
    if not anchors:
        raise CertificateError(
            f"no {MANUFACTURER_ROOT} installed: the signing certificate cannot be verified"
        )
    leaf = parse_chain(pem)[0]
    if not isinstance(leaf.public_key(), rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise CertificateError("the signing certificate's key is neither RSA nor EC")
    verify_chain([leaf], anchors, now)
    return leaf


def verify_signature(signer: x509.Certificate, digest: bytes, signature: str | None) -> None:
    """Check the base64 ``signature`` of a file whose SHA-256 is ``digest`` with the key of
    ``signer`` (L01.FR.04, see the module docstring for the schemes); :class:`FirmwareError`
    when it is missing, not base64, or does not verify."""
    if not signature:
        raise FirmwareError("the firmware signature is missing")
    try:
        raw = base64.b64decode("".join(signature.split()), validate=True)
    except (binascii.Error, ValueError):
        raise FirmwareError("the firmware signature is not base64") from None
    key = signer.public_key()
    prehashed = Prehashed(hashes.SHA256())
    if isinstance(key, rsa.RSAPublicKey):
        schemes: list[padding.AsymmetricPadding] = [
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            padding.PKCS1v15(),
        ]
        for scheme in schemes:
            try:
                key.verify(raw, digest, scheme, prehashed)
            except InvalidSignature:
                continue
            return
    elif isinstance(key, ec.EllipticCurvePublicKey):
        try:
            key.verify(raw, digest, ec.ECDSA(prehashed))
        except InvalidSignature:
            pass
        else:
            return
    raise FirmwareError("the firmware signature does not verify with the signing certificate")


def attempts_and_interval(retries: int | None, retry_interval: int | None) -> tuple[int, float]:
    """How many download attempts, how many seconds apart: ``retries`` ("how many times the
    station must try to download the firmware before giving up", at least once) and
    ``retryInterval``; the station's defaults where the request has none."""
    attempts = DEFAULT_ATTEMPTS if retries is None else max(1, retries)
    interval = DEFAULT_RETRY_INTERVAL if retry_interval is None else max(0.0, retry_interval)
    return attempts, interval


def _opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    """HTTP(S) only: a redirect to ftp:// or file:// is refused, no proxy is used."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(context=context),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def fetch_digest(
    location: str,
    limits: DownloadLimits = DownloadLimits(),
    *,
    context: ssl.SSLContext | None = None,
    stop: threading.Event | None = None,
) -> tuple[bytes, int]:
    """Download ``location`` (blocking) into a SHA-256: (digest, size). :class:`FirmwareError`
    for an unsupported scheme, an HTTP error status, a network error, a file over
    ``limits.max_bytes``, an attempt over ``limits.total_timeout``, or ``stop`` set."""
    scheme = urllib.parse.urlsplit(location).scheme.lower()
    if scheme not in FETCHED_SCHEMES:
        raise FirmwareError(f"unsupported file transfer protocol {scheme or '(none)'!r}")
    started = time.monotonic()
    digest = hashlib.sha256()
    size = 0
    try:
        with _opener(context).open(location, timeout=limits.read_timeout) as response:
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > limits.max_bytes:
                raise FirmwareError(f"the file has {length} bytes, more than {limits.max_bytes}")
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > limits.max_bytes:
                    raise FirmwareError(f"the file is larger than {limits.max_bytes} bytes")
                if time.monotonic() - started > limits.total_timeout:
                    raise FirmwareError(f"the download took over {limits.total_timeout:g} s")
                if stop is not None and stop.is_set():
                    raise FirmwareError("the download was cancelled")
                digest.update(chunk)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response (and its socket)
        raise FirmwareError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise FirmwareError(f"cannot download: {exc.reason}") from None
    except (OSError, ValueError) as exc:  # timeouts, resets, malformed URLs and responses
        raise FirmwareError(f"cannot download: {exc}") from None
    return digest.digest(), size


async def download(
    location: str,
    *,
    attempts: int,
    interval: float,
    limits: DownloadLimits = DownloadLimits(),
    context: ssl.SSLContext | None = None,
    on_failure: Callable[[int, FirmwareError], Awaitable[None]] | None = None,
) -> tuple[bytes, int]:
    """:func:`fetch_digest` in a worker thread, up to ``attempts`` times ``interval`` seconds
    apart; (digest, size) of the first success, else the last :class:`FirmwareError`.
    ``on_failure(attempt, error)`` is awaited after each failed attempt (1-based). An
    unsupported scheme is not retried. Cancelling stops the worker at its next chunk."""
    last = FirmwareError("no download attempt")
    for attempt in range(1, max(1, attempts) + 1):
        if attempt > 1:
            await asyncio.sleep(interval)
        stop = threading.Event()
        try:
            return await asyncio.to_thread(
                fetch_digest, location, limits, context=context, stop=stop
            )
        except FirmwareError as exc:
            last = exc
        except asyncio.CancelledError:
            stop.set()
            raise
        if on_failure is not None:
            await on_failure(attempt, last)
        if urllib.parse.urlsplit(location).scheme.lower() not in FETCHED_SCHEMES:
            break
    raise last
