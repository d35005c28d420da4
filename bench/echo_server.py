"""The ceiling of a Python WebSocket server: a raw ``websockets`` server with no OCPP in it.

Each CALL ``[2,"<id>","<Action>",{...}]`` is answered with a canned CALLRESULT for the same
id, found by slicing (no JSON parse, no validation, no handler), so what is left is the cost
of ``websockets`` and the event loop per message. ``bench/bench_csms.py`` compares our CSMS
with it ("≥ 70 % of the raw echo ceiling") and uses it to measure the load generator's own
ceiling. BootNotification gets ``Accepted`` and StartTransaction ``transactionId`` 1 so that a
generator's set-up works unchanged against it.

Run (pinned to core 0)::

    taskset -c 0 .venv/bin/python -m bench.echo_server --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

__all__ = ["reply_to", "run"]

_CANNED: dict[str, str] = {
    "BootNotification": '{"currentTime":"2026-11-27T10:00:00Z","interval":300,"status":"Accepted"}',
    "Heartbeat": '{"currentTime":"2026-11-27T10:00:00Z"}',
    "StartTransaction": '{"idTagInfo":{"status":"Accepted"},"transactionId":1}',
    "Authorize": '{"idTagInfo":{"status":"Accepted"}}',
}


def reply_to(message: str) -> str | None:
    """The canned CALLRESULT for a CALL frame, or None for anything else."""
    first = message.find('"')
    second = message.find('"', first + 1)
    if first < 0 or second < 0 or "2" not in message[1:first]:
        return None
    third = message.find('"', second + 1)
    fourth = message.find('"', third + 1)
    action = message[third + 1 : fourth] if fourth > third >= 0 else ""
    return f"[3,{message[first : second + 1]},{_CANNED.get(action, '{}')}]"


async def _echo(websocket: ServerConnection) -> None:
    async for message in websocket:
        if isinstance(message, str):
            reply = reply_to(message)
            if reply is not None:
                await websocket.send(reply)


async def run(host: str, port: int, backlog: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    subprotocols: Any = ["ocpp1.6"]
    async with serve(_echo, host, port, subprotocols=subprotocols, backlog=backlog) as server:
        print(f"listening on {host}:{server.sockets[0].getsockname()[1]}", flush=True)
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100, help="0 picks a free port")
    parser.add_argument("--backlog", type=int, default=4096, help="listen backlog [4096]")
    parser.add_argument("--cpu", type=int, help="pin to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(run(args.host, args.port, args.backlog))


if __name__ == "__main__":
    main()
