"""Split a station's report items into messages: the ``seqNo``/``tbc`` reports of 2.0.1.

NotifyMonitoringReport (N02), NotifyDisplayMessages (O03/O04) and NotifyCustomerInformation
(N09/N10) all carry one answer in as many messages as it takes, ``tbc`` true on all but the
last. :func:`chunk` decides where to cut -- at most ``max_items`` items and, encoded, at most
``max_bytes`` bytes per message (an item larger than that alone still goes, alone) -- so
every report cuts the same way. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import msgspec

__all__ = ["chunk", "numbered"]

_T = TypeVar("_T")


class _Continued(Protocol):
    tbc: Any


_M = TypeVar("_M", bound=_Continued)


def chunk(
    items: Sequence[_T], *, max_items: int, max_bytes: int, envelope: int = 0
) -> list[list[_T]]:
    """``items`` in order, cut into messages of at most ``max_items`` items whose encoded
    size plus ``envelope`` (the rest of the message) stays within ``max_bytes``.

    No items: no messages (the caller decides what an empty answer looks like).
    """
    limit = max(1, max_items)
    chunks: list[list[_T]] = []
    size = 0
    for item in items:
        item_size = len(msgspec.json.encode(item)) + 1
        if not chunks or len(chunks[-1]) >= limit or size + item_size > max_bytes:
            chunks.append([])
            size = envelope
        chunks[-1].append(item)
        size += item_size
    return chunks


def numbered(pages: Sequence[_T], make: Callable[[int, _T], _M]) -> list[_M]:
    """One message per page, ``make(seq_no, page)`` with seqNo from 0, and ``tbc`` true on
    all but the last: how every 2.0.1 report says that more follows."""
    messages = [make(seq_no, page) for seq_no, page in enumerate(pages)]
    for message in messages[:-1]:
        message.tbc = True
    return messages
