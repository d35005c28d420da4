"""The reference: a 1.6 CSMS written with the mobilityhouse ``ocpp`` library as its README shows.

One ``ChargePoint`` subclass per connection with ``@on`` handlers (BootNotification,
Heartbeat, MeterValues, StatusNotification), ``cp.start()`` per connection, served by
``websockets.serve`` with the ``ocpp1.6`` subprotocol. Nothing is stored: this is the library's
own per-message cost (parse, schema validation both ways, dispatch, case conversion), which
is what ocppkit is compared with in ``bench/bench_csms.py``.

Differences from the README, each kept small and stated:

* the README's ``on_connect(websocket, path)`` is the legacy ``websockets`` API; with
  ``websockets`` 14+ the handler takes the connection alone and reads ``request.path`` and
  ``request.headers``;
* the README sets ``logging.basicConfig(level=logging.INFO)``, which makes the library log
  every frame (about -17 % throughput, perf-baseline.md); the default here is WARNING, the
  reference's better case. ``--log-level INFO`` gives the README's setting;
* ``--backlog`` (default: asyncio's 100, as ``websockets.serve`` inherits it) so that the
  storm can also be measured with the backlog raised.

Run (pinned to core 0)::

    taskset -c 0 .venv/bin/python -m bench.reference_csms --port 9200
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as cp
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, RegistrationStatus

__all__ = ["ChargePoint", "run"]


class ChargePoint(cp):  # type: ignore[misc]
    @on(Action.boot_notification)  # type: ignore[untyped-decorator]
    async def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> Any:
        return call_result.BootNotification(
            current_time=datetime.now(UTC).isoformat(),
            interval=10,
            status=RegistrationStatus.accepted,
        )

    @on(Action.heartbeat)  # type: ignore[untyped-decorator]
    async def on_heartbeat(self, **kwargs: Any) -> Any:
        return call_result.Heartbeat(current_time=datetime.now(UTC).isoformat())

    @on(Action.meter_values)  # type: ignore[untyped-decorator]
    async def on_meter_values(
        self, connector_id: int, meter_value: list[Any], **kwargs: Any
    ) -> Any:
        return call_result.MeterValues()

    @on(Action.status_notification)  # type: ignore[untyped-decorator]
    async def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> Any:
        return call_result.StatusNotification()


async def on_connect(websocket: Any) -> None:
    """For every new charge point that connects, create a ChargePoint and start listening."""
    try:
        requested_protocols = websocket.request.headers["Sec-WebSocket-Protocol"]
    except KeyError:
        logging.info("Client hasn't requested any Subprotocol. Closing Connection")
        await websocket.close()
        return
    if websocket.subprotocol:
        logging.info("Protocols Matched: %s", websocket.subprotocol)
    else:
        logging.warning(
            "Protocols Mismatched | Expected Subprotocols: %s, but client supports %s | "
            "Closing connection",
            websocket.server.available_subprotocols if hasattr(websocket, "server") else None,
            requested_protocols,
        )
        await websocket.close()
        return
    charge_point_id = websocket.request.path.strip("/")
    charge_point = ChargePoint(charge_point_id, websocket)
    await charge_point.start()


async def run(host: str, port: int, backlog: int | None) -> None:
    """Serve until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    options: dict[str, Any] = {"subprotocols": ["ocpp1.6"]}
    if backlog is not None:
        options["backlog"] = backlog
    server = await websockets.serve(on_connect, host, port, **options)
    logging.info("Server Started listening to new connections...")
    print(f"listening on {host}:{server.sockets[0].getsockname()[1]}", flush=True)
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200, help="0 picks a free port")
    parser.add_argument("--backlog", type=int, help="listen backlog [asyncio's 100]")
    parser.add_argument("--log-level", default="WARNING", help="WARNING; the README uses INFO")
    parser.add_argument("--cpu", type=int, help="pin to this core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    logging.basicConfig(level=getattr(logging, args.log_level.upper()))
    asyncio.run(run(args.host, args.port, args.backlog))


if __name__ == "__main__":
    main()
