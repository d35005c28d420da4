"""``ocppkit.api.guards.profile_downgrade``: which CALLs would lower a station's security
profile (OCPP 2.0.1 A00.FR.005, checklist G4). Pure function: no CSMS needed."""

from __future__ import annotations

from typing import Any

import pytest

from ocppkit.api.guards import profile_downgrade


def set_variables(*items: tuple[str, str, Any]) -> dict[str, Any]:
    return {
        "setVariableData": [
            {"component": {"name": c}, "variable": {"name": v}, "attributeValue": value}
            for c, v, value in items
        ]
    }


@pytest.mark.parametrize(
    ("action", "payload", "current", "refused"),
    [
        ("ChangeConfiguration", {"key": "SecurityProfile", "value": "1"}, 2, True),
        ("ChangeConfiguration", {"key": "SECURITYPROFILE", "value": "0"}, 1, True),  # CiString
        ("ChangeConfiguration", {"key": "SecurityProfile", "value": "x"}, 1, True),  # not a number
        ("ChangeConfiguration", {"key": "SecurityProfile", "value": "2"}, 2, False),  # same
        ("ChangeConfiguration", {"key": "SecurityProfile", "value": "3"}, 2, False),  # raise
        ("ChangeConfiguration", {"key": "SecurityProfile", "value": "x"}, 0, False),
        ("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "0"}, 3, False),
        ("SetVariables", set_variables(("SecurityCtrlr", "SecurityProfile", "1")), 2, True),
        (
            "SetVariables",
            set_variables(
                ("OCPPCommCtrlr", "HeartbeatInterval", "0"),
                ("SecurityCtrlr", "SecurityProfile", "0"),
            ),
            1,
            True,
        ),
        ("SetVariables", set_variables(("SecurityCtrlr", "SecurityProfile", "3")), 2, False),
        ("SetVariables", set_variables(("OCPPCommCtrlr", "SecurityProfile", "0")), 2, False),
        ("SetVariables", {"setVariableData": ["junk", {"component": "x"}]}, 2, False),
        ("Reset", {"type": "Hard"}, 3, False),
    ],
)
def test_G4_profile_downgrade(
    action: str, payload: dict[str, Any], current: int, refused: bool
) -> None:
    reason = profile_downgrade(action, payload, current)
    assert (reason is not None) == refused
    if reason is not None:
        assert "A00.FR.005" in reason and f"({current} -> " in reason
