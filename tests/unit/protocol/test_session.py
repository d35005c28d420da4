"""The RPC session (sans-I/O): correlation, one outstanding CALL, deadlines, close.

Anchors: OCPP-J 1.6 §4.1.1 and 2.0.1 Part 4 §4.1.1 (one outstanding CALL per direction),
2.0.1 Part 4 §4.2.3 (CALLERROR use, "-1", duplicate id -> ProtocolError), §4.3 (NotImplemented
/ NotSupported), 2.1 Part 4 §4.2.3-4 (CALLRESULTERROR, SEND); checklist rows C1-C9.
"""

from __future__ import annotations

import json
import uuid

import pytest

from ocppkit.protocol.errors import (
    CallErrorReceived,
    CallTimeoutError,
    ErrorCode,
    FrameError,
    OutgoingMessageError,
    PayloadError,
    SessionClosedError,
)
from ocppkit.protocol.session import (
    CallCompleted,
    CallFailed,
    CallReceived,
    CallResultRejected,
    ErrorAnswered,
    FrameIgnored,
    ReplyDropped,
    RpcSession,
    SendReceived,
)
from tests.helpers.pair import SessionPair

BOOT_16 = {"chargePointVendor": "ACME", "chargePointModel": "X1"}
BOOT_201 = {"reason": "PowerUp", "chargingStation": {"vendorName": "ACME", "model": "X1"}}
BOOT_RESULT = {"currentTime": "2026-11-27T10:00:00Z", "interval": 300, "status": "Accepted"}


def frames(session: RpcSession) -> list[list[object]]:
    return [json.loads(f) for f in session.data_to_send()]


def test_call_round_trip_with_typed_messages() -> None:
    """CALL -> CallReceived(typed) -> send_result -> CallCompleted(typed) on the caller."""
    pair = SessionPair.of("1.6")
    message_id = pair.station.send_call("BootNotification", BOOT_16, now=0.0)
    pair.pump()
    (received,) = pair.csms.events_received()
    assert isinstance(received, CallReceived)
    assert received.message.charge_point_vendor == "ACME"  # type: ignore[attr-defined]
    pair.csms.send_result(received.message_id, BOOT_RESULT)
    pair.pump()
    (completed,) = pair.station.events_received()
    assert isinstance(completed, CallCompleted)
    assert completed.message_id == message_id and completed.action == "BootNotification"
    assert completed.result.interval == 300  # type: ignore[attr-defined]


def test_message_ids_are_uuid4_by_default() -> None:
    """Message ids are unique per sender: uuid4 strings (36 characters)."""
    session = RpcSession("2.0.1")
    ids = [session.send_call("Heartbeat", {}, now=0.0) for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(uuid.UUID(i).version == 4 and len(i) == 36 for i in ids)


def test_one_outstanding_call_further_calls_queued_in_order() -> None:
    """2.0.1 Part 4 §4.1.1: SHALL NOT send a CALL while one awaits its result."""
    pair = SessionPair.of("2.0.1")
    first = pair.station.send_call("Heartbeat", {}, now=0.0)
    second = pair.station.send_call("Heartbeat", {}, now=0.0)
    third = pair.station.send_call(
        "StatusNotification",
        {
            "timestamp": "2026-11-27T10:00:00Z",
            "connectorStatus": "Available",
            "evseId": 1,
            "connectorId": 1,
        },
        now=0.0,
    )
    out = frames(pair.station)
    assert [f[1] for f in out] == [first]
    assert pair.station.call_in_flight == first and pair.station.queued_calls == 2
    pair.csms.receive_data(json.dumps(out[0]), 0.0)
    pair.csms.events_received()
    pair.csms.send_result(first, {"currentTime": "2026-11-27T10:00:00Z"})
    pair.pump()  # answering the first releases the second, and so on
    for expected in (second, third):
        assert pair.station.call_in_flight == expected
        (event,) = pair.csms.events_received()
        assert isinstance(event, CallReceived)
        result = (
            {} if event.action == "StatusNotification" else {"currentTime": "2026-11-27T10:00:00Z"}
        )
        pair.csms.send_result(event.message_id, result)
        pair.pump()
    done = pair.station.events_received()
    assert [e.message_id for e in done] == [first, second, third]
    assert all(isinstance(e, CallCompleted) for e in done)


def test_calls_cross_both_directions() -> None:
    """C9: each side may have its own CALL in flight at the same time (one per direction)."""
    pair = SessionPair.of("2.0.1")
    pair.station.send_call("Heartbeat", {}, now=0.0)
    pair.csms.send_call("GetBaseReport", {"requestId": 1, "reportBase": "FullInventory"}, now=0.0)
    pair.pump()
    station_events = pair.station.events_received()
    csms_events = pair.csms.events_received()
    assert [type(e) for e in station_events] == [CallReceived]
    assert [type(e) for e in csms_events] == [CallReceived]
    pair.station.send_result(station_events[0].message_id, {"status": "Accepted"})
    pair.csms.send_result(csms_events[0].message_id, {"currentTime": "2026-11-27T10:00:00Z"})
    pair.pump()
    assert isinstance(pair.station.events_received()[0], CallCompleted)
    assert isinstance(pair.csms.events_received()[0], CallCompleted)


def test_deadline_gives_local_timeout_and_next_call_goes_out() -> None:
    """C8: no reply within call_timeout -> CallTimeoutError; the queued CALL is then sent."""
    session = RpcSession("1.6", call_timeout=5.0, message_id_factory=iter("abc").__next__)
    session.send_call("Heartbeat", {}, now=100.0)
    session.send_call("Heartbeat", {}, now=101.0)
    assert [f[1] for f in frames(session)] == ["a"]
    assert session.next_deadline() == 105.0
    session.check_deadlines(104.999)
    assert session.events_received() == []
    session.check_deadlines(105.0)
    (failed,) = session.events_received()
    assert isinstance(failed, CallFailed) and isinstance(failed.error, CallTimeoutError)
    assert failed.message_id == "a"
    assert [f[1] for f in frames(session)] == ["b"]
    assert session.next_deadline() == 110.0


def test_late_and_unknown_replies_are_reported_and_dropped() -> None:
    """C6: a reply with an unknown or timed-out id changes nothing."""
    session = RpcSession("1.6", call_timeout=1.0, message_id_factory=iter("ab").__next__)
    session.send_call("Heartbeat", {}, now=0.0)
    session.check_deadlines(2.0)
    session.events_received()
    session.data_to_send()
    session.send_call("Heartbeat", {}, now=2.0)
    session.receive_data(b'[3,"a",{"currentTime":"2026-11-27T10:00:00Z"}]', 2.5)
    session.receive_data(b'[4,"zzz","GenericError","",{}]', 2.5)
    events = session.events_received()
    assert events == [
        ReplyDropped("a", "late: its CALL timed out"),
        ReplyDropped("zzz", "unknown id"),
    ]
    assert session.call_in_flight == "b"
    assert session.data_to_send() == [b'[2,"b","Heartbeat",{}]']


def test_callerror_fails_the_call_with_its_code() -> None:
    """A CALLERROR answer fails our CALL with CallErrorReceived carrying code and details."""
    session = RpcSession("1.6", message_id_factory=lambda: "m1")
    session.send_call("Heartbeat", {}, now=0.0)
    session.receive_data(b'[4,"m1","OccurenceConstraintViolation","missing",{"f":"x"}]', 0.1)
    (failed,) = session.events_received()
    assert isinstance(failed, CallFailed)
    error = failed.error
    assert isinstance(error, CallErrorReceived)
    assert error.code == "OccurenceConstraintViolation"
    assert error.error_code is ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
    assert error.details == {"f": "x"} and error.action == "Heartbeat"


def test_close_fails_every_pending_and_queued_call() -> None:
    """On close every pending CALL fails with a connection-closed error."""
    session = RpcSession("2.0.1")
    ids = [session.send_call("Heartbeat", {}, now=0.0) for _ in range(3)]
    session.close()
    events = session.events_received()
    assert [e.message_id for e in events] == ids
    assert all(
        isinstance(e, CallFailed) and isinstance(e.error, SessionClosedError) for e in events
    )
    with pytest.raises(SessionClosedError):
        session.send_call("Heartbeat", {}, now=0.0)
    session.receive_data(b'[2,"x","Heartbeat",{}]', 0.0)  # ignored once closed
    assert session.events_received() == [] and session.data_to_send() == []
    session.close()  # idempotent


def test_duplicate_incoming_id_while_handled_is_protocol_error() -> None:
    """C3 / 2.0.1 Part 4 §4.2.3: same id while the first is handled -> ProtocolError."""
    session = RpcSession("2.0.1")
    session.receive_data(b'[2,"dup","Heartbeat",{}]', 0.0)
    session.receive_data(b'[2,"dup","Heartbeat",{}]', 0.0)
    assert isinstance(session.events_received()[0], CallReceived)
    assert frames(session) == [
        [4, "dup", "ProtocolError", "a CALL with this message id is still being handled", {}]
    ]
    session.send_result("dup", {"currentTime": "2026-11-27T10:00:00Z"})
    assert frames(session)[0][:2] == [3, "dup"]
    assert session.handling == frozenset()


@pytest.mark.parametrize("action", ["Foo", "bootnotification", "BootNotificationRequest"])
def test_unknown_action_is_not_implemented(action: str) -> None:
    """C1 / 2.0.1 Part 4 §4.2.1: actions are case-sensitive, without the Request suffix."""
    session = RpcSession("2.0.1")
    session.receive_data(json.dumps([2, "u1", action, {}]), 0.0)
    (event,) = session.events_received()
    assert isinstance(event, ErrorAnswered)
    assert frames(session)[0][:3] == [4, "u1", "NotImplemented"]


@pytest.mark.parametrize(
    ("version", "payload", "code"),
    [
        ("1.6", {}, "OccurenceConstraintViolation"),
        ("2.0.1", {}, "OccurrenceConstraintViolation"),
        ("1.6", {"idTag": 12}, "TypeConstraintViolation"),
        ("1.6", {"idTag": "x" * 21}, "PropertyConstraintViolation"),
        ("1.6", {"idTag": "x", "extra": 1}, "FormationViolation"),
        ("2.0.1", {"idToken": {"idToken": "x", "type": "ISO14443"}, "extra": 1}, "FormatViolation"),
        ("2.1", {"idToken": {"idToken": "x", "type": 5}}, "TypeConstraintViolation"),
    ],
)
def test_invalid_payload_answered_with_the_versions_code(
    version: str, payload: dict[str, object], code: str
) -> None:
    """D1-D4: the table's code, spelled for the version; the id is kept."""
    session = RpcSession(version)
    session.receive_data(json.dumps([2, "p1", "Authorize", payload]), 0.0)
    (event,) = session.events_received()
    assert isinstance(event, ErrorAnswered) and isinstance(event.error, PayloadError)
    (reply,) = frames(session)
    assert reply[:3] == [4, "p1", code] and reply[4] == {}


def test_bad_frame_answered_with_minus_one() -> None:
    """B1: invalid JSON -> CALLERROR with "-1"."""
    for version, code in [("1.6", "FormationViolation"), ("2.0.1", "RpcFrameworkError")]:
        session = RpcSession(version)
        session.receive_data(b'[2,"1",', 0.0)
        assert frames(session) == [[4, "-1", code, "frame is not valid JSON", {}]]


def test_unknown_message_type_ignored_on_16_answered_on_2x() -> None:
    """B4: 1.6J §4.1.3 ignore; 2.0.1 Part 4 §4.4 MessageTypeNotSupported."""
    v16 = RpcSession("1.6")
    v16.receive_data(b'[7,"x","Heartbeat",{}]', 0.0)
    assert v16.data_to_send() == []
    (event,) = v16.events_received()
    assert isinstance(event, FrameIgnored)
    v201 = RpcSession("2.0.1")
    v201.receive_data(b'[7,"x","Heartbeat",{}]', 0.0)
    assert frames(v201)[0][:3] == [4, "x", "MessageTypeNotSupported"]


def test_invalid_callresult_fails_the_call_and_21_answers_callresulterror() -> None:
    """C7 / 2.1 Part 4 §4.2.3: a schema-invalid CALLRESULT is a typed error for the caller;
    2.1 tells the peer with CALLRESULTERROR, earlier versions send nothing."""
    for version in ("2.0.1", "2.1"):
        session = RpcSession(version, message_id_factory=lambda: "c1")
        session.send_call("Heartbeat", {}, now=0.0)
        session.data_to_send()
        session.receive_data(b'[3,"c1",{"currentTime":"yesterday"}]', 0.1)
        (failed,) = session.events_received()
        assert isinstance(failed, CallFailed) and isinstance(failed.error, PayloadError)
        assert failed.error.code == "PropertyConstraintViolation"
        sent = frames(session)
        if version == "2.1":
            assert sent[0][:3] == [5, "c1", "PropertyConstraintViolation"]
        else:
            assert sent == []


def test_malformed_reply_fails_the_call_without_callerror() -> None:
    """A malformed CALLRESULT is never answered with a CALLERROR; it fails its CALL."""
    session = RpcSession("2.0.1", message_id_factory=lambda: "c1")
    session.send_call("Heartbeat", {}, now=0.0)
    session.data_to_send()
    session.receive_data(b'[3,"c1",null]', 0.1)
    (failed,) = session.events_received()
    assert isinstance(failed, CallFailed) and isinstance(failed.error, FrameError)
    assert session.data_to_send() == [] and session.call_in_flight is None
    session.receive_data(b'[4,"other","x","y",7]', 0.1)
    assert isinstance(session.events_received()[0], FrameIgnored)


def test_ocpp21_send_is_never_answered() -> None:
    """2.1 Part 4 §4.2.4: SEND is unconfirmed and may go while a CALL is in flight."""
    pair = SessionPair.of("2.1")
    pair.station.send_call("Heartbeat", {}, now=0.0)
    pair.station.send_unconfirmed(
        "NotifyPeriodicEventStream",
        {"id": 1, "pending": 0, "basetime": "2026-11-27T10:00:00Z", "data": [{"t": 0.0, "v": "1"}]},
    )
    pair.pump()
    kinds = [type(e) for e in pair.csms.events_received()]
    assert kinds == [CallReceived, SendReceived]
    assert [json.loads(f)[0] for side, f in pair.wire] == [2, 6]
    with pytest.raises(OutgoingMessageError):
        RpcSession("2.0.1").send_unconfirmed("Heartbeat", {})


def test_invalid_send_is_ignored_silently_for_the_peer() -> None:
    """A SEND is never answered, not even when invalid: it is reported locally."""
    session = RpcSession("2.1")
    session.receive_data(b'[6,"s1","Heartbeat",{"x":1}]', 0.0)
    session.receive_data(b'[6,"s2","NoSuchAction",{}]', 0.0)
    assert session.data_to_send() == []
    assert [type(e) for e in session.events_received()] == [FrameIgnored, FrameIgnored]


def test_callresulterror_is_reported() -> None:
    """2.1: the peer rejects a CALLRESULT we sent."""
    session = RpcSession("2.1")
    session.receive_data(b'[5,"r1","FormatViolation","bad result",{}]', 0.0)
    assert session.events_received() == [
        CallResultRejected("r1", "FormatViolation", "bad result", {})
    ]


def test_outgoing_messages_are_validated() -> None:
    """D8: a message of ours that fails its schema is never sent."""
    session = RpcSession("1.6")
    with pytest.raises(OutgoingMessageError, match="BootNotificationRequest fails its schema"):
        session.send_call("BootNotification", {"chargePointVendor": "ACME"}, now=0.0)
    with pytest.raises(OutgoingMessageError, match="no CALL"):
        session.send_call("NoSuchAction", {}, now=0.0)
    assert session.data_to_send() == [] and session.call_in_flight is None
    session.receive_data(b'[2,"h","Heartbeat",{}]', 0.0)
    with pytest.raises(OutgoingMessageError, match="HeartbeatResponse fails its schema"):
        session.send_result("h", {})
    assert session.handling == {"h"}
    with pytest.raises(OutgoingMessageError, match="awaits an answer"):
        session.send_result("nope", {"currentTime": "2026-11-27T10:00:00Z"})


def test_send_error_uses_the_versions_spelling() -> None:
    """1.6 keeps FormationViolation / OccurenceConstraintViolation on the wire (errata 5.1-2)."""
    session = RpcSession("1.6")
    session.receive_data(b'[2,"a","Heartbeat",{}]', 0.0)
    session.receive_data(b'[2,"b","Heartbeat",{}]', 0.0)
    session.send_error("a", ErrorCode.FORMAT_VIOLATION, "x")
    session.send_error("b", ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION, "y", {"k": 1})
    assert frames(session) == [
        [4, "a", "FormationViolation", "x", {}],
        [4, "b", "OccurenceConstraintViolation", "y", {"k": 1}],
    ]


def test_queue_is_bounded() -> None:
    """Every limit is a keyword argument: at most max_queued_calls wait."""
    session = RpcSession("2.0.1", max_queued_calls=2)
    for _ in range(3):  # one in flight + two queued
        session.send_call("Heartbeat", {}, now=0.0)
    with pytest.raises(OutgoingMessageError, match="2 CALLs already queued"):
        session.send_call("Heartbeat", {}, now=0.0)


def test_send_only_action_as_call_is_not_supported() -> None:
    """2.1 NotifyPeriodicEventStream is a SEND (no response schema): as a CALL -> NotSupported."""
    session = RpcSession("2.1")
    session.receive_data(b'[2,"n1","NotifyPeriodicEventStream",{}]', 0.0)
    assert frames(session)[0][:3] == [4, "n1", "NotSupported"]
    with pytest.raises(OutgoingMessageError, match="no CALL"):
        session.send_call("NotifyPeriodicEventStream", {}, now=0.0)


def _raw_call(message_id: str, action: str, payload: dict[str, object]) -> str:
    return json.dumps([2, message_id, action, payload])


def test_21_retry_with_same_id_replays_the_answer_byte_identically() -> None:
    """2.1 Part 4 §4.1.4 (checklist C4): a CALL retried with the same id and content gets
    the cached answer again, byte for byte, and the application does not see it twice."""
    csms = RpcSession("2.1")
    frame = _raw_call("retry-1", "Heartbeat", {})
    csms.receive_data(frame, now=0.0)
    (received,) = csms.events_received()
    csms.send_result(received.message_id, {"currentTime": "2026-11-27T10:00:00Z"})
    (answer,) = csms.data_to_send()
    csms.receive_data(frame, now=1.0)
    assert csms.events_received() == []
    assert csms.data_to_send() == [answer]


def test_21_same_id_with_other_content_is_protocol_error() -> None:
    """2.1 Part 4 §4.1.4 / checklist C4: the id was used for another CALL -> ProtocolError."""
    csms = RpcSession("2.1")
    csms.receive_data(_raw_call("retry-2", "Heartbeat", {}), now=0.0)
    (received,) = csms.events_received()
    csms.send_error(received.message_id, ErrorCode.INTERNAL_ERROR, "storage down")
    (first,) = csms.data_to_send()
    other = _raw_call("retry-2", "BootNotification", BOOT_201)
    csms.receive_data(other, now=1.0)
    (error,) = frames(csms)
    assert error[:3] == [4, "retry-2", "ProtocolError"]
    csms.receive_data(_raw_call("retry-2", "Heartbeat", {}), now=2.0)
    assert csms.data_to_send() == [first]  # CALLERROR answers are replayed too


def test_21_replay_cache_is_bounded_and_other_versions_have_none() -> None:
    """The cache keeps the last ``replay_cache_size`` answers; 2.0.1 keeps none (its ids are
    unique per sender, a reused id is a new CALL)."""
    csms = RpcSession("2.1", replay_cache_size=2)
    for n in range(3):
        csms.receive_data(_raw_call(f"id-{n}", "Heartbeat", {}), now=0.0)
        (received,) = csms.events_received()
        csms.send_result(received.message_id, {"currentTime": "2026-11-27T10:00:00Z"})
    csms.data_to_send()
    csms.receive_data(_raw_call("id-0", "Heartbeat", {}), now=1.0)
    assert len(csms.events_received()) == 1  # evicted: handled as a new CALL
    v201 = RpcSession("2.0.1")
    for _ in range(2):
        v201.receive_data(_raw_call("same", "Heartbeat", {}), now=0.0)
        (received,) = v201.events_received()
        v201.send_result(received.message_id, {"currentTime": "2026-11-27T10:00:00Z"})
