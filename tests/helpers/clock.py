"""Time helpers for station tests.

:class:`SkippedSleeps` is a station's ``sleep`` hook (``Station(sleep=...)``, also
``tests.station.peers.running(..., sleep=...)``): it records each back-off delay the
station asked for instead of sleeping it, so a test counts the failed attempts (a round of
connection attempts, A02.FR.28; no back-off where none is due, M05.FR.13) in real time
that does not depend on the back-off settings.
"""

from __future__ import annotations

import asyncio

__all__ = ["SkippedSleeps"]


class SkippedSleeps(list[float]):
    """The delays asked for, in order; each call only yields to the event loop once."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)
        await asyncio.sleep(0)
