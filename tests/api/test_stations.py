"""``/api/stations``: registry CRUD over real loopback HTTP on both storage backends, with
independent 1.6 stations (mobilityhouse) booting against the same CSMS."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from ocpp.v16 import call as c16

from ocppkit.csms.credentials import verify_password
from ocppkit.storage import repositories
from ocppkit.storage.models import Station
from tests.api.conftest import iso, wait_offline

PASSWORD = "correct-horse-battery-1"  # 23 printable ASCII characters
OTHER_PASSWORD = "another-password-0123456789"


async def stored_hash(running: Any, station_id: str) -> str | None:
    async with running.service.db.session() as session:
        station = await session.get(Station, station_id)
        assert station is not None
        return station.password_hash


# -- register ----------------------------------------------------------------------------------


async def test_register_station_hashes_password_and_never_returns_it(api: Any) -> None:
    """POST /api/stations: 201 with Location; the password is stored salted-hashed
    (A01.FR.06-09) and appears in no answer; a second registration of the id is 409."""
    running, client = await api()
    response = await client.post(
        "/api/stations",
        json={"id": "CP-001", "password": PASSWORD, "security_profile": 1},
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/api/stations/CP-001"
    body = response.json()
    assert body["id"] == "CP-001"
    assert (body["registration_status"], body["security_profile"]) == ("Accepted", 1)
    assert body["has_password"] is True and body["online"] is False
    assert body["last_boot"] is None and body["connectors"] == []
    stored = await stored_hash(running, "CP-001")
    assert stored is not None and stored.startswith("scrypt$") and PASSWORD not in stored
    assert verify_password(PASSWORD, stored)
    for text in (response.text, (await client.get("/api/stations/CP-001")).text):
        assert PASSWORD not in text and "scrypt" not in text

    again = await client.post("/api/stations", json={"id": "CP-001"})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    assert await stored_hash(running, "CP-001") == stored  # unchanged


async def test_register_defaults_and_pending(api: Any) -> None:
    """Without options: Accepted, profile 0, no password; a status can be given."""
    _, client = await api()
    plain = (await client.post("/api/stations", json={"id": "CP1"})).json()
    assert (plain["registration_status"], plain["security_profile"], plain["has_password"]) == (
        "Accepted",
        0,
        False,
    )
    assert (await client.get("/api/stations", params={"online": "true"})).json() == []
    pending = await client.post(
        "/api/stations", json={"id": "CP2", "registration_status": "Pending"}
    )
    assert pending.json()["registration_status"] == "Pending"


@pytest.mark.parametrize(
    "station_id",
    ["", "a:b", "x" * 49, "CP 1", "CPé", "a/b", "%41", "CP\r\n1", "<script>"],
)
async def test_register_refuses_ids_outside_identifier_string(api: Any, station_id: str) -> None:
    """2.0.1 Part 4 §3.1.1: identifierString, at most 48 characters, no ':' (the Basic-auth
    user name) -> 422, nothing stored."""
    _, client = await api()
    response = await client.post("/api/stations", json={"id": station_id})
    assert response.status_code == 422, response.text
    assert (await client.get("/api/stations")).json() == []


async def test_register_accepts_longest_identifier(api: Any) -> None:
    """48 characters from the whole identifierString alphabet (boundary)."""
    _, client = await api()
    station_id = ("Az09*-_=+|@." * 4)[:48]
    response = await client.post("/api/stations", json={"id": station_id})
    assert response.status_code == 201, response.text
    assert response.json()["id"] == station_id


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"id": "CP1", "security_profile": 1}, "needs a password"),
        ({"id": "CP1", "security_profile": 2}, "needs a password"),
        ({"id": "CP1", "password": "short-secret-15"}, "16 to 40"),
        ({"id": "CP1", "password": "x" * 41}, "16 to 40"),
        ({"id": "CP1", "password": "pässwort-pässwort-1"}, "ASCII"),
    ],
)
async def test_register_refuses_bad_credentials(
    api: Any, body: dict[str, Any], reason: str
) -> None:
    """Profiles 1/2 need a password; passwords are 16-40 printable ASCII (A00.FR.205, A01).
    The refused password is not echoed."""
    _, client = await api()
    response = await client.post("/api/stations", json=body)
    assert response.status_code == 422, response.text
    assert reason in response.json()["detail"]
    if "password" in body:
        assert body["password"] not in response.text
    assert (await client.get("/api/stations")).json() == []


async def test_register_validates_profile_and_status(api: Any) -> None:
    _, client = await api()
    for body in (
        {"id": "CP1", "security_profile": 4},
        {"id": "CP1", "security_profile": -1},
        {"id": "CP1", "registration_status": "Maybe"},
        {"id": 17},
        {},
        {"id": "CP1", "securityProfile": 2},  # misspelt: refused, not ignored
    ):
        assert (await client.post("/api/stations", json=body)).status_code == 422, body


# -- list and filters --------------------------------------------------------------------------


async def test_list_filters_and_paging(api: Any, stations: Any) -> None:
    """Filters combine: online (live connection), OCPP version, registration status, vendor,
    literal id prefix (``_`` is not a wildcard); limit/offset page in id order."""
    running, client = await api()
    await stations(running.port, "CP_1")  # boots: Vendor-Y, 1.6, Accepted, online
    for station_id, status in (("CPX1", "Pending"), ("CP_2", "Rejected"), ("DE-9", "Accepted")):
        await client.post("/api/stations", json={"id": station_id, "registration_status": status})

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/api/stations", params=params)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()]

    assert await ids() == ["CPX1", "CP_1", "CP_2", "DE-9"]
    assert await ids(online="true") == ["CP_1"]
    assert await ids(online="false") == ["CPX1", "CP_2", "DE-9"]
    assert await ids(ocpp_version="1.6") == ["CP_1"]
    assert await ids(ocpp_version="2.0.1") == []
    assert await ids(registration_status="Accepted") == ["CP_1", "DE-9"]
    assert await ids(vendor="Vendor-Y") == ["CP_1"]
    assert await ids(id_prefix="CP_") == ["CP_1", "CP_2"]
    assert await ids(id_prefix="CP") == ["CPX1", "CP_1", "CP_2"]
    assert await ids(id_prefix="%") == []
    assert await ids(id_prefix="CP", registration_status="Rejected") == ["CP_2"]
    assert await ids(limit=2) == ["CPX1", "CP_1"]
    assert await ids(limit=2, offset=2) == ["CP_2", "DE-9"]
    assert await ids(limit=2, offset=4) == []
    for bad in (
        {"limit": 0},
        {"limit": 1001},
        {"offset": -1},
        {"ocpp_version": "1.5"},
        {"registration_status": "accepted"},
        {"online": "maybe"},
    ):
        assert (await client.get("/api/stations", params=bad)).status_code == 422, bad


# -- update ------------------------------------------------------------------------------------


async def test_patch_changes_password_and_status(api: Any) -> None:
    """PATCH: a new password replaces the hash (old one no longer verifies); null removes it
    at profile 0; registration status changes; fields left out are kept."""
    running, client = await api()
    await client.post("/api/stations", json={"id": "CP1", "password": PASSWORD})
    first = await stored_hash(running, "CP1")

    response = await client.patch("/api/stations/CP1", json={"password": OTHER_PASSWORD})
    assert response.status_code == 200, response.text
    assert OTHER_PASSWORD not in response.text
    second = await stored_hash(running, "CP1")
    assert second != first
    assert verify_password(OTHER_PASSWORD, second) and not verify_password(PASSWORD, second)

    response = await client.patch("/api/stations/CP1", json={"registration_status": "Rejected"})
    assert response.json()["registration_status"] == "Rejected"
    assert await stored_hash(running, "CP1") == second  # kept

    response = await client.patch("/api/stations/CP1", json={"password": None})
    assert response.json()["has_password"] is False
    assert await stored_hash(running, "CP1") is None

    misspelt = await client.patch("/api/stations/CP1", json={"registrationStatus": "Accepted"})
    assert misspelt.status_code == 422
    bad = await client.patch("/api/stations/CP1", json={"password": "too-short"})
    assert bad.status_code == 422 and "too-short" not in bad.text
    assert (await client.patch("/api/stations/NOPE", json={})).status_code == 404


async def test_patch_raises_security_profile_with_password(api: Any) -> None:
    """Raising 0 -> 1 needs a password (stored or given in the same request); 1 -> 2 and
    -> 3 are fine; removing the password at profile 1/2 is refused."""
    running, client = await api()
    await client.post("/api/stations", json={"id": "CP1"})
    refused = await client.patch("/api/stations/CP1", json={"security_profile": 1})
    assert refused.status_code == 422 and "needs a password" in refused.json()["detail"]
    raised = await client.patch(
        "/api/stations/CP1", json={"security_profile": 1, "password": PASSWORD}
    )
    assert raised.status_code == 200, raised.text
    assert (raised.json()["security_profile"], raised.json()["has_password"]) == (1, True)
    removal = await client.patch("/api/stations/CP1", json={"password": None})
    assert removal.status_code == 422
    assert await stored_hash(running, "CP1") is not None
    assert (await client.patch("/api/stations/CP1", json={"security_profile": 2})).json()[
        "security_profile"
    ] == 2
    assert (await client.patch("/api/stations/CP1", json={"security_profile": 3})).json()[
        "security_profile"
    ] == 3


@pytest.mark.parametrize(("start", "lower"), [(1, 0), (2, 1), (3, 0), (3, 2)])
async def test_G4_lowering_security_profile_is_refused(api: Any, start: int, lower: int) -> None:
    """Checklist G4 / OCPP 2.0.1 A00.FR.005: the API refuses to lower a station's security
    profile (409) and changes nothing, also when other fields come in the same request."""
    running, client = await api()
    await client.post(
        "/api/stations", json={"id": "CP1", "password": PASSWORD, "security_profile": start}
    )
    response = await client.patch(
        "/api/stations/CP1",
        json={"security_profile": lower, "registration_status": "Rejected", "password": None},
    )
    assert response.status_code == 409, response.text
    assert "A00.FR.005" in response.json()["detail"]
    detail = (await client.get("/api/stations/CP1")).json()
    assert (detail["security_profile"], detail["registration_status"]) == (start, "Accepted")
    assert await stored_hash(running, "CP1") is not None


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        ("ChangeConfiguration", {"key": "SecurityProfile", "value": "0"}),
        ("ChangeConfiguration", {"key": "securityprofile", "value": " 1 "}),
    ],
)
async def test_G4_lowering_profile_by_raw_call_is_refused(
    api: Any, stations: Any, action: str, payload: dict[str, Any]
) -> None:
    """Checklist G4 over the raw CALL endpoint: a 1.6 ChangeConfiguration of the
    SecurityProfile key (security whitepaper) to a lower value is refused with 409 before
    anything is sent (the station would answer NotImplemented, a 502, if it were sent)."""
    running, client = await api()
    await client.post(
        "/api/stations", json={"id": "CP1", "password": PASSWORD, "security_profile": 2}
    )
    await stations(running.port, "CP1")
    response = await client.post(
        "/api/stations/CP1/call", json={"action": action, "payload": payload}
    )
    assert response.status_code == 409, response.text
    assert "A00.FR.005" in response.json()["detail"]
    # Raising (or another key) is sent: the test station has no handler, so 502.
    raised = await client.post(
        "/api/stations/CP1/call",
        json={"action": action, "payload": {"key": "SecurityProfile", "value": "3"}},
    )
    assert raised.status_code == 502, raised.text


# -- registration status and BootNotification --------------------------------------------------


async def test_operator_accepts_pending_station(api: Any, stations: Any) -> None:
    """Policy 'pending': an unknown station boots Pending (its other CALLs get SecurityError,
    1.6J errata 3.8); the operator PATCHes it Accepted; its next BootNotification (a Pending
    station retries at the interval) is Accepted and it may start a transaction."""
    running, client = await api(unknown_stations="pending")
    cp = await stations(running.port, "CP1", boot=False)
    boot = c16.BootNotification(charge_point_model="M", charge_point_vendor="V")
    assert (await cp.call(boot)).status == "Pending"
    assert (await client.get("/api/stations/CP1")).json()["registration_status"] == "Pending"
    assert (await client.get("/api/stations", params={"registration_status": "Pending"})).json()

    patched = await client.patch("/api/stations/CP1", json={"registration_status": "Accepted"})
    assert patched.status_code == 200 and patched.json()["online"] is True
    assert (await cp.call(boot)).status == "Accepted"
    started = await cp.call(
        c16.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=0, timestamp=iso())
    )
    assert started.transaction_id > 0


@pytest.mark.parametrize(
    ("policy", "registered", "expected"),
    [
        ("pending", "Accepted", "Accepted"),
        ("reject", "Accepted", "Accepted"),
        ("accept", "Rejected", "Rejected"),
        ("pending", "Rejected", "Rejected"),
    ],
)
async def test_registration_status_answers_first_boot(
    api: Any, stations: Any, policy: str, registered: str, expected: str
) -> None:
    """A station registered through the API before it ever booted gets the registered
    status at its first BootNotification, whatever the policy for unknown stations."""
    running, client = await api(unknown_stations=policy)
    await client.post("/api/stations", json={"id": "CP1", "registration_status": registered})
    cp = await stations(running.port, "CP1", boot=False)
    boot = c16.BootNotification(charge_point_model="M", charge_point_vendor="V")
    assert (await cp.call(boot)).status == expected
    detail = (await client.get("/api/stations/CP1")).json()
    assert (detail["registration_status"], detail["vendor"]) == (expected, "V")


async def test_rejected_station_stays_rejected_at_boot(api: Any, stations: Any) -> None:
    """An operator's Rejected is what the station's next BootNotification gets."""
    running, client = await api()
    cp = await stations(running.port, "CP1")  # Accepted by the default policy
    await client.patch("/api/stations/CP1", json={"registration_status": "Rejected"})
    boot = c16.BootNotification(charge_point_model="M", charge_point_vendor="V")
    assert (await cp.call(boot)).status == "Rejected"


# -- delete ------------------------------------------------------------------------------------


async def test_delete_station_without_history(api: Any) -> None:
    """204, then 404 everywhere; an unknown id is 404."""
    _, client = await api()
    await client.post("/api/stations", json={"id": "CP1", "password": PASSWORD})
    response = await client.delete("/api/stations/CP1")
    assert response.status_code == 204 and response.content == b""
    assert (await client.get("/api/stations/CP1")).status_code == 404
    assert (await client.delete("/api/stations/CP1")).status_code == 404
    assert (await client.get("/api/stations")).json() == []


async def test_delete_refused_while_connected_and_with_history(api: Any, stations: Any) -> None:
    """409 while connected; once offline, a station with a transaction is still 409 (its
    history is kept; retire it with registration_status Rejected) and stays listed."""
    running, client = await api()
    cp = await stations(running.port, "CP1")
    await cp.call(
        c16.StartTransaction(connector_id=1, id_tag="TAG1", meter_start=0, timestamp=iso())
    )
    connected = await client.delete("/api/stations/CP1")
    assert connected.status_code == 409 and "connected" in connected.json()["detail"]
    await cp._connection.close()
    await wait_offline(client, "CP1")
    history = await client.delete("/api/stations/CP1")
    assert history.status_code == 409, history.text
    assert "1 transactions" in history.json()["detail"]
    assert "Rejected" in history.json()["detail"]
    assert (await client.get("/api/stations/CP1")).status_code == 200
    assert len((await client.get("/api/transactions")).json()) == 1


async def test_delete_refused_for_a_station_with_reported_events(api: Any) -> None:
    """NotifyEvent rows are history too: 409 naming them (before, the delete met their
    foreign key and answered 500)."""
    running, client = await api()
    await client.post("/api/stations", json={"id": "CP1", "password": PASSWORD})
    async with running.service.db.write_session() as session:
        await repositories.add_station_events(
            session,
            "CP1",
            [
                {
                    "event_id": 1,
                    "timestamp": datetime.now(UTC),
                    "trigger": "Alerting",
                    "component": "ChargingStation",
                    "component_instance": None,
                    "evse_id": None,
                    "variable": "Problem",
                    "variable_instance": None,
                    "actual_value": "true",
                    "event_notification_type": "HardWiredMonitor",
                    "cleared": None,
                    "tech_code": None,
                    "tech_info": None,
                }
            ],
            now=datetime.now(UTC),
        )
        await session.commit()
    refused = await client.delete("/api/stations/CP1")
    assert refused.status_code == 409, refused.text
    assert "1 station events" in refused.json()["detail"]
    assert (await client.get("/api/stations/CP1")).status_code == 200


async def test_G4_lowering_profile_by_set_variables_is_refused(api: Any) -> None:
    """Checklist G4, 2.x: SetVariables of SecurityCtrlr.SecurityProfile below the stored
    profile is refused (409, A00.FR.005) before the connection is even looked up; the same
    value or a higher one passes the guard (and meets 409 'not connected' here)."""
    _, client = await api()
    await client.post(
        "/api/stations", json={"id": "CP1", "password": PASSWORD, "security_profile": 2}
    )

    def set_profile(value: str) -> dict[str, Any]:
        item = {
            "attributeValue": value,
            "component": {"name": "SecurityCtrlr"},
            "variable": {"name": "SecurityProfile"},
        }
        other = {
            "attributeValue": "60",
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
        }
        return {"action": "SetVariables", "payload": {"setVariableData": [other, item]}}

    for value in ("1", "0"):
        response = await client.post("/api/stations/CP1/call", json=set_profile(value))
        assert response.status_code == 409 and "A00.FR.005" in response.json()["detail"]
    for value in ("2", "3"):
        response = await client.post("/api/stations/CP1/call", json=set_profile(value))
        assert response.status_code == 409 and "not connected" in response.json()["detail"]
