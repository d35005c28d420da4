"""A WebSocket server that turns each accepted socket into a :class:`Connection`.

Minimal but real: subprotocol negotiation in the client's order, the identity from the last
path segment (refused with HTTP 400 before the upgrade when invalid), an immediate close
(1002) when no subprotocol matches, and every limit as a keyword argument. Registries and
persistence belong to the CSMS built on top of it.

Authentication happens **before the upgrade** (OCPP security profile 1 remark: "The server
first needs to validate the Authorization header before upgrading the connection"): the
optional ``authenticate`` hook gets a :class:`HandshakeRequest` (identity, Authorization
header, peer IP, peer certificate under TLS) and answers None to go on or an HTTP status to
refuse. The hook is the application's policy; this module only carries the facts to it and
the refusal back, so the transport stays free of CSMS rules. With ``ssl`` the TLS handshake
(see :mod:`ocppkit.transport.tls`) is bounded by ``open_timeout`` too, and a handshake the TLS
layer refuses (no upgrade request ever comes) is told to the optional ``on_tls_refusal``
observer (:func:`~ocppkit.transport.tls.report_refused_handshakes`), which the application
logs and counts as it sees fit.

A request line that is not ASCII (a raw UTF-8 station id, checklist A4) gets ``400 Bad
Request`` (RFC 9112 §3: an invalid request-line SHOULD get 400) from
:class:`_AsciiRequestLine`: python-websockets would only close the socket without a status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final

import structlog
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from ocppkit.protocol.identity import InvalidIdentityError, identity_from_path
from ocppkit.protocol.router import Router
from ocppkit.protocol.session import RpcSession
from ocppkit.protocol.versions import OcppVersion
from ocppkit.transport.connection import DEFAULT_MAX_INCOMING, Connection, FrameObserver
from ocppkit.transport.keepalive import Keepalive
from ocppkit.transport.negotiation import choose_subprotocol
from ocppkit.transport.rate_limit import RateLimiter
from ocppkit.transport.tls import TlsRefusalObserver, report_refused_handshakes

__all__ = [
    "CLOSE_NO_SUBPROTOCOL",
    "DEFAULT_BACKLOG",
    "Authenticator",
    "HandshakeRequest",
    "serve",
]

#: Close code when the client offered no OCPP subprotocol we speak (protocol error).
CLOSE_NO_SUBPROTOCOL: Final = 1002
#: asyncio's default listen backlog of 100 overflows in a reconnect storm
#: (shared/tooling-notes.md); thousands of stations reconnecting at once need more.
DEFAULT_BACKLOG: Final = 4096

_log = structlog.get_logger("ocppkit.transport")

OnConnect = Callable[[Connection], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class HandshakeRequest:
    """What an :data:`Authenticator` may judge, taken from the upgrade request.

    ``authorization`` is the raw ``Authorization`` header (None when absent, ``""`` when
    sent more than once); it is kept out of ``repr`` so that it cannot reach a log line.
    ``peer_certificate`` is :meth:`ssl.SSLSocket.getpeercert`'s dict: the client
    certificate the TLS layer already verified (profile 3), else None.
    """

    identity: str
    authorization: str | None = dataclasses.field(repr=False)
    remote_ip: str
    peer_certificate: Mapping[str, Any] | None = None


#: Awaited before the upgrade: None accepts, an HTTP status (401, 404, 429...) refuses.
Authenticator = Callable[[HandshakeRequest], Awaitable[int | None]]


async def serve(
    routers: Mapping[OcppVersion, Router],
    host: str = "127.0.0.1",
    port: int = 9000,
    *,
    on_connect: OnConnect | None = None,
    on_close: OnConnect | None = None,
    observer: FrameObserver | None = None,
    session_options: Mapping[str, Any] | None = None,
    open_timeout: float = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    max_size: int = 1 << 20,
    max_queue: int = 16,
    backlog: int = DEFAULT_BACKLOG,
    compression: str | None = "deflate",
    authenticate: Authenticator | None = None,
    ssl: ssl_module.SSLContext | None = None,
    max_incoming: int = DEFAULT_MAX_INCOMING,
    rate_limiter: Callable[[], RateLimiter] | None = None,
    on_tls_refusal: TlsRefusalObserver | None = None,
) -> Server:
    """Start serving OCPP on ``host:port``; the versions served are the keys of ``routers``.

    Args:
        routers: the router answering stations of each version.
        on_connect: run with each new connection, beside it (e.g. to register it); it starts
            before any frame of the connection is handled; the connection is closed when it
            raises.
        on_close: awaited once the connection has ended (and ``on_connect`` has returned).
        observer: sees every frame in and out (see :class:`Connection`).
        session_options: keyword arguments for each :class:`RpcSession` (timeouts, limits).
        open_timeout: seconds a client may take to complete the handshake (the TLS handshake
            and the WebSocket upgrade are bounded separately, each by this).
        ping_interval, ping_timeout: WebSocket keep-alive (:mod:`ocppkit.transport.keepalive`):
            a ping every ``ping_interval`` seconds, closed 1011 without a pong within
            ``ping_timeout``; None disables it.
        max_size: largest frame in bytes; bigger ones close the connection with 1009.
        max_queue: frames websockets buffers before it stops reading.
        backlog: the listen backlog.
        compression: ``"deflate"`` (permessage-deflate, required of a 2.0.1 CSMS) or None.
        authenticate: judges each upgrade request before the upgrade (module docstring);
            a refusal is answered with that HTTP status and no upgrade. 401 carries
            ``WWW-Authenticate: Basic`` (RFC 7235 §3.1). An exception in the hook is logged
            and answered 503, so the station retries.
        ssl: serve ``wss://`` with this context (see :mod:`ocppkit.transport.tls`).
        max_incoming: the peer's CALLs queued per connection before reading pauses.
        rate_limiter: makes each connection's limit on frames per second (see
            :mod:`ocppkit.transport.rate_limit`); None for no limit.
        on_tls_refusal: with ``ssl``, told of each handshake the TLS layer refuses (an
            untrusted, expired or missing client certificate, plain HTTP, an old protocol);
            it sets ``ssl.sslobject_class``. No cost once a connection is established.

    Returns:
        The running ``websockets`` server (``close()`` / ``wait_closed()`` to stop it).
    """
    supported = tuple(routers)
    options = dict(session_options or {})

    def select(connection: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        chosen = choose_subprotocol(offered, supported)
        return Subprotocol(chosen) if chosen else None

    async def check_request(connection: ServerConnection, request: Request) -> Response | None:
        try:
            identity = identity_from_path(request.path)
        except InvalidIdentityError as exc:
            return _refuse(http.HTTPStatus.BAD_REQUEST, str(exc))
        if authenticate is None:
            return None
        authorization = request.headers.get_all("Authorization")
        peer = connection.remote_address
        handshake = HandshakeRequest(
            identity=identity,
            authorization=authorization[0]
            if len(authorization) == 1
            else ("" if authorization else None),
            remote_ip=str(peer[0]) if peer else "",
            peer_certificate=connection.transport.get_extra_info("peercert") if ssl else None,
        )
        try:
            status = await authenticate(handshake)
        except Exception:
            _log.exception("authentication hook failed", station_id=identity)
            return _refuse(http.HTTPStatus.SERVICE_UNAVAILABLE, "try again later")
        if status is None:
            return None
        return _refuse(http.HTTPStatus(status), "")

    async def handle(websocket: ServerConnection) -> None:
        if websocket.subprotocol is None:
            await websocket.close(CLOSE_NO_SUBPROTOCOL, "no supported OCPP subprotocol offered")
            return
        version = OcppVersion.from_subprotocol(websocket.subprotocol)
        assert websocket.request is not None
        identity = identity_from_path(websocket.request.path)
        # The upgrade's response is of no use once open (about 0.8 KiB a connection with its
        # headers). The request stays: websockets' frame parser keeps a reference to it.
        websocket.response = None
        connection = Connection(
            websocket,
            RpcSession(version, **options),
            routers[version],
            identity=identity,
            observer=observer,
            max_incoming=max_incoming,
            rate_limit=rate_limiter() if rate_limiter is not None else None,
        )
        if keepalive is None:
            await run_connection(connection, on_connect, on_close)
            return
        keepalive.add(websocket)
        try:
            await run_connection(connection, on_connect, on_close)
        finally:
            keepalive.discard(websocket)

    # One keep-alive task for all connections instead of websockets' task per connection.
    keepalive = Keepalive(ping_interval, ping_timeout) if ping_interval is not None else None
    # asyncio's own TLS handshake deadline is 60 s; a slowloris ClientHello gets ours.
    tls_options: dict[str, Any] = {"ssl_handshake_timeout": open_timeout} if ssl else {}
    if ssl is not None and on_tls_refusal is not None:
        report_refused_handshakes(ssl, on_tls_refusal)
    return await ws_serve(
        handle,
        host,
        port,
        select_subprotocol=select,
        process_request=check_request,
        open_timeout=open_timeout,
        ping_interval=None,
        max_size=max_size,
        max_queue=max_queue,
        backlog=backlog,
        compression=compression,
        ssl=ssl,
        create_connection=_AsciiRequestLine,
        **tls_options,
    )


_BAD_REQUEST_LINE: Final = (
    b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 36\r\nConnection: close\r\n\r\nBad Request: request line not ASCII\n"
)


class _AsciiRequestLine(ServerConnection):
    """A :class:`ServerConnection` that answers 400 to a request line with non-ASCII bytes.

    Why a subclass: websockets' handshake parser turns any request line it cannot decode
    into a bare EOF, with no hook before it. Only the bytes up to the first line feed are
    looked at; once it has passed, the object becomes a plain :class:`ServerConnection`
    again (``__class__`` swap), so no frame of an open connection pays for the check and
    the connection carries no extra attribute.
    """

    def data_received(self, data: bytes) -> None:
        line_end = data.find(b"\n")
        line = data if line_end < 0 else data[:line_end]
        if not line.isascii():
            peer = self.transport.get_extra_info("peername")
            _log.warning(
                "connection refused: request line not ASCII",
                remote_ip=str(peer[0]) if peer else "",
                status=400,
            )
            self.transport.write(_BAD_REQUEST_LINE)
            self.transport.close()
            return
        if line_end >= 0:
            self.__class__ = ServerConnection  # type: ignore[assignment]
        ServerConnection.data_received(self, data)


async def run_connection(
    connection: Connection, on_connect: OnConnect | None, on_close: OnConnect | None = None
) -> None:
    """Run ``connection`` in this task, the application's ``on_connect`` beside it, then
    ``on_close``.

    The connection runs in the caller's task (the one websockets gives each connection)
    rather than a task of its own: with thousands of idle stations every task per
    connection counts. ``on_connect`` gets one turn of the loop before the connection reads,
    so it sees the connection before any of its frames is handled.
    """
    opening: asyncio.Task[None] | None = None
    if on_connect is not None:
        opening = asyncio.create_task(_opened(connection, on_connect))
        await asyncio.sleep(0)
    try:
        await connection.run()
    finally:
        if opening is not None:
            await opening
        if on_close is not None:
            await on_close(connection)


async def _opened(connection: Connection, on_connect: OnConnect) -> None:
    try:
        await on_connect(connection)
    except Exception:
        connection.log.exception("on_connect failed; closing")
        await connection.close(1011, "internal error")


def _refuse(status: http.HTTPStatus, text: str) -> Response:
    body = (f"{status.value} {status.phrase}: {text}\n" if text else f"{status.phrase}\n").encode()
    headers = Headers(
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    if status is http.HTTPStatus.UNAUTHORIZED:
        headers["WWW-Authenticate"] = 'Basic realm="ocpp", charset="UTF-8"'
    return Response(status.value, status.phrase, headers, body)
