"""Reconnect back-off: OCPP 2.0.1 Part 4 §5.3 (Reconnecting), OCTT TC_B_57_CS; reliability.md F6.

The policy is pure; "time" here is a fake clock the tests advance by the delays handed out.
"""

from __future__ import annotations

import collections
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocppkit.station.backoff import Backoff, BackoffSettings, backoff_delay


class FakeClock:
    """Seconds since the start of the test; advanced only by ``sleep``."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def reconnect_times(
    backoff: Backoff, clock: FakeClock, csms_back_at: float, *, max_attempts: int = 100
) -> list[float]:
    """Drive one station: attempt after each back-off until the CSMS is back; attempt times."""
    times: list[float] = []
    for _ in range(max_attempts):
        clock.sleep(backoff.next_delay())
        times.append(clock.now)
        if clock.now >= csms_back_at:
            backoff.reset()
            return times
    raise AssertionError("never reconnected")


def test_first_attempt_waits_minimum_plus_random_part_p4_5_3() -> None:
    """Part 4 §5.3: the first reconnect waits RetryBackOffWaitMinimum + random(0, RandomRange)."""
    settings = BackoffSettings(wait_minimum=30, random_range=20, repeat_times=3)
    delays = [backoff_delay(0, random.Random(seed), settings) for seed in range(500)]
    assert all(30 <= d <= 50 for d in delays)
    # the random part really spreads: both halves of the range are used
    assert min(delays) < 35 and max(delays) > 45


def test_fixed_part_doubles_up_to_repeat_times_then_stays_tc_b_57_cs() -> None:
    """Part 4 §5.3 / TC_B_57_CS: each failed attempt doubles the wait, at most RepeatTimes times."""
    settings = BackoffSettings(wait_minimum=10, random_range=0, repeat_times=3)
    backoff = Backoff(settings, random.Random(1))
    delays = [backoff.next_delay() for _ in range(7)]
    assert delays == [10, 20, 40, 80, 80, 80, 80]


def test_reset_on_success_starts_again_from_minimum() -> None:
    """Part 4 §5.3: the doubling is per outage; a successful connection resets it."""
    backoff = Backoff(
        BackoffSettings(wait_minimum=5, random_range=0, repeat_times=4), random.Random(0)
    )
    clock = FakeClock()
    first = reconnect_times(backoff, clock, csms_back_at=100)
    # 5, +10, +20, +40, +80 -> attempts at 5, 15, 35, 75, 155 (first one >= 100 succeeds)
    assert first == [5, 15, 35, 75, 155]
    assert backoff.attempt == 0
    second = reconnect_times(backoff, clock, csms_back_at=clock.now + 1)
    assert second == [160]


def test_same_seed_replays_the_same_delays() -> None:
    """Seeded randomness: a run can be replayed (issue 4)."""
    settings = BackoffSettings()
    a = Backoff(settings, random.Random(42))
    b = Backoff(settings, random.Random(42))
    assert [a.next_delay() for _ in range(20)] == [b.next_delay() for _ in range(20)]
    c = Backoff(settings, random.Random(43))
    assert [c.next_delay() for _ in range(20)] != [
        Backoff(settings, random.Random(42)).next_delay() for _ in range(20)
    ]


def test_fleet_reconnect_spreads_instead_of_spiking_f6() -> None:
    """reliability.md F6: 10 000 stations lost at t=0 with the CSMS back at t=0; their first
    reconnects spread over [min, min+range] instead of all landing in the same second."""
    settings = BackoffSettings(wait_minimum=10, random_range=10, repeat_times=5)
    per_second: collections.Counter[int] = collections.Counter()
    for station in range(10_000):
        backoff = Backoff(settings, random.Random(station))
        per_second[int(backoff.next_delay())] += 1
    assert set(per_second) <= set(range(10, 21))
    # uniform over 10 s: about 1 000 per second, never the whole fleet at once
    assert max(per_second.values()) < 1_300
    without_random = collections.Counter(
        int(backoff_delay(0, random.Random(s), BackoffSettings(wait_minimum=10, random_range=0)))
        for s in range(10_000)
    )
    assert max(without_random.values()) == 10_000


def test_fleet_outage_attempts_per_second_stay_bounded_with_fake_clock() -> None:
    """A CSMS down for 10 minutes: 2 000 stations retry with back-off; the busiest second of
    the whole outage sees a small share of the fleet, and everyone reconnects soon after it is
    back (at most the largest wait + range later)."""
    settings = BackoffSettings(wait_minimum=10, random_range=10, repeat_times=5)
    attempts: collections.Counter[int] = collections.Counter()
    reconnected_at: list[float] = []
    for station in range(2_000):
        times = reconnect_times(Backoff(settings, random.Random(station)), FakeClock(), 600.0)
        attempts.update(int(t) for t in times)
        reconnected_at.append(times[-1])
    assert max(attempts.values()) < 2_000 * 0.15
    assert all(600 <= t <= 600 + 320 + 10 for t in reconnected_at)


@pytest.mark.parametrize(
    "kwargs",
    [{"wait_minimum": -1}, {"random_range": -0.5}, {"repeat_times": -1}],
)
def test_negative_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        BackoffSettings(**kwargs)  # type: ignore[arg-type]


def test_negative_attempt_is_rejected() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, random.Random(0), BackoffSettings())


@given(
    attempt=st.integers(min_value=0, max_value=200),
    minimum=st.floats(min_value=0, max_value=3600, allow_nan=False),
    rand_range=st.floats(min_value=0, max_value=3600, allow_nan=False),
    repeat=st.integers(min_value=0, max_value=20),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_delay_within_bounds_property(
    attempt: int, minimum: float, rand_range: float, repeat: int, seed: int
) -> None:
    """Part 4 §5.3: delay(k) in [min * 2**min(k, R), min * 2**min(k, R) + range]."""
    settings = BackoffSettings(wait_minimum=minimum, random_range=rand_range, repeat_times=repeat)
    delay = backoff_delay(attempt, random.Random(seed), settings)
    fixed = minimum * 2 ** min(attempt, repeat)
    assert fixed <= delay <= fixed + rand_range
    assert minimum <= delay
