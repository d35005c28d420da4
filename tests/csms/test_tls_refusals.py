"""Handshakes the TLS layer refuses (security profiles 2 and 3) are logged and counted.

Spec anchors: the CSMS terminates the handshake on a client certificate that is missing,
expired or not from its CA (A00.FR.403-407, profile 3), on TLS < 1.2 or a suite outside
A00.FR.318 (A00.FR.316-323); A00.FR.323 / A00.FR.408 RECOMMEND logging such terminations
(secondary source for the ids: reliability.md §1.2). No station id is known then
(no upgrade request was sent), so the CSMS logs one warning line with the peer IP and
OpenSSL's reason and counts ``ocppkit_tls_handshake_failures_total{reason}``
(:mod:`ocppkit.csms.security`, :func:`ocppkit.transport.tls.report_refused_handshakes`).

Everything is real: our CSMS on loopback with a SQLite file, certificates made per test with
``trustme`` (:mod:`tests.helpers.security`), the refused clients are Python ``ssl`` /
``websockets`` clients, the good one the mobilityhouse ``ocpp`` ChargePoint, and the counter
is read through ``GET /metrics``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import websockets
from ocpp.v16 import call as c16
from prometheus_client.parser import text_string_to_metric_families

from ocppkit.node import RunningCsms
from ocppkit.protocol import OcppVersion, Router
from ocppkit.transport import serve
from ocppkit.transport.tls import (
    TLS_REFUSAL_REASONS,
    TlsRefusal,
    client_context,
    server_context,
)
from tests.helpers.security import Pki, basic, make_pki, mh_station, open_socket, register

PASSWORD = "0123456789abcdef0123"
METRIC = "ocppkit_tls_handshake_failures_total"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


async def failures(running: RunningCsms) -> dict[str, float]:
    """``ocppkit_tls_handshake_failures_total`` by reason, read through ``GET /metrics``."""
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.api_port}") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == METRIC:
                counts[sample.labels["reason"]] = sample.value
    return counts


async def refused(running: RunningCsms, station_id: str, **connect: Any) -> None:
    """An upgrade attempt that must not get through (the TLS layer ends it)."""
    with pytest.raises((OSError, websockets.InvalidHandshake, EOFError)):
        ws = await open_socket(running, station_id, **connect)
        await ws.close()  # pragma: no cover - only reached when the test fails


async def good_station_works(running: RunningCsms, station_id: str, **connect: Any) -> None:
    """A station with valid credentials still connects and boots after the refusals."""
    ws, cp, task = await mh_station(running, station_id, **connect)
    try:
        boot = await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        assert boot.status == "Accepted"
    finally:
        task.cancel()
        await ws.close()


def no_shared_cipher_client(pki: Pki) -> ssl.SSLContext:
    """A TLS 1.2 client offering only ChaCha20 suites: none of A00.FR.318's."""
    context = pki.client()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")
    return context


def tls11_client(pki: Pki) -> ssl.SSLContext:
    """A client speaking TLS 1.0/1.1 only (A00.FR.316: TLS 1.2 or newer)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.server_ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")  # OpenSSL 3 allows < TLS 1.2 only at level 0
    return context


# (profile, how the client connects, the reason label, OpenSSL's text in the log line)
CASES: dict[str, tuple[int, Callable[[Pki], dict[str, Any]], str, str]] = {
    "untrusted-certificate": (
        3,
        lambda pki: {"ssl_context": pki.client("TLS-BAD", ca=pki.foreign_ca)},
        "certificate_untrusted",
        "certificate verify failed: unable to get local issuer certificate",
    ),
    "expired-certificate": (
        3,
        lambda pki: {"ssl_context": pki.expired_client("TLS-BAD")},
        "certificate_expired",
        "certificate verify failed: certificate has expired",
    ),
    "no-certificate": (
        3,
        lambda pki: {"ssl_context": pki.client()},
        "no_certificate",
        "peer did not return a certificate",
    ),
    "plain-http": (
        2,
        lambda pki: {"tls": False, "authorization": basic("TLS-BAD", PASSWORD)},
        "plain_http",
        "http request",
    ),
    "no-shared-cipher": (
        2,
        lambda pki: {"ssl_context": no_shared_cipher_client(pki)},
        "no_shared_cipher",
        "no shared cipher",
    ),
    "tls-1.1": (
        2,
        lambda pki: {"ssl_context": tls11_client(pki)},
        "protocol_version",
        "unsupported protocol",
    ),
}


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("case", list(CASES))
async def test_a00_fr_408_refused_tls_handshake_is_logged_and_counted(
    case: str, csms: Callable[..., Any], pki: Pki
) -> None:
    """A handshake the TLS layer refuses — profile 3: a client certificate from another CA,
    an expired one, none (A00.FR.403-407); profile 2: plain HTTP on the TLS port, no
    A00.FR.318 suite offered, TLS 1.1 (A00.FR.316) — gives one warning ``TLS handshake
    refused`` with the peer IP, OpenSSL's reason and the category, and increments
    ``ocppkit_tls_handshake_failures_total`` for that reason only (every reason is exposed
    from 0). Afterwards a good station connects and boots as before."""
    profile, connect, reason, detail = CASES[case]
    running = await csms(**pki.settings(profile))
    await register(running, "TLS-GOOD", PASSWORD, profile=profile)
    before = await failures(running)
    assert before == dict.fromkeys(TLS_REFUSAL_REASONS, 0.0)
    with structlog.testing.capture_logs() as logs:
        await refused(running, "TLS-BAD", **connect(pki))
        for _ in range(100):  # the server side may finish a moment after the client gave up
            if (await failures(running))[reason] == 1.0:
                break
            await asyncio.sleep(0.02)
    after = await failures(running)
    assert after == before | {reason: 1.0}
    lines = [e for e in logs if e["event"] == "TLS handshake refused"]
    assert lines == [
        {
            "event": "TLS handshake refused",
            "log_level": "warning",
            "remote_ip": "127.0.0.1",
            "reason": detail,
            "category": reason,
        }
    ]
    good = {"authorization": basic("TLS-GOOD", PASSWORD)} if profile == 2 else {}
    context = pki.client("TLS-GOOD") if profile == 3 else pki.client()
    await good_station_works(running, "TLS-GOOD", ssl_context=context, **good)
    assert await failures(running) == after  # the good handshake counted nothing


def _distrusting_handshake(port: int, context: ssl.SSLContext) -> str:
    """A blocking ``ssl`` client (it sends its TLS alert before hanging up, as OpenSSL-based
    stations do; an asyncio client just closes): the client's own error text."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            context.wrap_socket(raw, server_hostname="127.0.0.1").close()
        except ssl.SSLCertVerificationError as exc:
            return exc.verify_message
    raise AssertionError("the client trusted the CSMS")  # pragma: no cover


async def test_station_refusing_the_csms_certificate_is_counted_as_peer_alert(
    csms: Callable[..., Any], pki: Pki
) -> None:
    """A station that does not trust the CSMS's server certificate (its CSMS root is not the
    CA of our certificate: e.g. after a server-certificate change without M05
    InstallCertificate) ends the handshake with an "unknown ca" alert: the CSMS logs it and
    counts it as ``peer_alert`` — the operator's side of a fleet that cannot connect."""
    running = await csms(**pki.settings(2))
    foreign = pki.folder / "foreign-ca.pem"
    foreign.write_bytes(pki.foreign_ca.cert_pem.bytes())
    with structlog.testing.capture_logs() as logs:
        text = await asyncio.to_thread(
            _distrusting_handshake, running.port, client_context(foreign)
        )
        assert text == "unable to get local issuer certificate"
        for _ in range(100):
            if (await failures(running))["peer_alert"] == 1.0:
                break
            await asyncio.sleep(0.02)
    assert (await failures(running))["peer_alert"] == 1.0
    (line,) = [e for e in logs if e["event"] == "TLS handshake refused"]
    assert line["category"] == "peer_alert" and line["reason"] == "tlsv1 alert unknown ca"
    assert line["remote_ip"] == "127.0.0.1"


async def test_transport_reports_refusals_to_the_observer_only_under_tls(pki: Pki) -> None:
    """The transport alone (no CSMS): ``serve(ssl=..., on_tls_refusal=...)`` hands each
    refused handshake to the observer as a :class:`TlsRefusal` (bounded reason, OpenSSL's
    text, peer IP); a successful handshake reports nothing; an observer that raises does not
    change what the client sees, nor break the next handshake."""
    seen: list[TlsRefusal] = []

    def observer(refusal: TlsRefusal) -> None:
        seen.append(refusal)
        raise RuntimeError("observer bug")

    context = server_context(pki.server_cert, pki.server_key, client_ca=pki.station_ca_file)
    server = await serve(
        {OcppVersion.V16: Router()}, "127.0.0.1", 0, ssl=context, on_tls_refusal=observer
    )
    port = server.sockets[0].getsockname()[1]
    url = f"wss://127.0.0.1:{port}/ocpp/CP-T"
    try:
        with pytest.raises((OSError, websockets.InvalidHandshake)):
            await websockets.connect(url, ssl=pki.client(), subprotocols=[_V16], open_timeout=5)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
        assert seen == [
            TlsRefusal("no_certificate", "peer did not return a certificate", "127.0.0.1")
        ]
        async with websockets.connect(
            url, ssl=pki.client("CP-T"), subprotocols=[_V16], open_timeout=5
        ) as ws:
            assert ws.subprotocol == "ocpp1.6"
        assert len(seen) == 1
    finally:
        server.close()
        await server.wait_closed()


_V16 = websockets.Subprotocol("ocpp1.6")
