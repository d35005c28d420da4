"""The default behaviour model: EVs arrive at each connector, charge, and leave.

Why: a fleet started without a scenario should load a CSMS the way real sites do — sessions
that begin and end at random times, with different id tags, of different lengths — not with
every station doing the same thing at the same instant. And a run must be repeatable: the
same seed gives the same sessions, so a CSMS bug found under load can be reproduced.

Theory of operation
-------------------
Each connector of each station is independent. Arrivals are a Poisson process of rate
``arrivals_per_hour`` **while the connector is free**: the gap from the moment a connector
becomes free to the next EV is exponentially distributed. A session is then

    arrive -> plug -> (auth_delay) present an id tag -> charge for `duration`
           -> stop (reason Local) -> (unplug_delay) unplug -> free again

:func:`plan_sessions` is the pure part: from a seeded :class:`random.Random` it generates
the sessions of one connector as :class:`Session` values (times in seconds from the start
of the run); nothing in it reads a clock. :func:`drive_connector` is the async part: it
sleeps until each planned instant and calls the station's actions (``plug``,
``present_token``, ``stop_transaction``, ``unplug``). A session whose token is not
accepted is abandoned (unplug after ``unplug_delay``). An action that raises is counted in
``errors`` and the connector goes on with its next session: a fleet keeps running when one
station misbehaves.

The first arrival is drawn like every other, so a fleet ramped up at once still spreads its
first sessions over the first inter-arrival times.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

__all__ = [
    "BehaviourCounters",
    "BehaviourError",
    "BehaviourSettings",
    "ConnectorActions",
    "Session",
    "drive_connector",
    "id_tag_pool",
    "parse_behaviour",
    "plan_sessions",
    "unknown_key_error",
]

_log = structlog.get_logger("ocppkit.fleet")


@dataclass(frozen=True, slots=True, kw_only=True)
class BehaviourSettings:
    """The behaviour model's parameters (the ``[behaviour]`` table of a template)."""

    arrivals_per_hour: float = 1.0
    """Mean EV arrivals per hour at one free connector (Poisson), > 0."""
    min_duration: float = 600.0
    """Shortest charging time, seconds (uniform between min and max)."""
    max_duration: float = 3600.0
    """Longest charging time, seconds."""
    auth_delay: float = 5.0
    """Seconds from plugging in to presenting the id tag (uniform 0..2x around this mean)."""
    unplug_delay: float = 10.0
    """Seconds from the stop to unplugging (uniform 0..2x around this mean)."""
    id_tag_pattern: str = "TAG{n:05}"
    """Id tags of the pool; ``{n}`` counts from 1."""
    id_tags: int = 100
    """Size of the id tag pool, >= 1; each session picks one at random."""

    def __post_init__(self) -> None:
        errors = _behaviour_errors(self)
        if errors:
            raise BehaviourError(errors)


class BehaviourError(ValueError):
    """Bad behaviour settings; ``errors`` holds one line per mistake."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def _behaviour_errors(s: BehaviourSettings) -> list[str]:
    errors: list[str] = []
    if not s.arrivals_per_hour > 0:
        errors.append(f"arrivals_per_hour: must be > 0, got {s.arrivals_per_hour}")
    if s.min_duration < 0:
        errors.append(f"min_duration: must be >= 0, got {s.min_duration}")
    if s.max_duration < s.min_duration:
        errors.append(
            f"max_duration: must be >= min_duration ({s.min_duration}), got {s.max_duration}"
        )
    if s.auth_delay < 0:
        errors.append(f"auth_delay: must be >= 0, got {s.auth_delay}")
    if s.unplug_delay < 0:
        errors.append(f"unplug_delay: must be >= 0, got {s.unplug_delay}")
    if s.id_tags < 1:
        errors.append(f"id_tags: must be >= 1, got {s.id_tags}")
    try:
        s.id_tag_pattern.format(n=1)
        if "{n" not in s.id_tag_pattern:
            errors.append(f"id_tag_pattern: must contain {{n}}, got {s.id_tag_pattern!r}")
    except (ValueError, IndexError, KeyError) as exc:
        errors.append(f"id_tag_pattern: cannot format {s.id_tag_pattern!r}: {exc}")
    return errors


_FLOATS = ("arrivals_per_hour", "min_duration", "max_duration", "auth_delay", "unplug_delay")


def parse_behaviour(table: Mapping[str, Any]) -> BehaviourSettings:
    """Validate a ``[behaviour]`` table; :class:`BehaviourError` lists every mistake."""
    errors: list[str] = []
    values: dict[str, Any] = {}
    known = {*_FLOATS, "id_tag_pattern", "id_tags"}
    for key, value in table.items():
        if key not in known:
            errors.append(unknown_key_error(key, known, "behaviour"))
        elif key in _FLOATS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                errors.append(f"behaviour.{key}: must be a number, got {value!r}")
            else:
                values[key] = float(value)
        elif key == "id_tags":
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append(f"behaviour.id_tags: must be an integer, got {value!r}")
            else:
                values[key] = value
        elif not isinstance(value, str):
            errors.append(f"behaviour.id_tag_pattern: must be a string, got {value!r}")
        else:
            values[key] = value
    if not errors:
        try:
            return BehaviourSettings(**values)
        except BehaviourError as exc:
            errors.extend(f"behaviour.{line}" for line in exc.errors)
    raise BehaviourError(errors)


def unknown_key_error(key: str, known: set[str], where: str = "") -> str:
    """``unknown key 'vendr' (did you mean 'vendor'?)``."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    place = f" in [{where}]" if where else ""
    return f"unknown key {key!r}{place}{hint}"


def id_tag_pool(settings: BehaviourSettings) -> list[str]:
    """The id tags sessions choose from (also what a CSMS must know to accept them)."""
    return [settings.id_tag_pattern.format(n=n) for n in range(1, settings.id_tags + 1)]


@dataclass(frozen=True, slots=True)
class Session:
    """One planned charging session of a connector; times are seconds from the run start."""

    arrive_at: float
    auth_at: float
    stop_at: float
    unplug_at: float
    id_tag: str


def plan_sessions(
    rng: random.Random, settings: BehaviourSettings, *, start: float = 0.0
) -> Iterator[Session]:
    """The sessions of one connector, endless, in order; pure and deterministic in ``rng``.

    Each session draws, in this order: the arrival gap (exponential), the auth delay, the
    charging duration, the unplug delay (uniform) and the id tag."""
    tags = id_tag_pool(settings)
    rate = settings.arrivals_per_hour / 3600.0
    free_at = start
    while True:
        arrive = free_at + rng.expovariate(rate)
        auth = arrive + rng.uniform(0.0, 2.0 * settings.auth_delay)
        stop = auth + rng.uniform(settings.min_duration, settings.max_duration)
        unplug = stop + rng.uniform(0.0, 2.0 * settings.unplug_delay)
        tag = tags[rng.randrange(len(tags))]
        yield Session(arrive, auth, stop, unplug, tag)
        free_at = unplug


class ConnectorActions(Protocol):
    """The station actions the behaviour model uses (``ocppkit.station.station.Station``)."""

    async def plug(self, connector: int = 1) -> None: ...
    async def unplug(self, connector: int = 1) -> None: ...
    async def present_token(self, id_token: str, connector: int = 1) -> str: ...
    async def stop_transaction(self, connector: int = 1, reason: str = "Local") -> None: ...


@dataclass(slots=True)
class BehaviourCounters:
    """What the behaviour loops did (summed over a fleet in the report)."""

    sessions: int = 0
    accepted: int = 0
    refused: int = 0
    errors: int = 0


async def drive_connector(
    station: ConnectorActions,
    connector: int,
    sessions: Iterator[Session],
    *,
    clock: Callable[[], float],
    started_at: float,
    counters: BehaviourCounters,
    station_id: str = "",
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> None:
    """Play the sessions on one connector until cancelled (times relative to ``started_at``
    on ``clock``; ``sleep`` waits, tests pass a fake). Cancelling it mid-session leaves the
    station as it is: the runner stops the station, which ends running transactions itself."""

    async def until(at: float) -> None:
        delay = started_at + at - clock()
        if delay > 0:
            await sleep(delay)

    for session in sessions:
        await until(session.arrive_at)
        counters.sessions += 1
        plugged = False
        try:
            await station.plug(connector)
            plugged = True
            await until(session.auth_at)
            outcome = await station.present_token(session.id_tag, connector)
            if outcome == "Accepted":
                counters.accepted += 1
                await until(session.stop_at)
                await station.stop_transaction(connector, "Local")
            else:
                counters.refused += 1
            await until(session.unplug_at)
            await station.unplug(connector)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            counters.errors += 1
            _log.warning(
                "behaviour action failed",
                station_id=station_id,
                connector=connector,
                error=f"{type(exc).__name__}: {exc}",
            )
            if plugged:
                with contextlib.suppress(Exception):
                    await station.unplug(connector)
