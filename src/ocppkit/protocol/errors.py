"""Errors of the protocol core, and the CallError code table.

Every error says whose fault it is and what to answer::

    OcppError
    ├── LocalError                  our side: misuse of the API, or a local condition ended a call
    │   ├── SessionClosedError      the session is closed; pending and queued CALLs fail with it
    │   ├── CallTimeoutError        the peer did not answer our CALL before its deadline
    │   └── OutgoingMessageError    a message we were about to send fails its schema (never sent)
    └── RemoteError                 the peer sent something wrong; ``.code`` is what to answer
        ├── FrameError              the frame is not a readable OCPP-J message
        ├── PayloadError            the payload fails the action's schema (validate_payload)
        └── CallErrorReceived       the peer answered our CALL with a CALLERROR
    HandlerError                    a handler's own answer: reply with this CALLERROR code

A :class:`RemoteError` carries the CallError code *as spelled on the wire for the
connection's version* in ``.code`` and the version-neutral :class:`ErrorCode` in
``.error_code``: OCPP 1.6 keeps its errata spellings ``FormationViolation`` and
``OccurenceConstraintViolation`` (1.6J errata 5.1, 5.2: "will not be fixed"), and a 1.6
connection never receives a 2.x-only code (``RpcFrameworkError`` becomes
``FormationViolation``; ``MessageTypeNotSupported`` is never sent: 1.6J §4.1.3 says ignore).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from ocppkit.protocol.versions import OcppVersion

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "CallErrorReceived",
    "CallTimeoutError",
    "ErrorCode",
    "FrameError",
    "HandlerError",
    "LocalError",
    "OcppError",
    "OutgoingMessageError",
    "PayloadError",
    "RemoteError",
    "SessionClosedError",
    "clip_description",
    "error_code_from_wire",
    "wire_code",
]

#: errorDescription is a string[255] (2.0.1 Part 4 §4.2.3); longer texts are cut.
MAX_DESCRIPTION_LENGTH = 255


class ErrorCode(StrEnum):
    """The CallError codes, version-neutral, valued by their OCPP 2.x spelling."""

    FORMAT_VIOLATION = "FormatViolation"
    GENERIC_ERROR = "GenericError"
    INTERNAL_ERROR = "InternalError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    PROTOCOL_ERROR = "ProtocolError"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
    SECURITY_ERROR = "SecurityError"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"


# 1.6 spellings that differ from 2.x; 2.x-only codes map to the nearest 1.6 code.
_V16_SPELLING: dict[ErrorCode, str] = {
    ErrorCode.FORMAT_VIOLATION: "FormationViolation",
    ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION: "OccurenceConstraintViolation",
    ErrorCode.RPC_FRAMEWORK_ERROR: "FormationViolation",
}
_FROM_WIRE: dict[str, ErrorCode] = {code.value: code for code in ErrorCode} | {
    "FormationViolation": ErrorCode.FORMAT_VIOLATION,
    "OccurenceConstraintViolation": ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
}


def wire_code(code: ErrorCode, version: OcppVersion) -> str:
    """The spelling of ``code`` on a connection of ``version``.

    Raises:
        ValueError: ``MessageTypeNotSupported`` on 1.6, which has no such code (the
            frame is ignored there instead).
    """
    if version is OcppVersion.V16:
        if code is ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED:
            raise ValueError("OCPP 1.6 has no MessageTypeNotSupported; ignore the frame")
        return _V16_SPELLING.get(code, code.value)
    return code.value


def error_code_from_wire(code: str) -> ErrorCode | None:
    """The :class:`ErrorCode` for a received code string in either spelling, else None."""
    return _FROM_WIRE.get(code)


def clip_description(text: str) -> str:
    """``text`` cut to the 255 characters errorDescription allows (string[255])."""
    return (
        text if len(text) <= MAX_DESCRIPTION_LENGTH else text[: MAX_DESCRIPTION_LENGTH - 3] + "..."
    )


class OcppError(Exception):
    """Base of every error the protocol core raises."""


class LocalError(OcppError):
    """Our side is at fault, or a local condition (time, close) ended the operation."""


class SessionClosedError(LocalError):
    """The session was closed; a CALL that was pending or queued can no longer complete."""


class CallTimeoutError(LocalError):
    """The peer did not answer our CALL ``action`` (id ``message_id``) before its deadline."""

    def __init__(self, action: str, message_id: str, timeout: float) -> None:
        super().__init__(f"no reply to {action} ({message_id}) within {timeout:g} s")
        self.action = action
        self.message_id = message_id
        self.timeout = timeout


class OutgoingMessageError(LocalError):
    """A message we were about to send fails its own schema: a bug on our side, never sent.

    ``__cause__`` is the :class:`PayloadError` that describes the violation.
    """


class RemoteError(OcppError):
    """The peer sent something we must reject.

    Attributes:
        error_code: the version-neutral code.
        code: the code as spelled on the wire for ``version``: put it in the CALLERROR.
        description: a short text for errorDescription (≤ 255 characters, never the raw input).
        message_id: the id to answer, ``"-1"`` when none could be read.
        details: errorDetails, ``{}`` when there are none.
    """

    def __init__(
        self,
        error_code: ErrorCode,
        description: str,
        *,
        version: OcppVersion,
        message_id: str = "-1",
        details: dict[str, Any] | None = None,
    ) -> None:
        self.error_code = error_code
        self.version = version
        self.code = (
            error_code.value
            if error_code is ErrorCode.MESSAGE_TYPE_NOT_SUPPORTED
            else wire_code(error_code, version)
        )
        self.description = clip_description(description)
        self.message_id = message_id
        self.details: dict[str, Any] = details if details is not None else {}
        super().__init__(f"{self.code}: {self.description}")


class FrameError(RemoteError):
    """The frame is not a readable OCPP-J message (bad JSON, wrong shape, bad id, type).

    ``message_type`` is the frame's type number when it could be read, else None: replies
    (3, 4, 5) and unknown types are never answered with a CALLERROR on 1.6.
    """

    def __init__(
        self,
        error_code: ErrorCode,
        description: str,
        *,
        version: OcppVersion,
        message_id: str = "-1",
        message_type: int | None = None,
    ) -> None:
        super().__init__(error_code, description, version=version, message_id=message_id)
        self.message_type = message_type


class PayloadError(RemoteError):
    """The payload of ``action`` fails its schema; ``path`` is where (``$.idTag``)."""

    def __init__(
        self,
        error_code: ErrorCode,
        description: str,
        *,
        version: OcppVersion,
        action: str,
        path: str = "$",
        message_id: str = "-1",
    ) -> None:
        super().__init__(error_code, description, version=version, message_id=message_id)
        self.action = action
        self.path = path


class CallErrorReceived(RemoteError):
    """The peer answered our CALL ``action`` with a CALLERROR.

    ``code`` is the code exactly as received (peers send codes outside the table too);
    ``error_code`` is its :class:`ErrorCode`, or ``GENERIC_ERROR`` when unknown.
    """

    def __init__(
        self,
        code: str,
        description: str,
        details: dict[str, Any],
        *,
        version: OcppVersion,
        action: str,
        message_id: str,
    ) -> None:
        known = error_code_from_wire(code)
        super().__init__(
            known or ErrorCode.GENERIC_ERROR,
            description,
            version=version,
            message_id=message_id,
            details=details,
        )
        self.code = code
        self.action = action


class HandlerError(OcppError):
    """Raise from a handler to answer the peer's CALL with a CALLERROR of ``code``.

    A business refusal is not an error: answer with the action's own status (e.g.
    ``Rejected``) in a normal CALLRESULT (2.0.1 Part 4 §4.2.3). Use this for the cases the
    RPC framework defines, such as ``NotSupported`` or ``SecurityError``.
    """

    def __init__(
        self, code: ErrorCode, description: str = "", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{code.value}: {description}")
        self.code = code
        self.description = description
        self.details = details
