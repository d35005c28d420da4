"""Parser invariant (design.md rule 6): any input is accepted or rejected with FrameError.

Hostile inputs from checklist B7 (reliability.md §4) and the issue: deep nesting, huge
numbers, NaN/Infinity, lone surrogates, duplicate keys, long arrays, random bytes. Each is
also fed through a whole RpcSession, which must never raise and must answer a CALLERROR
that fits the rules (id or "-1", description ≤ 255, details {}).
"""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocppkit.protocol.errors import FrameError
from ocppkit.protocol.frames import FrameParser
from ocppkit.protocol.session import RpcSession
from ocppkit.protocol.versions import OcppVersion
from tests.helpers.hostile import HOSTILE


@pytest.mark.parametrize("version", list(OcppVersion))
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_accepted_or_frame_error(name: str, version: OcppVersion) -> None:
    """B7: no RecursionError/ValueError escapes (their cost is measured in bench/)."""
    parser = FrameParser(version)
    try:
        parser.parse(HOSTILE[name])
    except FrameError as error:
        assert len(error.description) <= 255
        assert error.details == {}


@pytest.mark.parametrize("version", list(OcppVersion))
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_through_a_session(name: str, version: OcppVersion) -> None:
    """The session answers every hostile CALL and then still serves a valid one."""
    session = RpcSession(version, message_id_factory=lambda: "own")
    session.receive_data(HOSTILE[name], now=0.0)
    for frame in session.data_to_send():
        reply = json.loads(frame)
        assert reply[0] == 4 and isinstance(reply[1], str) and len(reply[3]) <= 255
        assert reply[4] == {}
        if version is OcppVersion.V16:
            assert reply[2] not in {
                "FormatViolation",
                "RpcFrameworkError",
                "OccurrenceConstraintViolation",
                "MessageTypeNotSupported",
            }
    session.events_received()
    session.receive_data(b'[2,"ok","Heartbeat",{}]', now=0.0)
    (event,) = session.events_received()
    assert event.message_id == "ok"  # type: ignore[union-attr]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    """Any bytes: a frame or FrameError, nothing else."""
    for version in OcppVersion:
        with contextlib.suppress(FrameError):
            FrameParser(version).parse(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(json_values, max_size=6)
    | st.tuples(
        st.sampled_from([2, 3, 4, 5, 6, 7]), st.text(max_size=40), json_values, json_values
    ).map(list)
)
def test_random_json_arrays(frame: list[object]) -> None:
    """Frame-shaped JSON with random element types: a frame or FrameError; the session too."""
    data = json.dumps(frame).encode()
    for version in OcppVersion:
        try:
            FrameParser(version).parse(data)
        except FrameError as error:
            assert len(error.description) <= 255
        session = RpcSession(version)
        session.receive_data(data, now=0.0)
        session.events_received()
        session.data_to_send()
