"""TLS contexts for OCPP security profiles 2 and 3 (server) and for stations (client).

Why a module of its own: the rules are the spec's, not Python's defaults. OCPP 1.6 Security
Whitepaper / 2.0.1 Part 2 A00.FR.312-324 ask for TLS 1.2 or newer, no TLS compression, and a
CSMS offering at least these TLS 1.2 suites (A00.FR.318)::

    TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256   TLS_RSA_WITH_AES_128_GCM_SHA256
    TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384   TLS_RSA_WITH_AES_256_GCM_SHA384

and terminating the handshake on older versions or other suites (A00.FR.316-323). We also
allow the two ECDHE-RSA GCM suites (forward secrecy for RSA server certificates); TLS 1.3
suites are all AEAD and stay as OpenSSL offers them. Profile 3 adds client certificates
(mutual TLS): ``CERT_REQUIRED`` against the CA that signs station certificates, so an
absent, expired or foreign certificate ends the TLS handshake (A00.FR.403-407); the subject
checks (CN, O) happen later, on the HTTP request (``ocppkit.csms.security``).

The client context is what the station emulator (and the tests) use: server verification on
by default, optional client certificate for profile 3. Its trust anchors come from a file
(``cafile``) and/or PEM text (``cadata``): the emulator adds the CSMS roots installed with
InstallCertificate (2.0.1 M05, 1.6 whitepaper) as text, since they live in its state, not
in files.

Refused handshakes (:func:`report_refused_handshakes`): a handshake that TLS itself ends —
an untrusted, expired or missing client certificate (profile 3), an old protocol version or
no shared suite (A00.FR.316-323), plain HTTP sent to the TLS port, the station refusing our
certificate — never reaches the WebSocket server: asyncio closes the socket and mentions it
only in debug mode. A00.FR.323/408 RECOMMEND logging them, and an operator needs to see a
fleet failing on an expired CA. The hook: the server context's ``sslobject_class`` becomes a
subclass of :class:`ssl.SSLObject` whose ``do_handshake`` reports an :class:`ssl.SSLError`
other than "want read/write" to an observer, as a :class:`TlsRefusal` (a bounded ``reason``
label, OpenSSL's text, the peer address), then re-raises it unchanged. Why there:
``do_handshake`` runs only while the handshake lasts, so an established connection's reads
and writes do not pass through it, and the subclass adds no attribute (``__slots__ = ()``)
— no cost per connection. The application protocol cannot do it: asyncio's
``SSLProtocol`` never calls its ``connection_made`` when the handshake fails. The peer
address: the :class:`ssl.SSLObject` does not know it; asyncio's ``SSLProtocol``, which calls
``do_handshake``, holds the socket transport, so on a failure (only then) the reporter looks
for it in the calling frames; with another event loop (uvloop) the address is left empty.
What the observer does with a refusal (log it, count it) is the application's.
"""

from __future__ import annotations

import asyncio.sslproto
import dataclasses
import re
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, Final

import structlog

__all__ = [
    "OCPP_TLS12_CIPHERS",
    "TLS_REFUSAL_REASONS",
    "TlsRefusal",
    "TlsRefusalObserver",
    "client_context",
    "refusal_of",
    "report_refused_handshakes",
    "server_context",
]

_log = structlog.get_logger("ocppkit.transport")

#: OpenSSL names of the TLS 1.2 suites a CSMS offers (A00.FR.318, plus ECDHE-RSA GCM).
OCPP_TLS12_CIPHERS: Final = (
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "AES128-GCM-SHA256",
    "AES256-GCM-SHA384",
)

StrPath = str | Path


def _harden(context: ssl.SSLContext) -> ssl.SSLContext:
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(":".join(OCPP_TLS12_CIPHERS))
    context.options |= ssl.OP_NO_COMPRESSION
    return context


def server_context(
    certfile: StrPath,
    keyfile: StrPath,
    *,
    client_ca: StrPath | None = None,
) -> ssl.SSLContext:
    """A server context for profile 2 (``client_ca`` None) or profile 3 (mutual TLS).

    Args:
        certfile: PEM server certificate chain (leaf first).
        keyfile: PEM private key of the leaf.
        client_ca: PEM bundle of the CA(s) that sign station certificates; when given,
            every client must present a certificate chaining to it (``CERT_REQUIRED``).

    Raises:
        OSError, ssl.SSLError: a file is missing or not a matching certificate/key.
    """
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    context.load_cert_chain(certfile, keyfile)
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cafile=client_ca)
    return context


def client_context(
    cafile: StrPath | None = None,
    *,
    cadata: str | None = None,
    certfile: StrPath | None = None,
    keyfile: StrPath | None = None,
) -> ssl.SSLContext:
    """A station's context: verifies the CSMS certificate (host name included).

    Args:
        cafile: PEM bundle of the CSMS's CA.
        cadata: PEM text of more CA certificates to trust (one or more, concatenated).
            With neither ``cafile`` nor ``cadata`` the system's trust store is used;
            with either, only what they give.
        certfile, keyfile: the station's certificate chain (leaf first) and key, for
            profile 3.

    Raises:
        OSError, ssl.SSLError: a file is missing, or a certificate or key does not parse
        or does not match.
    """
    context = _harden(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
    if cafile is None and not cadata:
        context.load_default_certs(ssl.Purpose.SERVER_AUTH)
    if cafile is not None:
        context.load_verify_locations(cafile=cafile)
    if cadata:
        context.load_verify_locations(cadata=cadata)
    if certfile is not None:
        context.load_cert_chain(certfile, keyfile)
    return context


# -- refused handshakes ---------------------------------------------------------------------------

#: The ``reason`` labels of a :class:`TlsRefusal`: a small closed set, fit for a metric label.
TLS_REFUSAL_REASONS: Final = (
    "certificate_untrusted",  # the client certificate does not chain to the client CA
    "certificate_expired",
    "certificate_not_yet_valid",
    "certificate_invalid",  # any other verification failure (signature, purpose, ...)
    "no_certificate",  # profile 3: the client sent none
    "plain_http",  # ws:// / http:// sent to the wss:// port
    "protocol_version",  # TLS < 1.2 or not TLS at all (A00.FR.316)
    "no_shared_cipher",  # none of the A00.FR.318 suites offered
    "peer_alert",  # the client ended the handshake, e.g. it does not trust our certificate
    "other",
)
# OpenSSL verify codes (X509_V_ERR_*) -> reason; the others are "certificate_invalid".
_VERIFY_REASONS: Final = {
    2: "certificate_untrusted",  # unable to get issuer certificate
    18: "certificate_untrusted",  # self-signed certificate
    19: "certificate_untrusted",  # self-signed certificate in certificate chain
    20: "certificate_untrusted",  # unable to get local issuer certificate
    21: "certificate_untrusted",  # unable to verify the first certificate
    9: "certificate_not_yet_valid",
    10: "certificate_expired",
}
_SSL_REASONS: Final = {
    "PEER_DID_NOT_RETURN_A_CERTIFICATE": "no_certificate",
    "HTTP_REQUEST": "plain_http",
    "HTTPS_PROXY_REQUEST": "plain_http",
    "UNSUPPORTED_PROTOCOL": "protocol_version",
    "WRONG_VERSION_NUMBER": "protocol_version",
    "UNKNOWN_PROTOCOL": "protocol_version",
    "VERSION_TOO_LOW": "protocol_version",
    "NO_SHARED_CIPHER": "no_shared_cipher",
    "NO_SHARED_SIGNATURE_ALGORITHMS": "no_shared_cipher",
    "NO_SUITABLE_SIGNATURE_ALGORITHM": "no_shared_cipher",
}
# "[SSL: CODE] text (_ssl.c:1006)" -> "text"
_OPENSSL_NOISE: Final = re.compile(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$")


@dataclasses.dataclass(frozen=True, slots=True)
class TlsRefusal:
    """A TLS handshake the server's TLS layer ended (see the module docstring).

    ``reason`` is one of :data:`TLS_REFUSAL_REASONS`; ``detail`` is OpenSSL's text, e.g.
    ``certificate verify failed: unable to get local issuer certificate``; ``remote_ip`` is
    the peer's address, ``""`` when it could not be found.
    """

    reason: str
    detail: str
    remote_ip: str


#: Told of each refused handshake, on the event loop's thread; it must not block.
TlsRefusalObserver = Callable[[TlsRefusal], None]


def refusal_of(exc: ssl.SSLError, remote_ip: str = "") -> TlsRefusal:
    """The :class:`TlsRefusal` an :class:`ssl.SSLError` of a server handshake stands for."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = _VERIFY_REASONS.get(exc.verify_code, "certificate_invalid")
    else:
        code = exc.reason or ""
        reason = _SSL_REASONS.get(code, "other")
        if reason == "other" and code.startswith(("TLSV1_ALERT_", "SSLV3_ALERT_")):
            reason = "peer_alert"
    text = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], str) else str(exc)
    return TlsRefusal(reason, _OPENSSL_NOISE.sub("", text) or reason, remote_ip)


def report_refused_handshakes(context: ssl.SSLContext, observer: TlsRefusalObserver) -> None:
    """Make every handshake ``context`` refuses (server side) known to ``observer``.

    Sets ``context.sslobject_class`` (replacing any class set before); established
    connections are untouched (module docstring). An exception in ``observer`` is logged,
    never raised into the handshake.
    """
    context.sslobject_class = type(
        "ReportingSSLObject", (_ReportingSSLObject,), {"__slots__": (), "observer": observer}
    )


class _ReportingSSLObject(ssl.SSLObject):
    """An :class:`ssl.SSLObject` that tells :attr:`observer` why its handshake failed."""

    __slots__ = ()
    observer: ClassVar[TlsRefusalObserver]

    def do_handshake(self) -> None:
        try:
            super().do_handshake()
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            raise  # the handshake goes on once more bytes have come
        except ssl.SSLError as exc:
            refusal = refusal_of(exc, _handshake_peer())
            try:
                type(self).observer(refusal)
            except Exception:
                _log.exception("TLS refusal observer failed", reason=refusal.reason)
            raise


def _handshake_peer() -> str:
    """The peer IP of the handshake that just failed: asyncio's ``SSLProtocol``, a few
    frames up (``_do_handshake``), holds the socket transport (module docstring)."""
    frame = sys._getframe(1)
    for _ in range(4):
        frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            break
        owner = frame.f_locals.get("self")
        if isinstance(owner, asyncio.sslproto.SSLProtocol):
            transport = owner._transport
            peer = transport.get_extra_info("peername") if transport is not None else None
            return str(peer[0]) if peer else ""
    return ""
