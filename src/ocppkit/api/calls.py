"""One CALL from the HTTP API to a live station: validate, send, map the outcome to HTTP.

The generic ``POST /api/stations/{id}/call`` and every named command endpoint
(:mod:`ocppkit.api.commands`) go through :meth:`StationCaller.call`, so they answer alike::

    200                                 the station's CALLRESULT (the caller shapes the body)
    409  {"detail"}                     the station is not connected, it went away, it
                                        speaks another OCPP version than the endpoint's, or
                                        the CALL would lower its security profile
                                        (A00.FR.005, :mod:`ocppkit.api.guards`)
    422  {"detail", "code", "description", "path"}
                                        the action is unknown for the station's version, or
                                        the payload fails its schema: the CallError code the
                                        station would have answered; nothing is sent
    502  {"code", "description", "details"}
                                        the station answered with a CALLERROR (or an invalid
                                        reply)
    503  {"detail"}                     too many CALLs already queued for the station
    504  {"detail"}                     no reply within the CSMS's ``call_timeout``

The payload arrives as JSON bytes and is decoded straight into the typed request (that is
the validation, :mod:`ocppkit.protocol.validation`), never through an intermediate model.
A CALL queues behind any CALL in flight on the connection (OCPP-J: one outstanding CALL).
"""

from __future__ import annotations

from typing import Any

import msgspec
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from ocppkit.csms.service import CsmsService
from ocppkit.protocol import OcppVersion
from ocppkit.protocol.errors import (
    CallErrorReceived,
    CallTimeoutError,
    ErrorCode,
    OutgoingMessageError,
    PayloadError,
    SessionClosedError,
    wire_code,
)
from ocppkit.protocol.validation import Validator

from .guards import GUARDED_ACTIONS, check_profile_downgrade
from .schemas import Problem

__all__ = [
    "CALL_RESPONSES",
    "PayloadProblem",
    "StationCallError",
    "StationCaller",
    "problem",
]


class PayloadProblem(Problem):
    code: str
    description: str
    path: str | None


class StationCallError(BaseModel):
    code: str
    description: str
    details: dict[str, Any]


#: The error answers of a call endpoint, for its OpenAPI ``responses``.
CALL_RESPONSES: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The station is not connected."},
    422: {"model": PayloadProblem, "description": "Unknown action or invalid payload."},
    502: {"model": StationCallError, "description": "The station answered a CALLERROR."},
    503: {"model": Problem, "description": "Too many CALLs queued for the station."},
    504: {"model": Problem, "description": "No reply within the call timeout."},
}


class StationCaller:
    """Sends CALLs to the stations connected to ``service``; one per API instance.

    Validators are strict whatever the peer's leniency (an operator's typo is not a sloppy
    charger) and built once per version, on first use.
    """

    def __init__(self, service: CsmsService) -> None:
        self.service = service
        self._validators: dict[OcppVersion, Validator] = {}

    def validator(self, version: OcppVersion) -> Validator:
        """The strict validator of ``version``."""
        validator = self._validators.get(version)
        if validator is None:
            validator = self._validators[version] = Validator(version)
        return validator

    async def call(
        self,
        station_id: str,
        action: str,
        payload: bytes,
        *,
        version: OcppVersion | None = None,
    ) -> msgspec.Struct | JSONResponse:
        """Validate ``payload`` (JSON bytes), send it, and wait for the reply.

        Args:
            station_id: the station to call.
            action: the OCPP action, case-sensitive.
            payload: the request as JSON with wire (camelCase) names.
            version: the OCPP version the caller's endpoint is for; a station that speaks
                another one is a 409, and nothing is sent. None: the station's own.

        Returns:
            The station's typed response, or the error answer (see the module docstring).
        """
        if action in GUARDED_ACTIONS:  # before anything else, connected or not
            refused = await check_profile_downgrade(
                self.service, station_id, action, _as_object(payload)
            )
            if refused is not None:  # OCPP A00.FR.005 (reliability.md G4)
                return problem(409, refused)
        connection = self.service.connections.get(station_id)
        if connection is None or connection.closed:
            return problem(409, f"station {station_id!r} is not connected")
        station_version = connection.session.version
        if version is not None and station_version is not version:
            return problem(
                409,
                f"station {station_id!r} speaks OCPP {station_version}; "
                f"this is an OCPP {version} command",
            )
        validator = self.validator(station_version)
        if not (validator.knows(action) and validator.has_response(action)):
            return JSONResponse(
                PayloadProblem(
                    detail=f"OCPP {station_version} has no CALL {action!r}",
                    code=wire_code(ErrorCode.NOT_IMPLEMENTED, station_version),
                    description=f"unknown action {action!r}",
                    path=None,
                ).model_dump(),
                status_code=422,
            )
        try:
            request, _ = validator.decode(action, payload)
        except PayloadError as exc:
            return _payload_problem(exc)
        try:
            result: msgspec.Struct = await connection.call(action, request)
        except CallErrorReceived as exc:
            return _station_error(exc.code, exc.description, exc.details)
        except PayloadError as exc:  # the station's reply fails the response schema
            return _station_error(exc.code, exc.description, {"path": exc.path})
        except CallTimeoutError:
            timeout = self.service.settings.call_timeout
            return problem(504, f"no reply from {station_id!r} within {timeout:g} s")
        except SessionClosedError:
            return problem(409, f"station {station_id!r} disconnected before answering")
        except OutgoingMessageError as exc:
            if isinstance(exc.__cause__, PayloadError):
                return _payload_problem(exc.__cause__)
            return problem(503, str(exc))
        return result


def problem(status: int, detail: str) -> JSONResponse:
    """A ``{"detail": ...}`` answer, shaped like FastAPI's own errors."""
    return JSONResponse({"detail": detail}, status_code=status)


def _as_object(payload: bytes) -> dict[str, Any]:
    """The payload as a dict for the guards; anything else is left to validation (422)."""
    try:
        value = msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _payload_problem(exc: PayloadError) -> JSONResponse:
    body = PayloadProblem(
        detail=f"invalid payload: {exc.description}",
        code=exc.code,
        description=exc.description,
        path=exc.path,
    )
    return JSONResponse(body.model_dump(), status_code=422)


def _station_error(code: str, description: str, details: dict[str, Any]) -> JSONResponse:
    body = StationCallError(code=code, description=description, details=details)
    return JSONResponse(body.model_dump(), status_code=502)
