"""Every schema-valid CALL a station may send is answered, on both storage backends.

For each action the CSMS answers (its routers), payloads generated from the official OCA
schemas (the instance strategies of the accuracy tests: long strings, extreme integers and
numbers, odd but valid times) are sent by a raw station after its boot; the CSMS must
answer each with a CALLRESULT. A CallError for a valid message (InternalError from a
column too short, a 32-bit overflow, a NUL on PostgreSQL...) is what this looks for: the
station would send that message again forever. It lives beside the API tests for their
fixture that runs the CSMS on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import websockets
from hypothesis import HealthCheck, given, settings

from ocppkit.protocol import OcppVersion
from tests.helpers.instances import valid
from tests.helpers.schemas import SchemaCase, schema_cases

#: Payloads per action: enough for the extremes the strategies favour, quick on both backends.
EXAMPLES = 8

BOOTS = {
    OcppVersion.V16: {"chargePointVendor": "V", "chargePointModel": "M"},
    OcppVersion.V201: {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
    OcppVersion.V21: {"chargingStation": {"vendorName": "V", "model": "M"}, "reason": "PowerUp"},
}


def _payloads(case: SchemaCase) -> list[Any]:
    """EXAMPLES schema-valid payloads of ``case``, the same on every run."""
    drawn: list[Any] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(valid(case.schema, case.schema))
    def collect(payload: Any) -> None:
        drawn.append(payload)

    collect()
    return drawn


@pytest.mark.parametrize("version", list(BOOTS), ids=str)
async def test_every_schema_valid_station_call_is_answered(api: Any, version: OcppVersion) -> None:
    running, _ = await api(max_messages_per_second=100_000, message_burst=1_000_000)
    actions = running.service.routers[version].actions - {"BootNotification"}
    cases = [
        case
        for case in schema_cases()
        if case.version == version.value and not case.response and case.action in actions
    ]
    assert {case.action for case in cases} == actions  # every handled action has its schema
    refused: list[tuple[str, Any, Any]] = []
    async with websockets.connect(
        f"ws://127.0.0.1:{running.port}/ocpp/FUZZ",
        subprotocols=[version.subprotocol],
        max_size=None,
    ) as ws:
        number = 0

        async def call(action: str, payload: Any) -> Any:
            nonlocal number
            number += 1
            await ws.send(json.dumps([2, str(number), action, payload]))
            return json.loads(await ws.recv())

        assert (await call("BootNotification", BOOTS[version]))[0] == 3
        for case in cases:
            for payload in _payloads(case):
                reply = await call(case.action, payload)
                if reply[0] != 3:
                    refused.append((case.action, reply[2:4], payload))
    assert refused == []
