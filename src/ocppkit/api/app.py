"""The CSMS's HTTP API: stations, transactions, health, and CALLs to a live station.

Reads go straight to storage; "online" means a live connection on this node (the
``connections`` of :class:`~ocppkit.csms.CsmsService`), not the stored flag.

``POST /api/stations/{id}/call`` sends one CALL and waits for the reply; it queues behind
any CALL in flight on that connection (OCPP-J: one outstanding CALL). Answers::

    200  {"action", "response"}        the station's CALLRESULT, with wire (camelCase) names
    409  {"detail"}                     the station is not connected, or it went away
    422  {"detail", "code", "description", "path"}
                                        the action is unknown for the station's version, or
                                        the payload fails its schema (the CallError code the
                                        station would have answered)
    502  {"code", "description", "details"}
                                        the station answered with a CALLERROR (or an invalid
                                        reply)
    503  {"detail"}                     too many CALLs already queued for the station
    504  {"detail"}                     no reply within the CSMS's ``call_timeout``

The resources live in one router each (:mod:`~ocppkit.api.stations`,
:mod:`~ocppkit.api.id_tags`, :mod:`~ocppkit.api.transactions`, :mod:`~ocppkit.api.messages`,
:mod:`~ocppkit.api.health`); :func:`create_api` assembles them. Authentication is one
app-wide dependency (:mod:`ocppkit.api.auth`): with ``api_token`` set, every route but
``/health`` and the docs needs ``Authorization: Bearer <token>``, including routes added
here later; without a token the settings keep the API on localhost.
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ocppkit.csms.service import CsmsService

from .auth import document_public_paths, token_guard
from .calls import CALL_RESPONSES, StationCaller
from .commands import include_commands
from .health import health_router
from .id_tags import id_tags_router
from .messages import messages_router
from .metrics import metrics_router
from .stations import stations_router
from .transactions import transactions_router

__all__ = ["create_api"]


# -- response and request bodies ---------------------------------------------------------------


class CallIn(BaseModel):
    action: str = Field(min_length=1, max_length=64, examples=["GetConfiguration"])
    payload: dict[str, Any] = Field(
        default_factory=dict, description="The request with wire (camelCase) names."
    )


class CallOut(BaseModel):
    action: str
    response: dict[str, Any]


# -- the application ---------------------------------------------------------------------------


def create_api(service: CsmsService) -> FastAPI:
    """The HTTP API of ``service``: OpenAPI at ``/docs``, schema at ``/openapi.json``."""
    api = FastAPI(
        title="ocppkit CSMS",
        summary="Stations, transactions and remote commands of an ocppkit central system.",
        version="0.1.0",
        # Every route, whoever adds it and whenever, needs the token (see ocppkit.api.auth).
        dependencies=[Depends(token_guard(service.settings.api_token))],
    )
    document_public_paths(api)
    caller = StationCaller(service)
    api.include_router(health_router(service))
    api.include_router(stations_router(service))
    api.include_router(id_tags_router(service))
    api.include_router(transactions_router(service))
    api.include_router(messages_router(service))
    api.include_router(metrics_router(service))
    include_commands(api, caller)  # the named command routes (ocppkit.api.commands)

    @api.post(
        "/api/stations/{station_id}/call",
        response_model=CallOut,
        responses=CALL_RESPONSES,
        tags=["stations"],
    )
    async def call_station(station_id: str, body: CallIn) -> Any:
        """Send one CALL to a connected station and return its reply."""
        # The shared path also refuses security-profile downgrades (ocppkit.api.guards).
        result = await caller.call(station_id, body.action, msgspec.json.encode(body.payload))
        if isinstance(result, JSONResponse):
            return result
        return CallOut(action=body.action, response=msgspec.to_builtins(result))

    return api
