"""The station's certificate lifecycle around a switch, over real TLS on loopback against our
own CSMS (certificates made here with ``cryptography``, helpers from test_station_tls_store
and ``tests/helpers/certificates.py``):

* the old charging-station certificate is kept until the new one connected; a new one that
  cannot connect is given up for the old one, and the one not in use is discarded (2.0.1
  errata 2025-01 A02.FR.10/28/29, A03.FR.10/24/25; the 1.6 whitepaper's A02.FR.10 keeps the
  old one as a fallback too), persisted in the certificate store;
* ``AdditionalRootCertificateCheck``: the fallback CSMS root goes only after a connection
  whose server certificate the new root verified (M05.FR.12), and a server certificate only
  the fallback verifies is still accepted (M05.FR.13);
* security profile 3 starts with the store's certificate when no file is configured, and is
  one clear error when there is neither.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from cryptography import x509
from ocpp.v201 import call as c201
from sqlalchemy import select

from ocppkit.node import RunningCsms
from ocppkit.station.certificates import CS_USE, CertificateError, CertificateStore
from ocppkit.station.station import Station, StationConfig, StationConfigError
from ocppkit.station.store import StationStore
from ocppkit.storage import Database
from ocppkit.storage.models import SecurityEvent
from tests.helpers.certificates import ROOT_TYPE, make_ca, pem, sign, trigger_csr
from tests.helpers.clock import SkippedSleeps
from tests.helpers.security import register
from tests.station.peers import online, running, with_their_csms
from tests.station.test_station_certificates import call
from tests.station.test_station_cli import run_cli
from tests.station.test_station_network_profiles import network
from tests.station.test_station_tls_store import (
    CPO,
    VERSIONS,
    Pki,
    make_pki,
    peer_serial,
    profile3_csms,
    server_side_peer,
)

PASSWORD = "0123456789abcdef0123"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    """The old CSMS root: issues the CSMS's server certificate and the first station
    certificates."""
    return make_pki(tmp_path, "CSMS Root 1")


def signed_by(pki: Pki, certs: CertificateStore, station_id: str) -> str:
    """A02: a CSR of ``certs`` (fresh pending key) signed by ``pki``'s CA, as PEM."""
    csr = x509.load_pem_x509_csr(certs.make_csr(station_id, CPO).encode())
    return pem(sign(csr, pki.ca_key, pki.ca))


async def seed(store: StationStore, config: StationConfig, prepare: Callable[[Any], None]) -> None:
    """Persist a station state whose certificate store ``prepare`` filled, before it runs."""
    station = Station(config, store=store)
    prepare(station.behaviour.certs)
    await store.save_state(config.station_id, station.state_blob())


async def wait_until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def discarded_reported(db_url: str, station_id: str) -> bool:
    """A02.FR.29: the CSMS stored the station's DiscardedRenewedClientCertificate (it
    writes security events after answering: waits up to 10 s)."""
    for _ in range(200):
        if "DiscardedRenewedClientCertificate" in await security_event_types(db_url, station_id):
            return True
        await asyncio.sleep(0.05)
    return False


async def security_event_types(db_url: str, station_id: str) -> list[str]:
    async with Database(db_url) as db, db.session() as session:
        rows = await session.scalars(
            select(SecurityEvent.type).where(SecurityEvent.station_id == station_id)
        )
        return list(rows.all())


def profile3(node: RunningCsms, station_id: str, version: str, **files: Any) -> StationConfig:
    return StationConfig(
        station_id=station_id,
        csms_url=f"wss://127.0.0.1:{node.port}/ocpp",
        ocpp_version=version,
        security_profile=3,
        **files,
    )


# -- A02.FR.28 / A02.FR.10 / A02.FR.29: a new certificate that cannot connect ------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_a02_fr_28_new_certificate_that_cannot_connect_falls_back_to_the_old_one(
    version: str, csms: Callable[..., Any], pki: Pki, store: StationStore, db_url: str
) -> None:
    """A02.FR.28 / A03.FR.24 (errata 2025-01): after CertificateSigned the station reconnects
    with the new certificate; when a round of attempts with it fails (1.6: 3 attempts;
    2.0.1: the one NetworkConfigurationPriority entry x NetworkProfileConnectionAttempts 3)
    it falls back to the old one (here the configured ``client_cert``), which connects. Then
    A02.FR.10: the certificate not in use, the new one, is discarded; A02.FR.29: the station
    reports DiscardedRenewedClientCertificate, and the CSMS stores it."""
    station_id = f"FB-OLD-{version}"
    other = make_pki(pki.folder, "Signing CA the TLS port does not trust")
    node = await profile3_csms(csms, pki, station_id, signer=other)
    first, key = pki.issue(station_id, server=False)
    cert_file, key_file = pki.files(f"first-{version}", first, key)
    config = profile3(
        node,
        station_id,
        version,
        ca_file=str(pki.folder / "ca-cert.pem"),
        client_cert=cert_file,
        client_key=key_file,
    )
    # The signing CA is an installed CSMS root, so the station accepts its chain (A02.FR.06).
    await seed(store, config, lambda certs: certs.install(ROOT_TYPE[version], other.root_pem))
    waits = SkippedSleeps()
    with structlog.testing.capture_logs() as logs:
        async with running(config, store, sleep=waits) as station:
            await online(station)
            assert await trigger_csr(node, station_id, version) == "Accepted"
            await wait_until(lambda: station.behaviour.certs.unconfirmed)
            await station.wait_for_state(lambda s: s["online"] and s["connects"] == 2, 15)
            assert peer_serial(server_side_peer(node, station_id)) == first.serial_number
            assert len(waits) == 3, "three failed attempts with the new one, then the old one"
            slot = station.behaviour.certs.own[CS_USE]
            assert (slot.chain, slot.key, slot.unconfirmed) == ([], None, False), "A02.FR.10"
            assert slot.previous_chain == [] and slot.previous_key is None
            assert await discarded_reported(db_url, station_id)
    assert any(
        e["event"] == "no connection with the station certificate: trying the old" for e in logs
    )


@pytest.mark.parametrize("version", VERSIONS)
async def test_a02_fr_28_kept_old_certificate_survives_a_restart(
    version: str, csms: Callable[..., Any], pki: Pki, store: StationStore, db_url: str
) -> None:
    """The old certificate and the unconfirmed new one are persisted in the certificate store:
    a station restarted before the new one connected (no ``client_cert`` configured: profile 3
    starts with the store's certificate) tries the new one, falls back to the stored old chain
    after a round of failures (A02.FR.28), keeps that one and discards the new (A02.FR.10)."""
    station_id = f"FB-RESTART-{version}"
    other = make_pki(pki.folder, "Signing CA the TLS port does not trust")
    node = await profile3_csms(csms, pki, station_id, signer=other)
    config = profile3(node, station_id, version)
    old_chain: list[str] = []

    def prepare(certs: CertificateStore) -> None:
        now = datetime.now(UTC)
        certs.install(ROOT_TYPE[version], pki.root_pem)  # trusts the server; anchors the old
        certs.install(ROOT_TYPE[version], other.root_pem)  # anchors the new
        certs.accept_signed(signed_by(pki, certs, station_id), now, anchors=[ROOT_TYPE[version]])
        assert certs.confirm_client_certificate(previous=False) == "confirmed"
        old_chain.extend(certs.own_chain)
        certs.accept_signed(signed_by(other, certs, station_id), now, anchors=[ROOT_TYPE[version]])
        assert certs.unconfirmed and certs.own[CS_USE].previous_chain == old_chain

    await seed(store, config, prepare)

    async with running(config, store, sleep=SkippedSleeps()) as station:
        await online(station, 15)
        assert station.connects == 1
        old = x509.load_pem_x509_certificate(old_chain[0].encode())
        assert peer_serial(server_side_peer(node, station_id)) == old.serial_number
        certs = station.behaviour.certs
        assert certs.own_chain == old_chain and not certs.unconfirmed
        assert await discarded_reported(db_url, station_id)
    blob = await store.load_state(station_id)
    assert blob is not None
    restored = Station(config, store=store)
    restored.behaviour.load_dict(blob)
    assert restored.behaviour.certs.own_chain == old_chain
    assert restored.behaviour.certs.own[CS_USE].previous_chain == []


async def test_a02_fr_10_new_certificate_that_connects_discards_the_old_one(
    csms: Callable[..., Any], pki: Pki, store: StationStore
) -> None:
    """A02.FR.10 (errata 2025-01): the station's certificate is the store's (profile 3 with
    no ``client_cert`` configured); CertificateSigned installs a new one, the old one is kept
    meanwhile; the reconnection with the new one succeeds, so the old one is discarded, and a
    restarted station presents the new one."""
    station_id = "FB-NEW-2.0.1"
    node = await profile3_csms(csms, pki, station_id)
    config = profile3(node, station_id, "2.0.1")
    first: list[str] = []

    def prepare(certs: CertificateStore) -> None:
        certs.install("CSMSRootCertificate", pki.root_pem)
        chain = signed_by(pki, certs, station_id)
        certs.accept_signed(chain, datetime.now(UTC), anchors=["CSMSRootCertificate"])
        certs.confirm_client_certificate(previous=False)
        first.extend(certs.own_chain)

    await seed(store, config, prepare)
    with structlog.testing.capture_logs() as logs:
        async with running(config, store) as station:
            await online(station)
            old = x509.load_pem_x509_certificate(first[0].encode())
            assert peer_serial(server_side_peer(node, station_id)) == old.serial_number
            assert await trigger_csr(node, station_id, "2.0.1") == "Accepted"
            await station.wait_for_state(lambda s: s["online"] and s["connects"] == 2, 15)
            certs = station.behaviour.certs
            new = x509.load_pem_x509_certificate(certs.own_chain[0].encode())
            assert new.serial_number != old.serial_number
            assert peer_serial(server_side_peer(node, station_id)) == new.serial_number
            slot = certs.own[CS_USE]
            assert not slot.unconfirmed and slot.previous_chain == [] and slot.previous_key is None
    events = [e["event"] for e in logs]
    assert "connected with the new station certificate: the old one discarded" in events
    async with running(config, store) as station:
        await online(station)
        assert peer_serial(server_side_peer(node, station_id)) == new.serial_number


# -- M05.FR.12 / M05.FR.13: the fallback CSMS root ------------------------------------------


async def profile2_csms(csms: Callable[..., Any], server_ca: Pki, station_id: str) -> Any:
    """Our CSMS on a profile-2 port (TLS, Basic auth) with a server certificate of
    ``server_ca``."""
    server_cert, server_key = server_ca.files(
        "csms-" + server_ca.ca.serial_number.to_bytes(20).hex()[:8],
        *server_ca.issue("127.0.0.1", server=True),
    )
    node: RunningCsms = await csms(security_profile=2, tls_cert=server_cert, tls_key=server_key)
    await register(node, station_id, PASSWORD, profile=2)
    return node


def profile2(node: RunningCsms, station_id: str, version: str) -> StationConfig:
    return StationConfig(
        station_id=station_id,
        csms_url=f"wss://127.0.0.1:{node.port}/ocpp",
        ocpp_version=version,
        security_profile=2,
        password=PASSWORD,
    )


def replaced_root(version: str, old: Pki, new: Pki) -> Callable[[CertificateStore], None]:
    """AdditionalRootCertificateCheck: ``new`` installed over ``old``, which it is signed
    by; ``old`` kept as the fallback (M05.FR.11)."""

    def prepare(certs: CertificateStore) -> None:
        certs.install(ROOT_TYPE[version], old.root_pem, replace_signed=True)
        certs.install(ROOT_TYPE[version], new.root_pem, replace_signed=True)
        assert certs.fallback == {ROOT_TYPE[version]: old.root_pem}

    return prepare


@pytest.mark.parametrize("version", VERSIONS)
async def test_m05_fr_12_fallback_root_goes_after_the_new_root_verified_the_server(
    version: str, csms: Callable[..., Any], pki: Pki, store: StationStore, tmp_path: Path
) -> None:
    """M05.FR.12: the CSMS's server certificate is issued by the new root; the station
    verifies it with the installed roots without the fallback, so the fallback goes (and
    stays gone after a restart). The new root, signed by the old one, then verifies the
    server on its own."""
    station_id = f"ROOT-NEW-{version}"
    new = make_pki(tmp_path, "CSMS Root 2", issuer=pki)
    node = await profile2_csms(csms, new, station_id)
    config = profile2(node, station_id, version)
    await seed(store, config, replaced_root(version, pki, new))
    async with running(config, store) as station:
        await online(station)
        assert station.new_root_verified
        certs = station.behaviour.certs
        assert certs.fallback == {} and certs.roots[ROOT_TYPE[version]] == [new.root_pem]
        await station.save()
    async with running(config, store) as station:
        await online(station)
        assert station.behaviour.certs.roots[ROOT_TYPE[version]] == [new.root_pem]
        assert station.connects == 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_m05_fr_13_server_verified_only_by_the_fallback_keeps_it(
    version: str, csms: Callable[..., Any], pki: Pki, store: StationStore, tmp_path: Path
) -> None:
    """M05.FR.13: the CSMS still presents a server certificate of the old root; the new root
    does not verify it, so the same attempt tries again with the fallback, which does: the
    station connects (no failed attempt, no back-off) and keeps the fallback, since the new
    root verified nothing (M05.FR.12)."""
    station_id = f"ROOT-OLD-{version}"
    new = make_pki(tmp_path, "CSMS Root 2", issuer=pki)
    node = await profile2_csms(csms, pki, station_id)
    config = profile2(node, station_id, version)
    await seed(store, config, replaced_root(version, pki, new))
    waits = SkippedSleeps()
    with structlog.testing.capture_logs() as logs:
        async with running(config, store, sleep=waits) as station:
            await online(station)
            assert not station.new_root_verified
            certs = station.behaviour.certs
            assert certs.fallback == {ROOT_TYPE[version]: pki.root_pem}
            assert certs.roots[ROOT_TYPE[version]] == [pki.root_pem, new.root_pem]
            assert station.connects == 1 and waits == []
    retried = [e for e in logs if e["event"].startswith("server certificate not verified")]
    assert len(retried) == 1 and "CERTIFICATE_VERIFY_FAILED" in retried[0]["error"]


# -- profile 3 and where its certificate comes from ------------------------------------------


async def test_profile_3_without_any_client_certificate_is_one_clear_error(
    store: StationStore, tmp_path: Path
) -> None:
    """Profile 3 (A00.FR.401: the station authenticates with its certificate) needs a client
    certificate: with none configured and none in the store the station does not start, one
    line saying so; the CLI prints it as its one error line (exit 2, no traceback). A
    certificate without its key is refused at once."""
    config = StationConfig(
        station_id="P3-NONE",
        csms_url="wss://127.0.0.1:9/ocpp",
        ocpp_version="2.0.1",
        security_profile=3,
    )
    station = Station(config, store=store)
    with pytest.raises(StationConfigError, match="security profile 3 needs a client cert"):
        await station.run()
    with pytest.raises(ValueError, match="client_cert and client_key go together"):
        dataclasses.replace(config, client_cert="c.pem")

    result = await asyncio.to_thread(
        run_cli,
        "station",
        "--csms",
        "wss://127.0.0.1:9/ocpp",
        "--id",
        "P3-NONE",
        "--security-profile",
        "3",
        "--state",
        str(tmp_path / "cli.sqlite3"),
        "--no-console",
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: security profile 3 needs a client certificate")
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


async def test_b09_fr_02_profile_3_network_profile_accepted_with_the_stores_certificate(
    store: StationStore, pki: Pki
) -> None:
    """B09.FR.02: SetNetworkProfile with securityProfile 3 is Rejected (InvalidNetworkConf)
    while the station has no client certificate, and Accepted once its certificate store
    holds one (no ``client_cert`` configured), against an independent CSMS."""
    async with with_their_csms(store, "P3-SETNET", "2.0.1", statuses=1) as (station, _, point):
        data = network("wss://127.0.0.1:1/ocpp", security_profile=3)
        refused = await call(
            point, c201.SetNetworkProfile(configuration_slot=1, connection_data=data)
        )
        assert refused.status == "Rejected"
        assert refused.status_info["reason_code"] == "InvalidNetworkConf"
        certs = station.behaviour.certs
        certs.install("CSMSRootCertificate", pki.root_pem)
        chain = signed_by(pki, certs, "P3-SETNET")
        certs.accept_signed(chain, datetime.now(UTC), anchors=["CSMSRootCertificate"])
        accepted = await call(
            point, c201.SetNetworkProfile(configuration_slot=1, connection_data=data)
        )
        assert accepted.status == "Accepted"


# -- the store alone -------------------------------------------------------------------------


def test_store_keeps_the_certificate_that_last_connected_until_a_choice() -> None:
    """A02.FR.10/28 in the store: a new certificate is unconfirmed and the one before it is
    kept; a second new one before the first connected replaces that unconfirmed one, not the
    kept one; connecting with the new one drops the kept one, with the old one restores it
    (the new one discarded); all of it survives to_dict/from_dict, and a blob from before
    these fields is a confirmed certificate."""
    ca_key, ca = make_ca("CSMS Root")
    ca_pki = Pki(Path("."), ca_key, ca)
    now = datetime.now(UTC)
    certs = CertificateStore()
    certs.install("CSMSRootCertificate", pem(ca))
    anchors = ["CSMSRootCertificate"]
    certs.accept_signed(signed_by(ca_pki, certs, "S"), now, anchors=anchors)
    assert certs.unconfirmed and certs.own[CS_USE].previous_chain == []
    assert certs.confirm_client_certificate(previous=False) == "confirmed"
    assert certs.confirm_client_certificate(previous=False) is None, "nothing left to choose"
    first = certs.own_chain
    certs.accept_signed(signed_by(ca_pki, certs, "S"), now, anchors=anchors)
    second = certs.own_chain
    certs.accept_signed(signed_by(ca_pki, certs, "S"), now, anchors=anchors)
    third = certs.own_chain
    assert len({first[0], second[0], third[0]}) == 3
    restored = CertificateStore.from_dict(certs.to_dict())
    assert restored.own[CS_USE].previous_chain == first and restored.unconfirmed
    assert restored.client_certificate(previous=True) == (first, restored.own[CS_USE].previous_key)
    assert restored.client_certificate() == (third, restored.own_key)
    assert restored.confirm_client_certificate(previous=True) == "discarded"
    assert restored.own_chain == first and not restored.unconfirmed
    assert certs.confirm_client_certificate(previous=False) == "confirmed"
    assert certs.own_chain == third and certs.own[CS_USE].previous_chain == []
    legacy = certs.to_dict()
    for field in ("unconfirmed", "previous_chain", "previous_key"):
        del legacy["own"][CS_USE][field]
    assert not CertificateStore.from_dict(legacy).unconfirmed


def test_store_fallback_root_is_not_a_signer_and_trust_without_it() -> None:
    """M05.FR.09/11: with a fallback kept, a new CSMS root must be signed by the installed
    root it replaces, not by the fallback; signed by the installed one it makes that one the
    fallback and the old fallback goes. ``trusted_pem(fallback=False)`` is the trust without
    the fallback (what must verify the server before it goes, M05.FR.12)."""
    certs = CertificateStore()
    key1, root1 = make_ca("CSMS Root 1")
    key2, root2 = make_ca("CSMS Root 2", (key1, root1))
    kind = "CSMSRootCertificate"
    certs.install(kind, pem(root1), replace_signed=True)
    certs.install(kind, pem(root2), replace_signed=True)
    assert certs.has_fallback() and certs.trusted_pem(fallback=False) == pem(root2)
    assert certs.trusted_pem() == pem(root1) + pem(root2)
    with pytest.raises(CertificateError, match="not signed by the installed"):
        certs.install(kind, pem(make_ca("CSMS Root 3", (key1, root1))[1]), replace_signed=True)
    _, root3 = make_ca("CSMS Root 3", (key2, root2))
    certs.install(kind, pem(root3), replace_signed=True)
    assert certs.roots[kind] == [pem(root2), pem(root3)] and certs.fallback == {kind: pem(root2)}
    assert certs.drop_fallbacks() == [kind] and not certs.has_fallback()
    assert certs.trusted_pem(fallback=False) == certs.trusted_pem() == pem(root3)
