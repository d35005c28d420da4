"""The station's TLS uses the certificates it manages, over real TLS on loopback against our
own CSMS on a profile-3 port.

Anchors: 2.0.1 M05 / 1.6 Security whitepaper InstallCertificate (the CSMS root installed is
what the station verifies the CSMS's server certificate with), A02.FR.08 / A03.FR.08 (errata
2025-01: a valid signed certificate is answered Accepted AND the station switches to it by
reconnecting the WebSocket and TLS connection; 1.6 whitepaper TC_074_CS step 7), and
"secrets never logged" (design.md). One CA, made here with ``cryptography``, issues the
CSMS's server certificate and the station's first certificate and signs the station's CSRs
(the CSMS's ``ca_cert``): installed as the CSMS root it anchors both the server certificate
and the signed chain (A02.FR.06).
"""

from __future__ import annotations

import asyncio
import dataclasses
import glob
import ipaddress
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ocppkit.node import RunningCsms
from ocppkit.station.certificates import CS_USE
from ocppkit.station.station import Station, StationConfig, _private_file
from ocppkit.station.store import StationStore
from tests.helpers.certificates import ROOT_TYPE, install_root, trigger_csr
from tests.helpers.clock import SkippedSleeps
from tests.helpers.security import register
from tests.station.peers import online, running

CPO = "ocppkit"  # the O the emulator puts in its CSRs (1.6 CpoName unset, 2.0.1 default)
VERSIONS = ["1.6", "2.0.1"]


# -- the PKI -------------------------------------------------------------------------------------


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclasses.dataclass
class Pki:
    folder: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate

    @property
    def root_pem(self) -> str:
        return self.ca.public_bytes(serialization.Encoding.PEM).decode()

    def files(self, stem: str, cert: x509.Certificate, key: Any) -> tuple[str, str]:
        cert_file, key_file = self.folder / f"{stem}-cert.pem", self.folder / f"{stem}-key.pem"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(_pem_key(key))
        return str(cert_file), str(key_file)

    def issue(self, common_name: str, *, server: bool) -> tuple[x509.Certificate, Any]:
        """A leaf of this CA: the CSMS's (127.0.0.1, serverAuth) or a station's (CN, O)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        name = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if not server:
            name.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, CPO))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(name))
            .issuer_name(self.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        return builder.sign(self.ca_key, hashes.SHA256()), key


def make_pki(folder: Path, name: str = "TLS store test CA", *, issuer: Pki | None = None) -> Pki:
    """A CA in ``folder``: self-signed, or signed by ``issuer``'s CA (a new CSMS root signed
    by the one it replaces, as ``AdditionalRootCertificateCheck`` asks, M05.FR.09)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CPO),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    signer_key, issuer_name = (
        (key, subject) if issuer is None else (issuer.ca_key, issuer.ca.subject)
    )
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(signer_key, hashes.SHA256())
    )
    return Pki(folder, key, ca)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


async def profile3_csms(
    csms: Callable[..., Any], pki: Pki, station_id: str, *, signer: Pki | None = None
) -> RunningCsms:
    """Our CSMS on a profile-3 port: server certificate and the station certificates its
    TLS layer accepts from ``pki``'s CA, CSR signing by ``signer``'s CA (default ``pki``'s;
    another one hands out certificates that cannot connect, the A02.FR.28 case);
    ``station_id`` registered."""
    ca_file, ca_key_file = pki.files("ca", pki.ca, pki.ca_key)
    signer_cert, signer_key = (
        (ca_file, ca_key_file)
        if signer is None
        else signer.files("signer-ca", signer.ca, signer.ca_key)
    )
    server_cert, server_key = pki.files("csms", *pki.issue("127.0.0.1", server=True))
    node: RunningCsms = await csms(
        security_profile=3,
        tls_cert=server_cert,
        tls_key=server_key,
        tls_client_ca=ca_file,
        cpo_name=CPO,
        ca_cert=signer_cert,
        ca_key=signer_key,
    )
    await register(node, station_id, profile=3)
    return node


def station_config(
    node: RunningCsms, pki: Pki, station_id: str, version: str, *, ca_file: bool
) -> tuple[StationConfig, x509.Certificate]:
    """A profile-3 station with a first certificate from ``pki`` (and the CA as its
    ``ca_file`` when asked); that certificate."""
    cert, key = pki.issue(station_id, server=False)
    cert_file, key_file = pki.files(f"station-{version}", cert, key)
    config = StationConfig(
        station_id=station_id,
        csms_url=f"wss://127.0.0.1:{node.port}/ocpp",
        ocpp_version=version,
        security_profile=3,
        ca_file=str(pki.folder / "ca-cert.pem") if ca_file else None,
        client_cert=cert_file,
        client_key=key_file,
    )
    return config, cert


def server_side_peer(node: RunningCsms, station_id: str) -> dict[str, Any]:
    """The client certificate the CSMS's TLS layer verified on the station's live
    connection (``getpeercert``)."""
    connection = node.service.connections[station_id]
    peer = connection.websocket.transport.get_extra_info("peercert")
    assert peer, "no client certificate on the server side"
    return dict(peer)


def peer_serial(peer: dict[str, Any]) -> int:
    return int(str(peer["serialNumber"]), 16)


def peer_cn(peer: dict[str, Any]) -> str:
    return next(v for rdn in peer["subject"] for k, v in rdn if k == "commonName")


def tls_temp_dirs() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "ocppkit-tls-*")))


# -- (a) trust comes from the installed CSMS root ----------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_m05_installed_csms_root_is_the_trust_for_the_server_certificate(
    version: str, csms: Callable[..., Any], pki: Pki, store: StationStore, tmp_path: Path
) -> None:
    """M05 (1.6 whitepaper InstallCertificate): the CSMS root installed with
    InstallCertificate is what the station verifies the CSMS's server certificate with. A
    station that trusted the CSMS through ``ca_file`` installs the root; run again without
    ``ca_file`` it connects over wss (profile 3) trusting that root alone, while the same
    station without the root (a fresh store) fails the TLS handshake on the server
    certificate."""
    station_id = f"TLS-ROOT-{version}"
    node = await profile3_csms(csms, pki, station_id)
    config, _ = station_config(node, pki, station_id, version, ca_file=True)
    async with running(config, store) as station:
        await online(station)
        assert await install_root(node, station_id, version, pki.root_pem) == "Accepted"

    without_ca = dataclasses.replace(config, ca_file=None)
    async with running(without_ca, store) as station:
        await online(station)
        assert station.snapshot()["connects"] == 1
        assert peer_cn(server_side_peer(node, station_id)) == station_id

    async with await StationStore.open(tmp_path / "fresh.sqlite3") as fresh:
        with structlog.testing.capture_logs() as logs:
            async with running(without_ca, fresh) as station:
                for _ in range(200):
                    if any(e["event"] == "connection failed" for e in logs):
                        break
                    await asyncio.sleep(0.05)
                assert station.connects == 0
    failure = next(e for e in logs if e["event"] == "connection failed")
    assert "CERTIFICATE_VERIFY_FAILED" in failure["error"]


# -- (b) A02.FR.08: reconnect with the new certificate; (c) the key stays secret --------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_a02_fr_08_accepted_certificate_is_used_after_a_reconnect(
    version: str,
    csms: Callable[..., Any],
    pki: Pki,
    store: StationStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A02.FR.08 / A03.FR.08 (errata 2025-01; 1.6 TC_074_CS step 7): after CertificateSigned
    is Accepted on a profile-3 connection the station closes it and connects again at once
    (no back-off wait, and not counted as a failed attempt), and the CSMS's TLS layer sees the
    new certificate (serial, CN) on the new connection. Secrets never logged (design.md):
    the station's new private key is in no log line, structlog's or the stdlib's, and the
    files it was loaded from are gone."""
    station_id = f"TLS-RENEW-{version}"
    node = await profile3_csms(csms, pki, station_id)
    config, first = station_config(node, pki, station_id, version, ca_file=False)
    # The root reaches the station's store before it runs (no ca_file: nothing else trusted).
    seed = Station(config, store=store)
    seed.behaviour.certs.install(ROOT_TYPE[version], pki.root_pem)
    await store.save_state(station_id, seed.state_blob())

    waits = SkippedSleeps()
    before = tls_temp_dirs()
    with structlog.testing.capture_logs() as logs:
        async with running(config, store, sleep=waits) as station:
            failed: list[Any] = []
            station._attempt_failed = failed.append  # type: ignore[method-assign]
            await online(station)
            assert peer_serial(server_side_peer(node, station_id)) == first.serial_number
            assert await trigger_csr(node, station_id, version) == "Accepted"
            await station.wait_for_state(lambda s: s["online"] and s["connects"] == 2, 15)
            chain = station.behaviour.certs.own_chain
            key = station.behaviour.certs.own_key
            assert chain and key
            new = x509.load_pem_x509_certificate(chain[0].encode())
            assert new.serial_number != first.serial_number
            peer = server_side_peer(node, station_id)
            assert peer_serial(peer) == new.serial_number
            assert peer_cn(peer) == station_id
            assert waits == []  # the switch is not a connection loss: no back-off
            assert failed == []  # nor a failed attempt for the network-profile fail-over
            slot = station.behaviour.certs.own[CS_USE]
            assert slot.pending_key is None
    assert any(e["event"] == "reconnecting with the new station certificate" for e in logs)
    body = key.strip().splitlines()[1:-1]  # the base64 lines of the PEM
    assert body
    logged = repr(logs) + caplog.text
    assert not [line for line in body if line in logged]
    assert "PRIVATE KEY" not in logged
    assert tls_temp_dirs() <= before  # every key file written for ssl is removed


async def test_profile_0_station_does_not_reconnect_after_certificate_signed(
    csms: Callable[..., Any], pki: Pki, store: StationStore
) -> None:
    """A02.FR.08 reconnects "the websocket and TLS connection": on ws:// (no TLS) the
    certificate cannot be used, so the station accepts it and stays connected."""
    ca_file, ca_key_file = pki.files("ca", pki.ca, pki.ca_key)
    node: RunningCsms = await csms(security_profile=1, ca_cert=ca_file, ca_key=ca_key_file)
    station_id = "TLS-WS-2.0.1"
    await register(node, station_id, "0123456789abcdef0123", profile=1)
    config = StationConfig(
        station_id=station_id,
        csms_url=f"ws://127.0.0.1:{node.port}/ocpp",
        ocpp_version="2.0.1",
        security_profile=1,
        password="0123456789abcdef0123",
    )
    async with running(config, store) as station:
        await online(station)
        assert await install_root(node, station_id, "2.0.1", pki.root_pem) == "Accepted"
        assert await trigger_csr(node, station_id, "2.0.1") == "Accepted"
        for _ in range(200):
            if station.behaviour.certs.own_chain:
                break
            await asyncio.sleep(0.05)
        assert station.behaviour.certs.own_chain
        await asyncio.sleep(0.5)  # time enough for a reconnect, were one coming
        assert station.snapshot()["connects"] == 1 and station.online


def test_key_files_for_ssl_are_private(tmp_path: Path) -> None:
    """``ssl`` loads a key from a file only: the file the station writes it to is readable
    by its user alone (0600), and never overwrites an existing file."""
    path = _private_file(str(tmp_path), "key.pem", "secret")
    assert Path(path).read_text() == "secret"
    assert os.stat(path).st_mode & 0o777 == 0o600
    with pytest.raises(FileExistsError):
        _private_file(str(tmp_path), "key.pem", "other")


async def test_a02_fr_08_profile_2_reconnects_too(
    csms: Callable[..., Any], pki: Pki, store: StationStore
) -> None:
    """A02.FR.08 (errata 2025-01) has no security-profile precondition: on a profile-2
    ``wss://`` connection (TLS, Basic auth) the station also switches by reconnecting the
    WebSocket and TLS connection, at once (no back-off), and is let in again."""
    ca_file, ca_key_file = pki.files("ca", pki.ca, pki.ca_key)
    server_cert, server_key = pki.files("csms", *pki.issue("127.0.0.1", server=True))
    node: RunningCsms = await csms(
        security_profile=2,
        tls_cert=server_cert,
        tls_key=server_key,
        ca_cert=ca_file,
        ca_key=ca_key_file,
    )
    station_id, password = "TLS-P2-2.0.1", "0123456789abcdef0123"
    await register(node, station_id, password, profile=2)
    config = StationConfig(
        station_id=station_id,
        csms_url=f"wss://127.0.0.1:{node.port}/ocpp",
        ocpp_version="2.0.1",
        security_profile=2,
        password=password,
        ca_file=ca_file,
    )
    waits = SkippedSleeps()
    async with running(config, store, sleep=waits) as station:
        await online(station)
        assert await install_root(node, station_id, "2.0.1", pki.root_pem) == "Accepted"
        assert await trigger_csr(node, station_id, "2.0.1") == "Accepted"
        await station.wait_for_state(lambda s: s["online"] and s["connects"] == 2, 15)
        assert station.behaviour.certs.own_chain
        assert waits == []
