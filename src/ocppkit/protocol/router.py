"""The router: which handler answers which action, held on an instance.

Handlers are registered per action on a :class:`Router` (there is no module-level registry:
two CSMS instances in one process never share handlers). A handler takes the typed request
and a context object (the connection, so it can call the peer back) and returns the typed
response; it may be a plain function or a coroutine function.

What the peer gets (2.0.1 Part 4 §4.3):

* an action the version does not define: ``NotImplemented`` (answered by the session before
  the router is asked);
* an action the version defines but this router has no handler for: ``NotSupported``;
* a handler that raises :class:`~ocppkit.protocol.errors.HandlerError`: that code;
* a handler that raises anything else: ``InternalError`` (the exception is for the log).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec

from ocppkit.protocol.errors import ErrorCode, HandlerError

__all__ = ["Handler", "Router"]

Handler = Callable[[Any, Any], "msgspec.Struct | Awaitable[msgspec.Struct]"]
_H = TypeVar("_H", bound=Handler)


class Router:
    """Handlers for the actions one side answers, for one OCPP version."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, action: str, handler: Handler) -> None:
        """Make ``handler`` answer ``action``; replaces an earlier one."""
        self._handlers[action] = handler

    def on(self, action: str) -> Callable[[_H], _H]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: _H) -> _H:
            self.register(action, handler)
            return handler

        return decorate

    def handles(self, action: str) -> bool:
        """True when a handler is registered for ``action``."""
        return action in self._handlers

    @property
    def actions(self) -> frozenset[str]:
        """The actions this router answers."""
        return frozenset(self._handlers)

    async def dispatch(self, action: str, request: msgspec.Struct, context: Any) -> msgspec.Struct:
        """Run the handler of ``action``.

        Raises:
            HandlerError: ``NotSupported`` when no handler is registered, or whatever the
                handler raised to answer with a CALLERROR. Other exceptions from the handler
                propagate unchanged: the caller answers ``InternalError`` and logs them.
        """
        handler = self._handlers.get(action)
        if handler is None:
            raise HandlerError(ErrorCode.NOT_SUPPORTED, f"{action} is not supported here")
        result = handler(request, context)
        if inspect.isawaitable(result):
            result = await result
        return result
