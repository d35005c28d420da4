"""Display messages of an emulated 2.0.1 station (OCPP 2.0.1 Part 2, block O, O01-O06).

Theory of operation
-------------------
The CSMS configures messages for the station's display with SetDisplayMessage: an id, a
priority, optionally the charging state it is for, a start and end date-time, a transaction
it belongs to, and the content in a format. :class:`DisplayMessages` keeps them by id and
answers:

* SetDisplayMessage (O01, O02, O06): ``NotSupportedMessageFormat`` / ``NotSupportedPriority``
  / ``NotSupportedState`` for what the display cannot do (the formats and priorities are the
  ``DisplayMessageCtrlr.SupportedFormats`` / ``SupportedPriorities`` of the device model),
  ``UnknownTransaction`` for a transactionId the station is not running (O02), ``Rejected``
  when display messages are disabled, the store is full (``DisplayMessageCtrlr.
  DisplayMessages`` maxLimit) or the time window is empty or over; else ``Accepted``, and a
  message with an id already configured replaces it (O06).
* GetDisplayMessages (O03, O04): the messages matching every filter given (ids, priority,
  state) -- ``Accepted`` then NotifyDisplayMessages pages, or ``Unknown`` when none match.
* ClearDisplayMessage (O05): ``Accepted`` and removed, or ``Unknown``.

A message is gone once its endDateTime has passed, and a transaction's message once that
transaction is over (O02): :meth:`DisplayMessages.prune` drops them, and every answer
prunes first, so none reports or counts a message that no longer exists. A message whose
startDateTime is still ahead is configured (reported, counted) but not yet shown
(:meth:`DisplayMessages.showing`). Pure: the caller passes the time and the running
transactions.
"""

from __future__ import annotations

import datetime
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ocppkit.messages import v201
from ocppkit.station.paging import chunk, numbered

__all__ = ["DisplayMessages", "DisplaySupport", "notify_display_messages"]

Status = v201.DisplayMessageStatusEnum
_PRIORITY_ORDER: Final = {
    v201.MessagePriorityEnum.ALWAYS_FRONT: 0,
    v201.MessagePriorityEnum.IN_FRONT: 1,
    v201.MessagePriorityEnum.NORMAL_CYCLE: 2,
}


def _given(value: Any) -> Any:
    return None if value is msgspec.UNSET else value


@dataclass(frozen=True)
class DisplaySupport:
    """What the station's display can do (from ``DisplayMessageCtrlr``)."""

    enabled: bool = True
    formats: frozenset[v201.MessageFormatEnum] = frozenset(v201.MessageFormatEnum)
    priorities: frozenset[v201.MessagePriorityEnum] = frozenset(v201.MessagePriorityEnum)
    states: frozenset[v201.MessageStateEnum] = frozenset(v201.MessageStateEnum)
    """2.0.1 has no variable for the states; a display that cannot follow the charging
    state would answer ``NotSupportedState``."""


class DisplayMessages:
    """The display messages configured on one station.

    Args:
        max_messages: most messages kept at once (``DisplayMessageCtrlr.DisplayMessages``
            maxLimit).
    """

    def __init__(self, *, max_messages: int) -> None:
        self.max_messages = max_messages
        self.messages: dict[int, v201.MessageInfo] = {}

    def __len__(self) -> int:
        return len(self.messages)

    def prune(self, now: datetime.datetime, transactions: Collection[str]) -> bool:
        """Drop the messages past their endDateTime (O01) and those of a transaction not in
        ``transactions`` (the ones running: O02); whether any went."""
        gone = [mid for mid, message in self.messages.items() if _over(message, now, transactions)]
        for mid in gone:
            del self.messages[mid]
        return bool(gone)

    def set(
        self,
        message: v201.MessageInfo,
        *,
        now: datetime.datetime,
        support: DisplaySupport,
        transactions: Collection[str],
    ) -> tuple[v201.DisplayMessageStatusEnum, str | None]:
        """Configure ``message`` (O01/O02; an existing id is replaced, O06): the status and
        a reasonCode for ``Rejected``."""
        self.prune(now, transactions)
        if not support.enabled:
            return Status.REJECTED, "Disabled"
        if message.message.format not in support.formats:
            return Status.NOT_SUPPORTED_MESSAGE_FORMAT, None
        if message.priority not in support.priorities:
            return Status.NOT_SUPPORTED_PRIORITY, None
        state = _given(message.state)
        if state is not None and state not in support.states:
            return Status.NOT_SUPPORTED_STATE, None
        tx = _given(message.transaction_id)
        if tx is not None and tx not in transactions:
            return Status.UNKNOWN_TRANSACTION, None  # O02
        start, end = _given(message.start_date_time), _given(message.end_date_time)
        if end is not None and (end <= now or (start is not None and end <= start)):
            return Status.REJECTED, "InvalidTimeWindow"
        if message.id not in self.messages and len(self.messages) >= self.max_messages:
            return Status.REJECTED, "TooManyMessages"
        self.messages[message.id] = message
        return Status.ACCEPTED, None

    def get(
        self,
        *,
        now: datetime.datetime,
        transactions: Collection[str],
        ids: Sequence[int] | None = None,
        priority: v201.MessagePriorityEnum | None = None,
        state: v201.MessageStateEnum | None = None,
    ) -> list[v201.MessageInfo]:
        """The configured messages matching every filter given (O03: none, all; O04: ids,
        priority, state), by id."""
        self.prune(now, transactions)
        return [
            message
            for mid, message in sorted(self.messages.items())
            if (ids is None or mid in ids)
            and (priority is None or message.priority is priority)
            and (state is None or _given(message.state) is state)
        ]

    def clear(
        self, message_id: int, *, now: datetime.datetime, transactions: Collection[str]
    ) -> v201.ClearMessageStatusEnum:
        """O05: ``Accepted`` and removed, or ``Unknown``."""
        self.prune(now, transactions)
        if self.messages.pop(message_id, None) is None:
            return v201.ClearMessageStatusEnum.UNKNOWN
        return v201.ClearMessageStatusEnum.ACCEPTED

    def showing(
        self,
        *,
        now: datetime.datetime,
        state: v201.MessageStateEnum,
        transaction_id: str | None = None,
    ) -> list[v201.MessageInfo]:
        """What the display shows now, first first: started and not ended, for ``state``
        (or any state) and for this transaction (or none), AlwaysFront, then InFront,
        then the NormalCycle ones, by id."""
        shown = []
        for mid, message in sorted(self.messages.items()):
            start, end = _given(message.start_date_time), _given(message.end_date_time)
            if (start is not None and start > now) or (end is not None and end <= now):
                continue
            wanted_state = _given(message.state)
            if wanted_state is not None and wanted_state is not state:
                continue
            tx = _given(message.transaction_id)
            if tx is not None and tx != transaction_id:
                continue
            shown.append((_PRIORITY_ORDER[message.priority], mid, message))
        return [message for _, _, message in sorted(shown, key=lambda row: row[:2])]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: the messages in wire form."""
        return {"messages": [msgspec.to_builtins(m) for m in self.messages.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, max_messages: int) -> DisplayMessages:
        """Rebuild from :meth:`to_dict`.

        Raises:
            msgspec.ValidationError: a stored message that is not a MessageInfo.
        """
        result = cls(max_messages=max_messages)
        for raw in data.get("messages", []):
            message = msgspec.convert(raw, v201.MessageInfo)
            result.messages[message.id] = message
        return result


def _over(message: v201.MessageInfo, now: datetime.datetime, transactions: Collection[str]) -> bool:
    """Past its endDateTime, or of a transaction that is not running."""
    end, tx = _given(message.end_date_time), _given(message.transaction_id)
    return (end is not None and end <= now) or (tx is not None and tx not in transactions)


def notify_display_messages(
    request_id: int,
    messages: Sequence[v201.MessageInfo],
    *,
    items_per_message: int,
    bytes_per_message: int,
) -> list[v201.NotifyDisplayMessagesRequest]:
    """``messages`` as NotifyDisplayMessages requests: the GetDisplayMessages requestId,
    ``tbc`` on all but the last (O03, O04)."""
    envelope = len(
        msgspec.json.encode(v201.NotifyDisplayMessagesRequest(request_id=request_id, tbc=True))
    ) + len(',"messageInfo":[]')
    pages = chunk(
        messages, max_items=items_per_message, max_bytes=bytes_per_message, envelope=envelope
    )
    return numbered(  # NotifyDisplayMessages has no seqNo
        pages,
        lambda _, page: v201.NotifyDisplayMessagesRequest(request_id=request_id, message_info=page),
    )
