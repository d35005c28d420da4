"""Imports point down only (design.md "Layers"), and the protocol core does no I/O (rule 1).

messages <- protocol <- transport <- storage <- station <- csms <- api <- node <- cli: a
module never imports a layer above its own; ``protocol`` and ``messages`` never import asyncio,
sockets or the clock. (storage sits beside transport in design.md; neither imports the other.
station sits beside csms: it never imports csms, api, node or cli.) The pure station modules
also read no clock and no global random state.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src" / "ocppkit"
LAYERS = [
    "messages",
    "protocol",
    "transport",
    "storage",
    "station",  # beside csms (design.md "Layers"): never imports csms, api, node or cli
    "csms",
    "api",
    "node",
    "commands",  # the cli level: one module per command, registered in cli.py
    "cli",
]  # lowest first
IO_MODULES = {"asyncio", "socket", "selectors", "ssl", "time", "threading", "websockets"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_point_down_only(layer: str) -> None:
    higher = LAYERS[LAYERS.index(layer) + 1 :]
    paths = [SRC / f"{layer}.py"] if (SRC / f"{layer}.py").exists() else (SRC / layer).rglob("*.py")
    for path in paths:
        for name in imported_modules(path):
            for other in higher:
                assert not name.startswith(f"ocppkit.{other}"), f"{path} imports {name}"


@pytest.mark.parametrize("layer", ["messages", "protocol"])
def test_core_is_sans_io(layer: str) -> None:
    for path in (SRC / layer).rglob("*.py"):
        for name in imported_modules(path):
            assert name.split(".")[0] not in IO_MODULES, f"{path} imports {name}"


# Station modules that must stay pure like the protocol core: no I/O, no clock reads, no
# global random state (the caller passes the time and a seeded random.Random).
PURE_STATION_MODULES = [
    "status",
    "meter",
    "backoff",
    "charging_profile",
    "tx_points",
    "monitoring",
    "display_messages",
    "customer_information",
    "paging",
    "network_profiles",
]
IMPURE_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


@pytest.mark.parametrize("module", PURE_STATION_MODULES)
def test_station_core_is_pure(module: str) -> None:
    path = SRC / "station" / f"{module}.py"
    for name in imported_modules(path):
        assert name.split(".")[0] not in IO_MODULES, f"{path} imports {name}"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert not (node.value.id == "random" and node.attr != "Random"), (
                f"{path}:{node.lineno} uses the global random state (random.{node.attr})"
            )
        if isinstance(node, ast.Attribute):
            assert node.attr not in IMPURE_CALLS, f"{path}:{node.lineno} reads the clock"
