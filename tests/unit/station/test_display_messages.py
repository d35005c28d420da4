"""Display messages, pure (OCPP 2.0.1 O01-O06): SetDisplayMessage's statuses, the filters
of GetDisplayMessages, expiry by time and transaction, what the display shows, paging."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
import pytest

from ocppkit.messages import v201
from ocppkit.station.display_messages import (
    DisplayMessages,
    DisplaySupport,
    notify_display_messages,
)
from tests.unit import test_layers

T0 = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
P = v201.MessagePriorityEnum
S = v201.MessageStateEnum


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def msg(mid: int, priority: str = "NormalCycle", fmt: str = "UTF8", **extra: Any) -> Any:
    raw = {"id": mid, "priority": priority, "message": {"format": fmt, "content": "hi"}}
    for name, value in extra.items():
        head, *rest = name.split("_")
        wire = head + "".join(part.title() for part in rest)
        raw[wire] = value.isoformat() if isinstance(value, datetime.datetime) else value
    return msgspec.convert(raw, v201.MessageInfo)


def put(store: DisplayMessages, message: Any, **kw: Any) -> tuple[str, str | None]:
    options: dict[str, Any] = {"now": T0, "support": DisplaySupport(), "transactions": set()}
    options.update(kw)
    status, reason = store.set(message, **options)
    return str(status), reason


def test_module_is_pure() -> None:
    """design.md rule 1: no I/O, no clock reads, no global random state."""
    test_layers.test_station_core_is_pure("display_messages")


@pytest.mark.parametrize(
    ("message", "support", "expected"),
    [
        (msg(1), DisplaySupport(), ("Accepted", None)),
        (
            msg(1, fmt="HTML"),
            DisplaySupport(formats=frozenset({v201.MessageFormatEnum.UTF8})),
            ("NotSupportedMessageFormat", None),
        ),
        (
            msg(1, "AlwaysFront"),
            DisplaySupport(priorities=frozenset({P.NORMAL_CYCLE})),
            ("NotSupportedPriority", None),
        ),
        (
            msg(1, state="Faulted"),
            DisplaySupport(states=frozenset({S.IDLE, S.CHARGING})),
            ("NotSupportedState", None),
        ),
        (msg(1, state="Idle"), DisplaySupport(states=frozenset({S.IDLE})), ("Accepted", None)),
        (msg(1), DisplaySupport(enabled=False), ("Rejected", "Disabled")),
        (msg(1, transaction_id="tx-9"), DisplaySupport(), ("UnknownTransaction", None)),
        (msg(1, transaction_id="tx-1"), DisplaySupport(), ("Accepted", None)),
        (msg(1, end_date_time=T0), DisplaySupport(), ("Rejected", "InvalidTimeWindow")),
        (
            msg(1, start_date_time=at(60), end_date_time=at(60)),
            DisplaySupport(),
            ("Rejected", "InvalidTimeWindow"),
        ),
        (
            msg(1, start_date_time=at(60), end_date_time=at(61)),
            DisplaySupport(),
            ("Accepted", None),
        ),
    ],
)
def test_set_statuses_o01_o02(message: Any, support: DisplaySupport, expected: tuple) -> None:
    """O01: the format, priority and state the display supports; disabled is Rejected; an
    empty or past time window Rejected. O02: a transaction not running is
    UnknownTransaction, a running one Accepted."""
    store = DisplayMessages(max_messages=5)
    assert put(store, message, support=support, transactions={"tx-1"}) == expected
    assert len(store) == (1 if expected[0] == "Accepted" else 0)


def test_capacity_and_replacement_o06() -> None:
    """A full store Rejects a new id (TooManyMessages); an existing id replaces (O06)."""
    store = DisplayMessages(max_messages=2)
    assert put(store, msg(1))[0] == put(store, msg(2))[0] == "Accepted"
    assert put(store, msg(3)) == ("Rejected", "TooManyMessages")
    assert put(store, msg(2, "InFront")) == ("Accepted", None)
    assert store.messages[2].priority is P.IN_FRONT and len(store) == 2


def test_expiry_and_transaction_end_prune_o01_o02() -> None:
    """A message is gone after its endDateTime, a transaction's once it is not running;
    every answer prunes first (a full store frees up)."""
    store = DisplayMessages(max_messages=2)
    put(store, msg(1, end_date_time=at(10)))
    put(store, msg(2, transaction_id="tx-1"), transactions={"tx-1"})
    assert put(store, msg(3), now=at(5), transactions={"tx-1"})[0] == "Rejected"
    assert [m.id for m in store.get(now=at(9), transactions={"tx-1"})] == [1, 2]
    assert [m.id for m in store.get(now=at(10), transactions={"tx-1"})] == [2]
    assert put(store, msg(3), now=at(10), transactions={"tx-1"})[0] == "Accepted"
    assert store.clear(2, now=at(11), transactions=set()) == "Unknown"
    assert store.prune(at(11), set()) is False


def test_get_filters_o03_o04_and_clear_o05() -> None:
    """O03 all; O04 every given filter must match (ids, priority, state); O05 Accepted then
    Unknown."""
    store = DisplayMessages(max_messages=9)
    put(store, msg(3, "InFront", state="Idle"))
    put(store, msg(1, "InFront"))
    put(store, msg(2, state="Idle"))

    def ids(**filters: Any) -> list[int]:
        return [m.id for m in store.get(now=T0, transactions=set(), **filters)]

    assert ids() == [1, 2, 3]
    assert ids(priority=P.IN_FRONT) == [1, 3]
    assert ids(state=S.IDLE, priority=P.IN_FRONT) == [3]
    assert ids(ids=[2, 3, 4]) == [2, 3]
    assert ids(ids=[1], state=S.IDLE) == []
    assert store.clear(1, now=T0, transactions=set()) == "Accepted"
    assert store.clear(1, now=T0, transactions=set()) == "Unknown"


def test_showing_orders_and_filters() -> None:
    """What the display shows: started, not ended, for the state and the transaction;
    AlwaysFront, then InFront, then NormalCycle."""
    store = DisplayMessages(max_messages=9)
    put(store, msg(1))
    put(store, msg(2, "AlwaysFront", start_date_time=at(30)))
    put(store, msg(3, "InFront", state="Charging"))
    put(store, msg(4, "InFront", transaction_id="tx-1"), transactions={"tx-1"})
    put(store, msg(5, "AlwaysFront", end_date_time=at(20)), transactions={"tx-1"})

    def shown(now: datetime.datetime, state: v201.MessageStateEnum, tx: str | None = None) -> list:
        return [m.id for m in store.showing(now=now, state=state, transaction_id=tx)]

    assert shown(T0, S.IDLE) == [5, 1]
    assert shown(T0, S.CHARGING, "tx-1") == [5, 3, 4, 1]
    assert shown(at(40), S.CHARGING) == [2, 3, 1]


def test_snapshot_round_trip() -> None:
    store = DisplayMessages(max_messages=3)
    put(store, msg(1, "InFront", end_date_time=at(60), state="Idle"))
    data = msgspec.json.decode(msgspec.json.encode(store.to_dict()))
    back = DisplayMessages.from_dict(data, max_messages=3)
    assert back.messages == store.messages
    with pytest.raises(msgspec.ValidationError):
        DisplayMessages.from_dict({"messages": [{"id": "x"}]}, max_messages=3)


def test_notify_display_messages_pages() -> None:
    """NotifyDisplayMessages: the requestId, tbc on all but the last, within the items and
    bytes allowed; every message once, in order."""
    messages = [msg(i) for i in range(5)]
    pages = notify_display_messages(4, messages, items_per_message=2, bytes_per_message=65000)
    assert [(len(p.message_info), p.tbc) for p in pages] == [
        (2, True),
        (2, True),
        (1, msgspec.UNSET),
    ]
    assert {p.request_id for p in pages} == {4}
    tight = notify_display_messages(4, messages, items_per_message=9, bytes_per_message=200)
    assert [m.id for p in tight for m in p.message_info] == [0, 1, 2, 3, 4]
    assert all(len(msgspec.json.encode(p)) <= 200 for p in tight)
