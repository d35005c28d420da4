"""Scenarios: a readable file of steps with assertions, run by one station or a whole fleet.

Why: the questions a CSMS developer asks of a charger ("does it boot?", "does an unknown
action get NotImplemented?", "does a full session end with the right meter values?") are
sequences of actions and checks. A scenario file says them in order, in TOML, without
code; the result is pass/fail per step with a message, and JUnit XML for CI.

Format (``docs/scenarios.md`` is the reference)::

    name = "Full charging session, OCPP 1.6"
    [station]                       # overrides of the template's station settings
    ocpp_version = "1.6"

    [[step]]
    do = "connect"
    [[step]]
    do = "boot"                     # the BootNotification reply; default expect Accepted
    expect = { status = "Accepted", interval = { gt = 0 } }
    [[step]]
    do = "call"
    action = "Authorize"
    payload = { idTag = "TAG1" }
    expect = { "idTagInfo.status" = "Accepted" }

Every step has ``do`` and may have ``name`` (a label), ``timeout`` (seconds, default 30),
``expect`` (a table of dotted paths to expected values or operator tables),
``expect_error`` (a CallError code or error name, ``"*"`` for any failure) and ``save``
(``{ var = "path" }``: keep a value of the result as ``${var}`` for later steps). Strings
in payloads, frames and expectations may use ``${station_id}``, ``${now}`` (UTC, ISO 8601)
and saved variables; a string that is exactly ``${var}`` keeps the value's type.

Theory of operation
-------------------
Parsing (:func:`parse_scenario`) is pure and reports every mistake, one line each, with
the step's number. Checking (:func:`check_expect`) is pure: a list of failure messages,
empty when the result matches. Running (:class:`ScenarioRun`) is a small async loop over
the steps against an object with the station runtime's actions; frame-level steps
(``boot``, ``wait_sent``, ``wait_reply``, ``wait_csms_call``, ``wait_frame``) read a
:class:`FrameLog` fed from the station observer's ``on_frame``: every frame the station
sent or received, parsed, each matched at most once (so two waits for ``Heartbeat`` see
two heartbeats), found even if it arrived before the step began. The first failing step
ends the run; the steps after it are reported as skipped; the station is always stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import tomllib
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

__all__ = [
    "STEP_KINDS",
    "CallErrorReply",
    "Frame",
    "FrameLog",
    "Scenario",
    "ScenarioError",
    "ScenarioResult",
    "ScenarioRun",
    "ScenarioStation",
    "Step",
    "StepResult",
    "check_expect",
    "error_name",
    "load_scenario",
    "parse_scenario",
    "resolve_path",
    "substitute",
]

DEFAULT_TIMEOUT = 30.0
_COMMON = {"do", "name", "timeout", "expect", "expect_error", "save"}
#: step kind -> (required keys, optional keys)
STEP_KINDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "connect": (frozenset(), frozenset()),
    "boot": (frozenset(), frozenset()),
    "disconnect": (frozenset(), frozenset({"reason"})),
    "plug": (frozenset(), frozenset({"connector"})),
    "unplug": (frozenset(), frozenset({"connector"})),
    "park": (frozenset(), frozenset({"connector"})),
    "leave_bay": (frozenset(), frozenset({"connector"})),
    "authorize": (frozenset({"id_token"}), frozenset({"connector"})),
    "start": (frozenset(), frozenset({"connector", "id_token"})),
    "stop": (frozenset(), frozenset({"connector", "reason"})),
    "fault": (frozenset(), frozenset({"connector", "error_code"})),
    "clear_fault": (frozenset(), frozenset({"connector"})),
    "wait_status": (frozenset({"status"}), frozenset({"connector"})),
    "wait_csms_call": (frozenset({"action"}), frozenset({"match"})),
    "wait_sent": (frozenset({"action"}), frozenset({"match", "gap_min", "gap_max"})),
    "wait_reply": (frozenset({"action"}), frozenset({"match"})),
    "wait_state": (frozenset(), frozenset()),
    "wait_frame": (frozenset({"direction"}), frozenset({"absent"})),
    "call": (frozenset({"action"}), frozenset({"payload", "repeat", "concurrency"})),
    "send_raw": (frozenset({"frame"}), frozenset({"pad_to"})),
    "check": (frozenset(), frozenset()),
    "sleep": (frozenset({"seconds"}), frozenset()),
}
_OPERATORS = frozenset(
    {"eq", "ne", "gt", "ge", "lt", "le", "in", "not_in", "exists", "matches", "null"}
)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ScenarioError(ValueError):
    """A scenario file with mistakes; ``errors`` holds one line per mistake."""

    def __init__(self, errors: list[str], *, source: str = "scenario") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__("\n".join(f"{source}: {line}" for line in self.errors))


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One validated step; ``params`` holds the kind-specific keys."""

    index: int
    do: str
    name: str
    params: Mapping[str, Any]
    timeout: float = DEFAULT_TIMEOUT
    expect: Any = None
    expect_error: str | None = None
    save: Mapping[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"step {self.index} {self.name}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """A parsed scenario: a name, station overrides and the steps in order."""

    name: str
    description: str = ""
    station: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()


_STATION_KEYS = {
    "ocpp_version": str,
    "connectors": int,
    "heartbeat_interval": int,
    "meter_values_interval": int,
    "clock_aligned_interval": int,
    "supply": str,
    "vendor": str,
    "model": str,
    "security_profile": int,
    "password": str,
}


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; :class:`ScenarioError` names every mistake."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError([f"cannot read: {exc.strerror or exc}"], source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"not valid TOML: {exc}"], source=str(path)) from None
    try:
        return parse_scenario(data, default_name=path.stem)
    except ScenarioError as exc:
        raise ScenarioError(exc.errors, source=str(path)) from None


def parse_scenario(data: Mapping[str, Any], *, default_name: str = "scenario") -> Scenario:
    """Validate a parsed scenario table; every mistake is one line of the error."""
    errors: list[str] = []
    for key in data:
        if key not in {"name", "description", "station", "step"}:
            errors.append(f"unknown key {key!r} (expected name, description, [station], [[step]])")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        errors.append(f"name: must be a non-empty string, got {name!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        errors.append(f"description: must be a string, got {description!r}")
    station = data.get("station", {})
    if not isinstance(station, Mapping):
        errors.append("station: must be a table ([station])")
        station = {}
    for key, value in station.items():
        kind = _STATION_KEYS.get(key)
        if kind is None:
            errors.append(f"station.{key}: unknown (known: {', '.join(sorted(_STATION_KEYS))})")
        elif isinstance(value, bool) or not isinstance(value, kind):
            errors.append(f"station.{key}: must be {kind.__name__}, got {value!r}")
    version = station.get("ocpp_version")
    if version is not None and version not in ("1.6", "2.0.1"):
        errors.append(f'station.ocpp_version: must be "1.6" or "2.0.1", got {version!r}')
    raw_steps = data.get("step", [])
    if not isinstance(raw_steps, list) or not all(isinstance(s, Mapping) for s in raw_steps):
        errors.append("step: must be an array of tables ([[step]])")
        raw_steps = []
    if not raw_steps and not errors:
        errors.append("no steps: add [[step]] tables")
    steps = []
    for index, raw in enumerate(raw_steps, start=1):
        step = _parse_step(index, raw, errors)
        if step is not None:
            steps.append(step)
    if errors:
        raise ScenarioError(errors)
    return Scenario(
        name=str(name), description=str(description), station=dict(station), steps=tuple(steps)
    )


def _parse_step(index: int, raw: Mapping[str, Any], errors: list[str]) -> Step | None:
    where = f"step {index}"
    do = raw.get("do")
    if do not in STEP_KINDS:
        errors.append(
            f"{where}: 'do' must be one of {', '.join(STEP_KINDS)}, got {do!r}"
            if do is not None
            else f"{where}: missing 'do' (one of {', '.join(STEP_KINDS)})"
        )
        return None
    required, optional = STEP_KINDS[do]
    ok = True
    for key in raw:
        if key not in _COMMON and key not in required and key not in optional:
            allowed = sorted(required | optional)
            errors.append(
                f"{where} ({do}): unknown key {key!r}"
                + (f" (allowed: {', '.join(allowed)})" if allowed else "")
            )
            ok = False
    for key in sorted(required - set(raw)):
        errors.append(f"{where} ({do}): missing {key!r}")
        ok = False
    timeout = raw.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        errors.append(f"{where} ({do}): timeout must be a number > 0, got {timeout!r}")
        ok = False
    for key in ("connector", "repeat", "concurrency", "pad_to"):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                errors.append(f"{where} ({do}): {key} must be an integer >= 1, got {value!r}")
                ok = False
    for key in ("seconds", "gap_min", "gap_max"):
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                errors.append(f"{where} ({do}): {key} must be a number >= 0, got {value!r}")
                ok = False
    for key in ("action", "status", "id_token", "frame", "reason", "error_code", "name"):
        if key in raw and (not isinstance(raw[key], str) or not raw[key]):
            errors.append(f"{where} ({do}): {key} must be a non-empty string, got {raw[key]!r}")
            ok = False
    if "direction" in raw and raw["direction"] not in ("in", "out"):
        errors.append(f'{where} ({do}): direction must be "in" or "out", got {raw["direction"]!r}')
        ok = False
    if "absent" in raw and not isinstance(raw["absent"], bool):
        errors.append(f"{where} ({do}): absent must be true or false, got {raw['absent']!r}")
        ok = False
    if "match" in raw:
        problem = _expect_problem(raw["match"])
        if problem:
            errors.append(f"{where} ({do}): match {problem}")
            ok = False
    if do == "wait_state" and raw.get("expect") is None:
        errors.append(f"{where} ({do}): needs expect (the state to wait for)")
        ok = False
    if "payload" in raw and not isinstance(raw["payload"], Mapping):
        errors.append(f"{where} ({do}): payload must be a table, got {raw['payload']!r}")
        ok = False
    expect = raw.get("expect")
    if expect is not None:
        problem = _expect_problem(expect)
        if problem:
            errors.append(f"{where} ({do}): expect {problem}")
            ok = False
    expect_error = raw.get("expect_error")
    if expect_error is not None and (not isinstance(expect_error, str) or not expect_error):
        errors.append(f'{where} ({do}): expect_error must be a code like "NotImplemented" or "*"')
        ok = False
    if expect is not None and expect_error is not None:
        errors.append(f"{where} ({do}): give expect or expect_error, not both")
        ok = False
    save = raw.get("save", {})
    if not isinstance(save, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in save.items()
    ):
        errors.append(f'{where} ({do}): save must be a table of variable = "path"')
        ok = False
    if not ok:
        return None
    params = {k: v for k, v in raw.items() if k not in _COMMON}
    if do == "boot" and expect is None and expect_error is None:
        expect = {"status": "Accepted"}
    return Step(
        index=index,
        do=do,
        name=str(raw.get("name") or _default_name(do, params)),
        params=params,
        timeout=float(timeout),
        expect=expect,
        expect_error=expect_error,
        save=dict(save),
    )


def _default_name(do: str, params: Mapping[str, Any]) -> str:
    detail = params.get("action") or params.get("status") or params.get("id_token") or ""
    return f"{do} {detail}".strip()


def _expect_problem(expect: Any) -> str | None:
    if not isinstance(expect, Mapping) or not expect:
        return f"must be a non-empty table of path = value, got {expect!r}"
    for path, wanted in expect.items():
        if isinstance(wanted, Mapping) and wanted and set(wanted) & _OPERATORS:
            bad = sorted(set(wanted) - _OPERATORS)
            if bad:
                known = ", ".join(sorted(_OPERATORS))
                return f"{path!r}: unknown operator {bad[0]!r} (use {known})"
            if "matches" in wanted:
                try:
                    re.compile(str(wanted["matches"]))
                except re.error as exc:
                    return f"{path!r}: bad regular expression: {exc}"
            if ("in" in wanted and not isinstance(wanted["in"], list)) or (
                "not_in" in wanted and not isinstance(wanted["not_in"], list)
            ):
                return f"{path!r}: 'in' and 'not_in' take a list"
    return None


# Checking (pure) -----------------------------------------------------------------------
_MISSING = object()
_CHECKED = object()  # a step that applied its expectations itself


def resolve_path(value: Any, path: str) -> Any:
    """``"idTagInfo.status"`` in a nested dict/list (``connectors.0.status``); a missing
    part gives the sentinel ``_MISSING`` (tested with ``is``)."""
    current = value
    for part in path.split(".") if path else []:
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.lstrip("-").isdigit():
            i = int(part)
            if -len(current) <= i < len(current):
                current = current[i]
            else:
                return _MISSING
        else:
            return _MISSING
    return current


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    return bool(a == b)


def _compare(op: str, actual: Any, wanted: Any) -> bool:
    if op == "eq":
        return _same(actual, wanted)
    if op == "ne":
        return not _same(actual, wanted)
    if op == "in":
        return any(_same(actual, w) for w in wanted)
    if op == "not_in":
        return not any(_same(actual, w) for w in wanted)
    if op == "matches":
        return isinstance(actual, str) and re.search(str(wanted), actual) is not None
    if op == "null":
        return (actual is None) is bool(wanted)
    try:
        if op == "gt":
            return bool(actual > wanted)
        if op == "ge":
            return bool(actual >= wanted)
        if op == "lt":
            return bool(actual < wanted)
        return bool(actual <= wanted)  # le
    except TypeError:
        return False


def check_expect(expect: Mapping[str, Any], actual: Any) -> list[str]:
    """The failures of ``actual`` against ``expect`` (empty list: it matches).

    Each key is a dotted path; each value is the expected value (numbers compare by value,
    ``true`` only equals ``true``) or a table of operators: ``eq ne gt ge lt le in not_in
    matches`` (a regular expression, searched), ``exists`` (true/false) and ``null``
    (true: the value is JSON null; TOML has no null)."""
    failures = []
    for path, wanted in expect.items():
        got = resolve_path(actual, path)
        if isinstance(wanted, Mapping) and wanted and set(wanted) <= _OPERATORS:
            exists = wanted.get("exists")
            if got is _MISSING:
                if exists is False:
                    continue
                failures.append(f"{path}: missing (wanted {_show(wanted)})")
                continue
            if exists is False:
                failures.append(f"{path}: should be absent, got {_show(got)}")
                continue
            for op, value in wanted.items():
                if op != "exists" and not _compare(op, got, value):
                    failures.append(f"{path}: {_show(got)} is not {op} {_show(value)}")
        elif got is _MISSING:
            failures.append(f"{path}: missing (wanted {_show(wanted)})")
        elif not _same(got, wanted):
            failures.append(f"{path}: got {_show(got)}, wanted {_show(wanted)}")
    return failures


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, separators=(",", ":"))
    return text if len(text) <= 120 else text[:117] + "..."


def error_name(exc: BaseException) -> str:
    """What ``expect_error`` compares with: a CallError code, ``Timeout`` or the class name."""
    code = getattr(exc, "code", None)
    if isinstance(code, str) and code:
        return code
    if isinstance(exc, TimeoutError) or type(exc).__name__ == "CallTimeoutError":
        return "Timeout"
    return type(exc).__name__


def substitute(value: Any, variables: Mapping[str, Any]) -> Any:
    """Replace ``${var}`` in strings (recursively in tables and lists); a string that is
    exactly one ``${var}`` becomes the variable's value with its type. Unknown variables
    raise :class:`KeyError`."""
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole:
            return variables[whole.group(1)]
        return _VAR.sub(lambda m: str(variables[m.group(1)]), value)
    if isinstance(value, Mapping):
        return {k: substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


# Frames --------------------------------------------------------------------------------
@dataclass(slots=True)
class Frame:
    """One frame the station sent ("out") or received ("in"), parsed."""

    direction: str
    at: float
    raw: str
    view: dict[str, Any]
    used: bool = False


class FrameLog:
    """Every frame of one station, parsed, for the frame-level steps; each matched once."""

    def __init__(self, *, max_frames: int = 100_000) -> None:
        self.frames: list[Frame] = []
        self.max_frames = max_frames
        self._calls: dict[tuple[str, str], str] = {}  # (direction, message id) -> action
        self._changed = asyncio.Event()

    def append(self, direction: str, raw: str, at: float) -> None:
        view = _frame_view(raw)
        message_id = view.get("id")
        if view.get("type") == 2 and isinstance(message_id, str):
            self._calls[(direction, message_id)] = str(view.get("action"))
        elif view.get("type") in (3, 4) and isinstance(message_id, str):
            other = "out" if direction == "in" else "in"
            view["action"] = self._calls.get((other, message_id))
        if len(self.frames) >= self.max_frames:
            del self.frames[: self.max_frames // 10]
        self.frames.append(Frame(direction, at, raw, view))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def find(self, match: Callable[[Frame], bool], *, consume: bool = True) -> Frame | None:
        """The oldest unused frame that matches (marked used when ``consume``)."""
        for frame in self.frames:
            if not frame.used and match(frame):
                frame.used = frame.used or consume
                return frame
        return None

    async def wait(
        self, match: Callable[[Frame], bool], within: float, *, consume: bool = True
    ) -> Frame | None:
        """Wait up to ``within`` s for a matching frame; None when none came."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            changed = self._changed
            found = self.find(match, consume=consume)
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                return None


def _frame_view(raw: str) -> dict[str, Any]:
    """``{type, id, action, payload}`` / ``{type, id, payload}`` / ``{type, id, code,
    description, details}``; ``{"type": None, "text": raw}`` for text that is not OCPP-J."""
    try:
        msg = json.loads(raw)
    except ValueError:
        return {"type": None, "text": raw}
    if not isinstance(msg, list) or not msg or msg[0] not in (2, 3, 4):
        return {"type": None, "text": raw}
    view: dict[str, Any] = {"type": msg[0], "id": msg[1] if len(msg) > 1 else None}
    if msg[0] == 2:
        view["action"] = msg[2] if len(msg) > 2 else None
        view["payload"] = msg[3] if len(msg) > 3 else None
    elif msg[0] == 3:
        view["payload"] = msg[2] if len(msg) > 2 else None
    else:
        view["code"] = msg[2] if len(msg) > 2 else None
        view["description"] = msg[3] if len(msg) > 3 else None
        view["details"] = msg[4] if len(msg) > 4 else None
    return view


# Results -------------------------------------------------------------------------------
@dataclass(slots=True, kw_only=True)
class StepResult:
    """The outcome of one step: ``passed``, ``failed`` or ``skipped``, with a message."""

    index: int
    name: str
    do: str
    status: str
    message: str = ""
    duration: float = 0.0


@dataclass(slots=True, kw_only=True)
class ScenarioResult:
    """One station's run of a scenario."""

    scenario: str
    station_id: str
    steps: list[StepResult] = field(default_factory=list)
    duration: float = 0.0

    @property
    def passed(self) -> bool:
        return all(step.status == "passed" for step in self.steps)

    @property
    def failure(self) -> StepResult | None:
        return next((s for s in self.steps if s.status == "failed"), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "station_id": self.station_id,
            "passed": self.passed,
            "duration": round(self.duration, 3),
            "steps": [
                {
                    "index": s.index,
                    "name": s.name,
                    "do": s.do,
                    "status": s.status,
                    "message": s.message,
                    "duration": round(s.duration, 3),
                }
                for s in self.steps
            ],
        }


# Running -------------------------------------------------------------------------------
class ScenarioStation(Protocol):
    """The station runtime's actions a scenario uses (``ocppkit.station.station.Station``)."""

    async def run(self) -> None: ...
    async def stop(self, reason: str = "") -> None: ...
    async def plug(self, connector: int = 1) -> None: ...
    async def unplug(self, connector: int = 1) -> None: ...
    async def park(self, connector: int = 1) -> None: ...
    async def leave_bay(self, connector: int = 1) -> None: ...
    async def present_token(self, id_token: str, connector: int = 1) -> str: ...
    async def start_transaction(self, connector: int = 1, id_token: str = ...) -> None: ...
    async def stop_transaction(self, connector: int = 1, reason: str = "Local") -> None: ...
    async def fault(self, connector: int = 1, error_code: str = "OtherError") -> None: ...
    async def clear_fault(self, connector: int = 1) -> None: ...
    async def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]: ...
    async def send_raw(self, frame: str) -> None: ...
    async def wait_for_state(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float,  # noqa: ASYNC109 - the runtime's signature
    ) -> dict[str, Any]: ...
    def snapshot(self) -> dict[str, Any]: ...


class StepFailed(Exception):
    """A step's check failed; the message says why."""


class ScenarioRun:
    """Runs one scenario for one station.

    ``make_station()`` creates the station (again after a ``disconnect``: a new object
    over the same store, as a restarted charger); ``log`` must be fed with the station's
    frames by the observer; ``run_station(station)`` runs a station (default
    ``station.run()``; the fleet's counts the stations that fail to start)."""

    def __init__(
        self,
        scenario: Scenario,
        station_id: str,
        make_station: Callable[[], ScenarioStation],
        log: FrameLog,
        *,
        clock: Callable[[], float] = time.monotonic,
        run_station: Callable[[Any], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self.scenario = scenario
        self._run_station = run_station
        self.station_id = station_id
        self._make_station = make_station
        self.log = log
        self._clock = clock
        self.station: ScenarioStation = make_station()
        self._run_task: asyncio.Task[None] | None = None
        self.variables: dict[str, Any] = {"station_id": station_id}
        self._last_sent: dict[str, float] = {}

    async def run(self) -> ScenarioResult:
        result = ScenarioResult(scenario=self.scenario.name, station_id=self.station_id)
        started = self._clock()
        failed = False
        try:
            for step in self.scenario.steps:
                if failed:
                    result.steps.append(
                        StepResult(index=step.index, name=step.name, do=step.do, status="skipped")
                    )
                    continue
                t0 = self._clock()
                try:
                    await self._run_step(step)
                    status, message = "passed", ""
                except StepFailed as exc:
                    status, message = "failed", str(exc)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # a station action raised unexpectedly
                    status, message = "failed", f"{error_name(exc)}: {exc}"
                failed = status == "failed"
                result.steps.append(
                    StepResult(
                        index=step.index,
                        name=step.name,
                        do=step.do,
                        status=status,
                        message=message,
                        duration=self._clock() - t0,
                    )
                )
        finally:
            await self._shutdown()
            result.duration = self._clock() - started
        return result

    async def _shutdown(self) -> None:
        task, self._run_task = self._run_task, None
        if task is None:
            return
        with contextlib.suppress(Exception):  # a broken station: cancelled below
            await asyncio.wait_for(self.station.stop("scenario finished"), 10)
        # stop() returns once the close is under way; let run() finish its own clean-up
        # (connection closed, trace file closed) and cancel only a station that hangs.
        await asyncio.wait({task}, timeout=10)
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _run_step(self, step: Step) -> None:
        handler = getattr(self, f"_do_{step.do}")
        params = substitute(dict(step.params), self._vars())
        try:
            # The step's own waits use step.timeout and say what they waited for; this
            # outer limit (a little later) catches actions that hang.
            outcome = await asyncio.wait_for(handler(step, params), step.timeout + 0.5)
        except TimeoutError:
            if step.expect_error in ("Timeout", "*"):
                return
            raise StepFailed(f"timed out after {step.timeout:g} s") from None
        except StepFailed:
            raise
        except Exception as exc:
            if step.expect_error is None:
                raise
            name = error_name(exc)
            if step.expect_error not in ("*", name):
                raise StepFailed(f"failed with {name}, wanted {step.expect_error}") from None
            return
        if step.expect_error is not None:
            raise StepFailed(f"succeeded, wanted error {step.expect_error}")
        if outcome is _CHECKED:
            return
        if step.expect is not None:
            failures = check_expect(substitute(step.expect, self._vars()), outcome)
            if failures:
                raise StepFailed("; ".join(failures))
        for var, path in step.save.items():
            value = resolve_path(outcome, path)
            if value is _MISSING:
                raise StepFailed(f"save {var}: {path} missing in the result")
            self.variables[var] = value

    def _vars(self) -> dict[str, Any]:
        return {**self.variables, "now": datetime.now(UTC).isoformat(timespec="milliseconds")}

    # Steps: each returns the value expectations apply to --------------------------------
    async def _do_connect(self, step: Step, params: dict[str, Any]) -> Any:
        if self._run_task is None:
            start = self._run_station
            running = self.station.run() if start is None else start(self.station)
            self._run_task = asyncio.create_task(running)
        snapshot = await self._wait_state(lambda s: bool(s.get("connected")), step.timeout)
        return snapshot

    async def _wait_state(
        self, predicate: Callable[[dict[str, Any]], bool], within: float
    ) -> dict[str, Any]:
        wait = asyncio.ensure_future(self.station.wait_for_state(predicate, within))
        tasks: set[asyncio.Future[Any]] = {wait}
        if self._run_task is not None:
            tasks.add(self._run_task)
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if wait not in done:
            wait.cancel()
            run = self._run_task
            error = run.exception() if run is not None and not run.cancelled() else None
            raise StepFailed(f"the station stopped: {error!r}" if error else "the station stopped")
        return wait.result()

    async def _do_disconnect(self, step: Step, params: dict[str, Any]) -> Any:
        await self._shutdown()
        self.station = self._make_station()
        return None

    async def _do_boot(self, step: Step, params: dict[str, Any]) -> Any:
        return await self._reply_to("BootNotification", step)

    async def _do_wait_reply(self, step: Step, params: dict[str, Any]) -> Any:
        return await self._reply_to(params["action"], step, params.get("match"))

    async def _reply_to(self, action: str, step: Step, match: Any = None) -> Any:
        frame = await self._wait_frame(
            lambda f: (
                f.direction == "in"
                and f.view.get("type") in (3, 4)
                and f.view.get("action") == action
                and _payload_matches(match, f)
            ),
            step.timeout,
            f"no reply to {action}",
        )
        if frame.view["type"] == 4:
            raise CallErrorReply(str(frame.view.get("code")), str(frame.view.get("description")))
        return frame.view.get("payload")

    async def _wait_frame(self, match: Callable[[Frame], bool], within: float, what: str) -> Frame:
        frame = await self.log.wait(match, within)
        if frame is None:
            raise StepFailed(f"{what} within {within:g} s")
        return frame

    async def _do_wait_sent(self, step: Step, params: dict[str, Any]) -> Any:
        action = params["action"]
        frame = await self._wait_frame(
            lambda f: (
                f.direction == "out"
                and f.view.get("type") == 2
                and f.view.get("action") == action
                and _payload_matches(params.get("match"), f)
            ),
            step.timeout,
            f"the station sent no {action}",
        )
        previous = self._last_sent.get(action)
        self._last_sent[action] = frame.at
        if previous is not None:
            gap = frame.at - previous
            if "gap_min" in params and gap < params["gap_min"]:
                raise StepFailed(
                    f"{action} {gap:.2f} s after the previous, wanted >= {params['gap_min']}"
                )
            if "gap_max" in params and gap > params["gap_max"]:
                raise StepFailed(
                    f"{action} {gap:.2f} s after the previous, wanted <= {params['gap_max']}"
                )
        return frame.view.get("payload")

    async def _do_wait_csms_call(self, step: Step, params: dict[str, Any]) -> Any:
        action = params["action"]
        frame = await self._wait_frame(
            lambda f: (
                f.direction == "in"
                and f.view.get("type") == 2
                and f.view.get("action") == action
                and _payload_matches(params.get("match"), f)
            ),
            step.timeout,
            f"the CSMS sent no {action}",
        )
        return frame.view.get("payload")

    async def _do_wait_frame(self, step: Step, params: dict[str, Any]) -> Any:
        direction = params["direction"]
        expect = substitute(step.expect, self._vars()) if step.expect else {}

        def match(f: Frame) -> bool:
            return f.direction == direction and not check_expect(expect, f.view)

        if params.get("absent"):
            frame = await self.log.wait(match, step.timeout - 0.05, consume=False)
            if frame is not None:
                raise StepFailed(f"unexpected frame {direction}: {frame.raw[:200]}")
            return _CHECKED
        frame = await self._wait_frame(match, step.timeout, f"no matching frame {direction}")
        return frame.view

    async def _do_plug(self, step: Step, params: dict[str, Any]) -> Any:
        await self.station.plug(params.get("connector", 1))
        return None

    async def _do_unplug(self, step: Step, params: dict[str, Any]) -> Any:
        await self.station.unplug(params.get("connector", 1))
        return None

    async def _do_park(self, step: Step, params: dict[str, Any]) -> Any:
        await self.station.park(params.get("connector", 1))
        return None

    async def _do_leave_bay(self, step: Step, params: dict[str, Any]) -> Any:
        await self.station.leave_bay(params.get("connector", 1))
        return None

    async def _do_authorize(self, step: Step, params: dict[str, Any]) -> Any:
        status = await self.station.present_token(params["id_token"], params.get("connector", 1))
        return {"status": status}

    async def _do_start(self, step: Step, params: dict[str, Any]) -> Any:
        kwargs: dict[str, Any] = {"connector": params.get("connector", 1)}
        if "id_token" in params:
            kwargs["id_token"] = params["id_token"]
        await self.station.start_transaction(**kwargs)
        return None

    async def _do_stop(self, step: Step, params: dict[str, Any]) -> Any:
        connector, reason = params.get("connector", 1), params.get("reason", "Local")
        await self.station.stop_transaction(connector, reason)
        return None

    async def _do_fault(self, step: Step, params: dict[str, Any]) -> Any:
        await self.station.fault(params.get("connector", 1), params.get("error_code", "OtherError"))
        return None

    async def _do_clear_fault(self, step: Step, params: dict[str, Any]) -> Any:
        await self.station.clear_fault(params.get("connector", 1))
        return None

    async def _do_wait_status(self, step: Step, params: dict[str, Any]) -> Any:
        connector = params.get("connector", 1)
        status = params["status"]

        def reached(snapshot: dict[str, Any]) -> bool:
            return any(
                c.get("id") == connector and c.get("status") == status
                for c in snapshot.get("connectors", ())
            )

        return await self._wait_state(reached, step.timeout)

    async def _do_check(self, step: Step, params: dict[str, Any]) -> Any:
        return self.station.snapshot()

    async def _do_wait_state(self, step: Step, params: dict[str, Any]) -> Any:
        expect = substitute(step.expect, self._vars())
        return await self._wait_state(lambda s: not check_expect(expect, s), step.timeout)

    async def _do_sleep(self, step: Step, params: dict[str, Any]) -> Any:
        await asyncio.sleep(params["seconds"])
        return None

    async def _do_send_raw(self, step: Step, params: dict[str, Any]) -> Any:
        frame = str(params["frame"])
        pad_to = params.get("pad_to")
        if pad_to is not None and len(frame) < pad_to:
            frame += " " * (pad_to - len(frame))  # JSON allows trailing whitespace
        await self.station.send_raw(frame)
        return None

    async def _do_call(self, step: Step, params: dict[str, Any]) -> Any:
        action = params["action"]
        payload = params.get("payload", {})
        repeat = params.get("repeat", 1)
        if repeat == 1:
            return await self.station.call(action, payload)
        semaphore = asyncio.Semaphore(params.get("concurrency", 1))
        replies: list[Any] = [None] * repeat

        async def one(i: int) -> None:
            async with semaphore:
                replies[i] = await self.station.call(action, payload)

        await _gather_all([one(i) for i in range(repeat)])
        if step.expect is not None:  # every reply must match
            for i, reply in enumerate(replies):
                failures = check_expect(substitute(step.expect, self._vars()), reply)
                if failures:
                    raise StepFailed(f"call {i + 1} of {repeat}: " + "; ".join(failures))
            return replies[-1]
        return replies[-1]


def _payload_matches(match: Any, frame: Frame) -> bool:
    return match is None or not check_expect(match, frame.view.get("payload"))


class CallErrorReply(Exception):
    """The station's CALL was answered with a CALLERROR (seen in the frame log)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"CALLERROR {code}: {description}")
        self.code = code


async def _gather_all(coros: Sequence[Awaitable[None]]) -> None:
    """Run all; the first exception cancels the rest and propagates."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
