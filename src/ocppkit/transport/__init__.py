"""asyncio + websockets: drive RPC sessions over real sockets.

:class:`Connection` binds one ``websockets`` connection to one
:class:`~ocppkit.protocol.RpcSession`; :func:`serve` and :func:`connect` open them with OCPP's
subprotocol rules.
"""

from ocppkit.transport.client import NegotiationError, connect
from ocppkit.transport.connection import Connection
from ocppkit.transport.negotiation import DEFAULT_PREFERENCE, choose_subprotocol
from ocppkit.transport.server import serve

__all__ = [
    "DEFAULT_PREFERENCE",
    "Connection",
    "NegotiationError",
    "choose_subprotocol",
    "connect",
    "serve",
]
