"""OCPP-J frames: parse bytes into typed frames, encode typed frames into bytes.

Theory of operation
-------------------
A frame is a JSON array whose first element is the message type number (OCPP-J §4.1.3,
2.0.1 Part 4 §4.1.3, 2.1 Part 4 §4.1.3)::

    CALL             [2, messageId, action, payload]
    CALLRESULT       [3, messageId, payload]
    CALLERROR        [4, messageId, errorCode, errorDescription, errorDetails]
    CALLRESULTERROR  [5, messageId, errorCode, errorDescription, errorDetails]   (2.1 only)
    SEND             [6, messageId, action, payload]                             (2.1 only)

The frame is decoded once; the payload is kept as raw JSON (``msgspec.Raw``) so that it can
be decoded straight into the typed message for its action (see ``validation``), without an
intermediate dict.

Parser invariant (fuzzed in the tests): :meth:`FrameParser.parse` returns a frame or raises
:class:`~ocppkit.protocol.errors.FrameError`, never anything else. The error carries the code
to answer with, the message id (``"-1"`` when none can be read, 2.0.1 Part 4 §4.2.3) and the
message type when one could be read, so that the session can decide whether to answer at all
(replies are never answered with a CALLERROR). Error descriptions never echo the input.
"""

from __future__ import annotations

import array
import contextlib
import itertools
import re
from enum import IntEnum
from typing import Any, Final

import msgspec

from ocppkit.protocol.errors import ErrorCode, FrameError, clip_description
from ocppkit.protocol.versions import OcppVersion

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FRAME_SIZE",
    "MAX_MESSAGE_ID_LENGTH",
    "Call",
    "CallError",
    "CallResult",
    "CallResultError",
    "Frame",
    "FrameParser",
    "MessageType",
    "Send",
    "encode_call",
    "encode_call_error",
    "encode_call_result",
    "encode_call_result_error",
    "encode_send",
    "peek_head",
]

#: Default cap on a frame's size in bytes (python-websockets' own default ``max_size``).
DEFAULT_MAX_FRAME_SIZE: Final = 1 << 20
#: Default cap on JSON nesting. The deepest OCPP schema nests about 8 levels.
DEFAULT_MAX_DEPTH: Final = 32
#: messageId is a string[36] (2.0.1 Part 4 §4.1.4); 1.6 uses the same bound in practice.
MAX_MESSAGE_ID_LENGTH: Final = 36


class MessageType(IntEnum):
    """The message type number, first element of every frame."""

    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4
    CALLRESULTERROR = 5
    SEND = 6


class Call(msgspec.Struct, frozen=True):
    """``[2, messageId, action, payload]``: a request that expects exactly one reply."""

    message_id: str
    action: str
    payload: msgspec.Raw


class CallResult(msgspec.Struct, frozen=True):
    """``[3, messageId, payload]``: the successful reply to a CALL."""

    message_id: str
    payload: msgspec.Raw


class CallError(msgspec.Struct, frozen=True):
    """``[4, messageId, errorCode, errorDescription, errorDetails]``: the failed reply."""

    message_id: str
    error_code: str
    error_description: str
    error_details: dict[str, Any]


class CallResultError(msgspec.Struct, frozen=True):
    """OCPP 2.1 ``[5, ...]``: the receiver of a CALLRESULT could not process it."""

    message_id: str
    error_code: str
    error_description: str
    error_details: dict[str, Any]


class Send(msgspec.Struct, frozen=True):
    """OCPP 2.1 ``[6, messageId, action, payload]``: unconfirmed, never answered."""

    message_id: str
    action: str
    payload: msgspec.Raw


Frame = Call | CallResult | CallError | CallResultError | Send

_ARITY: Final = {
    MessageType.CALL: 4,
    MessageType.CALLRESULT: 3,
    MessageType.CALLERROR: 5,
    MessageType.CALLRESULTERROR: 5,
    MessageType.SEND: 4,
}
_TYPES_2_1: Final = frozenset({MessageType.CALLRESULTERROR, MessageType.SEND})

_frame_decoder: Final = msgspec.json.Decoder(list[msgspec.Raw])
_call_decoder: Final = msgspec.json.Decoder(tuple[int, str, str, msgspec.Raw])
_result_decoder: Final = msgspec.json.Decoder(tuple[int, str, msgspec.Raw])
_int_decoder: Final = msgspec.json.Decoder(int)
_str_decoder: Final = msgspec.json.Decoder(str)
_details_decoder: Final = msgspec.json.Decoder(dict[str, Any])
_encoder: Final = msgspec.json.Encoder()

# For the nesting check: drop escapes, then string bodies, then everything but brackets.
_ESCAPE: Final = re.compile(rb"\\.", re.DOTALL)
_STRING: Final = re.compile(rb'"[^"]*"')
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]{}")
# "[" and "{" become +1, "]" and "}" become -1, as signed bytes.
_STEPS: Final = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def _deeper_than(data: bytes, limit: int) -> bool:
    """True when brackets outside strings nest more than ``limit`` deep.

    Everything runs in C: regex substitutions strip escapes and string bodies, ``translate``
    keeps only the brackets, a substring search catches the usual attack (a run of opening
    brackets) at once, and otherwise ``accumulate`` over signed bytes gives the exact depth.
    """
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", data)).translate(None, _NOT_BRACKETS)
    steps = brackets.translate(_STEPS)
    if b"\x01" * (limit + 1) in steps:
        return True
    return max(itertools.accumulate(array.array("b", steps)), default=0) > limit


class FrameParser:
    """Parses frames of one OCPP version, within limits.

    Args:
        version: the connection's version; it decides the error spellings and whether the
            2.1 message types (5, 6) exist.
        max_frame_size: frames longer than this many bytes are rejected unread.
        max_depth: JSON nested deeper than this is rejected before it is decoded.
    """

    def __init__(
        self,
        version: OcppVersion,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.version = version
        self.max_frame_size = max_frame_size
        self.max_depth = max_depth

    def _error(
        self,
        code: ErrorCode,
        description: str,
        message_id: str = "-1",
        message_type: int | None = None,
    ) -> FrameError:
        return FrameError(
            code,
            description,
            version=self.version,
            message_id=message_id,
            message_type=message_type,
        )

    def parse(self, data: bytes | str) -> Frame:
        """Parse one frame.

        Raises:
            FrameError: the frame is not a valid OCPP-J message for this version; its
                ``message_type`` attribute is the type number when one could be read.
        """
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if len(raw) > self.max_frame_size:
            return self._raise(
                ErrorCode.RPC_FRAMEWORK_ERROR, f"frame exceeds {self.max_frame_size} bytes"
            )
        # Counting brackets is cheap; the exact scan runs only when the count could exceed.
        brackets = raw.count(b"[") + raw.count(b"{")
        if brackets > self.max_depth and _deeper_than(raw, self.max_depth):
            return self._raise(
                ErrorCode.RPC_FRAMEWORK_ERROR, f"JSON nested deeper than {self.max_depth}"
            )
        frame = _fast_parse(raw)
        if frame is not None:
            return frame
        try:
            elements = _frame_decoder.decode(raw)
        except msgspec.ValidationError:
            return self._raise(ErrorCode.RPC_FRAMEWORK_ERROR, "frame is not a JSON array")
        except (msgspec.DecodeError, RecursionError):
            return self._raise(ErrorCode.RPC_FRAMEWORK_ERROR, "frame is not valid JSON")
        return self._frame_from_elements(elements)

    def _raise(self, code: ErrorCode, description: str) -> Frame:
        raise self._error(code, description)

    def _frame_from_elements(self, elements: list[msgspec.Raw]) -> Frame:
        message_id = _read_message_id(elements)
        if message_id is None:
            raise self._error(
                ErrorCode.RPC_FRAMEWORK_ERROR,
                "message id missing, not a string, empty or longer than "
                f"{MAX_MESSAGE_ID_LENGTH} characters",
            )
        try:
            type_number = _int_decoder.decode(elements[0])
        except msgspec.MsgspecError:
            raise self._error(
                ErrorCode.RPC_FRAMEWORK_ERROR, "message type is not an integer", message_id
            ) from None
        try:
            message_type = MessageType(type_number)
        except ValueError:
            message_type = None
        if message_type is None or (
            message_type in _TYPES_2_1 and self.version is not OcppVersion.V21
        ):
            raise self._error(
                ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED,
                f"message type {type_number} is not supported by OCPP {self.version}",
                message_id,
                type_number,
            )
        if len(elements) != _ARITY[message_type]:
            raise self._error(
                ErrorCode.RPC_FRAMEWORK_ERROR,
                f"{message_type.name} must have {_ARITY[message_type]} elements, "
                f"got {len(elements)}",
                message_id,
                message_type,
            )
        try:
            return _BUILDERS[message_type](message_id, elements)
        except _ElementError as exc:
            raise self._error(exc.code, exc.description, message_id, message_type) from None


def _fast_parse(raw: bytes) -> Frame | None:
    """The common, well-formed CALL or CALLRESULT in one typed decode; None for anything else.

    Only compact frames (``[2,`` / ``[3,`` ... ``}]``) qualify: a value that ends with ``}``
    is a JSON object, so the payload check comes free. Everything else, including every
    malformed frame, goes through the general path, which gives the precise error.
    """
    if not raw.endswith(b"}]"):
        return None
    head = raw[:3]
    try:
        if head == b"[2,":
            _, message_id, action, payload = _call_decoder.decode(raw)
            if 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH and action:
                return Call(message_id, action, payload)
        elif head == b"[3,":
            _, message_id, payload = _result_decoder.decode(raw)
            if 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
                return CallResult(message_id, payload)
    except (msgspec.MsgspecError, RecursionError, UnicodeDecodeError):
        pass
    return None


def _read_message_id(elements: list[msgspec.Raw]) -> str | None:
    """The message id, when element 1 is a string of 1..36 characters; else None."""
    if len(elements) < 2:
        return None
    try:
        message_id = _str_decoder.decode(elements[1])
    except (msgspec.MsgspecError, UnicodeDecodeError):
        return None
    if not 0 < len(message_id) <= MAX_MESSAGE_ID_LENGTH:
        return None
    return message_id


class _ElementError(Exception):
    def __init__(self, code: ErrorCode, description: str) -> None:
        self.code = code
        self.description = description


def _text(raw: msgspec.Raw, what: str) -> str:
    try:
        return _str_decoder.decode(raw)
    except (msgspec.MsgspecError, UnicodeDecodeError):
        raise _ElementError(ErrorCode.RPC_FRAMEWORK_ERROR, f"{what} is not a string") from None


def _action(raw: msgspec.Raw) -> str:
    action = _text(raw, "action")
    if not action:
        raise _ElementError(ErrorCode.RPC_FRAMEWORK_ERROR, "action is empty")
    return action


def _payload(raw: msgspec.Raw) -> msgspec.Raw:
    # The payload of every OCPP message is a JSON object; ``{}`` when empty (2.0.1 Part 4
    # §4.1.5). ``null``, arrays and scalars are not a PDU: FormatViolation.
    if memoryview(raw)[:1].tobytes() != b"{":
        raise _ElementError(ErrorCode.FORMAT_VIOLATION, "payload is not a JSON object")
    return raw


def _details(raw: msgspec.Raw) -> dict[str, Any]:
    try:
        return _details_decoder.decode(raw)
    except (msgspec.MsgspecError, UnicodeDecodeError):
        raise _ElementError(
            ErrorCode.RPC_FRAMEWORK_ERROR, "errorDetails is not a JSON object"
        ) from None


def _build_call(message_id: str, e: list[msgspec.Raw]) -> Frame:
    return Call(message_id, _action(e[2]), _payload(e[3]))


def _build_call_result(message_id: str, e: list[msgspec.Raw]) -> Frame:
    return CallResult(message_id, _payload(e[2]))


def _build_call_error(message_id: str, e: list[msgspec.Raw]) -> Frame:
    return CallError(
        message_id, _text(e[2], "errorCode"), _text(e[3], "errorDescription"), _details(e[4])
    )


def _build_call_result_error(message_id: str, e: list[msgspec.Raw]) -> Frame:
    return CallResultError(
        message_id, _text(e[2], "errorCode"), _text(e[3], "errorDescription"), _details(e[4])
    )


def _build_send(message_id: str, e: list[msgspec.Raw]) -> Frame:
    return Send(message_id, _action(e[2]), _payload(e[3]))


_BUILDERS: Final = {
    MessageType.CALL: _build_call,
    MessageType.CALLRESULT: _build_call_result,
    MessageType.CALLERROR: _build_call_error,
    MessageType.CALLRESULTERROR: _build_call_result_error,
    MessageType.SEND: _build_send,
}


# -- encoding -------------------------------------------------------------------------------

Payload = msgspec.Struct | msgspec.Raw | dict[str, Any]


def encode_call(message_id: str, action: str, payload: Payload) -> bytes:
    """``[2, messageId, action, payload]`` as JSON bytes."""
    return _encoder.encode((MessageType.CALL.value, message_id, action, payload))


def encode_call_result(message_id: str, payload: Payload) -> bytes:
    """``[3, messageId, payload]`` as JSON bytes."""
    return _encoder.encode((MessageType.CALLRESULT.value, message_id, payload))


def _error_frame(
    message_type: MessageType,
    message_id: str,
    code: str,
    description: str,
    details: dict[str, Any] | None,
) -> bytes:
    description = clip_description(description)
    return _encoder.encode(
        (message_type.value, message_id, code, description, details if details else {})
    )


def encode_call_error(
    message_id: str, code: str, description: str = "", details: dict[str, Any] | None = None
) -> bytes:
    """``[4, messageId, errorCode, errorDescription, errorDetails]`` as JSON bytes.

    The description is cut to 255 characters; empty details are sent as ``{}``.
    """
    return _error_frame(MessageType.CALLERROR, message_id, code, description, details)


def encode_call_result_error(
    message_id: str, code: str, description: str = "", details: dict[str, Any] | None = None
) -> bytes:
    """OCPP 2.1 ``[5, messageId, errorCode, errorDescription, errorDetails]``."""
    return _error_frame(MessageType.CALLRESULTERROR, message_id, code, description, details)


def encode_send(message_id: str, action: str, payload: Payload) -> bytes:
    """OCPP 2.1 ``[6, messageId, action, payload]`` as JSON bytes."""
    return _encoder.encode((MessageType.SEND.value, message_id, action, payload))


#: A frame's head: message type number, message id and the third element when it is a plain
#: name (the action of a CALL / SEND, the error code of a CALLERROR), else None.
FrameHead = tuple[int, str, str | None]

_HEAD: Final = r'\s*\[\s*([2-6])\s*,\s*"([^"\\]*(?:\\.[^"\\]*)*)"\s*(?:,\s*"([A-Za-z0-9_]{1,64})")?'
_HEAD_STR: Final = re.compile(_HEAD)
_HEAD_BYTES: Final = re.compile(_HEAD.encode())
_json_str: Final = msgspec.json.Decoder(str)


def peek_head(frame: str | bytes) -> FrameHead | None:
    """The head of a frame without parsing the rest (None if it does not start like one).

    Why: observers of every frame (metrics, the message log) need only the type, the id and
    the action; one anchored regular expression is several times cheaper than a JSON parse,
    and a frame whose body is malformed is still classified by its head.
    """
    if isinstance(frame, bytes):
        match_b = _HEAD_BYTES.match(frame)
        if match_b is None:
            return None
        kind_b, id_b, third_b = match_b.groups()
        message_id = id_b.decode("utf-8", "replace")
        third = None if third_b is None else third_b.decode()
        kind = int(kind_b)
    else:
        match = _HEAD_STR.match(frame)
        if match is None:
            return None
        kind, message_id, third = int(match.group(1)), match.group(2), match.group(3)
    if "\\" in message_id:  # JSON escapes: the id as the peer meant it
        with contextlib.suppress(msgspec.DecodeError):
            message_id = _json_str.decode(f'"{message_id}"')
    return kind, message_id, third
