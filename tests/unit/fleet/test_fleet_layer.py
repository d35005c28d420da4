"""The fleet package sits above ``station`` and below the CLI (design.md "Layers"): it never
imports ``csms``, ``api``, ``node``, ``cli`` or ``commands``, so it can drive any CSMS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_layers import imported_modules

FLEET = Path(__file__).parents[3] / "src" / "ocppkit" / "fleet"


@pytest.mark.parametrize("path", sorted(FLEET.glob("*.py")), ids=lambda p: p.name)
def test_fleet_imports_nothing_above_it(path: Path) -> None:
    for name in imported_modules(path):
        for higher in ("csms", "api", "node", "cli", "commands"):
            assert not name.startswith(f"ocppkit.{higher}"), f"{path.name} imports {name}"
