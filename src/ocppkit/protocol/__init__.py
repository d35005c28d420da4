"""The OCPP protocol core: pure, no I/O.

Bytes and the current time go in; typed messages, events and bytes to send come out.
Nothing in this package touches a socket, a clock or asyncio (design.md, style rule 1).

* :mod:`.frames` parses and encodes OCPP-J frames (types 2-6);
* :mod:`.validation` decodes payloads into the generated typed messages and maps failures
  to each version's CallError codes (:func:`validate_payload`, public API);
* :mod:`.session` is the RPC state machine of one connection;
* :mod:`.router` maps actions to handlers, per instance;
* :mod:`.errors` is the error tree and the code spellings per version.
"""

from ocppkit.protocol.errors import (
    CallErrorReceived,
    CallTimeoutError,
    ErrorCode,
    FrameError,
    HandlerError,
    LocalError,
    OcppError,
    OutgoingMessageError,
    PayloadError,
    RemoteError,
    SessionClosedError,
    wire_code,
)
from ocppkit.protocol.frames import FrameParser, MessageType
from ocppkit.protocol.router import Router
from ocppkit.protocol.session import RpcSession
from ocppkit.protocol.validation import (
    ERROR_CODE_TABLE,
    Relaxation,
    Validator,
    validate_payload,
)
from ocppkit.protocol.versions import OcppVersion, parse_version

__all__ = [
    "ERROR_CODE_TABLE",
    "CallErrorReceived",
    "CallTimeoutError",
    "ErrorCode",
    "FrameError",
    "FrameParser",
    "HandlerError",
    "LocalError",
    "MessageType",
    "OcppError",
    "OcppVersion",
    "OutgoingMessageError",
    "PayloadError",
    "Relaxation",
    "RemoteError",
    "Router",
    "RpcSession",
    "SessionClosedError",
    "Validator",
    "parse_version",
    "validate_payload",
    "wire_code",
]
