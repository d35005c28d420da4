"""The per-connection rate limit (pure): throttle above the rate, give up on sustained abuse.

Anchor: reliability.md H1 ("one station floods 1 000 Heartbeats/s: that station throttled,
then 1008 after sustained abuse").
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocppkit.transport.rate_limit import RateLimiter


def test_within_the_rate_nothing_waits() -> None:
    limiter = RateLimiter(rate=10, burst=5)
    assert all(limiter.take(now=n * 0.1) == 0 for n in range(100))


def test_a_burst_is_allowed_then_throttled_to_the_rate() -> None:
    limiter = RateLimiter(rate=10, burst=5)
    waits = [limiter.take(now=0.0) for _ in range(8)]
    assert waits[:5] == [0, 0, 0, 0, 0]
    assert waits[5:] == pytest.approx([0.1, 0.2, 0.3])


def test_sustained_flood_becomes_abusive_and_recovers_after_the_window() -> None:
    limiter = RateLimiter(rate=10, burst=5, abuse_seconds=2.0, window=10.0)
    now = 0.0
    for _ in range(20):  # 20 messages at once: 15 over budget, up to 1.5 s of wait each
        limiter.take(now)
    assert limiter.abusive(now)
    assert not limiter.abusive(now + 11.0)  # the throttled time left the window


@given(st.lists(st.floats(min_value=0, max_value=5), min_size=1, max_size=200))
def test_waits_never_let_more_than_rate_plus_burst_through(gaps: list[float]) -> None:
    """Property: honouring every wait, messages in any span t never exceed burst + rate * t."""
    limiter = RateLimiter(rate=4, burst=3)
    now, handled = 0.0, []
    for gap in gaps:
        now += gap
        now += limiter.take(now)
        handled.append(now)
    span = handled[-1] - handled[0]
    assert len(handled) <= 3 + 4 * span + 1e-6 + 1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate=1, burst=0)
