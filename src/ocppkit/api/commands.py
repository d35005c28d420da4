"""Named command endpoints: one typed ``POST`` per remote command an operator uses most.

``POST /api/stations/{station_id}/v16/remote-start-transaction``,
``POST /api/stations/{station_id}/v201/request-start-transaction``, ...: the path names the
OCPP version and the action in kebab case; the body *is* the request payload with the
spec's camelCase names, and a 200 answer *is* the station's response payload. One scheme
for every action, so a client can derive the URL from the spec's action name; the version
is in the path because the same action has different payloads in 1.6 and 2.0.1 (Reset,
ChangeAvailability, SendLocalList, ...), and a version prefix keeps each OpenAPI operation
to one schema.

The routes are generated from :data:`COMMANDS` (the issue's list), not written one by one;
their OpenAPI request and response schemas are the generated message Structs'
(``msgspec.json.schema_components``), registered as components ``v16.<Struct>`` /
``v201.<Struct>``. Every route sends through :class:`~ocppkit.api.calls.StationCaller`, so
errors answer exactly like the generic ``/call`` endpoint (409 offline, 422 invalid payload
with the CallError code, 502 CALLERROR, 503 queue full, 504 timeout), plus 409 when the
station speaks another version than the endpoint's, and 413 for a body larger than the
CSMS's ``max_frame_size`` (it could not be sent in one frame anyway).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import msgspec
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from ocppkit.api.calls import CALL_RESPONSES, StationCaller, problem
from ocppkit.protocol import OcppVersion
from ocppkit.protocol.validation import message_types

__all__ = ["COMMANDS", "command_path", "command_router", "include_commands"]

#: The CSMS-initiated actions with a named endpoint, per version.
COMMANDS: Final[Mapping[OcppVersion, tuple[str, ...]]] = {
    OcppVersion.V16: (
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "Reset",
        "ChangeAvailability",
        "UnlockConnector",
        "GetConfiguration",
        "ChangeConfiguration",
        "ClearCache",
        "TriggerMessage",
        "DataTransfer",
        "SendLocalList",
        "GetLocalListVersion",
        "ReserveNow",
        "CancelReservation",
        "SetChargingProfile",
        "ClearChargingProfile",
        "GetCompositeSchedule",
        "UpdateFirmware",
        "GetDiagnostics",
    ),
    OcppVersion.V201: (
        "RequestStartTransaction",
        "RequestStopTransaction",
        "Reset",
        "ChangeAvailability",
        "UnlockConnector",
        "GetVariables",
        "SetVariables",
        "GetBaseReport",
        "TriggerMessage",
        "ClearCache",
        "SendLocalList",
        "SetChargingProfile",
        "ClearChargingProfile",
        "ReserveNow",
        "UpdateFirmware",
        "GetLog",
        "GetTransactionStatus",
    ),
}

_CAMEL_HUMP: Final = re.compile(r"(?<!^)(?=[A-Z])")


def _segment(version: OcppVersion) -> str:
    return "v" + version.value.replace(".", "")  # "v16", "v201"


def command_path(version: OcppVersion, action: str) -> str:
    """The route of ``action`` for ``version``, e.g. ``/api/stations/{station_id}/v16/reset``."""
    kebab = _CAMEL_HUMP.sub("-", action).lower()
    return f"/api/stations/{{station_id}}/{_segment(version)}/{kebab}"


def _components(version: OcppVersion) -> dict[str, Any]:
    """OpenAPI components of the request and response Structs of ``version``'s commands."""
    prefix = _segment(version) + "."
    types = [
        table[action]
        for action in COMMANDS[version]
        for table in (message_types(version), message_types(version, response=True))
    ]
    _, components = msgspec.json.schema_components(
        types, ref_template=f"#/components/schemas/{prefix}{{name}}"
    )
    return {prefix + name: schema for name, schema in components.items()}


def _ref(version: OcppVersion, struct: type[msgspec.Struct]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{_segment(version)}.{struct.__name__}"}


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None once it exceeds ``limit`` bytes (read no further)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _endpoint(
    caller: StationCaller, version: OcppVersion, action: str
) -> Callable[[str, Request], Awaitable[Response]]:
    limit = caller.service.settings.max_frame_size

    async def command(station_id: str, request: Request) -> Response:
        body = await _read_body(request, limit)
        if body is None:
            return problem(413, f"request body larger than max_frame_size ({limit} bytes)")
        result = await caller.call(station_id, action, body or b"{}", version=version)
        if isinstance(result, JSONResponse):
            return result
        return Response(msgspec.json.encode(result), media_type="application/json")

    command.__name__ = f"{_segment(version)}_{_CAMEL_HUMP.sub('_', action).lower()}"
    return command


def command_router(caller: StationCaller) -> APIRouter:
    """The named command routes of every version in :data:`COMMANDS`."""
    router = APIRouter()
    for version, actions in COMMANDS.items():
        requests = message_types(version)
        responses = message_types(version, response=True)
        for action in actions:
            request_type, response_type = requests[action], responses[action]
            empty = not msgspec.structs.fields(request_type)
            endpoint = _endpoint(caller, version, action)
            router.add_api_route(
                command_path(version, action),
                endpoint,
                methods=["POST"],
                name=endpoint.__name__,
                operation_id=endpoint.__name__,
                summary=f"{action} (OCPP {version})",
                description=(
                    f"Send an OCPP {version} **{action}** CALL to the station and return its "
                    f"response payload.\n\nThe body is the {action} request with the spec's "
                    "camelCase names"
                    + (" (this one has no fields; the body may be empty)" if empty else "")
                    + "; it is validated before anything is sent. The CALL queues behind "
                    "any CALL in flight to the station (OCPP-J: one outstanding CALL)."
                ),
                tags=[f"commands (OCPP {version})"],
                responses={
                    200: {
                        "description": f"The station's {action} response.",
                        "content": {"application/json": {"schema": _ref(version, response_type)}},
                    },
                    **CALL_RESPONSES,
                    409: {
                        "model": CALL_RESPONSES[409]["model"],
                        "description": "The station is not connected, or it speaks another "
                        "OCPP version.",
                    },
                    413: {
                        "model": CALL_RESPONSES[409]["model"],
                        "description": "The body is larger than the CSMS's max_frame_size.",
                    },
                },
                openapi_extra={
                    "requestBody": {
                        "required": not empty,
                        "content": {"application/json": {"schema": _ref(version, request_type)}},
                    }
                },
            )
    return router


def include_commands(api: FastAPI, caller: StationCaller) -> None:
    """Add the command routes to ``api`` and their message schemas to its OpenAPI document."""
    api.include_router(command_router(caller))
    components: dict[str, Any] = {}
    for version in COMMANDS:
        components |= _components(version)
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = generate()  # FastAPI caches it on api.openapi_schema
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
        return api.openapi_schema or generate()

    api.openapi = openapi  # type: ignore[method-assign]
