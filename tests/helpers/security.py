"""Test PKI and station helpers for security profiles 1-3 (real certificates, real sockets).

Certificates are made per test with ``trustme``: one CA for the CSMS's server certificate
(``127.0.0.1`` / ``localhost``), a second CA that signs station certificates (profile 3), and
a foreign CA whose certificates the CSMS must refuse.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme
import websockets
from sqlalchemy import update

from ocppkit.csms.credentials import hash_password
from ocppkit.node import RunningCsms
from ocppkit.storage import repositories
from ocppkit.storage.models import Station
from ocppkit.transport.tls import client_context
from tests.helpers.mobilityhouse import Station16 as MhStation16
from tests.helpers.mobilityhouse import Station201 as MhStation201

CPO = "Test CPO"


@dataclass
class Pki:
    """Files and CAs of one test's PKI."""

    folder: Path
    server_ca: trustme.CA
    station_ca: trustme.CA
    foreign_ca: trustme.CA
    server_cert: Path
    server_key: Path
    server_ca_file: Path
    station_ca_file: Path

    def settings(self, profile: int, **overrides: Any) -> dict[str, Any]:
        """CsmsSettings keyword arguments for ``profile``."""
        values: dict[str, Any] = {"security_profile": profile}
        if profile >= 2:
            values |= {"tls_cert": str(self.server_cert), "tls_key": str(self.server_key)}
        if profile == 3:
            values |= {"tls_client_ca": str(self.station_ca_file), "cpo_name": CPO}
        return values | overrides

    def station_files(
        self,
        common_name: str,
        organization: str | None = CPO,
        *,
        ca: trustme.CA | None = None,
        not_after: datetime | None = None,
        not_before: datetime | None = None,
    ) -> tuple[Path, Path]:
        """A station certificate (CN, O) signed by ``ca`` (default: the station CA)."""
        leaf = (ca or self.station_ca).issue_cert(
            common_name=common_name,
            organization_name=organization,
            not_before=not_before,
            not_after=not_after,
        )
        stem = f"station-{len(list(self.folder.glob('station-*-cert.pem')))}"
        cert, key = self.folder / f"{stem}-cert.pem", self.folder / f"{stem}-key.pem"
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        return cert, key

    def client(self, common_name: str | None = None, **kwargs: Any) -> ssl.SSLContext:
        """A station's TLS context trusting the CSMS; with a certificate when ``common_name``."""
        if common_name is None:
            return client_context(self.server_ca_file)
        cert, key = self.station_files(common_name, **kwargs)
        return client_context(self.server_ca_file, certfile=cert, keyfile=key)

    def expired_client(self, common_name: str) -> ssl.SSLContext:
        now = datetime.now(UTC)
        cert, key = self.station_files(
            common_name, not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
        )
        return client_context(self.server_ca_file, certfile=cert, keyfile=key)


def make_pki(folder: Path) -> Pki:
    server_ca = trustme.CA(organization_name="CSMS CA")
    station_ca = trustme.CA(organization_name="Station CA")
    foreign_ca = trustme.CA(organization_name="Somebody else")
    leaf = server_ca.issue_cert("127.0.0.1", "localhost")
    server_cert, server_key = folder / "csms-cert.pem", folder / "csms-key.pem"
    leaf.private_key_pem.write_to_path(str(server_key))
    server_cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    server_ca_file, station_ca_file = folder / "csms-ca.pem", folder / "station-ca.pem"
    server_ca.cert_pem.write_to_path(str(server_ca_file))
    station_ca.cert_pem.write_to_path(str(station_ca_file))
    return Pki(
        folder,
        server_ca,
        station_ca,
        foreign_ca,
        server_cert,
        server_key,
        server_ca_file,
        station_ca_file,
    )


async def register(
    running: RunningCsms, station_id: str, password: str | None = None, *, profile: int = 0
) -> None:
    """Put a known, Accepted station in the registry (as an operator would)."""
    now = datetime.now(UTC)
    async with running.service.db.write_session() as session:
        await repositories.ensure_station(session, station_id, now=now)
        await session.execute(
            update(Station)
            .where(Station.id == station_id)
            .values(
                password_hash=hash_password(password) if password else None,
                security_profile=profile,
                registration_status="Accepted",
                last_boot=now,
            )
        )
        await session.commit()


def basic(user: str, password: str) -> str:
    """An RFC 7617 Basic credential."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def url(running: RunningCsms, station_id: str, *, tls: bool) -> str:
    return f"{'wss' if tls else 'ws'}://127.0.0.1:{running.port}/ocpp/{station_id}"


async def open_socket(
    running: RunningCsms,
    station_id: str,
    version: str = "1.6",
    *,
    authorization: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    tls: bool | None = None,
) -> websockets.ClientConnection:
    """A WebSocket to the CSMS as ``station_id`` (raises ``InvalidStatus`` on refusal)."""
    headers = {"Authorization": authorization} if authorization is not None else None
    return await websockets.connect(
        url(running, station_id, tls=ssl_context is not None if tls is None else tls),
        subprotocols=[websockets.Subprotocol(f"ocpp{version}")],
        additional_headers=headers,
        ssl=ssl_context,
        open_timeout=10,
    )


async def mh_station(
    running: RunningCsms, station_id: str, version: str = "1.6", **kwargs: Any
) -> tuple[websockets.ClientConnection, Any, asyncio.Task[None]]:
    """A mobilityhouse ``ocpp`` ChargePoint connected as ``station_id``; (socket, cp, task)."""
    ws = await open_socket(running, station_id, version, **kwargs)
    cp = (MhStation16 if version == "1.6" else MhStation201)(station_id, ws)
    return ws, cp, asyncio.create_task(cp.start())


async def refused_status(coro: Any) -> int:
    """The HTTP status of an upgrade the CSMS refused."""
    try:
        ws = await coro
    except websockets.InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    raise AssertionError("the upgrade was accepted")
