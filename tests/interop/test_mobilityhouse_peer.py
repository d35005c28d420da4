"""Interop with an independent OCPP stack: the mobilityhouse ``ocpp`` library's ChargePoint.

Both directions, both versions, over real loopback WebSockets: their station against our
server and router, and our client against their central system (written as its README
shows). Each side validates the other's frames against the official schemas.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as MhChargePoint16
from ocpp.v16 import call as mh_call16
from ocpp.v16 import call_result as mh_result16
from ocpp.v201 import ChargePoint as MhChargePoint201
from ocpp.v201 import call as mh_call201
from ocpp.v201 import call_result as mh_result201

from ocppkit.messages import v16, v201
from ocppkit.protocol import CallErrorReceived, OcppVersion, Router
from ocppkit.transport import Connection, connect, serve


def now() -> datetime:
    return datetime.now(UTC)


class TheirStation16(MhChargePoint16):
    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **_: Any) -> Any:
        return mh_result16.GetConfiguration(
            configuration_key=[{"key": "HeartbeatInterval", "readonly": False, "value": "300"}]
        )


class TheirStation201(MhChargePoint201):
    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        return mh_result201.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "attribute_value": "300",
                    "component": item["component"],
                    "variable": item["variable"],
                }
                for item in get_variable_data
            ]
        )


@pytest.fixture
async def our_csms() -> AsyncIterator[tuple[int, dict[str, Any]]]:
    seen: dict[str, Any] = {}
    r16, r201 = Router(), Router()
    r16.register(
        "BootNotification",
        lambda req, conn: v16.BootNotificationResponse(
            current_time=now(), interval=300, status=v16.RegistrationStatus.ACCEPTED
        ),
    )
    r201.register(
        "BootNotification",
        lambda req, conn: v201.BootNotificationResponse(
            current_time=now(), interval=300, status=v201.RegistrationStatusEnum.ACCEPTED
        ),
    )

    async def on_connect(conn: Connection) -> None:
        seen["identity"] = conn.identity
        await asyncio.sleep(0.05)
        if conn.version == "1.6":
            seen["config"] = await conn.call(
                "GetConfiguration", v16.GetConfigurationRequest(key=["HeartbeatInterval"])
            )
        else:
            seen["variables"] = await conn.call(
                "GetVariables",
                v201.GetVariablesRequest(
                    get_variable_data=[
                        v201.GetVariableData(
                            component=v201.Component(name="OCPPCommCtrlr"),
                            variable=v201.Variable(name="HeartbeatInterval"),
                        )
                    ]
                ),
            )
        try:
            await conn.call(
                "Reset",
                v16.ResetRequest(type=v16.ResetType.SOFT)
                if conn.version == "1.6"
                else v201.ResetRequest(type=v201.ResetEnum.IMMEDIATE),
            )
        except CallErrorReceived as exc:  # no Reset handler on their station
            seen["reset_error"] = exc.code

    server = await serve(
        {OcppVersion.V16: r16, OcppVersion.V201: r201}, "127.0.0.1", 0, on_connect=on_connect
    )
    try:
        yield int(server.sockets[0].getsockname()[1]), seen
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_their_station_against_our_server(
    our_csms: tuple[int, dict[str, Any]], version: str
) -> None:
    """Their Boot is answered by our router; our CALLs are answered by their handlers; their
    NotImplemented/NotSupported CALLERROR for an action without handler reaches us typed."""
    port, seen = our_csms
    async with websockets.connect(
        f"ws://127.0.0.1:{port}/ocpp/MH-{version}", subprotocols=[f"ocpp{version}"]
    ) as ws:
        if version == "1.6":
            station: Any = TheirStation16(f"MH-{version}", ws)
            request: Any = mh_call16.BootNotification(
                charge_point_model="M", charge_point_vendor="V"
            )
        else:
            station = TheirStation201(f"MH-{version}", ws)
            request = mh_call201.BootNotification(
                charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
            )
        runner = asyncio.create_task(station.start())
        response = await station.call(request)
        assert response.status == "Accepted" and response.interval == 300
        for _ in range(100):
            if "reset_error" in seen:
                break
            await asyncio.sleep(0.02)
        runner.cancel()
    assert seen["identity"] == f"MH-{version}"
    if version == "1.6":
        (key,) = seen["config"].configuration_key
        assert (key.key, key.value, key.readonly) == ("HeartbeatInterval", "300", False)
    else:
        (result,) = seen["variables"].get_variable_result
        assert result.attribute_value == "300"
    assert seen["reset_error"] in {"NotImplemented", "NotSupported"}


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_our_client_against_their_central_system(version: str) -> None:
    """Their CSMS, written as their README shows, answers our typed CALLs."""

    class TheirCsms16(MhChargePoint16):
        @on("BootNotification")
        def on_boot(self, **_: Any) -> Any:
            return mh_result16.BootNotification(
                current_time=now().isoformat(), interval=10, status="Accepted"
            )

        @on("Heartbeat")
        def on_heartbeat(self) -> Any:
            return mh_result16.Heartbeat(current_time=now().isoformat())

    class TheirCsms201(MhChargePoint201):
        @on("BootNotification")
        def on_boot(self, **_: Any) -> Any:
            return mh_result201.BootNotification(
                current_time=now().isoformat(), interval=10, status="Accepted"
            )

        @on("Heartbeat")
        def on_heartbeat(self) -> Any:
            return mh_result201.Heartbeat(current_time=now().isoformat())

    async def on_connect(ws: Any) -> None:
        cls = TheirCsms16 if ws.subprotocol == "ocpp1.6" else TheirCsms201
        await cls(ws.request.path.rsplit("/", 1)[-1], ws).start()

    async with websockets.serve(
        on_connect, "127.0.0.1", 0, subprotocols=["ocpp1.6", "ocpp2.0.1"]
    ) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/CP-OURS", versions=[version]) as conn:
            if version == "1.6":
                boot: Any = await conn.call(
                    "BootNotification",
                    v16.BootNotificationRequest(
                        charge_point_vendor="ocppkit", charge_point_model="test"
                    ),
                )
                beat: Any = await conn.call("Heartbeat", v16.HeartbeatRequest())
            else:
                boot = await conn.call(
                    "BootNotification",
                    v201.BootNotificationRequest(
                        reason=v201.BootReasonEnum.POWER_UP,
                        charging_station=v201.ChargingStation(vendor_name="ocppkit", model="t"),
                    ),
                )
                beat = await conn.call("Heartbeat", v201.HeartbeatRequest())
            assert boot.status == "Accepted" and boot.interval == 10
            assert beat.current_time.tzinfo is not None
            # Their central system has no handler for this action: a typed CALLERROR.
            with pytest.raises(CallErrorReceived) as info:
                await conn.call(
                    "StatusNotification",
                    v16.StatusNotificationRequest(
                        connector_id=1,
                        error_code=v16.ChargePointErrorCode.NO_ERROR,
                        status=v16.ChargePointStatus.AVAILABLE,
                    )
                    if version == "1.6"
                    else v201.StatusNotificationRequest(
                        timestamp=now(),
                        connector_status=v201.ConnectorStatusEnum.AVAILABLE,
                        evse_id=1,
                        connector_id=1,
                    ),
                )
            assert info.value.code == "NotImplemented"
