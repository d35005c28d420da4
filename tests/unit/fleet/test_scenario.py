"""Scenario files (issue 4 "Scenarios": steps with assertions, exit code non-zero when an
assertion fails): parsing with one error line per mistake, the expectation checker,
variable substitution, the frame log, and the step runner's pass/fail logic."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ocppkit.fleet.scenario import (
    STEP_KINDS,
    FrameLog,
    ScenarioError,
    ScenarioRun,
    check_expect,
    error_name,
    load_scenario,
    parse_scenario,
    resolve_path,
    substitute,
)
from ocppkit.protocol import CallErrorReceived, CallTimeoutError
from ocppkit.protocol.versions import OcppVersion

EXAMPLES = Path(__file__).parents[3] / "examples" / "scenarios"


def steps(*tables: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"step": list(tables), **top}


# Parsing -------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.name)
def test_examples_parse(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.steps and scenario.name


def test_the_seven_examples_ship() -> None:
    names = {p.stem for p in EXAMPLES.glob("*.toml")}
    assert {
        "boot_heartbeat",
        "unknown_action",
        "no_reply_timeout",
        "serialized_writes",
        "server_closes",
        "charging_session_16",
        "charging_session_201",
    } <= names


def test_parse_a_scenario() -> None:
    scenario = parse_scenario(
        steps(
            {"do": "connect"},
            {"do": "boot"},
            {
                "do": "call",
                "action": "Authorize",
                "payload": {"idTag": "T"},
                "timeout": 5,
                "expect": {"idTagInfo.status": "Accepted"},
                "save": {"s": "idTagInfo.status"},
            },
            name="demo",
            station={"ocpp_version": "2.0.1", "heartbeat_interval": 5},
        )
    )
    assert scenario.name == "demo"
    assert scenario.station == {"ocpp_version": "2.0.1", "heartbeat_interval": 5}
    boot, call = scenario.steps[1], scenario.steps[2]
    assert boot.expect == {"status": "Accepted"}  # boot checks Accepted unless told otherwise
    assert call.index == 3 and call.timeout == 5.0 and call.name == "call Authorize"
    assert call.params == {"action": "Authorize", "payload": {"idTag": "T"}}
    assert call.save == {"s": "idTagInfo.status"}


def test_every_mistake_is_one_line_with_the_step_number() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(
            steps(
                {"do": "teleport"},
                {"action": "Heartbeat"},
                {"do": "call"},
                {"do": "plug", "connector": 0, "colour": "red"},
                {"do": "sleep", "seconds": -1},
                {"do": "wait_frame", "direction": "sideways"},
                {"do": "call", "action": "X", "expect": {"a": 1}, "expect_error": "*"},
                {"do": "call", "action": "X", "expect": {"a": {"gt": 1, "bigger": 2}}},
                {"do": "boot", "timeout": 0},
                station={"ocpp_version": "1.5", "colour": "red"},
                extra=1,
            )
        )
    errors = info.value.errors
    for fragment in [
        "unknown key 'extra'",
        "station.colour: unknown",
        'station.ocpp_version: must be "1.6" or "2.0.1"',
        "step 1: 'do' must be one of",
        "step 2: missing 'do'",
        "step 3 (call): missing 'action'",
        "step 4 (plug): unknown key 'colour' (allowed: connector)",
        "step 4 (plug): connector must be an integer >= 1",
        "step 5 (sleep): seconds must be a number >= 0",
        'step 6 (wait_frame): direction must be "in" or "out"',
        "step 7 (call): give expect or expect_error, not both",
        "step 8 (call): expect 'a': unknown operator 'bigger'",
        "step 9 (boot): timeout must be a number > 0",
    ]:
        assert any(fragment in line for line in errors), (fragment, errors)
    assert len(errors) == 13


def test_no_steps_is_an_error() -> None:
    with pytest.raises(ScenarioError, match="no steps"):
        parse_scenario({"name": "empty"})


def test_load_scenario_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[step]]\ndo = "nap"\n', encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}: step 1: 'do' must be one of")
    assert load_scenario(EXAMPLES / "boot_heartbeat.toml").name == "boot and heartbeat cadence"


def test_every_step_kind_has_a_runner_method() -> None:
    for kind in STEP_KINDS:
        assert callable(getattr(ScenarioRun, f"_do_{kind}"))


# Checking ------------------------------------------------------------------------------
REPLY = {
    "idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z"},
    "transactionId": 42,
    "list": [{"a": 1}, {"a": 2}],
    "flag": True,
    "none": None,
}


@pytest.mark.parametrize(
    ("expect", "failures"),
    [
        ({"idTagInfo.status": "Accepted"}, []),
        ({"transactionId": 42.0}, []),  # numbers compare by value
        ({"idTagInfo.status": "Blocked"}, ['idTagInfo.status: got "Accepted", wanted "Blocked"']),
        ({"idTagInfo.parentIdTag": "P"}, ['idTagInfo.parentIdTag: missing (wanted "P")']),
        ({"list.1.a": 2, "list.-1.a": 2}, []),
        ({"list.5.a": 2}, ["list.5.a: missing (wanted 2)"]),
        ({"flag": 1}, ["flag: got true, wanted 1"]),  # true is not 1
        ({"transactionId": {"gt": 0, "le": 42}}, []),
        ({"transactionId": {"lt": 42}}, ["transactionId: 42 is not lt 42"]),
        ({"transactionId": {"in": [1, 42]}}, []),
        ({"transactionId": {"not_in": [1, 42]}}, ["transactionId: 42 is not not_in [1,42]"]),
        ({"idTagInfo.expiryDate": {"matches": "^2030-"}}, []),
        (
            {"idTagInfo.status": {"ne": "Accepted"}},
            ['idTagInfo.status: "Accepted" is not ne "Accepted"'],
        ),
        ({"other": {"exists": False}}, []),
        ({"flag": {"exists": False}}, ["flag: should be absent, got true"]),
        ({"flag": {"exists": True}}, []),
        ({"none": {"null": True}, "flag": {"null": False}}, []),
        ({"idTagInfo.status": {"gt": 3}}, ['idTagInfo.status: "Accepted" is not gt 3']),
        ({"idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-01T00:00:00Z"}}, []),
    ],
)
def test_check_expect(expect: dict[str, Any], failures: list[str]) -> None:
    assert check_expect(expect, REPLY) == failures


def test_resolve_path_on_scalars() -> None:
    assert resolve_path({"a": {"b": 1}}, "a.b") == 1
    assert resolve_path(REPLY, "") is REPLY
    assert resolve_path(5, "a") is not None  # the missing sentinel, never an exception


def test_substitute() -> None:
    variables = {"station_id": "CP1", "tx": 42}
    assert substitute(
        {"a": "${tx}", "b": "tx=${tx} at ${station_id}", "c": ["${station_id}"]}, variables
    ) == {"a": 42, "b": "tx=42 at CP1", "c": ["CP1"]}
    assert substitute(7, variables) == 7
    with pytest.raises(KeyError):
        substitute("${nope}", variables)


def test_error_name() -> None:
    assert (
        error_name(
            CallErrorReceived(
                "NotImplemented", "x", {}, version=OcppVersion.V16, action="A", message_id="1"
            )
        )
        == "NotImplemented"
    )
    assert error_name(CallTimeoutError("Heartbeat", "1", 3.0)) == "Timeout"
    assert error_name(TimeoutError()) == "Timeout"
    assert error_name(ValueError("x")) == "ValueError"


# Frame log -----------------------------------------------------------------------------
async def test_frame_log_pairs_replies_with_calls_and_consumes_once() -> None:
    log = FrameLog()
    log.append("out", '[2,"1","Heartbeat",{}]', 1.0)
    log.append("in", '[3,"1",{"currentTime":"t"}]', 1.1)
    log.append("in", '[4,"9","NotImplemented","no",{}]', 1.2)
    log.append("in", "not json", 1.3)
    reply = log.find(lambda f: f.view.get("type") == 3)
    assert reply is not None and reply.view == {
        "type": 3,
        "id": "1",
        "payload": {"currentTime": "t"},
        "action": "Heartbeat",
    }
    assert log.find(lambda f: f.view.get("type") == 3) is None  # used once
    error = log.find(lambda f: f.view.get("type") == 4)
    assert error is not None and error.view["code"] == "NotImplemented"
    assert error.view["action"] is None  # a reply to no CALL we saw
    assert log.find(lambda f: f.view.get("type") is None).view["text"] == "not json"


async def test_frame_log_wait_wakes_on_a_new_frame_and_times_out() -> None:
    log = FrameLog()

    async def later() -> None:
        await asyncio.sleep(0.05)
        log.append("out", '[2,"2","Heartbeat",{}]', 2.0)

    task = asyncio.create_task(later())
    frame = await log.wait(lambda f: f.view.get("action") == "Heartbeat", 2.0)
    await task
    assert frame is not None and frame.at == 2.0
    assert await log.wait(lambda f: True, 0.05) is None


# Running (pass/fail logic) ----------------------------------------------------------------
class ScriptedStation:
    """Answers calls from a table and reports frames to the log as a runtime would; the
    logic under test is the runner's, not this station's."""

    def __init__(self, log: FrameLog, replies: dict[str, Any]) -> None:
        self.log = log
        self.replies = replies
        self.state: dict[str, Any] = {
            "connected": False,
            "connectors": [{"id": 1, "status": "Available"}],
        }
        self.stopped = False
        self._running = asyncio.Event()
        self.n = 0

    async def run(self) -> None:
        self.state["connected"] = True
        self._emit("out", [2, "b", "BootNotification", {}])
        self._emit("in", [3, "b", {"status": "Accepted", "interval": 300}])
        await self._running.wait()

    def _emit(self, direction: str, msg: list[Any]) -> None:
        self.log.append(direction, json.dumps(msg), asyncio.get_running_loop().time())

    async def stop(self, reason: str = "") -> None:
        self.stopped = True
        self._running.set()

    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        reply = self.replies[action]
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def plug(self, connector: int = 1) -> None:
        self.state["connectors"][0]["status"] = "Preparing"

    async def send_raw(self, frame: str) -> None:
        self.log.append("out", frame, 0.0)

    async def wait_for_state(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float,  # noqa: ASYNC109 - the runtime's signature
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while not predicate(self.state):  # noqa: ASYNC110 - polls a plain dict
                await asyncio.sleep(0.01)
        return self.state

    def snapshot(self) -> dict[str, Any]:
        return self.state


async def run_scenario(
    table: dict[str, Any], replies: dict[str, Any]
) -> tuple[Any, ScriptedStation]:
    log = FrameLog()
    station = ScriptedStation(log, replies)
    run = ScenarioRun(parse_scenario(table), "CP1", lambda: station, log)  # type: ignore[arg-type,return-value]
    return await run.run(), station


async def test_passing_scenario_saves_and_substitutes() -> None:
    result, station = await run_scenario(
        steps(
            {"do": "connect"},
            {"do": "boot", "expect": {"interval": {"ge": 60}}},
            {
                "do": "call",
                "action": "Authorize",
                "payload": {"idTag": "${station_id}"},
                "save": {"st": "idTagInfo.status"},
            },
            {"do": "call", "action": "Heartbeat", "payload": {}, "expect": {"echo": "${st}"}},
            {"do": "plug"},
            {"do": "wait_status", "status": "Preparing", "timeout": 1},
            {"do": "check", "expect": {"connectors.0.status": "Preparing"}},
        ),
        {"Authorize": {"idTagInfo": {"status": "Accepted"}}, "Heartbeat": {"echo": "Accepted"}},
    )
    assert [s.status for s in result.steps] == ["passed"] * 7, result.to_dict()
    assert result.passed and station.stopped  # the station is always stopped at the end


async def test_first_failure_ends_the_run_and_skips_the_rest() -> None:
    result, station = await run_scenario(
        steps(
            {"do": "connect"},
            {"do": "call", "action": "Heartbeat", "payload": {}, "expect": {"x": 2}},
            {"do": "plug"},
        ),
        {"Heartbeat": {"x": 1}},
    )
    assert [s.status for s in result.steps] == ["passed", "failed", "skipped"]
    assert result.steps[1].message == "x: got 1, wanted 2"
    assert not result.passed and result.failure is result.steps[1] and station.stopped


async def test_expect_error_matches_codes_and_timeouts() -> None:
    boom = CallErrorReceived(
        "NotImplemented", "no", {}, version=OcppVersion.V16, action="A", message_id="1"
    )
    result, _ = await run_scenario(
        steps(
            {"do": "connect"},
            {"do": "call", "action": "A", "payload": {}, "expect_error": "NotImplemented"},
            {"do": "call", "action": "A", "payload": {}, "expect_error": "*"},
            {"do": "wait_status", "status": "Charging", "timeout": 0.05, "expect_error": "Timeout"},
            {"do": "call", "action": "A", "payload": {}, "expect_error": "GenericError"},
        ),
        {"A": boom},
    )
    assert [s.status for s in result.steps] == ["passed", "passed", "passed", "passed", "failed"]
    assert result.steps[4].message == "failed with NotImplemented, wanted GenericError"


async def test_expected_error_that_does_not_happen_fails() -> None:
    result, _ = await run_scenario(
        steps({"do": "call", "action": "A", "payload": {}, "expect_error": "*"}), {"A": {}}
    )
    assert result.steps[0].status == "failed"
    assert result.steps[0].message == "succeeded, wanted error *"


async def test_timeouts_fail_with_a_message() -> None:
    result, _ = await run_scenario(
        steps({"do": "connect"}, {"do": "wait_csms_call", "action": "Reset", "timeout": 0.05}), {}
    )
    assert result.steps[1].status == "failed"
    assert result.steps[1].message == "the CSMS sent no Reset within 0.05 s"


async def test_wait_frame_absent_and_wait_sent_gaps() -> None:
    result, _ = await run_scenario(
        steps(
            {"do": "connect"},
            {"do": "send_raw", "frame": '[2,"h1","Heartbeat",{}]', "pad_to": 40},
            {"do": "wait_sent", "action": "Heartbeat"},
            {
                "do": "wait_frame",
                "direction": "in",
                "absent": True,
                "timeout": 0.1,
                "expect": {"type": 4},
            },
            {"do": "send_raw", "frame": '[4,"x","GenericError","",{}]'},
            {
                "do": "wait_frame",
                "direction": "out",
                "absent": True,
                "timeout": 0.1,
                "expect": {"type": 4},
            },
        ),
        {},
    )
    assert [s.status for s in result.steps][:5] == ["passed"] * 5
    assert result.steps[5].status == "failed"
    assert result.steps[5].message.startswith("unexpected frame out: [4,")


async def test_boot_callerror_is_a_failure_with_the_code() -> None:
    log = FrameLog()
    log.append("out", '[2,"b","BootNotification",{}]', 0.0)
    log.append("in", '[4,"b","FormationViolation","bad",{}]', 0.0)
    station = ScriptedStation(log, {})
    run = ScenarioRun(parse_scenario(steps({"do": "boot"})), "CP1", lambda: station, log)  # type: ignore[arg-type,return-value]
    result = await run.run()
    assert result.steps[0].status == "failed"
    assert result.steps[0].message == "FormationViolation: CALLERROR FormationViolation: bad"
