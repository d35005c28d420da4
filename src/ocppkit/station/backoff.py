"""Reconnect back-off: how long a station waits before its next connection attempt.

Why: when a CSMS restarts, every station it served loses its connection at the same instant.
If they all retry after the same fixed delay, the CSMS is hit by one spike of handshakes (and
BootNotifications) after each delay; a random part spreads the fleet out, and doubling the
wait stops a fleet from hammering a CSMS that stays down (reliability.md §4 F6).

Theory of operation
-------------------
OCPP 2.0.1 Part 4 §5.3 ("Reconnecting", OCTT TC_B_57_CS) with the ``OCPPCommCtrlr`` variables
``RetryBackOffWaitMinimum`` (s), ``RetryBackOffRandomRange`` (s) and
``RetryBackOffRepeatTimes``:

* the first reconnect attempt waits ``RetryBackOffWaitMinimum`` plus a random value drawn
  uniformly from ``[0, RetryBackOffRandomRange]``;
* after each failed attempt the fixed part doubles, at most ``RetryBackOffRepeatTimes``
  times; later attempts keep the last (largest) fixed part; every attempt draws a new random
  part.

So attempt ``k`` (0-based) waits ``minimum * 2**min(k, repeat_times) + U(0, random_range)``,
which lies in ``[minimum * 2**min(k, r), minimum * 2**min(k, r) + random_range]``.
A successful connection resets the count (:meth:`Backoff.reset`).

OCPP 1.6 defines no configuration keys for this; the emulator exposes the same three numbers
as settings (:class:`BackoffSettings`) and applies the same rule to both versions.

The module is pure: the caller passes a seeded :class:`random.Random` (never the global
one) and owns the clock and the sleeping, so a run can be replayed and tests use a fake
clock.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["Backoff", "BackoffSettings", "backoff_delay"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffSettings:
    """The three 2.0.1 ``OCPPCommCtrlr`` back-off variables (also used for 1.6).

    The defaults are ours (the spec leaves them to the manufacturer): a fleet restarted
    together spreads over 10 s at first and backs off to at most 10 * 2**5 = 320 s (+ up to
    10 s).
    """

    wait_minimum: float = 10.0
    """``RetryBackOffWaitMinimum``: the fixed part of the first wait, seconds, >= 0."""
    random_range: float = 10.0
    """``RetryBackOffRandomRange``: the random part is drawn from [0, this], seconds, >= 0."""
    repeat_times: int = 5
    """``RetryBackOffRepeatTimes``: how many times the fixed part doubles, >= 0."""

    def __post_init__(self) -> None:
        if self.wait_minimum < 0 or self.random_range < 0 or self.repeat_times < 0:
            raise ValueError(
                "back-off settings must be >= 0, got "
                f"wait_minimum={self.wait_minimum}, random_range={self.random_range}, "
                f"repeat_times={self.repeat_times}"
            )


def backoff_delay(attempt: int, rng: random.Random, settings: BackoffSettings) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (0 = the first after a loss).

    ``minimum * 2**min(attempt, repeat_times) + rng.uniform(0, random_range)``.
    Draws exactly one number from ``rng``. Raises :class:`ValueError` for a negative attempt.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    doublings = min(attempt, settings.repeat_times)
    fixed = math.ldexp(settings.wait_minimum, doublings)  # minimum * 2**doublings
    return fixed + rng.uniform(0.0, settings.random_range)


class Backoff:
    """The back-off policy of one station's connection: counts failed attempts.

    Use: on a lost or failed connection, ``await sleep(backoff.next_delay())`` and try
    again; on success call :meth:`reset`. The rng is the station's own seeded generator.
    """

    __slots__ = ("_attempt", "_rng", "settings")

    def __init__(self, settings: BackoffSettings, rng: random.Random) -> None:
        self.settings = settings
        self._rng = rng
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """The 0-based number of the next attempt (how many delays were handed out)."""
        return self._attempt

    def next_delay(self) -> float:
        """The wait before the next attempt; counts that attempt."""
        delay = backoff_delay(self._attempt, self._rng, self.settings)
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """A connection succeeded: the next loss starts again from ``wait_minimum``."""
        self._attempt = 0
