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
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Final

__all__ = ["OCPP_TLS12_CIPHERS", "client_context", "server_context"]

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
