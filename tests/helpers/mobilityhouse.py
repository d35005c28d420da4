"""The mobilityhouse ``ocpp`` ChargePoint as an independent station that a CallError fails.

The library's ``call`` logs a CallError and returns None unless given ``suppress=False``.
A test that sends a notification and checks nothing else would then pass on any refusal
(NotSupported, SecurityError, FormationViolation...), as one of ours did. These stations
raise instead (the library's ``OCPPError`` subclass for the code), so every CALL a test makes
is either answered or fails it; a test that expects a CallError says so with
``pytest.raises``, or passes ``suppress=True``.
"""

from __future__ import annotations

from typing import Any

from ocpp.v16 import ChargePoint as _ChargePoint16
from ocpp.v21 import ChargePoint as _ChargePoint21
from ocpp.v201 import ChargePoint as _ChargePoint201

__all__ = ["Station16", "Station21", "Station201"]


class _RaisesCallErrors:
    async def call(self, payload: Any, suppress: bool = False, **kwargs: Any) -> Any:
        return await super().call(payload, suppress=suppress, **kwargs)  # type: ignore[misc]


class Station16(_RaisesCallErrors, _ChargePoint16):
    """An OCPP 1.6 station (mobilityhouse ``ocpp``) whose ``call`` raises a CallError."""


class Station201(_RaisesCallErrors, _ChargePoint201):
    """An OCPP 2.0.1 station (mobilityhouse ``ocpp``) whose ``call`` raises a CallError."""


class Station21(_RaisesCallErrors, _ChargePoint21):
    """An OCPP 2.1 station (mobilityhouse ``ocpp``) whose ``call`` raises a CallError."""
