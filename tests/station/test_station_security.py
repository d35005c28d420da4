"""Security profiles 1-3 on the station side, against our CSMS with real certificates
(1.6 Security whitepaper / 2.0.1 Part 2 A00): Basic auth over ws:// (1) and wss:// (2), a
client certificate (3); a wrong password never gets a session.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ocppkit.csms import CsmsSettings
from ocppkit.node import RunningCsms, start_csms
from ocppkit.station.backoff import BackoffSettings
from ocppkit.station.station import StationConfig
from ocppkit.station.store import StationStore
from tests.helpers.security import Pki, make_pki, register
from tests.station.peers import online, running

PASSWORD = "0123456789abcdef0123"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


async def csms(tmp_path: Path, pki: Pki, profile: int) -> RunningCsms:
    database = f"sqlite+aiosqlite:///{tmp_path / 'csms.sqlite3'}"
    return await start_csms(
        CsmsSettings(port=0, api_port=0, database=database, **pki.settings(profile))
    )


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("profile", [1, 2, 3])
async def test_security_profiles_open_a_session_a00(
    tmp_path: Path, pki: Pki, store: StationStore, profile: int, version: str
) -> None:
    """A00.FR.201-205 (Basic, user = station id), A00.FR.3xx (TLS, server verified with the
    CA bundle), A00.FR.401-405 (client certificate, CN = station id)."""
    node = await csms(tmp_path, pki, profile)
    try:
        station_id = f"SP{profile}-EMU"
        await register(node, station_id, PASSWORD if profile < 3 else None)
        scheme = "ws" if profile == 1 else "wss"
        cert = key = None
        if profile == 3:
            cert_path, key_path = pki.station_files(station_id)
            cert, key = str(cert_path), str(key_path)
        cfg = StationConfig(
            station_id=station_id,
            csms_url=f"{scheme}://127.0.0.1:{node.port}/ocpp",
            ocpp_version=version,
            security_profile=profile,
            password=PASSWORD if profile < 3 else None,
            ca_file=str(pki.server_ca_file) if profile >= 2 else None,
            client_cert=cert,
            client_key=key,
        )
        async with running(cfg, store) as station:
            snap = await online(station)
            assert snap["registration"] == "Accepted"
            assert node.service.connections[station_id].version == version
    finally:
        await node.stop()


async def test_wrong_password_gets_no_session_and_backs_off(
    tmp_path: Path, pki: Pki, store: StationStore
) -> None:
    """A00.FR.204: a wrong password is refused (401) before the upgrade; the station keeps
    retrying with its back-off and never comes online."""
    node = await csms(tmp_path, pki, 1)
    try:
        await register(node, "BAD-PW", PASSWORD)
        cfg = StationConfig(
            station_id="BAD-PW",
            csms_url=f"ws://127.0.0.1:{node.port}/ocpp",
            security_profile=1,
            password=PASSWORD[::-1],
            backoff=BackoffSettings(wait_minimum=0.1, random_range=0.1, repeat_times=1),
        )
        async with running(cfg, store) as station:
            await asyncio.sleep(1.0)
            snap = station.snapshot()
            assert snap["connects"] == 0 and not snap["online"]
            assert snap["reconnect_attempt"] >= 2
    finally:
        await node.stop()
