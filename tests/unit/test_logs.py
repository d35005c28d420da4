"""Log output of the programs (run in a subprocess: structlog's configuration is global).

Anchors: design.md conventions (structlog, one line per event, ``station_id`` on every line
about a station) and reliability.md G6 (station strings such as ``\\r\\nFAKE LOG`` are
escaped in logs).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

SCRIPT = """
import sys, structlog
from ocppkit.logs import configure_logging
configure_logging(sys.argv[1], sys.argv[2])
log = structlog.get_logger("t")
log.debug("hidden at info")
log.info("station connected", station_id="CP1\\r\\nFAKE LOG line", message_id="m1")
"""


def _run(level: str, fmt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, level, fmt], capture_output=True, text=True, timeout=60
    )


def test_json_is_one_object_per_line_with_escaped_station_strings() -> None:
    result = _run("info", "json")
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    event = json.loads(lines[0])
    assert event["station_id"] == "CP1\r\nFAKE LOG line"
    assert event["level"] == "info" and event["message_id"] == "m1"
    assert event["timestamp"].endswith("Z")


def test_console_is_one_line_per_event_and_cannot_be_forged() -> None:
    result = _run("info", "console")
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "station_id='CP1\\r\\nFAKE LOG line'" in lines[0]


def test_debug_level_shows_debug_events() -> None:
    assert "hidden at info" in _run("debug", "console").stderr


def test_unknown_level_is_refused() -> None:
    from ocppkit.logs import configure_logging

    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("chatty")
