"""Message types 5 and 6 before OCPP 2.1 (checklist B4), and actions of another version (C2).

CALLRESULTERROR and SEND exist only in 2.1 (2.1 Part 4 §4.1.3), so a 2.0.1 session answers
them ``MessageTypeNotSupported`` (2.0.1 Part 4 §4.4) instead of treating them as a reply or a
SEND, and a 1.6 session ignores them (1.6J §4.1.3). Found by the robustness checklist tests
(tests/robustness/test_checklist_b_framing.py, test_checklist_c_rpc.py)."""

from __future__ import annotations

import json

import pytest

from ocppkit.protocol.session import CallResultRejected, FrameIgnored, RpcSession

FRAMES = {
    "CALLRESULTERROR": b'[5,"x","GenericError","",{}]',
    "SEND": b'[6,"x","Heartbeat",{}]',
}


@pytest.mark.parametrize("frame", list(FRAMES.values()), ids=list(FRAMES))
def test_2_1_message_types_answered_message_type_not_supported_on_201(frame: bytes) -> None:
    session = RpcSession("2.0.1")
    session.receive_data(frame, 0.0)
    (answer,) = [json.loads(f) for f in session.data_to_send()]
    assert answer[:3] == [4, "x", "MessageTypeNotSupported"]
    assert answer[4] == {}


@pytest.mark.parametrize("frame", list(FRAMES.values()), ids=list(FRAMES))
def test_2_1_message_types_ignored_on_16(frame: bytes) -> None:
    session = RpcSession("1.6")
    session.receive_data(frame, 0.0)
    assert session.data_to_send() == []
    (event,) = session.events_received()
    assert isinstance(event, FrameIgnored)


def test_2_1_still_takes_callresulterror_and_send() -> None:
    session = RpcSession("2.1")
    session.receive_data(FRAMES["CALLRESULTERROR"], 0.0)
    session.receive_data(FRAMES["SEND"], 0.0)
    assert session.data_to_send() == []
    events = session.events_received()
    assert isinstance(events[0], CallResultRejected)
    assert type(events[1]).__name__ == "SendReceived"


@pytest.mark.parametrize(
    ("version", "action"),
    [("2.0.1", "NotifySettlement"), ("2.0.1", "StartTransaction"), ("1.6", "TransactionEvent")],
)
def test_action_of_another_version_is_not_supported(version: str, action: str) -> None:
    """C2 / 2.0.1 Part 4 §4.3: NotSupported is "recognized but not supported": an action that
    another OCPP version defines (a 2.1-only action on 2.0.1) is recognized; NotImplemented
    stays for names no version knows (C1)."""
    session = RpcSession(version)
    session.receive_data(json.dumps([2, "c2", action, {}]), 0.0)
    code = next(json.loads(f) for f in session.data_to_send())[2]
    assert code == "NotSupported"
    session.receive_data(json.dumps([2, "c1", "NotifySettlements", {}]), 0.0)
    assert next(json.loads(f) for f in session.data_to_send())[2] == "NotImplemented"
