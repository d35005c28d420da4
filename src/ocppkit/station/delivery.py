"""Delivery policy for queued messages: what goes next, when to retry, what to drop.

Pure: no I/O, no clock reads. Times are plain floats in seconds that the caller passes in;
whatever is persisted (:attr:`Retry.at`, ``not_before`` in :mod:`ocppkit.station.store`)
should be wall-clock seconds, because a monotonic clock does not survive a restart.

Theory of operation
-------------------
*Transaction messages* are 1.6 StartTransaction, StopTransaction and MeterValues that carry
a ``transactionId`` (periodic or clock-aligned values of a transaction), and 2.0.1/2.1
TransactionEvent (1.6 §3.7; 2.0.1 E11–E13). :func:`is_transaction_message` tells them apart.

1. **Always through the queue.** The runtime enqueues every transaction message in the
   persistent store (:mod:`ocppkit.station.store`), online or not, and only ever sends the
   head of its station's queue. That makes "new transaction messages SHALL wait until the
   queue has been emptied" (1.6 §3.7) hold by construction, and delivery is FIFO per station.
   A message leaves the queue only after its CALLRESULT (libocpp: otherwise a reboot between
   sending and the reply loses it), so delivery is at least once; the CSMS deduplicates on
   content (reliability.md §1.5).
2. **Others may overtake.** :func:`next_to_send` sends a waiting non-transaction message
   (Authorize, StatusNotification, …) before the queue head (1.6 §3.7 MAY), and nothing at
   all while a CALL of ours is in flight (OCPP-J §4.1.1).
3. **Retries** (1.6 §3.7.1, 2.0.1 E13.FR.01–04): a *failure to process the message* is a
   CALLERROR of any code or no answer before the RPC timeout — the 1.6 text ("what kind of
   response, or failure to respond") names no error code that may be skipped, and OCPP-J
   (2.0.1 Part 4 §4.2.3) says a server reports a failure to process with a CALLERROR, so
   every code counts the same; there is deliberately no "don't retry this code" list.
   The first transmission is attempt 1. After failure *n* the message is sent again after
   ``interval × n`` seconds (interval × the number of preceding transmissions), as long as
   fewer than ``attempts`` failures were seen; the failure that reaches ``attempts`` drops
   the message (kept with its reason in the store's dropped table) and the next one goes.
   Example from the spec, attempts 3, interval 60: send, fail, wait 60, send, fail, wait
   120, send, fail, drop. An answer lost because the connection closed is *not* a failure
   to process (the CSMS never said anything): the message is sent again, at once, after
   the reconnect (:attr:`Outcome.DISCONNECTED`), and that transmission is not counted in
   the ``interval × n`` either.
4. **1.6 transaction ids** (1.6-errata 3.18): messages after a StartTransaction are queued
   before its ``transactionId`` is known. At send time :class:`TransactionIds` substitutes
   the id from StartTransaction.conf, or ``-1`` when the Start was dropped or its answer
   never came; :func:`with_transaction_id` rewrites the stored payload.
5. **2.0.1 seqNo and offline** (E01.FR.07 edition 2, E11/E12): :class:`SeqNos` hands out
   0, 1, 2, … per transaction (a new transaction starts again at 0); the store persists the
   counter in the same commit as the message that used it, so a restart never reuses a
   seqNo. :func:`mark_offline` sets ``offline = true`` on an event that happened while the
   station was offline.
6. **Low-memory thinning** (checklist F8; libocpp ``message_queue.hpp``): past a size
   threshold (:func:`should_thin`), :func:`thin_updates` picks every second Updated event
   (1.6: every second transaction MeterValues) of each transaction to drop, never a Started
   or Ended (1.6 StartTransaction / StopTransaction), and never the message on the wire.
7. **Security events ride the same queue** (2.0.1 A04.FR.02; 1.6 Security whitepaper
   A04.FR.02: "Security event notifications MUST be queued with a guaranteed delivery at
   the Central System"). SecurityEventNotification is not a transaction message
   (:func:`is_transaction_message` is false: no ``transactionId`` rewriting, no ``seqNo``,
   no ``offline`` flag, never thinned) but :func:`is_queued_message` is true: it is
   enqueued in the persistent store, online or not, so it survives an offline period and a
   ``kill -9`` and is delivered FIFO with the transaction messages after the reconnect.
   *Decision:* it shares the transaction retry policy (:class:`RetryPolicy`, the
   ``TransactionMessageAttempts``/``MessageAttemptsTransactionEvent`` keys). Neither spec
   gives security events retry keys of their own; "guaranteed delivery" is the transaction
   messages' promise (1.6 §3.7 / 2.0.1 E13 use the same words), libocpp queues them as
   transaction messages for the same reason, and one policy per queue keeps a refusing CSMS
   from blocking the queue head forever (after ``attempts`` failures the event is dropped
   into the store's dropped table, with its reason, like a transaction message).

Interfaces the runtime uses: :func:`is_transaction_message`, :func:`is_queued_message`,
:func:`event_kind`,
:class:`RetryPolicy` + :func:`after_outcome`, :func:`next_to_send`, :class:`TransactionIds`,
:func:`with_transaction_id`, :class:`SeqNos`, :func:`mark_offline`, :func:`should_thin`,
:func:`thin_updates`. Each state holder has ``to_dict()`` / ``from_dict()`` for the
station's state blob.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeAlias, TypeVar

import msgspec

from ocppkit.messages.v16.requests import MeterValuesRequest, StopTransactionRequest

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_INTERVAL",
    "DEFAULT_QUEUE_LIMIT",
    "GUARANTEED_DELIVERY",
    "KEYS_V16",
    "KEYS_V201",
    "UNKNOWN_TRANSACTION_ID",
    "Decision",
    "Drop",
    "EventKind",
    "Idle",
    "Next",
    "Outcome",
    "QueueHead",
    "Remove",
    "Resend",
    "Retry",
    "RetryPolicy",
    "SendNonTransaction",
    "SendTransaction",
    "SeqNos",
    "ThinCandidate",
    "TransactionIds",
    "WaitUntil",
    "after_outcome",
    "event_kind",
    "is_queued_message",
    "is_transaction_message",
    "mark_offline",
    "next_to_send",
    "should_thin",
    "thin_updates",
    "with_transaction_id",
]

#: The spec's own example values (1.6 §3.7.1); neither version defines a default.
DEFAULT_ATTEMPTS: Final = 3
DEFAULT_INTERVAL: Final = 60.0
#: Queued transaction messages per station at which thinning starts (checklist F8).
DEFAULT_QUEUE_LIMIT: Final = 10_000
#: 1.6-errata 3.18: the id of a transaction whose StartTransaction was never confirmed.
UNKNOWN_TRANSACTION_ID: Final = -1

#: Configuration keys holding (attempts, interval) per version.
KEYS_V16: Final = ("TransactionMessageAttempts", "TransactionMessageRetryInterval")
KEYS_V201: Final = (
    "OCPPCommCtrlr.MessageAttemptsTransactionEvent",
    "OCPPCommCtrlr.MessageAttemptIntervalTransactionEvent",
)

_V16_TRANSACTION_ACTIONS: Final = frozenset({"StartTransaction", "StopTransaction"})
#: Messages that are not transaction messages but go through the persistent queue too
#: (A04.FR.02: security events are queued with guaranteed delivery; see item 7 above;
#: N07.FR.04 / N08.FR.03: the monitoring events a 2.0.1 station keeps while offline --
#: the station enqueues NotifyEvent only then, and only within OfflineQueuingSeverity).
GUARANTEED_DELIVERY: Final = frozenset({"SecurityEventNotification", "NotifyEvent"})


class EventKind(enum.StrEnum):
    """Where a transaction message sits in its transaction (2.0.1 ``eventType`` names)."""

    STARTED = "Started"
    UPDATED = "Updated"
    ENDED = "Ended"


def is_transaction_message(action: str, payload: object = None) -> bool:
    """Whether a CALL must go through the transaction queue (1.6 §3.7, 2.0.1 E11/E12).

    1.6 MeterValues is a transaction message only when it carries a ``transactionId``
    (periodic or clock-aligned values of a transaction); ``payload`` is the typed request.
    """
    if action in _V16_TRANSACTION_ACTIONS or action == "TransactionEvent":
        return True
    if action == "MeterValues":
        return getattr(payload, "transaction_id", msgspec.UNSET) is not msgspec.UNSET
    return False


def is_queued_message(action: str, payload: object = None) -> bool:
    """Whether a CALL goes through the persistent queue: the transaction messages and the
    :data:`GUARANTEED_DELIVERY` ones (A04.FR.02). Everything else is sent when online and
    forgotten offline."""
    return action in GUARANTEED_DELIVERY or is_transaction_message(action, payload)


def event_kind(action: str, payload: object = None) -> EventKind | None:
    """Started / Updated / Ended for a transaction message, ``None`` for any other."""
    if action == "StartTransaction":
        return EventKind.STARTED
    if action == "StopTransaction":
        return EventKind.ENDED
    if action == "TransactionEvent":
        event_type = getattr(payload, "event_type", None)
        if event_type is None:
            raise ValueError("a TransactionEvent payload without eventType")
        return EventKind(str(event_type))
    if is_transaction_message(action, payload):
        return EventKind.UPDATED
    return None


# --------------------------------------------------------------------------- retries


class Outcome(enum.StrEnum):
    """How one transmission of a queued message ended."""

    RESULT = "result"  #: CALLRESULT: delivered.
    CALL_ERROR = "call_error"  #: CALLERROR (any code): a failure to process.
    TIMEOUT = "timeout"  #: no answer within the RPC timeout: a failure to process.
    DISCONNECTED = "disconnected"  #: connection lost before an answer: not a failure.


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """TransactionMessageAttempts / TransactionMessageRetryInterval (1.6 §3.7.1) or
    MessageAttemptsTransactionEvent / MessageAttemptIntervalTransactionEvent (2.0.1 E13).

    ``attempts`` counts transmissions including the first; a value below 1 still sends once.
    ``interval`` is in seconds.
    """

    attempts: int = DEFAULT_ATTEMPTS
    interval: float = DEFAULT_INTERVAL

    @classmethod
    def from_config(cls, config: Mapping[str, Any], keys: tuple[str, str]) -> RetryPolicy:
        """Read the two keys (:data:`KEYS_V16` or :data:`KEYS_V201`) from a configuration
        mapping whose values are ints or the decimal strings OCPP configuration uses;
        a missing or unreadable value falls back to the default."""

        def read(key: str, default: float) -> float:
            value = config.get(key)
            try:
                return float(value) if value is not None else default
            except (TypeError, ValueError):
                return default

        return cls(
            attempts=int(read(keys[0], DEFAULT_ATTEMPTS)),
            interval=max(0.0, read(keys[1], DEFAULT_INTERVAL)),
        )

    @property
    def max_transmissions(self) -> int:
        return max(1, self.attempts)

    def delay_before_retry(self, failures: int) -> float:
        """Wait before the next transmission after ``failures`` failed ones: interval × n."""
        return self.interval * failures


@dataclass(frozen=True, slots=True)
class Remove:
    """Delivered: remove the message from the queue."""


@dataclass(frozen=True, slots=True)
class Retry:
    """Send again, not before ``at``; ``failures`` is the new failure count to store."""

    at: float
    failures: int


@dataclass(frozen=True, slots=True)
class Drop:
    """Give up on this message (the last allowed attempt failed) and go on with the next."""

    reason: str
    failures: int


@dataclass(frozen=True, slots=True)
class Resend:
    """The connection went away mid-call: send again as soon as it is back; no failure."""


Decision: TypeAlias = Remove | Retry | Drop | Resend


def after_outcome(
    outcome: Outcome,
    *,
    failures: int,
    now: float,
    policy: RetryPolicy,
    error_code: str | None = None,
) -> Decision:
    """What to do with the queue head after one transmission (1.6 §3.7.1, E13.FR.01–04).

    ``failures`` is the number of failures to process *before* this transmission.
    """
    if outcome is Outcome.RESULT:
        return Remove()
    if outcome is Outcome.DISCONNECTED:
        return Resend()
    failures += 1
    if failures >= policy.max_transmissions:
        if outcome is Outcome.CALL_ERROR:
            what = f"CALLERROR {error_code}" if error_code else "CALLERROR"
        else:
            what = "no answer"
        return Drop(
            reason=f"{what} on attempt {failures} of {policy.max_transmissions}", failures=failures
        )
    return Retry(at=now + policy.delay_before_retry(failures), failures=failures)


# --------------------------------------------------------------------------- ordering


@dataclass(frozen=True, slots=True)
class QueueHead:
    """What :func:`next_to_send` needs of a station's oldest queued transaction message."""

    entry_id: int
    not_before: float | None = None


@dataclass(frozen=True, slots=True)
class SendNonTransaction:
    """Send the oldest waiting non-transaction message now (it may overtake the queue)."""


@dataclass(frozen=True, slots=True)
class SendTransaction:
    """Send the queue head now."""

    entry_id: int


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """Nothing to send before ``at`` (the head's retry time); ask again then."""

    at: float


@dataclass(frozen=True, slots=True)
class Idle:
    """Nothing to send until something changes (a message, a reply, a reconnect)."""


Next: TypeAlias = SendNonTransaction | SendTransaction | WaitUntil | Idle


def next_to_send(
    *,
    now: float,
    online: bool,
    call_in_flight: bool,
    head: QueueHead | None,
    non_transaction_waiting: bool,
) -> Next:
    """The station's next CALL (1.6 §3.7; OCPP-J §4.1.1 one CALL at a time)."""
    if not online or call_in_flight:
        return Idle()
    if non_transaction_waiting:
        return SendNonTransaction()
    if head is None:
        return Idle()
    if head.not_before is not None and now < head.not_before:
        return WaitUntil(head.not_before)
    return SendTransaction(head.entry_id)


# --------------------------------------------------------------------------- 1.6 ids


class TransactionIds:
    """1.6: the station's transaction key -> the CSMS's ``transactionId``.

    A transaction is known from its StartTransaction.conf (:meth:`confirm`). Until then, and
    for good when the StartTransaction was dropped, :meth:`resolve` answers ``-1``
    (1.6-errata 3.18: "the Central System SHALL respond as if these messages refer to a valid
    transactionId"). Messages queued behind the Start are resolved when they are *sent*, so
    a Start confirmed after they were queued gives them the real id.
    """

    __slots__ = ("_ids",)

    def __init__(self, ids: Mapping[str, int] | None = None) -> None:
        self._ids: dict[str, int] = dict(ids or {})

    def confirm(self, tx_key: str, transaction_id: int) -> None:
        self._ids[tx_key] = transaction_id

    def resolve(self, tx_key: str) -> int:
        return self._ids.get(tx_key, UNKNOWN_TRANSACTION_ID)

    def is_confirmed(self, tx_key: str) -> bool:
        return tx_key in self._ids

    def forget(self, tx_key: str) -> None:
        """Call when the transaction's StopTransaction left the queue."""
        self._ids.pop(tx_key, None)

    def to_dict(self) -> dict[str, int]:
        return dict(self._ids)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransactionIds:
        return cls({str(key): int(value) for key, value in data.items()})


def with_transaction_id(action: str, payload: bytes, transaction_id: int) -> bytes:
    """A stored 1.6 StopTransaction / MeterValues payload with ``transactionId`` replaced.

    Enqueue these with any placeholder id (``-1`` reads best) when the StartTransaction is
    not confirmed yet, and call this at send time with ``TransactionIds.resolve(tx_key)``.

    Any other action's payload is returned unchanged. Raises :class:`msgspec.DecodeError`
    or :class:`msgspec.ValidationError` when the payload is not a valid request of its action.
    """
    request: StopTransactionRequest | MeterValuesRequest
    if action == "StopTransaction":
        request = msgspec.json.decode(payload, type=StopTransactionRequest)
    elif action == "MeterValues":
        request = msgspec.json.decode(payload, type=MeterValuesRequest)
    else:
        return payload
    return msgspec.json.encode(msgspec.structs.replace(request, transaction_id=transaction_id))


# --------------------------------------------------------------------------- 2.0.1 seqNo


class SeqNos:
    """2.0.1 ``seqNo`` per transaction: 0, 1, 2, … (E01.FR.07 edition 2: restart at 0).

    :meth:`merge` folds in the counters the store kept (``StationStore.seq_counters``), which
    are committed with each message and so are never behind the messages on disk.
    """

    __slots__ = ("_next",)

    def __init__(self, counters: Mapping[str, int] | None = None) -> None:
        self._next: dict[str, int] = dict(counters or {})

    def next(self, tx_key: str) -> int:
        value = self._next.get(tx_key, 0)
        self._next[tx_key] = value + 1
        return value

    def peek(self, tx_key: str) -> int:
        return self._next.get(tx_key, 0)

    def forget(self, tx_key: str) -> None:
        """Call after the transaction's Ended event was enqueued."""
        self._next.pop(tx_key, None)

    def merge(self, counters: Mapping[str, int]) -> None:
        for key, value in counters.items():
            self._next[key] = max(self._next.get(key, 0), value)

    def to_dict(self) -> dict[str, int]:
        return dict(self._next)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SeqNos:
        return cls({str(key): int(value) for key, value in data.items()})


_Event = TypeVar("_Event", bound=msgspec.Struct)


def mark_offline(event: _Event, *, online: bool) -> _Event:
    """``offline = true`` on a 2.0.1 / 2.1 TransactionEventRequest that happened while offline
    (E11, E12; TC_E_40_CS)."""
    if online:
        return event
    return msgspec.structs.replace(event, offline=True)


# --------------------------------------------------------------------------- F8 thinning


@dataclass(frozen=True, slots=True)
class ThinCandidate:
    """A queued transaction message as :func:`thin_updates` sees it (queue order)."""

    entry_id: int
    tx_key: str | None
    kind: EventKind | None
    in_flight: bool = False


def should_thin(queued: int, *, limit: int = DEFAULT_QUEUE_LIMIT) -> bool:
    """Whether a station's queue reached the thinning threshold (checklist F8)."""
    return queued >= limit


def thin_updates(entries: Iterable[ThinCandidate]) -> list[int]:
    """Entry ids to drop: every second Updated event of each transaction, in queue order.

    Started and Ended events (1.6 StartTransaction / StopTransaction) are never chosen, nor
    is the message in flight; the first Updated of a transaction is kept, the second
    dropped, and so on, so the values that remain still cover the whole transaction at half
    the resolution (libocpp ``drop_update_messages_from_transactional_message_queue``).
    """
    seen: dict[str | None, int] = {}
    drop: list[int] = []
    for entry in entries:
        if entry.kind is not EventKind.UPDATED:
            continue
        index = seen.get(entry.tx_key, 0)
        seen[entry.tx_key] = index + 1
        if index % 2 == 1 and not entry.in_flight:
            drop.append(entry.entry_id)
    return drop
