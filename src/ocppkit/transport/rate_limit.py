"""Per-connection message rate limit: a token bucket that throttles, then gives up on abuse.

Why: one station flooding the CSMS (a firmware bug or an attack, reliability.md H1) must not
take the CPU from the others. A station within ``rate`` messages per second (with bursts up
to ``burst``) is never slowed. Above it, the connection stops reading for as long as the
bucket needs to refill, so TCP flow control slows the station down and nothing is dropped.
A station that stays over the limit — throttled for more than ``abuse_seconds`` within
the last ``window`` seconds — is disconnected (the connection closes with 1008, policy
violation).

Pure: the caller passes the current time (any monotonic clock, in seconds).
"""

from __future__ import annotations

from collections import deque
from typing import Final

__all__ = ["CLOSE_RATE_EXCEEDED", "RateLimiter"]

#: Close code for sustained abuse: policy violation (RFC 6455 §7.4.1).
CLOSE_RATE_EXCEEDED: Final = 1008


class RateLimiter:
    """Token bucket of ``burst`` tokens refilled at ``rate`` per second.

    Args:
        rate: sustained messages per second.
        burst: messages that may arrive at once after a quiet spell.
        abuse_seconds: throttled time within ``window`` after which :meth:`abusive` is True.
        window: seconds over which throttled time is summed.
    """

    def __init__(
        self, rate: float, burst: int, *, abuse_seconds: float = 30.0, window: float = 60.0
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.abuse_seconds = abuse_seconds
        self.window = window
        self._tokens = float(burst)
        self._updated: float | None = None
        self._throttled: deque[tuple[float, float]] | None = None  # (when, seconds), lazily
        self._throttled_total = 0.0

    def take(self, now: float) -> float:
        """Take one token; returns the seconds to wait before handling the message (0 if none).

        The wait is counted as throttled time; the token is considered taken after it.
        """
        if self._updated is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        wait = -self._tokens / self.rate
        if self._throttled is None:
            self._throttled = deque()
        self._throttled.append((now, wait))
        self._throttled_total += wait
        return wait

    def abusive(self, now: float) -> bool:
        """True when the throttled time within the last ``window`` s exceeds ``abuse_seconds``."""
        throttled = self._throttled
        while throttled and throttled[0][0] < now - self.window:
            self._throttled_total -= throttled.popleft()[1]
        return self._throttled_total > self.abuse_seconds
