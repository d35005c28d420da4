"""Security profiles 1-3 end to end: a real CSMS, independent stations (mobilityhouse ``ocpp``
ChargePoint, 1.6 and 2.0.1) over real loopback sockets, real certificates (``trustme``).

Spec anchors (reliability.md §1.2): profile 1 = HTTP Basic over ws, 2 = Basic over TLS >= 1.2
with a server certificate, 3 = TLS with client certificates (A00.FR.401-416); the
Authorization header is validated before the upgrade (profile 1 remark); passwords are never
logged (A01.FR.07).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog
import websockets
from ocpp.v16 import call as c16
from ocpp.v201 import call as c201
from typer.testing import CliRunner

from ocppkit.cli import app
from ocppkit.csms import CsmsSettings
from ocppkit.csms.security import (
    AttemptLimiter,
    CsmsAuthenticator,
    parse_basic_authorization,
)
from ocppkit.csms.settings import SettingsError
from ocppkit.node import RunningCsms, start_csms
from ocppkit.protocol import OcppVersion, Router
from ocppkit.transport import serve
from ocppkit.transport.server import HandshakeRequest
from tests.helpers.security import (
    Pki,
    basic,
    make_pki,
    mh_station,
    open_socket,
    refused_status,
    register,
)

PASSWORD = "0123456789abcdef0123"  # 20 characters: valid for 1.6 and 2.0.1


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


async def boot_and_heartbeat(cp: Any, version: str) -> None:
    if version == "1.6":
        boot = await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        assert boot.status == "Accepted"
        assert (await cp.call(c16.Heartbeat())).current_time
    else:
        boot = await cp.call(
            c201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            )
        )
        assert boot.status == "Accepted"
        assert (await cp.call(c201.Heartbeat())).current_time


async def session_works(running: RunningCsms, station_id: str, version: str, **kw: Any) -> None:
    ws, cp, task = await mh_station(running, station_id, version, **kw)
    try:
        await boot_and_heartbeat(cp, version)
        assert running.service.connections[station_id].version == version
    finally:
        task.cancel()
        await ws.close()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("profile", [1, 2])
async def test_basic_auth_profiles_end_to_end(
    csms: Callable[..., Any], pki: Pki, profile: int, version: str
) -> None:
    """Profiles 1 and 2 (A00.FR.201-205): the right Basic credentials (username = station id,
    A00.FR.204) open a working session; the same station with a wrong password or without
    the header is refused 401 before the upgrade."""
    running = await csms(**pki.settings(profile))
    await register(running, "SP-CP", PASSWORD)
    context = pki.client() if profile == 2 else None
    await session_works(
        running, "SP-CP", version, authorization=basic("SP-CP", PASSWORD), ssl_context=context
    )
    wrong = basic("SP-CP", PASSWORD[::-1])
    assert (
        await refused_status(
            open_socket(running, "SP-CP", version, authorization=wrong, ssl_context=context)
        )
        == 401
    )
    assert await refused_status(open_socket(running, "SP-CP", version, ssl_context=context)) == 401


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_client_certificate_profile_end_to_end(
    csms: Callable[..., Any], pki: Pki, version: str
) -> None:
    """Profile 3 (A00.FR.401-405): a certificate from the station CA with CN = station id and
    O = the CPO name opens a working session without any Authorization header."""
    running = await csms(**pki.settings(3))
    await register(running, "SP3-CP")
    await session_works(running, "SP3-CP", version, ssl_context=pki.client("SP3-CP"))


async def test_profile3_unknown_station_follows_policy(csms: Callable[..., Any], pki: Pki) -> None:
    """Profile 3: a valid certificate for an id not in the registry is refused (401) under the
    default policy (reject), and let in to boot with ``unknown_stations=pending``."""
    running = await csms(**pki.settings(3))
    assert (
        await refused_status(open_socket(running, "SP3-NEW", ssl_context=pki.client("SP3-NEW")))
        == 401
    )
    await running.stop()
    running = await csms(**pki.settings(3, unknown_stations="pending"))
    ws, cp, task = await mh_station(running, "SP3-NEW", ssl_context=pki.client("SP3-NEW"))
    boot = await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
    assert boot.status == "Pending"
    task.cancel()
    await ws.close()


async def test_passwords_and_authorization_never_logged(csms: Callable[..., Any], pki: Pki) -> None:
    """A01.FR.07 / design.md "Secrets never logged": neither a right nor a wrong password nor
    the Authorization header appears in any log event, while the refusal itself is logged."""
    running = await csms(**pki.settings(1))
    await register(running, "LOG-CP", PASSWORD)
    wrong_password = "wrong-password-0123456"
    with structlog.testing.capture_logs() as events:
        assert (
            await refused_status(
                open_socket(running, "LOG-CP", authorization=basic("LOG-CP", wrong_password))
            )
            == 401
        )
        await session_works(running, "LOG-CP", "1.6", authorization=basic("LOG-CP", PASSWORD))
    text = repr(events)
    assert "authentication failed" in text and "LOG-CP" in text
    for secret in (PASSWORD, wrong_password, basic("LOG-CP", PASSWORD)[6:], "Basic "):
        assert secret not in text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("CP1", "pw:with:colons"), ("CP1", "pw:with:colons")),
        ("basic " + basic("CP1", "x")[6:], ("CP1", "x")),  # scheme is case-insensitive
        (basic("", "x"), ("", "x")),
        (None, None),
        ("", None),
        ("Bearer abc", None),
        ("Basic", None),
        ("Basic !!!not-base64", None),
        ("Basic " + "Q1AxeA==", None),  # "CP1x": no colon
        ("Basic /w==", None),  # 0xff: not UTF-8
    ],
)
def test_parse_basic_authorization_rfc7617(
    header: str | None, expected: tuple[str, str] | None
) -> None:
    """RFC 7617 §2: user-id up to the first colon, the password may hold colons; anything
    else (other scheme, bad base64, no colon, not UTF-8) is malformed."""
    assert parse_basic_authorization(header) == expected


def test_attempt_limiter_sliding_window_and_bounded_memory() -> None:
    """CWE-307: ``limit`` failures in the window block the key; it unblocks when they age
    out; keys are bounded (id spraying cannot grow memory without end)."""
    now = [0.0]
    limiter = AttemptLimiter(3, window=60.0, max_keys=10, clock=lambda: now[0])
    for _ in range(3):
        assert not limiter.blocked("a")
        limiter.failed("a")
    assert limiter.blocked("a") and not limiter.blocked("b")
    now[0] = 59.0
    assert limiter.blocked("a")
    now[0] = 60.5
    assert not limiter.blocked("a")
    for index in range(50):
        limiter.failed(f"spray-{index}")
    assert len(limiter._failures) <= 10


def test_cli_security_options() -> None:
    """The CLI takes the profile and TLS files as flags (never passwords) and refuses a
    profile without its files with one line and exit 2."""
    runner = CliRunner()
    help_text = runner.invoke(app, ["csms", "--help"]).output
    for option in ("--security-profile", "--tls-cert", "--tls-key", "--tls-client-ca"):
        assert option in help_text
    assert "--password" not in help_text
    result = runner.invoke(app, ["csms", "--security-profile", "2"], env={})
    assert result.exit_code == 2
    assert "security_profile 2 needs tls_cert and tls_key" in result.output


async def test_unreadable_tls_files_are_a_settings_error(tmp_path: Path, pki: Pki) -> None:
    """Missing or mismatched TLS files stop the start with one clear line (the CLI prints
    SettingsError and exits 2), before anything listens."""
    missing = str(tmp_path / "missing.pem")
    database = f"sqlite+aiosqlite:///{tmp_path / 'tls.sqlite3'}"
    for cert, key in ((missing, missing), (str(pki.server_cert), str(pki.station_ca_file))):
        settings = CsmsSettings(
            port=0, api_port=0, database=database, security_profile=2, tls_cert=cert, tls_key=key
        )
        with pytest.raises(SettingsError, match="cannot load the TLS certificate"):
            await start_csms(settings)


async def test_tls_handshake_bounded_by_handshake_timeout(
    csms: Callable[..., Any], pki: Pki
) -> None:
    """Slowloris on TLS (reliability.md §3.3, checklist A9 "TLS ClientHello then silence"):
    a client that opens TCP to a profile-2 port and never finishes the TLS handshake is cut
    off at ``handshake_timeout`` (asyncio's own default would be 60 s)."""
    running = await csms(**pki.settings(2, handshake_timeout=1.0))
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    writer.write(b"\x16\x03\x01")  # the first bytes of a TLS record, then silence
    started = time.monotonic()
    assert await asyncio.wait_for(reader.read(), 5.0) == b""
    assert 0.5 <= time.monotonic() - started < 3.0
    writer.close()


async def test_failing_authentication_hook_answers_503_and_no_upgrade() -> None:
    """Transport contract: when the application's hook raises (e.g. the database is down)
    the upgrade is refused with 503, so the station retries later, and nothing is upgraded;
    the hook sees the identity and header but ``repr`` of its request hides the header."""
    seen: list[str] = []

    async def broken(request: HandshakeRequest) -> int | None:
        seen.append(repr(request))
        raise RuntimeError("database unavailable")

    server = await serve({OcppVersion.V16: Router()}, port=0, authenticate=broken)
    port = server.sockets[0].getsockname()[1]
    try:
        status = await refused_status(
            websockets.connect(
                f"ws://127.0.0.1:{port}/ocpp/HOOK-CP",
                subprotocols=[websockets.Subprotocol("ocpp1.6")],
                additional_headers={"Authorization": basic("HOOK-CP", PASSWORD)},
            )
        )
    finally:
        server.close()
        await server.wait_closed()
    assert status == 503
    assert "HOOK-CP" in seen[0] and "Basic" not in seen[0] and PASSWORD not in seen[0]


async def test_verified_password_is_remembered_until_rotated(csms: Callable[..., Any]) -> None:
    """Reconnect storms at profile 1/2 must not cost a scrypt per station: a password verified
    against the stored hash is remembered as a keyed digest; rotating the password (a new
    stored hash, A01.FR.03) makes the old one fail at once (A01.FR.04), and a wrong password
    is never accepted from the memory."""
    running = await csms(security_profile=1)
    await register(running, "ROT-CP", PASSWORD)
    authenticator = CsmsAuthenticator(running.service.settings, running.service.db)

    def handshake(password: str) -> HandshakeRequest:
        return HandshakeRequest("ROT-CP", basic("ROT-CP", password), "127.0.0.1")

    assert await authenticator(handshake(PASSWORD)) is None
    assert "ROT-CP" in authenticator._verified
    assert await authenticator(handshake(PASSWORD)) is None  # from the memory
    assert await authenticator(handshake(PASSWORD[::-1])) == 401
    await register(running, "ROT-CP", "a-new-password-0123")
    assert await authenticator(handshake(PASSWORD)) == 401
    assert await authenticator(handshake("a-new-password-0123")) is None
