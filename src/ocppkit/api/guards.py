"""Rules the API applies to CALLs it sends on an operator's behalf.

OCPP 2.0.1 A00.FR.005: the security profile of a station SHALL NOT be lowered by the
CSMS (reliability.md G4). Through the API that could happen three ways: ``PATCH
/api/stations/{id}`` (refused in :mod:`ocppkit.api.stations`), or a raw CALL that sets the
station's ``SecurityProfile`` configuration key (1.6 security whitepaper) or its
``SecurityCtrlr.SecurityProfile`` variable (2.x). :func:`profile_downgrade` recognises the
latter two, and :func:`check_profile_downgrade` looks up the station's stored profile for
them, so every endpoint that sends CALLs can refuse them the same way (409).
"""

from __future__ import annotations

from typing import Any

from ocppkit.csms.service import CsmsService
from ocppkit.storage.models import Station

__all__ = ["GUARDED_ACTIONS", "check_profile_downgrade", "profile_downgrade"]

#: The CALLs that can change a station's security profile.
GUARDED_ACTIONS = frozenset({"ChangeConfiguration", "SetVariables"})


def _lower(value: Any, current: int) -> int | None:
    """The requested profile when it is below ``current``; a non-number counts as 0."""
    try:
        requested = int(str(value).strip())
    except ValueError:
        return 0 if current > 0 else None
    return requested if requested < current else None


def profile_downgrade(action: str, payload: dict[str, Any], current: int) -> str | None:
    """Why the CALL ``action(payload)`` must not be sent to a station at profile
    ``current``, or None when it does not lower the security profile."""
    if action == "ChangeConfiguration":  # 1.6 (security whitepaper key)
        if str(payload.get("key", "")).lower() == "securityprofile":
            lower = _lower(payload.get("value"), current)
            if lower is not None:
                return _reason(current, lower)
    elif action == "SetVariables":  # 2.0.1 / 2.1
        for item in payload.get("setVariableData") or []:
            if not isinstance(item, dict):
                continue
            component = _name(item.get("component"))
            variable = _name(item.get("variable"))
            if component == "SecurityCtrlr" and variable == "SecurityProfile":
                lower = _lower(item.get("attributeValue"), current)
                if lower is not None:
                    return _reason(current, lower)
    return None


def _name(value: Any) -> Any:
    return value.get("name") if isinstance(value, dict) else None


def _reason(current: int, requested: int) -> str:
    return (
        f"lowering the security profile ({current} -> {requested}) is not allowed (OCPP A00.FR.005)"
    )


async def check_profile_downgrade(
    service: CsmsService, station_id: str, action: str, payload: dict[str, Any]
) -> str | None:
    """:func:`profile_downgrade` against the station's stored security profile; reads the
    database only for the actions in :data:`GUARDED_ACTIONS`."""
    if action not in GUARDED_ACTIONS:
        return None
    async with service.db.session() as session:
        station = await session.get(Station, station_id)
    current = station.security_profile if station is not None else 0
    return profile_downgrade(action, payload, current)
