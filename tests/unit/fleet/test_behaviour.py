"""The default behaviour model (issue 4 "A fleet": "arrivals, durations, id tags, seeded"):
a pure, seeded session plan per connector, and the async driver that plays it."""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics

import pytest

from ocppkit.fleet.behaviour import (
    BehaviourCounters,
    BehaviourError,
    BehaviourSettings,
    Session,
    drive_connector,
    id_tag_pool,
    parse_behaviour,
    plan_sessions,
)


def first(n: int, settings: BehaviourSettings, seed: int) -> list[Session]:
    return list(itertools.islice(plan_sessions(random.Random(seed), settings), n))


def test_same_seed_same_sessions() -> None:
    settings = BehaviourSettings()
    assert first(50, settings, 7) == first(50, settings, 7)
    assert first(50, settings, 7) != first(50, settings, 8)


def test_sessions_are_ordered_and_within_bounds() -> None:
    settings = BehaviourSettings(
        min_duration=100, max_duration=200, auth_delay=3, unplug_delay=4, id_tags=5
    )
    sessions = first(500, settings, 1)
    tags = set(id_tag_pool(settings))
    previous_unplug = 0.0
    for s in sessions:
        assert previous_unplug <= s.arrive_at <= s.auth_at <= s.stop_at <= s.unplug_at
        assert 0 <= s.auth_at - s.arrive_at <= 6
        assert 100 <= s.stop_at - s.auth_at <= 200
        assert 0 <= s.unplug_at - s.stop_at <= 8
        assert s.id_tag in tags
        previous_unplug = s.unplug_at
    assert {s.id_tag for s in sessions} == tags  # 500 draws cover a pool of 5


def test_arrivals_are_poisson_with_the_rate() -> None:
    """Gaps between a free connector and the next EV are exponential: mean 1/rate."""
    settings = BehaviourSettings(
        arrivals_per_hour=6, min_duration=0, max_duration=0, auth_delay=0, unplug_delay=0
    )
    sessions = first(5000, settings, 3)
    gaps = [b.arrive_at - a.unplug_at for a, b in itertools.pairwise(sessions)]
    assert statistics.mean(gaps) == pytest.approx(600, rel=0.05)
    assert statistics.stdev(gaps) == pytest.approx(600, rel=0.08)  # exponential: sd = mean


def test_id_tag_pool() -> None:
    assert id_tag_pool(BehaviourSettings(id_tag_pattern="T{n}", id_tags=3)) == ["T1", "T2", "T3"]


def test_settings_validate() -> None:
    with pytest.raises(BehaviourError) as info:
        BehaviourSettings(arrivals_per_hour=-1, auth_delay=-1, id_tag_pattern="{n")
    assert len(info.value.errors) == 3
    assert parse_behaviour({"min_duration": 1, "max_duration": 2}) == BehaviourSettings(
        min_duration=1.0, max_duration=2.0
    )
    with pytest.raises(BehaviourError, match="must be a number"):
        parse_behaviour({"auth_delay": "soon"})


class RecordingStation:
    """Records the actions; answers tokens from a table. Not a mock of the runtime's logic:
    the driver's contract is only which actions it calls, in which order, when."""

    def __init__(self, clock: list[float], outcome: str = "Accepted", fail_plug: bool = False):
        self.clock = clock
        self.outcome = outcome
        self.fail_plug = fail_plug
        self.actions: list[tuple[float, str, object]] = []

    async def plug(self, connector: int = 1) -> None:
        if self.fail_plug:
            raise RuntimeError("cable stuck")
        self.actions.append((self.clock[0], "plug", connector))

    async def unplug(self, connector: int = 1) -> None:
        self.actions.append((self.clock[0], "unplug", connector))

    async def present_token(self, id_token: str, connector: int = 1) -> str:
        self.actions.append((self.clock[0], "token", id_token))
        return self.outcome

    async def stop_transaction(self, connector: int = 1, reason: str = "Local") -> None:
        self.actions.append((self.clock[0], "stop", reason))


async def drive(
    station: RecordingStation,
    sessions: list[Session],
    counters: BehaviourCounters,
    clock: list[float],
) -> None:
    """Run the driver in virtual time: its sleep advances the fake clock."""

    async def fake_sleep(delay: float) -> None:
        clock[0] += delay
        await asyncio.sleep(0)

    await drive_connector(
        station,
        2,
        iter(sessions),
        clock=lambda: clock[0],
        started_at=0.0,
        counters=counters,
        sleep=fake_sleep,
    )


async def test_driver_plays_sessions_at_their_times() -> None:
    clock = [0.0]
    sessions = [Session(10, 12, 100, 105, "A"), Session(200, 201, 300, 302, "B")]
    station = RecordingStation(clock)
    counters = BehaviourCounters()
    await drive(station, sessions, counters, clock)
    assert station.actions == [
        (10, "plug", 2),
        (12, "token", "A"),
        (100, "stop", "Local"),
        (105, "unplug", 2),
        (200, "plug", 2),
        (201, "token", "B"),
        (300, "stop", "Local"),
        (302, "unplug", 2),
    ]
    assert (counters.sessions, counters.accepted, counters.refused) == (2, 2, 0)


async def test_refused_token_skips_the_stop() -> None:
    clock = [0.0]
    station = RecordingStation(clock, outcome="Invalid")
    counters = BehaviourCounters()
    await drive(station, [Session(1, 2, 50, 60, "X")], counters, clock)
    assert [a[1] for a in station.actions] == ["plug", "token", "unplug"]
    assert counters.refused == 1


async def test_a_failing_action_is_counted_and_the_driver_goes_on() -> None:
    clock = [0.0]
    station = RecordingStation(clock, fail_plug=True)
    counters = BehaviourCounters()
    await drive(station, [Session(1, 2, 3, 4, "X"), Session(5, 6, 7, 8, "Y")], counters, clock)
    assert counters.errors == 2 and counters.sessions == 2
