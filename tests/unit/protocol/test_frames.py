"""OCPP-J framing: parse and encode message types 2-6, and malformed frames per the spec.

Anchors: OCPP-J 1.6 §4, 2.0.1 Part 4 §4 (RPC framework), 2.1 Part 4 §4.2.4 (SEND) and
§4.2.3 (CALLRESULTERROR); checklist rows B1-B4, B7, B9, B10 of reliability.md §4.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocppkit.protocol.errors import FrameError
from ocppkit.protocol.frames import (
    MAX_MESSAGE_ID_LENGTH,
    Call,
    CallError,
    CallResult,
    CallResultError,
    FrameParser,
    MessageType,
    Send,
    _deeper_than,
    encode_call,
    encode_call_error,
    encode_call_result,
    encode_call_result_error,
    encode_send,
    peek_head,
)
from ocppkit.protocol.versions import OcppVersion

V16, V201, V21 = OcppVersion.V16, OcppVersion.V201, OcppVersion.V21
ALL = [V16, V201, V21]


def parse(data: bytes | str, version: OcppVersion = V201) -> object:
    return FrameParser(version).parse(data)


def rejected(data: bytes | str, version: OcppVersion = V201) -> FrameError:
    with pytest.raises(FrameError) as info:
        FrameParser(version).parse(data)
    return info.value


@pytest.mark.parametrize("version", ALL)
def test_call_is_parsed_with_raw_payload(version: OcppVersion) -> None:
    """CALL = [2, messageId, action, payload] (OCPP-J §4.2.1)."""
    frame = parse(b'[2, "19223201", "BootNotification", {"a": [1, {"b": 2}]}]', version)
    assert isinstance(frame, Call)
    assert frame.message_id == "19223201"
    assert frame.action == "BootNotification"
    assert json.loads(bytes(frame.payload)) == {"a": [1, {"b": 2}]}


def test_callresult_callerror_parsed() -> None:
    """CALLRESULT = [3, id, payload]; CALLERROR = [4, id, code, description, details]."""
    result = parse(b'[3,"1",{"status":"Accepted"}]')
    assert isinstance(result, CallResult) and bytes(result.payload) == b'{"status":"Accepted"}'
    error = parse(b'[4,"1","NotImplemented","no such action",{"x":1}]')
    assert error == CallError("1", "NotImplemented", "no such action", {"x": 1})


def test_ocpp21_callresulterror_and_send() -> None:
    """2.1 Part 4 §4.2.3 CALLRESULTERROR [5, ...] and §4.2.4 SEND [6, id, action, payload]."""
    assert parse(b'[5,"1","FormatViolation","bad",{}]', V21) == CallResultError(
        "1", "FormatViolation", "bad", {}
    )
    send = parse(b'[6,"9","NotifyPeriodicEventStream",{}]', V21)
    assert isinstance(send, Send) and send.action == "NotifyPeriodicEventStream"


@pytest.mark.parametrize("version", [V16, V201])
@pytest.mark.parametrize("data", [b'[5,"1","E","d",{}]', b'[6,"1","Heartbeat",{}]'])
def test_types_5_and_6_do_not_exist_before_21(version: OcppVersion, data: bytes) -> None:
    """Message types 5 and 6 are 2.1 additions: unknown types on 1.6 and 2.0.1."""
    error = rejected(data, version)
    assert error.message_type in (5, 6)
    assert error.message_id == "1"
    assert error.error_code.value == "MessageTypeNotSupported"


@pytest.mark.parametrize("number", [0, 1, 7, 99])
def test_unknown_message_type_2x(number: int) -> None:
    """B4 / 2.0.1 Part 4 §4.4: unknown type -> MessageTypeNotSupported with the id."""
    error = rejected(f'[{number},"abc","Heartbeat",{{}}]'.encode(), V201)
    assert (error.code, error.message_id, error.message_type) == (
        "MessageTypeNotSupported",
        "abc",
        number,
    )


@pytest.mark.parametrize(
    "data",
    [b'[2,"1",', b"", b"   ", b'[2,"1","Heartbeat",{}] x', b'[2,"1","H",{}][1]', b"\xff\xfe"],
)
@pytest.mark.parametrize("version", ALL)
def test_invalid_json_gets_minus_one(data: bytes, version: OcppVersion) -> None:
    """B1, B10 / 2.0.1 Part 4 §4.2.3: unreadable id -> "-1"; 1.6 spells FormationViolation."""
    error = rejected(data, version)
    assert error.message_id == "-1"
    assert error.code == ("FormationViolation" if version is V16 else "RpcFrameworkError")
    assert error.details == {}


@pytest.mark.parametrize(
    ("data", "message_id"),
    [
        (b"{}", "-1"),
        (b"[]", "-1"),
        (b"[2]", "-1"),
        (b'"x"', "-1"),
        (b'["2","1","Heartbeat",{}]', "1"),
        (b'[2,1,"Heartbeat",{}]', "-1"),
        (b'[2,null,"Heartbeat",{}]', "-1"),
        (b'[2,"","Heartbeat",{}]', "-1"),
        (b'[2,"' + b"x" * (MAX_MESSAGE_ID_LENGTH + 1) + b'","Heartbeat",{}]', "-1"),
        (b'[2,"1","Heartbeat"]', "1"),
        (b'[2,"1","Heartbeat",{},{}]', "1"),
        (b'[2,"1",5,{}]', "1"),
        (b'[2,"1","",{}]', "1"),
        (b'[3,"1"]', "1"),
        (b'[4,"1","NotImplemented","x"]', "1"),
        (b'[4,"1",5,"x",{}]', "1"),
        (b'[4,"1","GenericError",null,{}]', "1"),
        (b'[4,"1","GenericError","x",[]]', "1"),
        (b'[2.0,"1","Heartbeat",{}]', "1"),
        (b'[true,"1","Heartbeat",{}]', "1"),
    ],
)
def test_wrong_shape_is_rpc_framework_error(data: bytes, message_id: str) -> None:
    """B2, B3: not an array, wrong arity or element types, bad id -> RpcFrameworkError."""
    error = rejected(data, V201)
    assert error.code == "RpcFrameworkError"
    assert error.message_id == message_id


def test_message_id_of_36_characters_is_accepted() -> None:
    """messageId is string[36] (2.0.1 Part 4 §4.1.4): 36 is the bound, 37 is over it."""
    frame = parse(b'[2,"' + b"x" * 36 + b'","Heartbeat",{}]')
    assert isinstance(frame, Call) and len(frame.message_id) == 36


@pytest.mark.parametrize("payload", [b"null", b"[]", b"1", b'"x"'])
@pytest.mark.parametrize("version", ALL)
def test_payload_must_be_an_object(payload: bytes, version: OcppVersion) -> None:
    """B9 / 2.0.1 Part 4 §4.1.5: an empty payload is {} not null -> FormatViolation."""
    error = rejected(b'[2,"7","Heartbeat",' + payload + b"]", version)
    assert error.message_id == "7" and error.message_type == MessageType.CALL
    assert error.code == ("FormationViolation" if version is V16 else "FormatViolation")


def test_description_never_echoes_input() -> None:
    """2.0.1 Part 4 §4.2.3: the CALLERROR must not embed the invalid JSON."""
    secret = "SECRET-INPUT-abc"
    for data in [f'[2,"1",{secret}', f'["{secret}"]', f'[9,"1","{secret}",{{}}]']:
        error = rejected(data)
        assert secret not in error.description
        assert len(error.description) <= 255


def test_str_input_is_accepted() -> None:
    """websockets hands text frames over as str; the parser takes both."""
    assert isinstance(parse('[2,"1","Heartbeat",{}]'), Call)


def test_frame_size_limit() -> None:
    """Every limit is a constructor argument with a safe default (design.md rule 4)."""
    parser = FrameParser(V201, max_frame_size=30)
    assert isinstance(parser.parse(b'[2,"1","Heartbeat",{}]'), Call)
    with pytest.raises(FrameError, match="exceeds 30 bytes"):
        parser.parse(b'[2,"1","Heartbeat",{"x":"' + b"y" * 30 + b'"}]')


def test_depth_limit_counts_only_structure() -> None:
    """Brackets inside strings, escaped quotes included, do not count as nesting."""
    parser = FrameParser(V201, max_depth=4)
    text = b'[2,"1","H",{"a":"[[[[[[[[\\"[[[[{{{{"}]'
    assert isinstance(parser.parse(text), Call)
    assert isinstance(parser.parse(b'[2,"1","H",{"a":[[1]]}]'), Call)
    with pytest.raises(FrameError, match="nested deeper than 4"):
        parser.parse(b'[2,"1","H",{"a":[[[1]]]}]')


def test_encoders_round_trip() -> None:
    """Each encoder writes the frame the parser reads back."""
    p = FrameParser(V21)
    assert p.parse(encode_call("1", "Heartbeat", {})) == Call("1", "Heartbeat", msgspec.Raw(b"{}"))
    assert p.parse(encode_call_result("2", msgspec.Raw(b'{"a":1}'))) == CallResult(
        "2", msgspec.Raw(b'{"a":1}')
    )
    assert p.parse(encode_call_error("3", "GenericError", "d", {"k": "v"})) == CallError(
        "3", "GenericError", "d", {"k": "v"}
    )
    assert p.parse(encode_call_result_error("4", "FormatViolation")) == CallResultError(
        "4", "FormatViolation", "", {}
    )
    assert p.parse(encode_send("5", "Heartbeat", {})) == Send("5", "Heartbeat", msgspec.Raw(b"{}"))


def test_encoded_error_description_is_cut_and_details_empty_object() -> None:
    """errorDescription is string[255]; errorDetails MUST be {} when empty (§4.2.3)."""
    frame = json.loads(encode_call_error("1", "GenericError", "x" * 1000, None))
    assert len(frame[3]) == 255 and frame[3].endswith("...")
    assert frame[4] == {}


def _naive_depth(text: str) -> int:
    depth = best = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (ch == "\\", ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
        max_leaves=40,
    ),
    st.integers(0, 12),
)
def test_depth_check_is_exact(value: object, limit: int) -> None:
    """The C-speed depth check agrees with a naive scanner, brackets in strings ignored."""
    text = json.dumps(value)
    assert _deeper_than(text.encode(), limit) == (_naive_depth(text) > limit)


def test_depth_check_without_runs_of_brackets() -> None:
    """Depth that grows without consecutive '[' ("[[]" repeated) is still measured."""
    text = "[[]" * 40 + "]" * 40
    assert _deeper_than(text.encode(), 40) and not _deeper_than(text.encode(), 41)


@pytest.mark.parametrize(
    ("frame", "head"),
    [
        ('[2,"a1","Heartbeat",{}]', (2, "a1", "Heartbeat")),
        (b' [ 3 , "a1" , {"currentTime": "x"}]', (3, "a1", None)),
        ('[4,"a1","FormationViolation","",{}]', (4, "a1", "FormationViolation")),
        ('[2,"a\\"b","Heartbeat",{}]', (2, 'a"b', "Heartbeat")),  # the id as meant
        ('[2,"a1",5,{}]', (2, "a1", None)),  # third element not a name
        ('[2,"a1","Heartbeat",{', (2, "a1", "Heartbeat")),  # body malformed: head still read
        ('{"not": "a frame"}', None),
        ('[7,"a1","Heartbeat",{}]', None),  # OCPP-J §4.1.3: types 2..6 only
        ("", None),
    ],
)
def test_peek_head_reads_type_id_and_action_only(frame: str | bytes, head: Any) -> None:
    """The head observers (metrics, message log) rely on, without a JSON parse."""
    assert peek_head(frame) == head
