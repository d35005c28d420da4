"""A lean OCPP 1.6 load generator: thousands of stations from one core, latency per CALL.

Why not the ``websockets`` client: a server under test on one core answers tens of thousands
of CALLs per second, and a generator built on ``websockets`` + coroutines spends more CPU per
message than the server's own transport does, so it would measure itself. Here each station is
one :class:`asyncio.Protocol` (no task, no coroutine per message): frames are pre-encoded
(only the 8-character message id changes, and a MeterValues's timestamp, so that every one
carries new samples), client frames use an all-zero mask key (legal; the
server still runs its unmasking code, XOR with zero costs us nothing), the reply is matched by
slicing out its id, and the next CALL is written from the ``data_received`` callback. No
permessage-deflate is offered, as most 1.6 stations do. The generator's own ceiling is
measured against ``bench/echo_server.py`` (see ``bench/bench_csms.py``).

Scenarios (each returns a plain dict of figures):

* :func:`closed_loop`: every station keeps one CALL in flight (Heartbeat or MeterValues);
  replies per second and latency over a window after a warm-up.
* :func:`open_loop`: every station sends one MeterValues per ``period`` seconds at a random
  phase, whatever the server's speed; latency from send and from the schedule.
* :func:`storm`: all stations connect at once and boot; time until the last is Accepted.
* :func:`idle_rss`: stations connect at a paced rate, boot, then stay idle; the server's RSS
  with them minus its RSS before, per station (``/proc/<pid>/status`` VmRSS).

Latencies are kept per CALL (a list append on the hot path, ~30 ns) and loaded into an HDR
histogram (``hdrhistogram``, 3 significant digits) when the window closes, so the percentile
code costs nothing while the generator is being measured.

Standalone use, e.g. against a server already running on port 9000 (generator on core 1)::

    .venv/bin/python -m bench.loadgen --url ws://127.0.0.1:9000/ocpp --cpu 1 \\
        --scenario heartbeat --stations 100 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

from hdrh.histogram import HdrHistogram  # type: ignore[import-untyped]

__all__ = [
    "LoadError",
    "Target",
    "closed_loop",
    "idle_rss",
    "meter_values_payload",
    "open_loop",
    "raise_nofile",
    "storm",
]

SUBPROTOCOL: Final = "ocpp1.6"
TIMESTAMP: Final = "2026-11-27T10:00:00.000Z"
#: Handshake key: the server's accept value is not checked (status 101 is), so any key does.
_WS_KEY: Final = "YmVuY2gtbG9hZGdlbi0wMQ=="
_MASK: Final = b"\x00\x00\x00\x00"
_BOOT: Final = {
    "chargePointVendor": "ocppkit-bench",
    "chargePointModel": "loadgen",
    "chargePointSerialNumber": "S0",
    "firmwareVersion": "1.0",
}


class LoadError(RuntimeError):
    """The scenario could not be set up (connection refused, boot rejected, ...)."""


class Target:
    """Where the stations connect, and what the server needs before it takes MeterValues.

    Args:
        url: ``ws://host:port/prefix``; station ``i`` connects to ``<url>/<prefix>-<i:06d>``.
        start_transaction: send StartTransaction after the boot and put the returned
            ``transactionId`` in every MeterValues (ocppkit then stores the samples against a
            running transaction). Without it the MeterValues carry ``transactionId`` 1.
        id_prefix: station ids are ``f"{id_prefix}-{i:06d}"`` (ocppkit needs them unique).
        server_pid: the server's process id, for CPU and RSS figures (``/proc``).
    """

    def __init__(
        self,
        url: str,
        *,
        start_transaction: bool = False,
        id_prefix: str = "bench",
        server_pid: int | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname or not parts.port:
            raise ValueError(f"need ws://host:port/path, got {url!r}")
        self.host: str = parts.hostname
        self.port: int = parts.port
        self.path = parts.path.rstrip("/")
        self.start_transaction = start_transaction
        self.id_prefix = id_prefix
        self.server_pid = server_pid

    def station_id(self, index: int) -> str:
        return f"{self.id_prefix}-{index:06d}"


# -- frames -----------------------------------------------------------------------------------


def _client_header(length: int, opcode: int = 1) -> bytes:
    """FIN + opcode, MASK bit + length, then the zero mask key (RFC 6455 §5.2)."""
    if length < 126:
        return bytes((0x80 | opcode, 0x80 | length)) + _MASK
    if length < 1 << 16:
        return bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big") + _MASK
    return bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big") + _MASK


def _now_stamp() -> bytes:
    """The current UTC time, always 32 bytes (``2026-11-27T10:00:00.123456+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").encode()


class _Template:
    """A CALL whose only varying parts are its 8-character id and, where the payload holds
    :data:`TIMESTAMP`, the time of sending: ``head + id + middle + time + tail``.

    The time changes because a MeterValues that repeats an earlier one's timestamp is the
    same samples sent again, which a CSMS that deduplicates resends (ocppkit does,
    reliability.md E2) would rightly not store a second time: with one fixed timestamp the
    benchmark would measure the duplicate path, not persistence.
    """

    __slots__ = ("head", "middle", "tail")

    def __init__(self, action: str, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":"))
        rest = f'",{json.dumps(action)},{body}]'
        middle, stamped, tail = rest.partition(TIMESTAMP)
        self.middle = middle.encode() if stamped else b""
        self.tail = (tail if stamped else rest).encode()
        length = 4 + 8 + len(self.middle) + (len(_now_stamp()) if stamped else 0) + len(self.tail)
        self.head = _client_header(length) + b'[2,"'

    def frame(self, message_id: bytes) -> bytes:
        if self.middle:
            return self.head + message_id + self.middle + _now_stamp() + self.tail
        return self.head + message_id + self.tail


def meter_values_payload(transaction_id: int, samples: int = 6) -> dict[str, Any]:
    """A realistic 1.6 MeterValues: one meterValue with ``samples`` sampledValues (AC, 3 phases)."""
    sampled = [
        {
            "value": "12345.6",
            "context": "Sample.Periodic",
            "format": "Raw",
            "measurand": "Energy.Active.Import.Register",
            "location": "Outlet",
            "unit": "Wh",
        },
        {"value": "7360", "context": "Sample.Periodic", "measurand": "Power.Active.Import",
         "unit": "W"},
        {"value": "32.1", "context": "Sample.Periodic", "measurand": "Current.Import",
         "phase": "L1", "unit": "A"},
        {"value": "31.8", "context": "Sample.Periodic", "measurand": "Current.Import",
         "phase": "L2", "unit": "A"},
        {"value": "32.0", "context": "Sample.Periodic", "measurand": "Current.Import",
         "phase": "L3", "unit": "A"},
        {"value": "230.4", "context": "Sample.Periodic", "measurand": "Voltage",
         "phase": "L1-N", "unit": "V"},
        {"value": "54", "context": "Sample.Periodic", "measurand": "SoC", "location": "EV",
         "unit": "Percent"},
        {"value": "50.0", "context": "Sample.Periodic", "measurand": "Frequency"},
    ]  # fmt: skip
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [{"timestamp": TIMESTAMP, "sampledValue": sampled[:samples]}],
    }


# -- one station ------------------------------------------------------------------------------

ReplyHandler = Callable[["Station", bytes, bool, float], None]


class Counters:
    """What went wrong, summed over all stations of a scenario."""

    __slots__ = ("call_errors", "disconnects", "protocol_errors", "unmatched")

    def __init__(self) -> None:
        self.call_errors = 0
        self.disconnects = 0
        self.unmatched = 0
        self.protocol_errors = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class Station(asyncio.Protocol):
    """One WebSocket client speaking just enough RFC 6455 for OCPP-J load."""

    def __init__(self, station_id: str, target: Target, counters: Counters) -> None:
        self.station_id = station_id
        self.counters = counters
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_reply: ReplyHandler | None = None
        self.pending: bytes | None = None  # id of the CALL in flight
        self.sent_at = 0.0
        self.due = 0.0  # open loop: when the CALL in flight was scheduled
        self.counter = 0
        self.template: _Template | None = None
        self.closing = False
        self._waiter: asyncio.Future[tuple[bytes, bool]] | None = None  # set-up CALL in flight
        self._buffer = b""
        self._handshake = (
            f"GET {target.path}/{station_id} HTTP/1.1\r\n"
            f"Host: {target.host}:{target.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {_WS_KEY}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
        ).encode()

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self._handshake)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(LoadError(f"{self.station_id}: closed during handshake"))
        elif not self.closing:
            self.counters.disconnects += 1
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(LoadError(f"{self.station_id}: closed by the server"))
        self.transport = None

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        if not self.opened.done():
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buffer
                return
            status = buffer[: buffer.find(b"\r\n")]
            if b" 101 " not in status:
                self.opened.set_exception(LoadError(f"{self.station_id}: {status.decode()!r}"))
                self._abort()
                return
            self.opened.set_result(None)
            buffer = buffer[end + 4 :]
        pos, size = 0, len(buffer)
        while size - pos >= 2:
            length = buffer[pos + 1] & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            opcode = buffer[pos] & 0x0F
            payload = buffer[start:end]
            pos = end
            if opcode == 1:
                self._on_text(payload)
            elif opcode == 9:  # ping: answer pong with the same data (RFC 6455 §5.5.3)
                self._write(_client_header(len(payload), 0xA) + payload)
            elif opcode == 8:  # the server closes: connection_lost counts it unless we asked
                self._abort()
                return
            elif opcode != 0xA:  # fragments or binary: not used by the servers under test
                self.counters.protocol_errors += 1
        self._buffer = buffer[pos:] if pos < size else b""

    # helpers

    def _on_text(self, payload: bytes) -> None:
        now = time.perf_counter()
        first = payload.find(b'"')
        second = payload.find(b'"', first + 1)
        if first < 0 or second < 0 or payload[first + 1 : second] != self.pending:
            self.counters.unmatched += 1
            return
        self.pending = None
        ok = b"3" in payload[1:first]
        if not ok:
            self.counters.call_errors += 1
        if self.on_reply is not None:
            self.on_reply(self, payload, ok, now)

    def _write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def send(self, template: _Template) -> None:
        """Write one CALL of ``template`` with the next id; it becomes the one in flight."""
        self.counter += 1
        message_id = b"%08x" % self.counter
        self.pending = message_id
        self.sent_at = time.perf_counter()
        if self.transport is not None:
            self.transport.write(template.frame(message_id))

    async def call(self, action: str, payload: dict[str, Any], limit_s: float) -> dict[str, Any]:
        """One CALL with a future (set-up only; the load paths use callbacks)."""
        if self.transport is None:
            raise LoadError(f"{self.station_id}: closed by the server")
        future: asyncio.Future[tuple[bytes, bool]] = asyncio.get_running_loop().create_future()

        def done(station: Station, reply: bytes, ok: bool, now: float) -> None:
            if not future.done():
                future.set_result((reply, ok))

        self.on_reply = done
        self._waiter = future
        self.send(_Template(action, payload))
        try:
            reply, ok = await asyncio.wait_for(future, limit_s)
        finally:
            self.on_reply = None
            self._waiter = None
        decoded = json.loads(reply)
        if not ok:
            raise LoadError(f"{self.station_id}: {action} answered {decoded[2:4]}")
        result: dict[str, Any] = decoded[2]
        return result

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self._write(_client_header(2, 8) + (1000).to_bytes(2, "big"))
            self.transport.close()


# -- set-up -----------------------------------------------------------------------------------


async def _open(target: Target, index: int, counters: Counters, limit_s: float) -> Station:
    loop = asyncio.get_running_loop()
    station = Station(target.station_id(index), target, counters)
    await asyncio.wait_for(
        loop.create_connection(lambda: station, target.host, target.port), limit_s
    )
    await asyncio.wait_for(station.opened, limit_s)
    return station


async def _boot(station: Station, limit_s: float) -> None:
    reply = await station.call("BootNotification", _BOOT, limit_s)
    if reply.get("status") != "Accepted":
        raise LoadError(f"{station.station_id}: BootNotification answered {reply}")


async def _prepare(
    target: Target,
    stations: int,
    counters: Counters,
    *,
    concurrency: int = 200,
    transaction: bool = False,
    limit_s: float = 60.0,
) -> list[tuple[Station, int]]:
    """Connect and boot ``stations`` at a paced rate; start a transaction on each if asked.

    Returns (station, transactionId) pairs; the id is 1 where no transaction was started.
    """
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> tuple[Station, int]:
        async with gate:
            station = await _open(target, index, counters, limit_s)
            await _boot(station, limit_s)
            transaction_id = 1
            if transaction and target.start_transaction:
                reply = await station.call(
                    "StartTransaction",
                    {"connectorId": 1, "idTag": "BENCH", "meterStart": 0, "timestamp": TIMESTAMP},
                    limit_s,
                )
                transaction_id = int(reply["transactionId"])
            return station, transaction_id

    results = await asyncio.gather(*(one(i) for i in range(stations)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    ready = [r for r in results if not isinstance(r, BaseException)]
    if failures:
        for station, _ in ready:
            station.close()
        raise LoadError(f"{len(failures)} of {stations} stations failed to set up: {failures[0]!r}")
    return ready


async def _close_all(stations: list[Station]) -> None:
    for station in stations:
        station.close()
    await asyncio.sleep(0.2)


# -- measurement helpers ----------------------------------------------------------------------


def _proc_cpu(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_kib(pid: int | None, field: str = "VmRSS") -> int | None:
    """A ``/proc/<pid>/status`` memory field (VmRSS, VmHWM) in KiB."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as file:
            for line in file:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _machine_busy() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    with open("/proc/stat", encoding="ascii") as file:
        fields = [int(v) for v in file.readline().split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


class _Window:
    """CPU of the generator, of the server and of everything else across a window.

    ``foreign_cpu_pct`` is what other processes used meanwhile (percent of one core): on a
    quiet machine it is near 0; a high value means the figures were taken on a busy machine.
    """

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.start = time.perf_counter()
        self._times = os.times()
        self._srv0 = _proc_cpu(server_pid)
        self._busy0 = _machine_busy()

    def close(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.start
        times = os.times()
        user = times.user - self._times.user
        system = times.system - self._times.system
        srv1 = _proc_cpu(self.server_pid)
        busy = _machine_busy() - self._busy0
        figures: dict[str, Any] = {
            "window_s": round(elapsed, 3),
            "generator_cpu_pct": round(100 * (user + system) / elapsed, 1),
            "generator_sys_pct": round(100 * system / elapsed, 1),
        }
        server = 0.0
        if self._srv0 is not None and srv1 is not None:
            server = srv1 - self._srv0
            figures["server_cpu_pct"] = round(100 * server / elapsed, 1)
        figures["foreign_cpu_pct"] = round(
            max(0.0, 100 * (busy - server - user - system) / elapsed), 1
        )
        rss = proc_kib(self.server_pid, "VmHWM")
        if rss is not None:
            figures["server_peak_rss_mib"] = round(rss / 1024, 1)
        return figures


def _cpu_per_message(figures: dict[str, Any], messages: int) -> dict[str, Any]:
    """Server CPU µs per message: steadier than msg/s when other processes share the core."""
    if "server_cpu_pct" not in figures or not messages:
        return {}
    cpu_s = figures["server_cpu_pct"] / 100 * figures["window_s"]
    return {"server_cpu_us_per_msg": round(cpu_s / messages * 1e6, 1)}


def _percentiles(latencies_us: list[int], prefix: str = "") -> dict[str, Any]:
    """p50/p90/p99/max in ms from per-CALL latencies (µs), through an HDR histogram."""
    histogram = HdrHistogram(1, 600_000_000, 3)
    for value in latencies_us:
        histogram.record_value(max(1, value))
    if not latencies_us:
        return {f"{prefix}{k}": None for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")}
    return {
        f"{prefix}p50_ms": round(histogram.get_value_at_percentile(50) / 1000, 3),
        f"{prefix}p90_ms": round(histogram.get_value_at_percentile(90) / 1000, 3),
        f"{prefix}p99_ms": round(histogram.get_value_at_percentile(99) / 1000, 3),
        f"{prefix}max_ms": round(histogram.get_max_value() / 1000, 3),
    }


class _Drain:
    """Waits, after the load stops, until every CALL still in flight is answered (or 10 s)."""

    def __init__(self) -> None:
        self._outstanding: int | None = None  # counted once the load has stopped
        self._done = asyncio.Event()

    def answered(self) -> None:
        if self._outstanding is not None:
            self._outstanding -= 1
            if self._outstanding <= 0:
                self._done.set()

    async def wait(self, stations: list[Station], limit_s: float = 10.0) -> None:
        self._outstanding = sum(1 for s in stations if s.pending is not None)
        if self._outstanding == 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._done.wait(), limit_s)


# -- scenarios --------------------------------------------------------------------------------


async def closed_loop(
    target: Target,
    *,
    stations: int,
    action: str = "Heartbeat",
    duration: float = 10.0,
    warmup: float = 2.0,
    samples: int = 6,
) -> dict[str, Any]:
    """Every station keeps one ``action`` CALL in flight; replies/s and latency in a window."""
    counters = Counters()
    ready = await _prepare(target, stations, counters, transaction=action == "MeterValues")
    latencies: list[int] = []
    record = latencies.append
    state = {"running": True, "recording": False, "replies": 0}
    drain = _Drain()
    if action == "Heartbeat":
        templates = {id(s): _Template("Heartbeat", {}) for s, _ in ready}
    elif action == "MeterValues":
        templates = {
            id(s): _Template("MeterValues", meter_values_payload(t, samples)) for s, t in ready
        }
    else:
        raise ValueError(f"closed loop sends Heartbeat or MeterValues, not {action!r}")

    def on_reply(station: Station, payload: bytes, ok: bool, now: float) -> None:
        if state["recording"]:
            state["replies"] += 1
            record(int((now - station.sent_at) * 1e6))
        if state["running"] and station.template is not None:
            station.send(station.template)
        else:
            drain.answered()

    for station, _ in ready:
        station.template = templates[id(station)]
        station.on_reply = on_reply
    for station, _ in ready:
        station.send(station.template)  # type: ignore[arg-type]
    await asyncio.sleep(warmup)
    state["recording"] = True
    window = _Window(target.server_pid)
    await asyncio.sleep(duration)
    state["recording"] = False
    figures = window.close()
    state["running"] = False
    replies = int(state["replies"])
    await drain.wait([s for s, _ in ready])
    stuck = sum(1 for s, _ in ready if s.pending)
    await _close_all([s for s, _ in ready])
    return {
        "scenario": f"closed_loop_{action}",
        "stations": stations,
        "replies": replies,
        "msg_per_s": round(replies / figures["window_s"], 1),
        **_cpu_per_message(figures, replies),
        **_percentiles(latencies),
        **figures,
        "unanswered_at_end": stuck,
        **counters.as_dict(),
    }


async def open_loop(
    target: Target,
    *,
    stations: int,
    period: float = 10.0,
    duration: float = 60.0,
    samples: int = 6,
    seed: int = 1,
) -> dict[str, Any]:
    """Each station sends one MeterValues every ``period`` s (random phase) for ``duration`` s."""
    counters = Counters()
    ready = await _prepare(target, stations, counters, transaction=True)
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    latencies: list[int] = []
    from_schedule: list[int] = []
    state = {"sent": 0, "replies": 0, "overruns": 0, "open": True}
    drain = _Drain()
    clock_offset = time.perf_counter() - loop.time()  # loop.time() -> perf_counter() seconds
    start = loop.time() + 0.5
    end = start + duration

    def on_reply(station: Station, payload: bytes, ok: bool, now: float) -> None:
        state["replies"] += 1
        latencies.append(int((now - station.sent_at) * 1e6))
        from_schedule.append(int((now - station.due) * 1e6))
        drain.answered()

    def fire(station: Station, due: float) -> None:
        if not state["open"]:
            return
        if station.pending is not None:
            state["overruns"] += 1  # the previous one is still unanswered after a period
        else:
            station.due = due + clock_offset
            state["sent"] += 1
            station.send(station.template)  # type: ignore[arg-type]
        following = due + period
        if following < end:
            loop.call_at(following, fire, station, following)

    for station, transaction_id in ready:
        station.template = _Template("MeterValues", meter_values_payload(transaction_id, samples))
        station.on_reply = on_reply
        due = start + rng.uniform(0, period)
        loop.call_at(due, fire, station, due)
    await asyncio.sleep(max(0.0, start - loop.time()))
    window = _Window(target.server_pid)
    await asyncio.sleep(max(0.0, end - loop.time()))
    state["open"] = False
    await drain.wait([s for s, _ in ready])
    figures = window.close()
    stuck = sum(1 for s, _ in ready if s.pending)
    await _close_all([s for s, _ in ready])
    return {
        "scenario": "open_loop_MeterValues",
        "stations": stations,
        "period_s": period,
        "calls": state["sent"],
        "replies": state["replies"],
        "msg_per_s": round(state["replies"] / duration, 1),
        "overruns": state["overruns"],
        **_cpu_per_message(figures, int(state["replies"])),
        **_percentiles(latencies),
        **_percentiles(from_schedule, "from_schedule_"),
        **figures,
        "unanswered_at_end": stuck,
        **counters.as_dict(),
    }


async def storm(target: Target, *, stations: int, limit_s: float = 120.0) -> dict[str, Any]:
    """All ``stations`` connect at once and boot; seconds until the last one is Accepted."""
    counters = Counters()
    opened: list[Station] = []
    connect_ms: list[int] = []
    boot_ms: list[int] = []
    window = _Window(target.server_pid)
    start = time.perf_counter()

    async def one(index: int) -> float:
        station = await _open(target, index, counters, limit_s)
        opened.append(station)
        connected = time.perf_counter()
        connect_ms.append(int((connected - start) * 1e6))
        await _boot(station, limit_s)
        booted = time.perf_counter()
        boot_ms.append(int((booted - connected) * 1e6))
        return booted

    results = await asyncio.gather(*(one(i) for i in range(stations)), return_exceptions=True)
    figures = window.close()
    done = [r for r in results if isinstance(r, float)]
    failures = [r for r in results if not isinstance(r, float)]
    await _close_all(opened)
    return {
        "scenario": "storm",
        "stations": stations,
        "booted": len(done),
        "failed": len(failures),
        "first_failure": repr(failures[0]) if failures else None,
        "all_booted_s": round(max(done) - start, 3) if done and not failures else None,
        "last_booted_s": round(max(done) - start, 3) if done else None,
        "last_connected_s": round(max(connect_ms) / 1e6, 3) if connect_ms else None,
        **_percentiles(connect_ms, "connect_"),
        **_percentiles(boot_ms, "boot_"),
        **figures,
        **counters.as_dict(),
    }


async def idle_rss(
    target: Target, *, stations: int, settle: float = 5.0, concurrency: int = 200
) -> dict[str, Any]:
    """Server RSS per idle booted station: (RSS with them - RSS before) / stations."""
    if target.server_pid is None:
        raise LoadError("idle_rss needs the server's pid")
    await asyncio.sleep(settle / 2)
    before = proc_kib(target.server_pid)
    counters = Counters()
    ready = await _prepare(target, stations, counters, concurrency=concurrency)
    await asyncio.sleep(settle)
    after = proc_kib(target.server_pid)
    window = _Window(target.server_pid)
    await asyncio.sleep(settle)
    idle = window.close()
    await _close_all([s for s, _ in ready])
    assert before is not None and after is not None
    return {
        "scenario": "idle_rss",
        "stations": stations,
        "rss_before_mib": round(before / 1024, 1),
        "rss_idle_mib": round(after / 1024, 1),
        "kib_per_connection": round((after - before) / stations, 1),
        "idle_server_cpu_pct": idle.get("server_cpu_pct"),
        **counters.as_dict(),
    }


def raise_nofile(wanted: int = 65536) -> int:
    """Raise the soft open-file limit toward ``wanted`` (bounded by the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="ws://host:port/prefix")
    parser.add_argument(
        "--scenario",
        choices=["heartbeat", "metervalues", "open-loop", "storm", "idle"],
        default="heartbeat",
    )
    parser.add_argument("--stations", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--period", type=float, default=10.0, help="open loop: s between CALLs")
    parser.add_argument("--start-transaction", action="store_true")
    parser.add_argument("--server-pid", type=int, help="for server CPU and RSS figures")
    parser.add_argument("--id-prefix", default="bench")
    parser.add_argument("--cpu", type=int, help="pin the generator to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    raise_nofile()
    target = Target(
        args.url,
        start_transaction=args.start_transaction,
        id_prefix=args.id_prefix,
        server_pid=args.server_pid,
    )
    scenario: Any
    if args.scenario in ("heartbeat", "metervalues"):
        action = "Heartbeat" if args.scenario == "heartbeat" else "MeterValues"
        scenario = closed_loop(
            target, stations=args.stations, action=action, duration=args.duration
        )
    elif args.scenario == "open-loop":
        scenario = open_loop(
            target, stations=args.stations, period=args.period, duration=args.duration
        )
    elif args.scenario == "storm":
        scenario = storm(target, stations=args.stations)
    else:
        scenario = idle_rss(target, stations=args.stations)
    with contextlib.suppress(KeyboardInterrupt):
        print(json.dumps(asyncio.run(scenario), indent=2))


if __name__ == "__main__":
    main()
