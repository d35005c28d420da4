"""The station's connection behaviour: reconnect back-off timed with a fake sleep (2.0.1
Part 4 §5.3, OCTT TC_B_57_CS, checklist F6), BootNotification Pending (B02), Basic auth
(security profile 1), and malformed frames from the CSMS (checklist C12).
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import socket
from typing import Any

import pytest
import websockets
from ocpp.v16 import call as c16

from ocppkit.station.backoff import Backoff, BackoffSettings
from ocppkit.station.station import Station, StationConfig
from ocppkit.station.store import StationStore
from tests.station.peers import online, running, their_csms


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("version", "settings"),
    [
        ("1.6", BackoffSettings(wait_minimum=3, random_range=2, repeat_times=2)),
        # 2.0.1 reads OCPPCommCtrlr.RetryBackOff* (defaults 5 s, 10 s, 5 times)
        ("2.0.1", None),
    ],
)
async def test_reconnect_backoff_doubles_with_random_part_5_3(
    version: str, settings: BackoffSettings | None, store: StationStore
) -> None:
    """2.0.1 Part 4 §5.3: the k-th reconnect waits minimum x 2^min(k, repeat) + U(0, range),
    drawn from the station's seeded generator (so a run replays)."""
    delays: list[float] = []
    station: Station

    async def fake_sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 8:
            await station.stop()

    cfg = StationConfig(
        station_id="BO",
        csms_url=f"ws://127.0.0.1:{closed_port()}",
        ocpp_version=version,
        seed=7,
        backoff=settings,
    )
    station = Station(cfg, store=store, sleep=fake_sleep)
    await asyncio.wait_for(station.run(), 20)
    expected = settings or BackoffSettings(wait_minimum=5, random_range=10, repeat_times=5)
    replay = Backoff(expected, random.Random(7))
    assert delays == [replay.next_delay() for _ in range(8)]
    for k, delay in enumerate(delays):
        fixed = expected.wait_minimum * 2 ** min(k, expected.repeat_times)
        assert fixed <= delay <= fixed + expected.random_range
    assert station.snapshot()["connects"] == 0


async def test_boot_pending_retries_after_the_interval_and_sends_nothing_else_b02(
    store: StationStore,
) -> None:
    """B02 / 1.6 §4.2: Pending -> no other CALL; BootNotification again after the interval;
    Accepted -> statuses and heartbeats."""
    async with their_csms() as (port, rec):
        rec.boot_status, rec.boot_interval = "Pending", 1
        cfg = StationConfig(station_id="PEND", csms_url=f"ws://127.0.0.1:{port}")
        async with running(cfg, store) as station:
            await rec.wait_count("BootNotification", 2, timeout=5)
            assert {a for _, a, _ in rec.calls} == {"BootNotification"}
            assert station.snapshot()["registration"] == "Pending"
            await station.plug(1)  # a user event while Pending: no StatusNotification
            point = rec.points["PEND"]
            reply = await point.call(
                c16.TriggerMessage(requested_message="StatusNotification", connector_id=1),
                suppress=False,
            )
            assert reply.status == "Accepted"
            await rec.wait_count("StatusNotification", 1)  # triggered: allowed while Pending
            assert [k["status"] for k in rec.of("StatusNotification")] == ["Preparing"]
            assert station.snapshot()["registration"] == "Pending"
            rec.boot_status = "Accepted"
            await online(station, 5)
            await rec.wait_count("StatusNotification", 3)
            gaps = [b - a for a, b in zip(rec.times, rec.times[1:], strict=False)][:1]
            assert all(g >= 0.9 for g in gaps), gaps


async def test_basic_auth_header_for_security_profile_1(store: StationStore) -> None:
    """1.6 Security whitepaper / 2.0.1 A00.FR.201: HTTP Basic with the station id as user."""
    seen: list[str | None] = []

    async def handler(ws: Any) -> None:
        seen.append(ws.request.headers.get("Authorization"))
        await ws.close()

    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        port = server.sockets[0].getsockname()[1]
        cfg = StationConfig(
            station_id="SP1",
            csms_url=f"ws://127.0.0.1:{port}/ocpp",
            security_profile=1,
            password="0123456789abcdef",
            backoff=BackoffSettings(wait_minimum=60, random_range=0, repeat_times=0),
        )
        async with running(cfg, store):
            async with asyncio.timeout(5):
                while not seen:  # noqa: ASYNC110 (the handler runs in the server's task)
                    await asyncio.sleep(0.05)
    expected = base64.b64encode(b"SP1:0123456789abcdef").decode()
    assert seen[0] == f"Basic {expected}"


def test_profiles_2_and_3_need_wss_and_a_certificate() -> None:
    """A00.FR.3xx: profile 2 and 3 run over TLS; profile 3 authenticates with a certificate,
    whose key must come with it (one in the certificate store will do: checked at start,
    test_station_cert_fallback)."""
    with pytest.raises(ValueError, match="wss"):
        StationConfig(station_id="X", csms_url="ws://h/ocpp", security_profile=2)
    with pytest.raises(ValueError, match="client_key"):
        StationConfig(
            station_id="X", csms_url="wss://h/ocpp", security_profile=3, client_cert="c.pem"
        )
    ok = StationConfig(station_id="A B", csms_url="wss://h:1/ocpp/", security_profile=2)
    assert ok.url == "wss://h:1/ocpp/A%20B"


MALFORMED_16 = [
    # (frame, expected reply prefix or None for "ignored")
    (
        '[2,"m1","RemoteStopTransaction",{"transactionId":"abc"}]',
        [4, "m1", "TypeConstraintViolation"],
    ),
    ('[2,"m2","NoSuchAction",{}]', [4, "m2", "NotImplemented"]),
    ('[2,"m3","Reset",{"type":"Medium"}]', [4, "m3", "PropertyConstraintViolation"]),
    ('[2,"m4","GetConfiguration",{"key":["a"],"extra":1}]', [4, "m4", "FormationViolation"]),
    ('[2,"m5","Reset"]', [4, "m5"]),
    ('{"not": "a frame"}', [4]),
    ("not json at all", [4]),
    ('[3,"no-such-call",{}]', None),
    ('[9,"m6","Reset",{}]', None),
]


async def test_malformed_frames_from_the_csms_are_answered_and_the_transaction_kept_c12(
    store: StationStore,
) -> None:
    """Checklist C12: every malformed frame is answered like a CSMS would (CALLERROR with the
    1.6 spelling, or ignored), the station stays connected and keeps its transaction."""
    replies: asyncio.Queue[list[Any]] = asyncio.Queue()
    sockets: list[Any] = []

    async def handler(ws: Any) -> None:
        sockets.append(ws)
        tx = 0
        async for raw in ws:
            frame = json.loads(raw)
            if frame[0] != 2:
                await replies.put(frame)
                continue
            action, payload = frame[2], frame[3]
            result: dict[str, Any] = {}
            if action == "BootNotification":
                result = {
                    "currentTime": "2030-01-01T00:00:00Z",
                    "interval": 300,
                    "status": "Accepted",
                }
            elif action == "Heartbeat":
                result = {"currentTime": "2030-01-01T00:00:00Z"}
            elif action in ("Authorize", "StartTransaction"):
                result = {"idTagInfo": {"status": "Accepted"}}
                if action == "StartTransaction":
                    tx += 1
                    result["transactionId"] = tx
            await ws.send(json.dumps([3, frame[1], result]))
            del payload

    async with websockets.serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        port = server.sockets[0].getsockname()[1]
        cfg = StationConfig(station_id="C12", csms_url=f"ws://127.0.0.1:{port}")
        async with running(cfg, store) as station:
            await online(station)
            await station.start_transaction(1, "TAG-C12")
            await station.wait_for_state(lambda s: s["queued"] == 0, 5)
            ws = sockets[0]
            for frame, expected in MALFORMED_16:
                await ws.send(frame)
                if expected is None:
                    continue
                reply = await asyncio.wait_for(replies.get(), 5)
                assert reply[: len(expected)] == expected, (frame, reply)
                if len(expected) == 1:
                    assert reply[1] == "-1"  # the id could not be read (2.0.1-P4 §4.2.3)
            await asyncio.sleep(0.2)
            assert replies.empty(), "ignored frames got no answer"
            snap = station.snapshot()
            assert snap["online"] and snap["connectors"][0]["transaction"] is not None
            await ws.send('[2,"ok1","RemoteStopTransaction",{"transactionId":1}]')
            reply = await asyncio.wait_for(replies.get(), 5)
            assert reply == [3, "ok1", {"status": "Accepted"}]
            await station.wait_for_state(lambda s: s["connectors"][0]["transaction"] is None, 5)
