"""The CSMS HTTP API over real loopback HTTP, with a real CSMS (SQLite file or PostgreSQL
schema: every test runs on both) and independent stations (mobilityhouse ``ocpp`` 1.6
ChargePoint) over real WebSockets."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call as c16

from ocppkit.csms import CsmsSettings
from ocppkit.node import start_csms
from tests.api.conftest import iso, wait_offline

# The fixtures (api, stations) and the Station class live in conftest.py.


# -- health and docs ---------------------------------------------------------------------------


async def test_health_counts_stations(api: Any, stations: Any) -> None:
    """GET /health: the database answers SELECT 1; connected vs known stations."""
    running, client = await api()
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "stations": {"connected": 0, "total": 0},
    }
    await stations(running.port, "CP1")
    await stations(running.port, "CP2")
    await client.post("/api/stations", json={"id": "CP3"})  # registered, never connected
    body = (await client.get("/health")).json()
    assert body["stations"] == {"connected": 2, "total": 3}


async def test_health_reports_database_error(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database that fails SELECT 1 makes /health answer 503 'degraded'."""
    # No pruning and no stations: the message-log task does not touch the database meanwhile.
    running, client = await api(message_log_retention_days=0)

    def broken() -> Any:
        raise OSError("database unreachable")

    with monkeypatch.context() as patch:  # restored before the CSMS stops
        patch.setattr(running.service.db, "session", broken)
        response = await client.get("/health")
    assert response.status_code == 503
    assert response.json() == {
        "status": "degraded",
        "database": "error",
        "stations": {"connected": 0, "total": None},
    }


async def test_openapi_docs_are_served(api: Any) -> None:
    _, client = await api()
    assert (await client.get("/docs")).status_code == 200
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/health", "/api/stations", "/api/stations/{station_id}/call"} <= set(paths)


# -- stations ----------------------------------------------------------------------------------


async def test_station_list_and_detail_after_boot(api: Any, stations: Any) -> None:
    """A booted station is listed with its registration, identity and connector statuses;
    ?online= filters on live connections; an unknown id is 404."""
    running, client = await api()
    cp = await stations(running.port, "CP1")
    await cp.call(c16.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
    await cp.call(
        c16.StatusNotification(connector_id=2, error_code="NoError", status="Faulted", info="x")
    )
    listed = (await client.get("/api/stations")).json()
    assert [s["id"] for s in listed] == ["CP1"]
    detail = (await client.get("/api/stations/CP1")).json()
    assert detail == listed[0]
    assert detail["registration_status"] == "Accepted"
    assert (detail["vendor"], detail["model"], detail["firmware_version"]) == (
        "Vendor-Y",
        "Model-X",
        "1.2.3",
    )
    assert detail["ocpp_version"] == "1.6" and detail["online"] is True
    assert detail["last_seen"] is not None
    assert [(c["connector_id"], c["status"]) for c in detail["connectors"]] == [
        (1, "Available"),
        (2, "Faulted"),
    ]
    assert (await client.get("/api/stations", params={"online": "true"})).json() == listed
    assert (await client.get("/api/stations", params={"online": "false"})).json() == []
    missing = await client.get("/api/stations/NOPE")
    assert missing.status_code == 404 and "NOPE" in missing.json()["detail"]

    await cp._connection.close()
    await wait_offline(client, "CP1")
    offline = (await client.get("/api/stations", params={"online": "false"})).json()
    assert [s["id"] for s in offline] == ["CP1"]


# -- transactions ------------------------------------------------------------------------------


async def test_transactions_after_start_and_stop(api: Any, stations: Any) -> None:
    """Start/Stop on 1.6 shows up in the listing (filters, limit) and in the detail with
    its meter values."""
    running, client = await api()
    cp = await stations(running.port, "CP1")
    first = await cp.call(
        c16.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=1000, timestamp=iso())
    )
    await cp.call(
        c16.MeterValues(
            connector_id=1,
            transaction_id=first.transaction_id,
            meter_value=[{"timestamp": iso(), "sampled_value": [{"value": "1500", "unit": "Wh"}]}],
        )
    )
    await cp.call(
        c16.StopTransaction(
            meter_stop=2500, timestamp=iso(1), transaction_id=first.transaction_id, reason="Local"
        )
    )
    second = await cp.call(
        c16.StartTransaction(connector_id=2, id_tag="TAG2", meter_start=0, timestamp=iso(2))
    )

    listed = (await client.get("/api/transactions")).json()
    assert [t["id"] for t in listed] == [second.transaction_id, first.transaction_id]
    ended = (await client.get("/api/transactions", params={"state": "Ended"})).json()
    assert [t["id"] for t in ended] == [first.transaction_id]
    assert ended[0]["energy_wh"] == 1500 and ended[0]["stop_reason"] == "Local"
    active = (await client.get("/api/transactions", params={"state": "Active"})).json()
    assert [t["id"] for t in active] == [second.transaction_id]
    assert (await client.get("/api/transactions", params={"station_id": "OTHER"})).json() == []
    limited = (await client.get("/api/transactions", params={"limit": 1})).json()
    assert [t["id"] for t in limited] == [second.transaction_id]
    for bad in ({"limit": 0}, {"limit": 1001}, {"state": "Paused"}):
        assert (await client.get("/api/transactions", params=bad)).status_code == 422

    detail = (await client.get(f"/api/transactions/{first.transaction_id}")).json()
    assert (detail["station_id"], detail["meter_start"], detail["meter_stop"]) == (
        "CP1",
        1000,
        2500,
    )
    assert [(m["value"], m["unit"]) for m in detail["meter_values"]] == [(1500.0, "Wh")]
    assert (await client.get("/api/transactions/999999")).status_code == 404


# -- remote calls ------------------------------------------------------------------------------


async def test_call_returns_station_reply_with_wire_names(api: Any, stations: Any) -> None:
    """200: the station's CALLRESULT, camelCase as on the wire."""
    running, client = await api()
    await stations(running.port, "CP1")
    response = await client.post(
        "/api/stations/CP1/call",
        json={"action": "GetConfiguration", "payload": {"key": ["HeartbeatInterval", "Nope"]}},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "action": "GetConfiguration",
        "response": {
            "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
            "unknownKey": ["HeartbeatInterval", "Nope"],
        },
    }
    reset = await client.post(
        "/api/stations/CP1/call", json={"action": "Reset", "payload": {"type": "Soft"}}
    )
    assert reset.json() == {"action": "Reset", "response": {"status": "Accepted"}}


async def test_concurrent_calls_queue_behind_each_other(api: Any, stations: Any) -> None:
    """OCPP-J: one CALL in flight; concurrent requests are all answered, in turn."""
    running, client = await api()
    cp = await stations(running.port, "CP1")
    cp.reset_delay = 0.05
    replies = await asyncio.gather(
        *(
            client.post(
                "/api/stations/CP1/call", json={"action": "Reset", "payload": {"type": "Hard"}}
            )
            for _ in range(3)
        )
    )
    assert [r.status_code for r in replies] == [200, 200, 200]


@pytest.mark.parametrize(
    ("payload", "code", "path"),
    [
        ({"type": "Sideways"}, "PropertyConstraintViolation", "$.type"),
        ({}, "OccurenceConstraintViolation", "$"),
        ({"type": 3}, "TypeConstraintViolation", "$.type"),
    ],
)
async def test_call_with_invalid_payload_is_422(
    api: Any, stations: Any, payload: dict[str, Any], code: str, path: str
) -> None:
    """422 with the 1.6 CallError code (errata spellings) and the path; nothing is sent."""
    running, client = await api()
    await stations(running.port, "CP1")
    response = await client.post(
        "/api/stations/CP1/call", json={"action": "Reset", "payload": payload}
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["code"], body["path"]) == (code, path)
    assert body["description"]


@pytest.mark.parametrize("action", ["Frobnicate", "GetVariables", "getconfiguration"])
async def test_call_with_unknown_action_is_422(api: Any, stations: Any, action: str) -> None:
    """An action the station's version does not have (GetVariables is 2.x only; names are
    case-sensitive) is 422 NotImplemented, and nothing is sent."""
    running, client = await api()
    await stations(running.port, "CP1")
    response = await client.post("/api/stations/CP1/call", json={"action": action})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "NotImplemented"
    assert response.json()["path"] is None


async def test_call_to_offline_station_is_409(api: Any, stations: Any) -> None:
    """409 for an unknown id and for a station that has disconnected."""
    running, client = await api()
    response = await client.post("/api/stations/NOPE/call", json={"action": "ClearCache"})
    assert response.status_code == 409
    cp = await stations(running.port, "CP1")
    await cp._connection.close()
    await wait_offline(client, "CP1")
    response = await client.post("/api/stations/CP1/call", json={"action": "ClearCache"})
    assert response.status_code == 409


async def test_station_hanging_up_during_call_is_409(api: Any, stations: Any) -> None:
    running, client = await api()
    await stations(running.port, "CP1")
    response = await client.post(
        "/api/stations/CP1/call",
        json={"action": "UnlockConnector", "payload": {"connectorId": 1}},
    )
    assert response.status_code == 409
    assert "disconnected" in response.json()["detail"]


async def test_station_callerror_is_502(api: Any, stations: Any) -> None:
    """502 with the station's CALLERROR code, description and details."""
    running, client = await api()
    await stations(running.port, "CP1")
    response = await client.post("/api/stations/CP1/call", json={"action": "ClearCache"})
    assert response.status_code == 502, response.text
    body = response.json()
    assert body["code"] == "NotImplemented"
    assert body["details"] == {"cause": "No handler for ClearCache registered."}
    assert set(body) == {"code", "description", "details"}


async def test_station_too_slow_is_504(api: Any, stations: Any) -> None:
    """504 when the reply does not come within the CSMS's call_timeout."""
    running, client = await api(call_timeout=0.3)
    cp = await stations(running.port, "CP1")
    cp.reset_delay = 2
    response = await client.post(
        "/api/stations/CP1/call", json={"action": "Reset", "payload": {"type": "Soft"}}
    )
    assert response.status_code == 504, response.text
    assert "0.3 s" in response.json()["detail"]


async def test_call_body_is_validated(api: Any) -> None:
    _, client = await api()
    response = await client.post("/api/stations/CP1/call", json={"payload": {}})
    assert response.status_code == 422


async def test_api_port_in_use_fails_start_cleanly(api: Any, tmp_path: Path) -> None:
    """A bound API port raises OSError from start_csms and leaves nothing running."""
    running, _ = await api()
    database = f"sqlite+aiosqlite:///{tmp_path / 'other.sqlite3'}"
    with pytest.raises(OSError):
        await start_csms(CsmsSettings(port=0, api_port=running.api_port, database=database))


@pytest.mark.parametrize(
    "path",
    [
        "/api/stations?offset=9223372036854775808",
        "/api/id-tags?offset=32589158477190044729",
        "/api/transactions?offset=9223372036854775808",
        "/api/transactions/126609136141345161216",
        "/api/messages?cursor=428226056478676877312",
    ],
)
async def test_integers_past_the_databases_range_are_422_not_500(api: Any, path: str) -> None:
    """Found by fuzzing the OpenAPI schema (schemathesis): an offset, cursor or id above
    2**63 - 1 overflowed the driver (500). Now bounded like every other parameter."""
    _, client = await api()
    response = await client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "less_than_equal"


async def test_nul_characters_from_a_station_or_a_query_are_stored_and_answered(
    api: Any, stations: Any
) -> None:
    """U+0000 is valid JSON in any OCPP string; PostgreSQL's text cannot hold it. The
    station's CALLs are answered (before, on PostgreSQL: InternalError on every retry) and
    an API filter with one is a plain query (before: 500)."""
    running, client = await api()
    cp = await stations(running.port, "CP1")
    status = c16.StatusNotification(
        connector_id=1, error_code="NoError", status="Available", info="a\x00b"
    )
    await cp.call(status)
    authorized = await cp.call(c16.Authorize(id_tag="T\x00"))
    assert authorized.id_tag_info["status"] == "Accepted"  # unknown tags: accept policy
    started = await cp.call(
        c16.StartTransaction(connector_id=1, id_tag="T\x00", meter_start=0, timestamp=iso())
    )
    assert started.transaction_id > 0
    listed = await client.get("/api/stations", params={"id_prefix": "C\x00"})
    assert listed.status_code == 200 and listed.json() == []
    (transaction,) = (await client.get("/api/transactions")).json()
    assert transaction["id_tag"] in ("T\x00", "T\ufffd")  # SQLite keeps it; PostgreSQL U+FFFD
