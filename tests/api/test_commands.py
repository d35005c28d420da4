"""Named command endpoints (``ocppkit.api.commands``) over real loopback HTTP, with a real
CSMS (SQLite file) and independent stations (mobilityhouse ``ocpp`` 1.6 and 2.0.1
ChargePoint) over real WebSockets.

Every endpoint of :data:`~ocppkit.api.commands.COMMANDS` is called once per version: the
station must receive exactly the posted payload as the CALL of that action (OCPP-J §4.2.1:
``[2, id, action, payload]``; mobilityhouse validates it against the OCA schema before its
handler runs), and the API must return the station's response payload with wire names.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v16 import call as c16
from ocpp.v16 import call_result as r16
from ocpp.v201 import call as c201
from ocpp.v201 import call_result as r201

from ocppkit.api.commands import COMMANDS, command_path
from ocppkit.protocol import OcppVersion
from tests.helpers.mobilityhouse import Station16 as MhStation16
from tests.helpers.mobilityhouse import Station201 as MhStation201

# (action, request posted to the API, the station's answer, the API's expected 200 body)
Case = tuple[str, dict[str, Any], Any, dict[str, Any]]

TAG_201 = {"idToken": "TAG1", "type": "ISO14443"}
HEARTBEAT = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}

CASES_16: list[Case] = [
    (
        "RemoteStartTransaction",
        {
            "connectorId": 1,
            "idTag": "TAG1",
            "chargingProfile": {
                "chargingProfileId": 1,
                "transactionId": 5,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}],
                },
            },
        },
        r16.RemoteStartTransaction(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "RemoteStopTransaction",
        {"transactionId": 42},
        r16.RemoteStopTransaction(status="Rejected"),
        {"status": "Rejected"},
    ),
    ("Reset", {"type": "Soft"}, r16.Reset(status="Accepted"), {"status": "Accepted"}),
    (
        "ChangeAvailability",
        {"connectorId": 0, "type": "Inoperative"},
        r16.ChangeAvailability(status="Scheduled"),
        {"status": "Scheduled"},
    ),
    (
        "UnlockConnector",
        {"connectorId": 1},
        r16.UnlockConnector(status="Unlocked"),
        {"status": "Unlocked"},
    ),
    (
        "GetConfiguration",
        {"key": ["HeartbeatInterval", "Nope"]},
        r16.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
            unknown_key=["Nope"],
        ),
        {
            "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
            "unknownKey": ["Nope"],
        },
    ),
    (
        "ChangeConfiguration",
        {"key": "HeartbeatInterval", "value": "60"},
        r16.ChangeConfiguration(status="RebootRequired"),
        {"status": "RebootRequired"},
    ),
    ("ClearCache", {}, r16.ClearCache(status="Accepted"), {"status": "Accepted"}),
    (
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "connectorId": 1},
        r16.TriggerMessage(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "DataTransfer",
        {"vendorId": "com.example", "messageId": "ping", "data": "hello"},
        r16.DataTransfer(status="Accepted", data="pong"),
        {"status": "Accepted", "data": "pong"},
    ),
    (
        "SendLocalList",
        {
            "listVersion": 2,
            "updateType": "Full",
            "localAuthorizationList": [
                {
                    "idTag": "TAG1",
                    "idTagInfo": {"status": "Accepted", "expiryDate": "2027-01-01T00:00:00Z"},
                },
                {"idTag": "TAG2", "idTagInfo": {"status": "Blocked"}},
            ],
        },
        r16.SendLocalList(status="Accepted"),
        {"status": "Accepted"},
    ),
    ("GetLocalListVersion", {}, r16.GetLocalListVersion(list_version=2), {"listVersion": 2}),
    (
        "ReserveNow",
        {
            "connectorId": 1,
            "expiryDate": "2026-12-01T12:00:00Z",
            "idTag": "TAG1",
            "reservationId": 7,
        },
        r16.ReserveNow(status="Occupied"),
        {"status": "Occupied"},
    ),
    (
        "CancelReservation",
        {"reservationId": 7},
        r16.CancelReservation(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "SetChargingProfile",
        {
            "connectorId": 1,
            "csChargingProfiles": {
                "chargingProfileId": 3,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Absolute",
                "chargingSchedule": {
                    "startSchedule": "2026-12-01T00:00:00Z",
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": 11000.0, "numberPhases": 3},
                        {"startPeriod": 3600, "limit": 7400.0},
                    ],
                },
            },
        },
        r16.SetChargingProfile(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "ClearChargingProfile",
        {"id": 3},
        r16.ClearChargingProfile(status="Unknown"),
        {"status": "Unknown"},
    ),
    (
        "GetCompositeSchedule",
        {"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"},
        r16.GetCompositeSchedule(
            status="Accepted",
            connector_id=1,
            schedule_start="2026-12-01T00:00:00Z",
            charging_schedule={
                "duration": 3600,
                "charging_rate_unit": "W",
                "charging_schedule_period": [{"start_period": 0, "limit": 11000.0}],
            },
        ),
        {
            "status": "Accepted",
            "connectorId": 1,
            "scheduleStart": "2026-12-01T00:00:00Z",
            "chargingSchedule": {
                "duration": 3600,
                "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}],
            },
        },
    ),
    (
        "UpdateFirmware",
        {
            "location": "https://fw.example.com/v2.bin",
            "retrieveDate": "2026-12-01T03:00:00Z",
            "retries": 3,
            "retryInterval": 60,
        },
        r16.UpdateFirmware(),
        {},
    ),
    (
        "GetDiagnostics",
        {"location": "ftp://logs.example.com/upload", "startTime": "2026-11-01T00:00:00Z"},
        r16.GetDiagnostics(file_name="diag-CP1.zip"),
        {"fileName": "diag-CP1.zip"},
    ),
]

CASES_201: list[Case] = [
    (
        "RequestStartTransaction",
        {"idToken": TAG_201, "remoteStartId": 11, "evseId": 1},
        r201.RequestStartTransaction(status="Accepted", transaction_id="tx-1"),
        {"status": "Accepted", "transactionId": "tx-1"},
    ),
    (
        "RequestStopTransaction",
        {"transactionId": "tx-1"},
        r201.RequestStopTransaction(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "Reset",
        {"type": "OnIdle", "evseId": 1},
        r201.Reset(status="Scheduled"),
        {"status": "Scheduled"},
    ),
    (
        "ChangeAvailability",
        {"operationalStatus": "Inoperative", "evse": {"id": 1, "connectorId": 1}},
        r201.ChangeAvailability(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "UnlockConnector",
        {"evseId": 1, "connectorId": 1},
        r201.UnlockConnector(status="Unlocked"),
        {"status": "Unlocked"},
    ),
    (
        "GetVariables",
        {"getVariableData": [HEARTBEAT]},
        r201.GetVariables(
            get_variable_result=[
                {"attribute_status": "Accepted", "attribute_value": "300", **HEARTBEAT}
            ]
        ),
        {
            "getVariableResult": [
                {"attributeStatus": "Accepted", "attributeValue": "300", **HEARTBEAT}
            ]
        },
    ),
    (
        "SetVariables",
        {"setVariableData": [{"attributeValue": "60", **HEARTBEAT}]},
        r201.SetVariables(
            set_variable_result=[{"attribute_status": "RebootRequired", **HEARTBEAT}]
        ),
        {"setVariableResult": [{"attributeStatus": "RebootRequired", **HEARTBEAT}]},
    ),
    (
        "GetBaseReport",
        {"requestId": 5, "reportBase": "FullInventory"},
        r201.GetBaseReport(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "TriggerMessage",
        {"requestedMessage": "StatusNotification", "evse": {"id": 1, "connectorId": 1}},
        r201.TriggerMessage(status="Accepted"),
        {"status": "Accepted"},
    ),
    ("ClearCache", {}, r201.ClearCache(status="Rejected"), {"status": "Rejected"}),
    (
        "SendLocalList",
        {
            "versionNumber": 3,
            "updateType": "Full",
            "localAuthorizationList": [
                {"idToken": TAG_201, "idTokenInfo": {"status": "Accepted"}},
            ],
        },
        r201.SendLocalList(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "SetChargingProfile",
        {
            "evseId": 1,
            "chargingProfile": {
                "id": 4,
                "stackLevel": 0,
                "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": [
                    {
                        "id": 1,
                        "chargingRateUnit": "W",
                        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000.0}],
                    }
                ],
            },
        },
        r201.SetChargingProfile(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "ClearChargingProfile",
        {"chargingProfileId": 4},
        r201.ClearChargingProfile(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "ReserveNow",
        {"id": 8, "expiryDateTime": "2026-12-01T12:00:00Z", "idToken": TAG_201, "evseId": 1},
        r201.ReserveNow(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "UpdateFirmware",
        {
            "requestId": 9,
            "retries": 2,
            "firmware": {
                "location": "https://fw.example.com/v3.bin",
                "retrieveDateTime": "2026-12-01T03:00:00Z",
            },
        },
        r201.UpdateFirmware(status="Accepted"),
        {"status": "Accepted"},
    ),
    (
        "GetLog",
        {
            "logType": "DiagnosticsLog",
            "requestId": 10,
            "log": {"remoteLocation": "https://logs.example.com/upload"},
        },
        r201.GetLog(status="Accepted", filename="diag.log"),
        {"status": "Accepted", "filename": "diag.log"},
    ),
    (
        "GetTransactionStatus",
        {"transactionId": "tx-1"},
        r201.GetTransactionStatus(messages_in_queue=False, ongoing_indicator=True),
        {"messagesInQueue": False, "ongoingIndicator": True},
    ),
]

CASES = {OcppVersion.V16: CASES_16, OcppVersion.V201: CASES_201}
V16, V201 = OcppVersion.V16, OcppVersion.V201


class Recorder:
    """Mixin: keeps every CALL frame the station receives, answers each case's action with
    the case's response (after ``delay`` s), or raises ``errors[action]``."""

    def init_recorder(self, cases: list[Case]) -> None:
        self.calls: list[list[Any]] = []
        self.answers = {action: answer for action, _, answer, _ in cases}
        self.errors: dict[str, Exception] = {}
        self.delay = 0.0

    async def route_message(self, raw_msg: str) -> None:
        frame = json.loads(raw_msg)
        if frame[0] == 2:
            self.calls.append(frame)
        await super().route_message(raw_msg)  # type: ignore[misc]

    async def answer(self, action: str) -> Any:
        await asyncio.sleep(self.delay)
        if action in self.errors:
            raise self.errors[action]
        return self.answers[action]


class Station16(Recorder, MhStation16):
    pass


class Station201(Recorder, MhStation201):
    pass


def _handler(action: str) -> Any:
    async def handler(self: Recorder, **request: Any) -> Any:
        return await self.answer(action)

    # mobilityhouse finds handlers by the name of the decorated function.
    handler.__name__ = handler.__qualname__ = f"on_{action}"
    return on(action)(handler)


for _cls, _cases in ((Station16, CASES_16), (Station201, CASES_201)):
    for _action, *_ in _cases:
        setattr(_cls, f"on_{_action}", _handler(_action))


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """These cases run on SQLite only (the conftest's ``api`` uses this URL)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'csms.sqlite3'}"


@pytest.fixture
async def stations() -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    opened: list[tuple[Any, asyncio.Task[None]]] = []

    async def connect(port: int, station_id: str, version: OcppVersion) -> Any:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ocpp/{station_id}", subprotocols=[f"ocpp{version}"]
        )
        if version is OcppVersion.V16:
            cp: Any = Station16(station_id, ws)
            boot: Any = c16.BootNotification(charge_point_model="M", charge_point_vendor="V")
        else:
            cp = Station201(station_id, ws)
            boot = c201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            )
        cp.init_recorder(CASES[version])
        opened.append((ws, asyncio.create_task(cp.start())))
        assert (await cp.call(boot)).status == "Accepted"
        return cp

    yield connect
    for ws, task in opened:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await ws.close()


def url(version: OcppVersion, action: str, station_id: str) -> str:
    return command_path(version, action).replace("{station_id}", station_id)


# -- every endpoint ----------------------------------------------------------------------------


def test_cases_cover_every_command() -> None:
    """The interop cases below exercise every route of the table, and nothing else."""
    for version, cases in CASES.items():
        assert [action for action, *_ in cases] == list(COMMANDS[version])
    assert len(COMMANDS[OcppVersion.V16]) == 19 and len(COMMANDS[OcppVersion.V201]) == 17


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201])
async def test_every_command_endpoint(api: Any, stations: Any, version: OcppVersion) -> None:
    """Each named endpoint sends its action's CALL with the posted payload, unchanged on the
    wire (OCPP-J §4.2.1), and answers 200 with the station's CALLRESULT payload
    (§4.2.2) in camelCase."""
    running, client = await api()
    station = await stations(running.port, "CP1", version)
    for action, request, _, expected in CASES[version]:
        sent = len(station.calls)
        response = await client.post(url(version, action, "CP1"), json=request)
        assert response.status_code == 200, (action, response.text)
        assert response.json() == expected, action
        assert len(station.calls) == sent + 1, action
        _, _, received_action, received = station.calls[-1]
        assert (received_action, received) == (action, request)


async def test_empty_body_is_an_empty_payload(api: Any, stations: Any) -> None:
    """ClearCache and GetLocalListVersion have no fields: the body may be omitted."""
    running, client = await api()
    station = await stations(running.port, "CP1", OcppVersion.V16)
    for action, expected in (("ClearCache", "Accepted"), ("GetLocalListVersion", 2)):
        response = await client.post(url(OcppVersion.V16, action, "CP1"))
        assert response.status_code == 200, response.text
        assert list(response.json().values()) == [expected]
        assert station.calls[-1][2:] == [action, {}]


async def test_commands_queue_behind_each_other(api: Any, stations: Any) -> None:
    """OCPP-J §4.1.1: one CALL in flight; concurrent commands are all answered, in turn."""
    running, client = await api()
    station = await stations(running.port, "CP1", OcppVersion.V201)
    station.delay = 0.05
    replies = await asyncio.gather(
        *(
            client.post(url(OcppVersion.V201, "Reset", "CP1"), json={"type": "Immediate"})
            for _ in range(3)
        )
    )
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert len(station.calls) == 3


# -- errors ------------------------------------------------------------------------------------


async def test_wrong_version_is_409_and_nothing_is_sent(api: Any, stations: Any) -> None:
    """A 1.6 command to a 2.0.1 station (and the reverse) is 409: the payloads differ between
    versions, so it is never translated or sent."""
    running, client = await api()
    cp16 = await stations(running.port, "CP16", OcppVersion.V16)
    cp201 = await stations(running.port, "CP201", OcppVersion.V201)
    response = await client.post(url(OcppVersion.V16, "Reset", "CP201"), json={"type": "Soft"})
    assert response.status_code == 409
    assert response.json() == {
        "detail": "station 'CP201' speaks OCPP 2.0.1; this is an OCPP 1.6 command"
    }
    response = await client.post(url(OcppVersion.V201, "ClearCache", "CP16"))
    assert response.status_code == 409 and "speaks OCPP 1.6" in response.json()["detail"]
    assert cp16.calls == [] and cp201.calls == []


async def test_offline_station_is_409(api: Any) -> None:
    _, client = await api()
    response = await client.post(url(OcppVersion.V16, "Reset", "NOPE"), json={"type": "Soft"})
    assert response.status_code == 409
    assert response.json() == {"detail": "station 'NOPE' is not connected"}


@pytest.mark.parametrize(
    ("version", "action", "body", "code", "path"),
    [
        # 1.6 keeps its errata spellings (1.6J errata 5.1, 5.2).
        (V16, "Reset", b'{"type": "Sideways"}', "PropertyConstraintViolation", "$.type"),
        (V16, "Reset", b"{}", "OccurenceConstraintViolation", "$"),
        (V16, "UnlockConnector", b'{"connectorId": "1"}', "TypeConstraintViolation",
         "$.connectorId"),
        (V16, "ClearCache", b'{"extra": 1}', "FormationViolation", "$"),
        (V16, "Reset", b"not json", "FormationViolation", None),
        (V201, "Reset", b"{}", "OccurrenceConstraintViolation", "$"),
        (V201, "GetVariables", b'{"getVariableData": []}', "OccurrenceConstraintViolation",
         "$.getVariableData"),
        (V201, "RequestStopTransaction", b'{"transactionId": "' + b"x" * 37 + b'"}',
         "PropertyConstraintViolation", "$.transactionId"),
    ],
)  # fmt: skip
async def test_invalid_body_is_422_and_nothing_is_sent(
    api: Any,
    stations: Any,
    version: OcppVersion,
    action: str,
    body: bytes,
    code: str,
    path: str | None,
) -> None:
    """422 with the CallError code the station would have answered (OCPP-J §4.2.3) and the
    JSON path; the CALL is never sent."""
    running, client = await api()
    station = await stations(running.port, "CP1", version)
    response = await client.post(
        url(version, action, "CP1"), content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == code
    if path is not None:
        assert problem["path"] == path
    assert problem["description"] and problem["detail"].startswith("invalid payload")
    assert station.calls == []


async def test_station_callerror_is_502(api: Any, stations: Any) -> None:
    """502 with the station's CALLERROR code, description and details (OCPP-J §4.2.3)."""
    running, client = await api()
    station = await stations(running.port, "CP1", OcppVersion.V16)
    station.errors["UnlockConnector"] = InternalError(
        description="relay stuck", details={"relay": 2}
    )
    response = await client.post(
        url(OcppVersion.V16, "UnlockConnector", "CP1"), json={"connectorId": 1}
    )
    assert response.status_code == 502, response.text
    assert response.json() == {
        "code": "InternalError",
        "description": "relay stuck",
        "details": {"relay": 2},
    }


async def test_station_too_slow_is_504(api: Any, stations: Any) -> None:
    """504 when no reply comes within the CSMS's call_timeout (OCPP-J §4.1.1 timeouts)."""
    running, client = await api(call_timeout=0.3)
    station = await stations(running.port, "CP1", OcppVersion.V201)
    station.delay = 2
    response = await client.post(
        url(OcppVersion.V201, "GetTransactionStatus", "CP1"), json={"transactionId": "tx-1"}
    )
    assert response.status_code == 504, response.text
    assert response.json() == {"detail": "no reply from 'CP1' within 0.3 s"}


async def test_body_larger_than_a_frame_is_413(api: Any, stations: Any) -> None:
    """A body larger than max_frame_size could never be sent in one frame: 413, unread."""
    running, client = await api(max_frame_size=1024)
    station = await stations(running.port, "CP1", OcppVersion.V16)
    body = {"vendorId": "com.example", "data": "x" * 2000}
    response = await client.post(url(OcppVersion.V16, "DataTransfer", "CP1"), json=body)
    assert response.status_code == 413
    assert "max_frame_size" in response.json()["detail"]
    assert station.calls == []


# -- OpenAPI -----------------------------------------------------------------------------------


async def test_openapi_documents_every_command(api: Any) -> None:
    """Each command is one POST operation whose request and 200 response schemas are the
    action's message schemas (camelCase wire names), resolvable in components."""
    _, client = await api()
    document = (await client.get("/openapi.json")).json()
    components = document["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        prefix = "#/components/schemas/"
        assert schema["$ref"].startswith(prefix)
        return components[schema["$ref"].removeprefix(prefix)]  # type: ignore[no-any-return]

    for version, actions in COMMANDS.items():
        for action in actions:
            operation = document["paths"][command_path(version, action)]["post"]
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert resolve(body)["title"] == f"{action}Request"
            ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
            assert resolve(ok)["title"] == f"{action}Response"
            assert {"409", "422", "502", "503", "504"} <= set(operation["responses"])
    reset_16 = components["v16.ResetRequest"]
    assert reset_16["required"] == ["type"]
    assert resolve(reset_16["properties"]["type"])["enum"] == ["Hard", "Soft"]
    start_201 = components["v201.RequestStartTransactionRequest"]
    assert {"idToken", "remoteStartId", "evseId"} <= set(start_201["properties"])
    assert set(start_201["required"]) == {"idToken", "remoteStartId"}


async def test_security_profile_downgrade_is_409_on_named_endpoints(api: Any) -> None:
    """Checklist G4 / OCPP 2.0.1 A00.FR.005: the named ChangeConfiguration (1.6 security
    whitepaper key) and SetVariables (SecurityCtrlr.SecurityProfile) endpoints refuse to
    lower the stored profile, like the generic call endpoint, before the connection is
    looked up; the same or a higher value passes the guard (and is 409 offline here)."""
    _, client = await api()
    registered = await client.post(
        "/api/stations",
        json={"id": "CP1", "password": "a-random-password-of-24", "security_profile": 2},
    )
    assert registered.status_code == 201, registered.text

    def set_variables(value: str) -> dict[str, Any]:
        profile = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}}
        other = {"attributeValue": "60", **HEARTBEAT}
        return {"setVariableData": [other, {"attributeValue": value, **profile}]}

    for value, lowered in (("1", True), ("0", True), ("2", False), ("3", False)):
        for path, body in (
            (url(V16, "ChangeConfiguration", "CP1"), {"key": "SecurityProfile", "value": value}),
            (url(V201, "SetVariables", "CP1"), set_variables(value)),
        ):
            response = await client.post(path, json=body)
            assert response.status_code == 409, response.text
            detail = response.json()["detail"]
            assert ("A00.FR.005" in detail) is lowered, (path, value, detail)
            assert ("not connected" in detail) is not lowered
