"""The RPC session: one OCPP-J connection's state machine, without I/O.

Theory of operation
-------------------
Bytes and the current time go in (:meth:`RpcSession.receive_data`, :meth:`check_deadlines`);
events and frames to send come out (:meth:`events_received`, :meth:`data_to_send`). The
caller owns the socket and the clock; the session never reads either. Times are plain
floats in seconds from any monotonic clock.

Rules it enforces:

1. **One outstanding CALL per direction** (1.6J §4.1.1 SHOULD, 2.0.1 Part 4 §4.1.1 SHALL NOT):
   :meth:`send_call` puts a CALL on the wire only when no other of ours awaits its reply;
   otherwise it is queued (FIFO, at most ``max_queued_calls``) and sent when the one in
   flight is answered, fails or times out.
2. **Correlation**: a CALLRESULT or CALLERROR whose id is the CALL in flight completes it
   (:class:`CallCompleted` / :class:`CallFailed`); any other id is reported as
   :class:`ReplyDropped` and changes nothing (checklist C6), whether it is unknown or
   arrives after its CALL timed out.
3. **Deadlines**: a CALL in flight longer than ``call_timeout`` fails with
   :class:`~ocppkit.protocol.errors.CallTimeoutError` and the next queued CALL goes out.
4. **Incoming CALLs** are validated (unknown action -> ``NotImplemented``; a payload that
   fails its schema -> the code of the error-code table) and answered with a CALLERROR by
   the session itself; valid ones become :class:`CallReceived`, and the application answers
   with :meth:`send_result` or :meth:`send_error`. A CALL whose id is still being handled is
   answered ``ProtocolError`` (2.0.1 Part 4 §4.2.3) and the first one goes on.
   OCPP 2.1 retries a CALL with the *same* id (2.1 Part 4 §4.1.4): the session keeps the
   answers to the last ``replay_cache_size`` CALLs and sends the cached answer again,
   byte for byte, without a new :class:`CallReceived`, when the same id comes back with
   the same action and payload bytes; the same id with other content is ``ProtocolError``.
5. **Bad frames** are answered as the spec asks: an unreadable frame or CALL gets a
   CALLERROR with the id, or ``"-1"`` when none can be read; an unknown message type gets
   ``MessageTypeNotSupported`` on 2.x and is ignored on 1.6 (1.6J §4.1.3); a malformed reply
   is never answered with a CALLERROR (2.1 answers it with a CALLRESULTERROR), it fails the
   CALL it answers.
6. **Close**: every CALL in flight or queued fails with
   :class:`~ocppkit.protocol.errors.SessionClosedError`; frames not yet taken by
   :meth:`data_to_send` are discarded and nothing more is sent.

Message ids of our CALLs are uuid4 strings, unique per sender (OCPP-J §4.1.4).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from ocppkit.protocol.errors import (
    CallErrorReceived,
    CallTimeoutError,
    ErrorCode,
    FrameError,
    OcppError,
    OutgoingMessageError,
    PayloadError,
    RemoteError,
    SessionClosedError,
    wire_code,
)
from ocppkit.protocol.frames import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FRAME_SIZE,
    Call,
    CallError,
    CallResult,
    CallResultError,
    FrameParser,
    MessageType,
    Send,
    encode_call,
    encode_call_error,
    encode_call_result,
    encode_call_result_error,
    encode_send,
)
from ocppkit.protocol.validation import Relaxation, Validator, message_types
from ocppkit.protocol.versions import OcppVersion, parse_version

__all__ = [
    "DEFAULT_CALL_TIMEOUT",
    "DEFAULT_MAX_QUEUED_CALLS",
    "CallCompleted",
    "CallFailed",
    "CallReceived",
    "CallResultRejected",
    "ErrorAnswered",
    "Event",
    "FrameIgnored",
    "ReplyDropped",
    "RpcSession",
    "SendReceived",
]

#: 30 s is what libocpp and the mobilityhouse library use (reliability.md §1.3).
DEFAULT_CALL_TIMEOUT: Final = 30.0
#: CALLs waiting behind the one in flight; more than this is our own misuse.
DEFAULT_MAX_QUEUED_CALLS: Final = 1000
#: Timed-out ids remembered to tell a late reply from an unknown one.
_LATE_IDS_KEPT: Final = 64
#: Every action of every OCPP version: tells "another version's action" from "unknown".
_ALL_ACTIONS: Final = frozenset().union(*(message_types(v) for v in OcppVersion))
#: Answers kept for OCPP 2.1 retries with the same message id.
DEFAULT_REPLAY_CACHE_SIZE: Final = 1000


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallReceived:
    """The peer sent a valid CALL; answer it with send_result or send_error."""

    message_id: str
    action: str
    message: msgspec.Struct
    relaxations: frozenset[Relaxation] = frozenset()


@dataclass(frozen=True, slots=True)
class SendReceived:
    """OCPP 2.1: the peer sent a valid SEND; it is never answered."""

    message_id: str
    action: str
    message: msgspec.Struct
    relaxations: frozenset[Relaxation] = frozenset()


@dataclass(frozen=True, slots=True)
class CallCompleted:
    """Our CALL was answered with a valid CALLRESULT."""

    message_id: str
    action: str
    result: msgspec.Struct
    relaxations: frozenset[Relaxation] = frozenset()


@dataclass(frozen=True, slots=True)
class CallFailed:
    """Our CALL failed: CALLERROR, invalid or malformed reply, timeout, or close."""

    message_id: str
    action: str
    error: OcppError


@dataclass(frozen=True, slots=True)
class ReplyDropped:
    """A reply that matches no CALL in flight (unknown, or late after a timeout)."""

    message_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorAnswered:
    """The session answered a bad frame or CALL with a CALLERROR (for logs and metrics)."""

    error: RemoteError


@dataclass(frozen=True, slots=True)
class FrameIgnored:
    """A frame the spec says to ignore (1.6 unknown type, bad SEND, late CALLRESULTERROR)."""

    error: OcppError


@dataclass(frozen=True, slots=True)
class CallResultRejected:
    """OCPP 2.1: the peer could not process a CALLRESULT we sent (CALLRESULTERROR)."""

    message_id: str
    code: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)


Event = (
    CallReceived
    | SendReceived
    | CallCompleted
    | CallFailed
    | ReplyDropped
    | ErrorAnswered
    | FrameIgnored
    | CallResultRejected
)


@dataclass(slots=True)
class _OutgoingCall:
    message_id: str
    action: str
    frame: bytes
    deadline: float = 0.0


def _new_message_id() -> str:
    return str(uuid.uuid4())


class RpcSession:
    """One OCPP-J connection, either side, as a pure state machine.

    Args:
        version: the negotiated version.
        call_timeout: seconds a CALL of ours may wait for its reply.
        max_queued_calls: CALLs that may wait behind the one in flight.
        max_frame_size: larger incoming frames are rejected unread.
        max_depth: incoming JSON nested deeper is rejected before decoding.
        lenient: relaxations this connection accepts from the peer (see ``validation``).
        validate_outgoing: check our own messages against their schema before sending
            (checklist D8); a violation raises instead of sending.
        message_id_factory: makes the ids of our CALLs (uuid4 by default).
        replay_cache_size: OCPP 2.1 only: answers kept for retries with the same id.
    """

    # Slots: thousands of idle stations each hold one (no per-instance dict).
    __slots__ = (
        "_events",
        "_handling",
        "_in_flight",
        "_late_ids",
        "_new_id",
        "_out",
        "_parser",
        "_queue",
        "_replay",
        "_replay_requests",
        "_replay_size",
        "call_timeout",
        "closed",
        "max_queued_calls",
        "validate_outgoing",
        "validator",
        "version",
    )

    def __init__(
        self,
        version: str | OcppVersion,
        *,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        max_queued_calls: int = DEFAULT_MAX_QUEUED_CALLS,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
        lenient: frozenset[Relaxation] = frozenset(),
        validate_outgoing: bool = True,
        message_id_factory: Callable[[], str] = _new_message_id,
        replay_cache_size: int = DEFAULT_REPLAY_CACHE_SIZE,
    ) -> None:
        self.version = parse_version(version)
        self.call_timeout = call_timeout
        self.max_queued_calls = max_queued_calls
        self.validate_outgoing = validate_outgoing
        self.validator = Validator(self.version, lenient=lenient)
        self._parser = FrameParser(self.version, max_frame_size=max_frame_size, max_depth=max_depth)
        self._new_id = message_id_factory
        self._in_flight: _OutgoingCall | None = None
        # Plain lists, not deques: an empty deque costs 760 bytes, and thousands of idle
        # sessions keep these empty nearly all the time.
        self._queue: list[_OutgoingCall] = []
        self._handling: dict[str, str] = {}  # id of the peer's CALL -> its action
        self._late_ids: list[str] = []  # the last _LATE_IDS_KEPT timed-out ids
        # OCPP 2.1 retries: id -> (action, payload bytes) while handled, then -> + answer.
        self._replay_size = replay_cache_size if self.version is OcppVersion.V21 else 0
        self._replay_requests: dict[str, tuple[str, bytes]] = {}
        self._replay: OrderedDict[str, tuple[str, bytes, bytes]] = OrderedDict()
        self._events: list[Event] = []
        self._out: list[bytes] = []
        self.closed = False

    # -- output -----------------------------------------------------------------------------

    def events_received(self) -> list[Event]:
        """Events produced since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[bytes]:
        """Frames to write to the socket, in order, since the last call."""
        out, self._out = self._out, []
        return out

    @property
    def call_in_flight(self) -> str | None:
        """The id of our CALL awaiting its reply, if any."""
        return self._in_flight.message_id if self._in_flight else None

    @property
    def queued_calls(self) -> int:
        """CALLs of ours waiting behind the one in flight."""
        return len(self._queue)

    @property
    def handling(self) -> frozenset[str]:
        """Ids of the peer's CALLs that await our answer."""
        return frozenset(self._handling)

    def next_deadline(self) -> float | None:
        """When :meth:`check_deadlines` next has work: the in-flight CALL's deadline."""
        return self._in_flight.deadline if self._in_flight else None

    # -- sending ----------------------------------------------------------------------------

    def send_call(self, action: str, payload: msgspec.Struct | dict[str, Any], now: float) -> str:
        """Queue a CALL of ours; returns its message id. Its outcome arrives as an event.

        Raises:
            SessionClosedError: the session is closed.
            OutgoingMessageError: ``action`` is unknown, the payload fails its schema, or the
                queue is full.
        """
        self._check_open()
        if not self.validator.has_response(action):
            raise OutgoingMessageError(f"OCPP {self.version} has no CALL {action!r}")
        if len(self._queue) >= self.max_queued_calls:
            raise OutgoingMessageError(f"{self.max_queued_calls} CALLs already queued")
        message_id = self._new_id()
        body = self._checked_payload(action, payload, response=False)
        call = _OutgoingCall(message_id, action, encode_call(message_id, action, body))
        self._queue.append(call)
        self._send_next_call(now)
        return message_id

    def send_result(self, message_id: str, payload: msgspec.Struct | dict[str, Any]) -> None:
        """Answer the peer's CALL ``message_id`` with a CALLRESULT.

        Raises:
            SessionClosedError: the session is closed.
            OutgoingMessageError: no CALL with that id awaits an answer, or the payload fails
                the response schema (then nothing is sent: answer with send_error instead).
        """
        self._check_open()
        action = self._answerable(message_id)
        body = self._checked_payload(action, payload, response=True)
        del self._handling[message_id]
        self._emit_answer(message_id, encode_call_result(message_id, body))

    def send_error(
        self,
        message_id: str,
        code: ErrorCode,
        description: str = "",
        details: dict[str, Any] | None = None,
    ) -> None:
        """Answer the peer's CALL ``message_id`` with a CALLERROR (spelled for the version).

        Raises:
            SessionClosedError: the session is closed.
            OutgoingMessageError: no CALL with that id awaits an answer.
        """
        self._check_open()
        self._answerable(message_id)
        del self._handling[message_id]
        self._emit_answer(
            message_id, encode_call_error(message_id, self._spell(code), description, details)
        )

    def _emit_answer(self, message_id: str, frame: bytes) -> None:
        self._out.append(frame)
        request = self._replay_requests.pop(message_id, None)
        if request is not None:
            self._replay[message_id] = (*request, frame)
            while len(self._replay) > self._replay_size:
                self._replay.popitem(last=False)

    def send_unconfirmed(self, action: str, payload: msgspec.Struct | dict[str, Any]) -> str:
        """OCPP 2.1 SEND: a message that is never answered; allowed while a CALL is in flight.

        Raises:
            OutgoingMessageError: not a 2.1 session, unknown action, or invalid payload.
        """
        self._check_open()
        if self.version is not OcppVersion.V21:
            raise OutgoingMessageError(f"SEND does not exist in OCPP {self.version}")
        if not self.validator.knows(action):
            raise OutgoingMessageError(f"OCPP {self.version} has no action {action!r}")
        message_id = self._new_id()
        body = self._checked_payload(action, payload, response=False)
        self._out.append(encode_send(message_id, action, body))
        return message_id

    def close(self) -> None:
        """Close the session: every CALL in flight or queued fails with SessionClosedError."""
        if self.closed:
            return
        self.closed = True
        pending = ([self._in_flight] if self._in_flight else []) + list(self._queue)
        self._in_flight = None
        self._queue.clear()
        self._handling.clear()
        self._out.clear()  # the socket is gone: frames not yet written can no longer be
        for call in pending:
            self._events.append(
                CallFailed(call.message_id, call.action, SessionClosedError("connection closed"))
            )

    def check_deadlines(self, now: float) -> None:
        """Fail the CALL in flight if its deadline has passed, then send the next one."""
        call = self._in_flight
        if call is None or now < call.deadline:
            return
        self._in_flight = None
        self._late_ids.append(call.message_id)
        del self._late_ids[:-_LATE_IDS_KEPT]
        error = CallTimeoutError(call.action, call.message_id, self.call_timeout)
        self._events.append(CallFailed(call.message_id, call.action, error))
        self._send_next_call(now)

    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosedError("the session is closed")

    def _answerable(self, message_id: str) -> str:
        action = self._handling.get(message_id)
        if action is None:
            raise OutgoingMessageError(f"no CALL {message_id!r} awaits an answer")
        return action

    def _spell(self, code: ErrorCode) -> str:
        return wire_code(code, self.version)

    def _checked_payload(
        self, action: str, payload: msgspec.Struct | dict[str, Any], *, response: bool
    ) -> msgspec.Raw:
        body = msgspec.json.encode(payload)
        if self.validate_outgoing:
            try:
                self.validator.decode(action, body, response=response)
            except PayloadError as exc:
                raise OutgoingMessageError(
                    f"our {action}{'Response' if response else 'Request'} fails its schema: "
                    f"{exc.description}"
                ) from exc
        return msgspec.Raw(body)

    def _send_next_call(self, now: float) -> None:
        if self._in_flight is None and self._queue:
            call = self._queue.pop(0)
            call.deadline = now + self.call_timeout
            self._in_flight = call
            self._out.append(call.frame)

    # -- receiving --------------------------------------------------------------------------

    def receive_data(self, data: bytes | str, now: float) -> None:
        """Feed one WebSocket message (a whole frame). Never raises for bad input."""
        if self.closed:
            return
        try:
            frame = self._parser.parse(data)
        except FrameError as error:
            self._on_bad_frame(error, now)
            return
        if isinstance(frame, Call):
            self._on_call(frame)
        elif isinstance(frame, CallResult):
            self._on_result(frame, now)
        elif isinstance(frame, CallError):
            self._on_error(frame, now)
        elif isinstance(frame, Send):
            self._on_send(frame)
        else:
            self._on_result_error(frame)

    def _answer_error(self, error: RemoteError) -> None:
        self._out.append(
            encode_call_error(error.message_id, error.code, error.description, error.details)
        )
        self._events.append(ErrorAnswered(error))

    def _on_bad_frame(self, error: FrameError, now: float) -> None:
        kind = error.message_type
        if error.error_code is ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED:
            # Before the type-based cases: 5 and 6 are not a reply or a SEND before 2.1
            # (2.0.1 Part 4 §4.4 answers them); 1.6 ignores unknown types (1.6J §4.1.3).
            if self.version.is_2x:
                self._answer_error(error)
            else:
                self._events.append(FrameIgnored(error))
        elif kind in (MessageType.CALLRESULT, MessageType.CALLERROR, MessageType.CALLRESULTERROR):
            self._on_bad_reply(error, now)
        elif kind == MessageType.SEND:
            # A SEND is never answered.
            self._events.append(FrameIgnored(error))
        else:
            self._answer_error(error)

    def _on_bad_reply(self, error: FrameError, now: float) -> None:
        call = self._in_flight
        if call is None or call.message_id != error.message_id:
            self._events.append(FrameIgnored(error))
            return
        if error.message_type == MessageType.CALLRESULT and self.version is OcppVersion.V21:
            self._out.append(
                encode_call_result_error(error.message_id, error.code, error.description)
            )
        self._finish_call(CallFailed(call.message_id, call.action, error), now)

    def _on_call(self, frame: Call) -> None:
        message_id = frame.message_id
        if self._replay_size and self._replayed(frame):
            return
        if message_id in self._handling:
            self._answer_error(
                RemoteError(
                    ErrorCode.PROTOCOL_ERROR,
                    "a CALL with this message id is still being handled",
                    version=self.version,
                    message_id=message_id,
                )
            )
            return
        if not self.validator.knows(frame.action):
            # 2.0.1 Part 4 §4.3: NotImplemented is "not known by receiver"; an action of
            # another OCPP version is recognized but not supported here (checklist C2).
            elsewhere = frame.action in _ALL_ACTIONS
            self._answer_error(
                RemoteError(
                    ErrorCode.NOT_SUPPORTED if elsewhere else ErrorCode.NOT_IMPLEMENTED,
                    f"{frame.action} is not an OCPP {self.version} action"
                    if elsewhere
                    else f"unknown action for OCPP {self.version}",
                    version=self.version,
                    message_id=message_id,
                )
            )
            return
        if not self.validator.has_response(frame.action):
            self._answer_error(
                RemoteError(
                    ErrorCode.NOT_SUPPORTED,
                    f"{frame.action} exists only as a SEND, it cannot be a CALL",
                    version=self.version,
                    message_id=message_id,
                )
            )
            return
        try:
            message, relaxations = self.validator.decode(frame.action, frame.payload)
        except PayloadError as error:
            error.message_id = message_id
            self._answer_error(error)
            return
        self._handling[message_id] = frame.action
        if self._replay_size:
            self._replay_requests[message_id] = (frame.action, bytes(frame.payload))
        self._events.append(CallReceived(message_id, frame.action, message, relaxations))

    def _replayed(self, frame: Call) -> bool:
        """2.1 retry of an answered CALL: resend the answer (True), or refuse other content."""
        cached = self._replay.get(frame.message_id)
        if cached is None:
            return False
        action, payload, answer = cached
        if frame.action == action and bytes(frame.payload) == payload:
            self._out.append(answer)
        else:
            self._answer_error(
                RemoteError(
                    ErrorCode.PROTOCOL_ERROR,
                    "message id reused for a different CALL",
                    version=self.version,
                    message_id=frame.message_id,
                )
            )
        return True

    def _on_send(self, frame: Send) -> None:
        if not self.validator.knows(frame.action):
            self._events.append(
                FrameIgnored(
                    RemoteError(
                        ErrorCode.NOT_IMPLEMENTED,
                        "SEND of an unknown action",
                        version=self.version,
                        message_id=frame.message_id,
                    )
                )
            )
            return
        try:
            message, relaxations = self.validator.decode(frame.action, frame.payload)
        except PayloadError as error:
            error.message_id = frame.message_id
            self._events.append(FrameIgnored(error))
            return
        self._events.append(SendReceived(frame.message_id, frame.action, message, relaxations))

    def _reply_target(self, message_id: str) -> _OutgoingCall | None:
        call = self._in_flight
        if call is not None and call.message_id == message_id:
            return call
        reason = "late: its CALL timed out" if message_id in self._late_ids else "unknown id"
        self._events.append(ReplyDropped(message_id, reason))
        return None

    def _finish_call(self, event: CallCompleted | CallFailed, now: float) -> None:
        self._in_flight = None
        self._events.append(event)
        self._send_next_call(now)

    def _on_result(self, frame: CallResult, now: float) -> None:
        call = self._reply_target(frame.message_id)
        if call is None:
            return
        try:
            result, relaxations = self.validator.decode(call.action, frame.payload, response=True)
        except PayloadError as error:
            error.message_id = frame.message_id
            if self.version is OcppVersion.V21:
                self._out.append(
                    encode_call_result_error(frame.message_id, error.code, error.description)
                )
            self._finish_call(CallFailed(call.message_id, call.action, error), now)
            return
        self._finish_call(CallCompleted(call.message_id, call.action, result, relaxations), now)

    def _on_error(self, frame: CallError, now: float) -> None:
        call = self._reply_target(frame.message_id)
        if call is None:
            return
        error = CallErrorReceived(
            frame.error_code,
            frame.error_description,
            frame.error_details,
            version=self.version,
            action=call.action,
            message_id=frame.message_id,
        )
        self._finish_call(CallFailed(call.message_id, call.action, error), now)

    def _on_result_error(self, frame: CallResultError) -> None:
        self._events.append(
            CallResultRejected(
                frame.message_id, frame.error_code, frame.error_description, frame.error_details
            )
        )
