"""``GET /metrics`` and :class:`~ocppkit.csms.metrics.CsmsMetrics`.

The end-to-end tests run real traffic (a mobilityhouse ``ocpp`` 1.6 ChargePoint and a raw
WebSocket client, over real sockets, against a real CSMS with a SQLite file) and read the
series back through the Prometheus text parser. The unit tests feed frames straight to
:meth:`CsmsMetrics.frame` to pin the head parser (OCPP-J §4.1.3 frame shapes) and the label
bounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import prometheus_client
import pytest
import websockets
from ocpp.v16 import call as c16
from prometheus_client.parser import text_string_to_metric_families

from ocppkit.csms import CsmsSettings
from ocppkit.csms.metrics import CsmsMetrics
from ocppkit.node import RunningCsms, start_csms
from ocppkit.protocol import OcppVersion
from ocppkit.protocol.frames import peek_head
from tests.helpers.mobilityhouse import Station16 as MhStation16

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


Node = tuple[RunningCsms, httpx.AsyncClient]


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Node]]]:
    started: list[Node] = []

    async def start(name: str = "csms") -> Node:
        database = f"sqlite+aiosqlite:///{tmp_path / f'{name}.sqlite3'}"
        running = await start_csms(CsmsSettings(port=0, api_port=0, database=database))
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.api_port}", timeout=10)
        started.append((running, client))
        return running, client

    yield start
    for running, client in started:
        await client.aclose()
        await running.stop()


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_metrics_after_real_traffic(nodes: Any) -> None:
    """Boot, Heartbeat, MeterValues, a CSMS command answered with a CALLERROR, and bad
    CALLs the CSMS answers with CALLERRORs (OCPP-J §4.2.3) all show up, by action,
    direction and code; handler latency per handled action; database batch sizes."""
    running, client = await nodes()
    ws = await websockets.connect(
        f"ws://127.0.0.1:{running.port}/ocpp/CP1", subprotocols=["ocpp1.6"]
    )
    cp = MhStation16("CP1", ws)
    task = asyncio.create_task(cp.start())
    raw = await websockets.connect(
        f"ws://127.0.0.1:{running.port}/ocpp/RAW", subprotocols=["ocpp1.6"]
    )
    try:
        await cp.call(c16.BootNotification(charge_point_model="M", charge_point_vendor="V"))
        await cp.call(c16.Heartbeat())
        sampled = [
            {"value": "1500", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
            {"value": "32", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
        ]
        await cp.call(
            c16.MeterValues(
                connector_id=1,
                meter_value=[{"timestamp": "2026-11-27T10:00:00Z", "sampled_value": sampled}],
            )
        )
        # mobilityhouse has no ClearCache handler: it answers NotImplemented.
        reply = await client.post("/api/stations/CP1/v16/clear-cache")
        assert reply.status_code == 502 and reply.json()["code"] == "NotImplemented"
        # A payload that fails its schema, an action 1.6 does not have, and a non-frame.
        await raw.send('[2,"b1","StatusNotification",{"connectorId":1,"errorCode":"NoError",'
                       '"status":"Sideways"}]')  # fmt: skip
        assert '"PropertyConstraintViolation"' in await raw.recv()
        await raw.send('[2,"b2","Frobnicate",{}]')
        assert '"NotImplemented"' in await raw.recv()
        await raw.send("hello")
        assert '"FormationViolation"' in await raw.recv()

        samples = await scrape(client)
        assert value(samples, "ocppkit_connected_stations") == 2
        messages = "ocppkit_messages_total"
        expected = {
            ("in", "CALL", "BootNotification"): 1,
            ("out", "CALLRESULT", "BootNotification"): 1,
            ("in", "CALL", "Heartbeat"): 1,
            ("out", "CALLRESULT", "Heartbeat"): 1,
            ("in", "CALL", "MeterValues"): 1,
            ("out", "CALLRESULT", "MeterValues"): 1,
            ("out", "CALL", "ClearCache"): 1,
            ("in", "CALLERROR", "ClearCache"): 1,
            ("in", "CALL", "StatusNotification"): 1,
            ("out", "CALLERROR", "StatusNotification"): 1,
            ("in", "CALL", "unknown"): 1,  # Frobnicate: not a 1.6 action, not a label
            ("out", "CALLERROR", "unknown"): 2,  # its answer, and the one to "hello"
            ("in", "INVALID", ""): 1,
        }
        for (direction, kind, action), count in expected.items():
            got = value(samples, messages, direction=direction, type=kind, action=action)
            assert got == count, (direction, kind, action, got)
        assert total(samples, messages) == sum(expected.values())
        errors = "ocppkit_call_errors_total"
        assert value(samples, errors, direction="in", code="NotImplemented") == 1
        assert value(samples, errors, direction="out", code="NotImplemented") == 1
        assert value(samples, errors, direction="out", code="PropertyConstraintViolation") == 1
        assert value(samples, errors, direction="out", code="FormationViolation") == 1
        assert total(samples, errors) == 4
        for action in ("BootNotification", "Heartbeat", "MeterValues"):
            assert value(samples, "ocppkit_handler_seconds_count", action=action) == 1
            assert value(samples, "ocppkit_handler_seconds_sum", action=action)
        # Rejected before any handler ran: no latency sample.
        assert value(samples, "ocppkit_handler_seconds_count", action="StatusNotification") is None
        batch = {"batch": "meter_values"}
        assert value(samples, "ocppkit_db_batch_rows_count", **batch) == 1
        assert value(samples, "ocppkit_db_batch_rows_sum", **batch) == 3
        assert value(samples, "ocppkit_db_batch_rows_bucket", le="2.0", **batch) == 0
        assert value(samples, "ocppkit_db_batch_rows_bucket", le="5.0", **batch) == 1
        assert value(samples, "ocppkit_db_batch_seconds_count", **batch) == 1

        # Every frame counted reaches the message log, in batches (flushed every 0.5 s).
        frames = total(samples, messages)
        await running.service.flush_message_log()
        log = {"batch": "message_log"}
        for _ in range(100):
            samples = await scrape(client)
            if value(samples, "ocppkit_db_batch_rows_sum", **log) == frames:
                break
            await asyncio.sleep(0.05)
        assert value(samples, "ocppkit_db_batch_rows_sum", **log) == frames
        batches = value(samples, "ocppkit_db_batch_rows_count", **log)
        assert batches is not None and batches >= 1
        assert value(samples, "ocppkit_db_batch_seconds_count", **log) == batches
        assert value(samples, "ocppkit_db_batch_failures_total", **log) is None

        await raw.close()
        for _ in range(100):
            if value(await scrape(client), "ocppkit_connected_stations") == 1:
                break
            await asyncio.sleep(0.02)
        assert value(await scrape(client), "ocppkit_connected_stations") == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ws.close()
        await raw.close()


async def test_two_nodes_in_one_process_do_not_share_metrics(nodes: Any) -> None:
    """Each CSMS owns its registry: traffic on one is not seen on the other, and nothing
    lands in prometheus_client's global registry."""
    first, first_client = await nodes("first")
    _, second_client = await nodes("second")
    async with websockets.connect(
        f"ws://127.0.0.1:{first.port}/ocpp/CP1", subprotocols=["ocpp1.6"]
    ) as ws:
        await ws.send('[2,"m1","Heartbeat",{}]')  # answered SecurityError: not booted
        await ws.recv()
        assert value(await scrape(first_client), "ocppkit_connected_stations") == 1
        other = await scrape(second_client)
        assert value(other, "ocppkit_connected_stations") == 0
        assert total(other, "ocppkit_messages_total") == 0
    global_names = {m.name for m in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("ocppkit") for name in global_names)


# -- the frame head parser ---------------------------------------------------------------------


class FrameSource:
    """What CsmsMetrics.frame reads of a Connection: its session's version."""

    def __init__(self, version: OcppVersion) -> None:
        self.session = SimpleNamespace(version=version)


def connection(version: OcppVersion = OcppVersion.V16) -> Any:
    return FrameSource(version)


def counted(metrics: CsmsMetrics) -> Samples:
    return parse(metrics.exposition().decode())


def test_replies_are_counted_under_the_action_they_answer() -> None:
    """OCPP-J §4.1.1: one CALL outstanding each way, so a reply's id names its CALL;
    str and bytes frames, with and without whitespace, read alike."""
    metrics = CsmsMetrics()
    conn = connection()
    metrics.frame(conn, "out", peek_head(b' [ 2 , "c1" , "Reset" , {"type": "Soft"} ] '))
    metrics.frame(conn, "in", peek_head('[2,"s1","Heartbeat",{}]'))
    metrics.frame(conn, "out", peek_head(b'[3,"s1",{"currentTime":"2026-11-27T10:00:00Z"}]'))
    metrics.frame(conn, "in", peek_head('[3, "c1", {"status": "Accepted"}]'))
    metrics.frame(conn, "in", peek_head('[3,"c1",{"status":"Accepted"}]'))  # a duplicate: unmatched
    samples = counted(metrics)
    name = "ocppkit_messages_total"
    assert value(samples, name, direction="out", type="CALL", action="Reset") == 1
    assert value(samples, name, direction="in", type="CALLRESULT", action="Reset") == 1
    assert value(samples, name, direction="in", type="CALL", action="Heartbeat") == 1
    assert value(samples, name, direction="out", type="CALLRESULT", action="Heartbeat") == 1
    assert value(samples, name, direction="in", type="CALLRESULT", action="unknown") == 1


def test_callerror_codes_of_both_versions_and_unknown_codes() -> None:
    """1.6 errata spellings and 2.x codes are labels as received; a code no version
    defines is ``other``; a 2.1 CALLRESULTERROR counts as an error too."""
    metrics = CsmsMetrics()
    v16, v21 = connection(), connection(OcppVersion.V21)
    metrics.frame(v16, "out", peek_head('[2,"c1","ClearCache",{}]'))
    metrics.frame(v16, "in", peek_head('[4,"c1","OccurenceConstraintViolation","",{}]'))
    metrics.frame(v21, "in", peek_head('[4,"x","Bogus-Code","",{}]'))
    metrics.frame(v21, "out", peek_head('[5,"y","InternalError","",{}]'))
    samples = counted(metrics)
    errors = "ocppkit_call_errors_total"
    assert value(samples, errors, direction="in", code="OccurenceConstraintViolation") == 1
    assert value(samples, errors, direction="in", code="other") == 1
    assert value(samples, errors, direction="out", code="InternalError") == 1
    name = "ocppkit_messages_total"
    assert value(samples, name, direction="in", type="CALLERROR", action="ClearCache") == 1
    assert value(samples, name, direction="out", type="CALLRESULTERROR", action="unknown") == 1


def test_send_and_invalid_frames() -> None:
    """2.1 SEND (message type 6) is counted by action; anything without a readable head
    (not JSON, another message type, not an array) is INVALID."""
    metrics = CsmsMetrics()
    conn = connection(OcppVersion.V21)
    metrics.frame(conn, "in", peek_head('[6,"s1","NotifyPeriodicEventStream",{}]'))
    for frame in ("hello", '[7,"x",{}]', '{"a":1}', "", b"\xff\xfe"):
        metrics.frame(conn, "in", peek_head(frame))
    samples = counted(metrics)
    name = "ocppkit_messages_total"
    assert (
        value(samples, name, direction="in", type="SEND", action="NotifyPeriodicEventStream") == 1
    )
    assert value(samples, name, direction="in", type="INVALID", action="") == 5


def test_station_chosen_labels_are_bounded() -> None:
    """Actions and codes come from the wire: a station sending thousands of made-up ones
    must not create thousands of series (one ``unknown`` / ``other`` each)."""
    metrics = CsmsMetrics()
    conn = connection()
    for n in range(2000):
        metrics.frame(conn, "in", peek_head(f'[2,"m{n}","Action{n}",{{}}]'))
        metrics.frame(conn, "in", peek_head(f'[4,"e{n}","Code{n}","",{{}}]'))
    # GetVariables is a 2.0.1 action, not a 1.6 one.
    metrics.frame(conn, "in", peek_head('[2,"g","GetVariables",{}]'))
    samples = counted(metrics)
    series = [key for key in samples if key[0] == "ocppkit_messages_total"]
    assert len(series) == 2  # in CALL unknown, in CALLERROR unknown
    assert value(samples, "ocppkit_messages_total", direction="in", type="CALL",
                 action="unknown") == 2001  # fmt: skip
    assert value(samples, "ocppkit_call_errors_total", direction="in", code="other") == 2000


def test_connected_gauge_reads_the_callback_at_scrape_time() -> None:
    stations = ["CP1", "CP2"]
    metrics = CsmsMetrics(connected=lambda: len(stations))
    assert value(counted(metrics), "ocppkit_connected_stations") == 2
    stations.pop()
    assert value(counted(metrics), "ocppkit_connected_stations") == 1


def test_handler_latency_buckets_are_inclusive_and_cumulative() -> None:
    """Prometheus histograms: ``le`` buckets count values <= their bound, cumulatively, with
    ``+Inf`` equal to ``_count`` (exposition format); the same series prometheus_client's own
    Histogram would give."""
    metrics = CsmsMetrics(latency_buckets=(0.001, 0.01, 0.1))
    for seconds in (0.0005, 0.001, 0.002, 0.05, 3.0):
        metrics.handler("Heartbeat", seconds)
    samples = parse(metrics.exposition().decode())
    bucket = "ocppkit_handler_seconds_bucket"
    assert [
        value(samples, bucket, action="Heartbeat", le=le) for le in ("0.001", "0.01", "0.1", "+Inf")
    ] == [2, 3, 4, 5]
    assert value(samples, "ocppkit_handler_seconds_count", action="Heartbeat") == 5
    assert value(samples, "ocppkit_handler_seconds_sum", action="Heartbeat") == pytest.approx(
        3.0535
    )
