"""The asyncio driver of one RPC session over one ``websockets`` connection.

Theory of operation
-------------------
While :meth:`Connection.run` runs, one task — the **reader** — lives as long as the socket;
the others exist only while they have work, because an idle station (the common case: a
Heartbeat every few minutes) should cost as little memory as possible:

* the **reader** feeds every text message to the :class:`~ocppkit.protocol.RpcSession` with
  the loop's clock, turns its events into resolved futures (our CALLs) or queued work (the
  peer's CALLs), and arms a loop timer for the session's next deadline;
* the **handler worker** answers the peer's CALLs one at a time, in arrival order, through
  the :class:`~ocppkit.protocol.Router`. It is started when a CALL arrives and ends when none
  is left. It runs beside the reader, so a handler may itself :meth:`~Connection.call` the
  peer: the reply is read while the handler waits (no deadlock, checklist C9);
* when the deadline timer fires, a short task fails our CALL in flight, so the next queued
  CALL goes out;
* **writing**: one writer at a time takes the frames the session produced, in order
  (serialized writes). The reader and the handler worker write their own frames when no
  write is in progress (no task hop on the hot path); :meth:`Connection.call` and
  :meth:`Connection.send` hand theirs to a writer task, so that cancelling the caller can
  never lose a frame half-way.

Backpressure: the peer's CALLs wait in a list of ``max_incoming`` entries; when it is full
the reader stops reading, and TCP flow control slows the peer down: none is dropped
(checklist C5). Frames to write wait in a list; beyond ``max_outgoing`` producers wait for the
writer. Binary frames are not OCPP-J (which is text, OCPP-J §3): the connection is closed
with 1003.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any, Final

import msgspec
import structlog
from websockets.asyncio.connection import Connection as WebSocket
from websockets.exceptions import ConnectionClosed

from ocppkit.protocol.errors import (
    ErrorCode,
    HandlerError,
    OcppError,
    OutgoingMessageError,
    SessionClosedError,
)
from ocppkit.protocol.router import Router
from ocppkit.protocol.session import (
    CallCompleted,
    CallFailed,
    CallReceived,
    ErrorAnswered,
    Event,
    FrameIgnored,
    ReplyDropped,
    RpcSession,
    SendReceived,
)
from ocppkit.transport.rate_limit import CLOSE_RATE_EXCEEDED, RateLimiter

__all__ = ["DEFAULT_MAX_INCOMING", "DEFAULT_MAX_OUTGOING", "Connection", "FrameObserver"]

#: Peer CALLs that may wait for the handler worker before reading pauses.
DEFAULT_MAX_INCOMING: Final = 16
#: Frames that may wait for the writer before producers pause.
DEFAULT_MAX_OUTGOING: Final = 256
#: Close code for a binary frame (RFC 6455 §7.4.1: data of a type it cannot accept).
CLOSE_UNSUPPORTED_DATA: Final = 1003

_log = structlog.get_logger("ocppkit.transport")

FrameObserver = Callable[["Connection", str, "str | bytes"], None]


class Connection:
    """One OCPP connection: a session, a socket, a router, and the tasks that join them.

    Args:
        websocket: an open ``websockets`` connection whose subprotocol has been agreed.
        session: the RPC session for the negotiated version.
        router: answers the peer's CALLs; without one every CALL is answered NotSupported.
        identity: the station id, for logs (and for the application's use).
        context: passed to handlers as their second argument (defaults to this connection).
        max_incoming: see the module docstring.
        max_outgoing: see the module docstring.
        observer: called with (connection, "in" | "out", frame) for every text frame read
            or written, e.g. for a message log; it must not block.
        rate_limit: limits the frames read per second (see :mod:`.rate_limit`); None reads
            as fast as the peer sends.
    """

    # Slots: thousands of idle stations each hold one (no per-instance dict).
    __slots__ = (
        "__weakref__",
        "_done",
        "_drained",
        "_handler",
        "_incoming",
        "_loop",
        "_out",
        "_room",
        "_tasks",
        "_timer",
        "_waiters",
        "_writing",
        "context",
        "identity",
        "max_incoming",
        "max_outgoing",
        "observer",
        "rate_limit",
        "router",
        "session",
        "websocket",
    )

    def __init__(
        self,
        websocket: WebSocket,
        session: RpcSession,
        router: Router | None = None,
        *,
        identity: str = "",
        context: Any = None,
        max_incoming: int = DEFAULT_MAX_INCOMING,
        max_outgoing: int = DEFAULT_MAX_OUTGOING,
        observer: FrameObserver | None = None,
        rate_limit: RateLimiter | None = None,
    ) -> None:
        self.websocket = websocket
        self.rate_limit = rate_limit
        self.session = session
        self.router = router if router is not None else Router()
        self.identity = identity
        self.context = self if context is None else context
        self.observer = observer
        self.max_incoming = max_incoming
        self.max_outgoing = max_outgoing
        self._incoming: list[CallReceived] = []
        self._handler: asyncio.Task[None] | None = None
        self._room: asyncio.Future[None] | None = None  # the reader waits for the handler
        self._out: list[bytes] = []
        self._writing = False
        self._drained: asyncio.Future[None] | None = None  # producers wait for the writer
        self._waiters: dict[str, asyncio.Future[msgspec.Struct]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()  # handler, writer and deadline tasks

    @property
    def log(self) -> Any:
        """This connection's logger (bound on use: log lines are rare, idle stations many)."""
        return _log.bind(station_id=self.identity, ocpp=str(self.session.version))

    @property
    def version(self) -> str:
        """The negotiated OCPP version, e.g. ``"2.0.1"``."""
        return str(self.session.version)

    @property
    def incoming_backlog(self) -> int:
        """The peer's CALLs waiting for the handler worker (at most ``max_incoming``)."""
        return len(self._incoming)

    @property
    def closed(self) -> bool:
        """True once the socket is closed and every pending call has failed."""
        return self._done.is_set()

    # -- the application's side -------------------------------------------------------------

    async def call(self, action: str, payload: msgspec.Struct | dict[str, Any]) -> Any:
        """Send a CALL and wait for its reply; CALLs queue behind the one in flight.

        Returns:
            The typed response Struct of ``action``.

        Raises:
            CallErrorReceived: the peer answered with a CALLERROR.
            CallTimeoutError: no reply within the session's ``call_timeout``.
            SessionClosedError: the connection closed first.
            PayloadError: the peer's reply fails the response schema.
            OutgoingMessageError: our payload fails its schema (nothing was sent).
        """
        if self.closed:
            raise SessionClosedError("the connection is closed")
        message_id = self.session.send_call(action, payload, self._loop.time())
        future: asyncio.Future[msgspec.Struct] = self._loop.create_future()
        self._waiters[message_id] = future
        await self._flush(inline=False)
        return await future

    async def send(self, action: str, payload: msgspec.Struct | dict[str, Any]) -> None:
        """OCPP 2.1 SEND: an unconfirmed message; returns once it is queued for writing."""
        self.session.send_unconfirmed(action, payload)
        await self._flush(inline=False)

    async def run(self) -> None:
        """Drive the connection until the socket closes; then fail what is pending."""
        try:
            await self._read_loop()
        finally:
            await self._shutdown()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket; :meth:`run` then returns and pending calls fail."""
        await self.websocket.close(code, reason)

    async def wait_closed(self) -> None:
        """Wait until :meth:`run` has finished."""
        await self._done.wait()

    # -- tasks ------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            async for message in self.websocket:
                if isinstance(message, bytes):
                    self.log.warning("binary frame refused", size=len(message))
                    await self._close_unread(CLOSE_UNSUPPORTED_DATA, "OCPP-J uses text frames")
                    return
                if self.rate_limit is not None and not await self._throttle():
                    await self._close_unread(CLOSE_RATE_EXCEEDED, "message rate exceeded")
                    return
                if self.observer is not None:
                    self.observer(self, "in", message)
                self.session.receive_data(message, self._loop.time())
                await self._process()
        except ConnectionClosed:
            pass

    async def _close_unread(self, code: int, reason: str) -> None:
        """Close without handling what the peer sent meanwhile.

        The frames still queued must be read (and dropped): the peer's close frame waits
        behind them, and websockets stops reading while its queue is full, so the closing
        handshake would otherwise stall until ``close_timeout``.
        """
        closing = asyncio.create_task(self.websocket.close(code, reason))
        with contextlib.suppress(ConnectionClosed):
            async for _ in self.websocket:
                pass
        await closing

    async def _throttle(self) -> bool:
        """Wait out the rate limit; False (connection closed 1008) on sustained abuse."""
        assert self.rate_limit is not None
        now = self._loop.time()
        wait = self.rate_limit.take(now)
        if wait <= 0:
            return True
        if self.rate_limit.abusive(now):
            self.log.warning("message rate exceeded; closing", rate=self.rate_limit.rate)
            return False
        await asyncio.sleep(wait)
        return True

    async def _handle_loop(self) -> None:
        """The handler worker: answer queued CALLs in arrival order, then end."""
        try:
            while self._incoming:
                event = self._incoming.pop(0)
                if self._room is not None and not self._room.done():
                    self._room.set_result(None)  # the reader may read again
                await self._answer(event)
        finally:
            self._handler = None

    async def _answer(self, event: CallReceived) -> None:
        try:
            result = await self.router.dispatch(event.action, event.message, self.context)
            self.session.send_result(event.message_id, result)
        except HandlerError as exc:
            self._answer_error(event, exc.code, exc.description, exc.details)
        except SessionClosedError:
            return
        except OutgoingMessageError as exc:
            self.log.error(
                "handler returned an invalid response",
                message_id=event.message_id,
                action=event.action,
                error=str(exc),
            )
            self._answer_error(event, ErrorCode.INTERNAL_ERROR, "invalid response")
        except Exception:
            self.log.exception("handler failed", message_id=event.message_id, action=event.action)
            self._answer_error(event, ErrorCode.INTERNAL_ERROR, "the handler failed")
        await self._flush()

    def _answer_error(
        self,
        event: CallReceived,
        code: ErrorCode,
        description: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        with contextlib.suppress(OcppError):
            self.session.send_error(event.message_id, code, description, details)

    async def _write_out(self) -> None:
        """Write every pending frame, in order; only one writer runs at a time."""
        self._writing = True
        try:
            while self._out:
                batch, self._out = self._out, []
                for frame in batch:
                    await self.websocket.send(frame, text=True)
                    if self.observer is not None:
                        self.observer(self, "out", frame)
        except ConnectionClosed:
            self._out.clear()
        finally:
            self._writing = False
            if self._drained is not None and not self._drained.done():
                self._drained.set_result(None)

    # -- plumbing ---------------------------------------------------------------------------

    async def _process(self) -> None:
        """Act on the session's events, queue its frames, re-arm the deadline timer."""
        for event in self.session.events_received():
            relaxations = getattr(event, "relaxations", None)
            if relaxations:  # lenient mode is counted on the validator and logged, never silent
                self.log.warning(
                    "lenient decode",
                    message_id=getattr(event, "message_id", None),
                    relaxations=sorted(r.value for r in relaxations),
                )
            if isinstance(event, CallReceived):
                await self._queue_call(event)
            else:
                self._settle(event)
        await self._flush()

    async def _queue_call(self, event: CallReceived) -> None:
        while len(self._incoming) >= self.max_incoming:
            self._room = self._loop.create_future()
            await self._room  # reading pauses until the handler takes one
        self._incoming.append(event)
        if self._handler is None:
            self._handler = self._spawn(self._handle_loop())

    def _settle(self, event: Event) -> None:
        if isinstance(event, CallCompleted):
            future = self._waiters.pop(event.message_id, None)
            if future is not None and not future.done():
                future.set_result(event.result)
        elif isinstance(event, CallFailed):
            future = self._waiters.pop(event.message_id, None)
            if future is not None and not future.done():
                future.set_exception(event.error)
        elif isinstance(event, ErrorAnswered):
            self.log.info(
                "answered with CALLERROR",
                message_id=event.error.message_id,
                code=event.error.code,
                description=event.error.description,
            )
        elif isinstance(event, ReplyDropped):
            self.log.info("reply dropped", message_id=event.message_id, reason=event.reason)
        elif isinstance(event, FrameIgnored):
            self.log.info(
                "frame ignored",
                message_id=getattr(event.error, "message_id", None),
                error=str(event.error),
            )
        elif isinstance(event, SendReceived):
            self.log.debug("SEND received", message_id=event.message_id, action=event.action)
        else:
            self.log.info("session event", event_type=type(event).__name__)

    async def _flush(self, *, inline: bool = True) -> None:
        """Write the session's frames: here (``inline``) or through a writer task."""
        frames = self.session.data_to_send()
        if frames:
            self._out.extend(frames)
            if not self._writing:
                if inline:
                    await self._write_out()
                else:
                    self._writing = True  # claimed now: the task starts on the next turn
                    self._spawn(self._write_out())
            while len(self._out) > self.max_outgoing and self._writing:
                self._drained = self._loop.create_future()
                await self._drained
        self._arm_timer()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _arm_timer(self) -> None:
        deadline = self.session.next_deadline()
        if self._timer is not None:
            if deadline is not None and self._timer.when() == deadline:
                return
            self._timer.cancel()
            self._timer = None
        if deadline is not None and not self.closed:
            self._timer = self._loop.call_at(deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        self.session.check_deadlines(self._loop.time())
        self._spawn(self._process())

    async def _shutdown(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.session.close()
        for event in self.session.events_received():
            self._settle(event)
        self._done.set()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._room is not None and not self._room.done():
            self._room.cancel()
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(SessionClosedError("connection closed"))
        self._waiters.clear()
