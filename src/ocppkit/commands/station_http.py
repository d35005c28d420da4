"""The local HTTP control API of ``ocppkit station --http-port``: the console's actions as
HTTP calls, for automation (a test rig, a CI job) instead of typing.

Loopback only (127.0.0.1): it has no authentication, like the console it mirrors.

``GET /status`` -> the station snapshot (``Station.snapshot``: connection, connectors with
their transactions and reservations, 2.0.1 reservations of an unspecified EVSE);
``POST /plug``, ``/unplug``, ``/park``, ``/leave_bay``, ``/start``, ``/stop``, ``/auth``,
``/fault``, ``/clear``, ``/suspend``, ``/resume`` with query parameters ``connector``
(default 1), ``tag``, ``reason``, ``code``;
``POST /call/{action}`` with a JSON body sends any CALL and returns the reply. A refused action
is ``409`` with the reason. The bay action is named ``leave_bay`` as in the console and the
scenario steps; ``POST /leave``, its old name, still works (left out of the OpenAPI schema).
"""

from __future__ import annotations

from typing import Any

from fastapi import Body, FastAPI, HTTPException

from ocppkit.api.server import ApiServer

__all__ = ["control_app", "serve_control_api"]


def control_app(station: Any) -> FastAPI:
    """The FastAPI application driving ``station``."""
    app = FastAPI(title=f"ocppkit station {station.station_id}", docs_url="/docs")

    async def run(action: Any) -> dict[str, Any]:
        try:
            result = await action
        except Exception as exc:  # refused, offline, bad reason, ...
            raise HTTPException(status_code=409, detail=str(exc)) from None
        snapshot: dict[str, Any] = station.snapshot()
        return {"result": result, "station": snapshot}

    @app.get("/status")
    async def status() -> dict[str, Any]:
        result: dict[str, Any] = station.snapshot()
        return result

    @app.post("/plug")
    async def plug(connector: int = 1) -> dict[str, Any]:
        return await run(station.plug(connector))

    @app.post("/unplug")
    async def unplug(connector: int = 1) -> dict[str, Any]:
        return await run(station.unplug(connector))

    @app.post("/park")
    async def park(connector: int = 1) -> dict[str, Any]:
        return await run(station.park(connector))

    @app.post("/leave_bay")
    async def leave_bay(connector: int = 1) -> dict[str, Any]:
        return await run(station.leave_bay(connector))

    app.add_api_route("/leave", leave_bay, methods=["POST"], include_in_schema=False)

    @app.post("/auth")
    async def auth(tag: str, connector: int = 1) -> dict[str, Any]:
        return await run(station.present_token(tag, connector))

    @app.post("/start")
    async def start(connector: int = 1, tag: str = "EMULATOR") -> dict[str, Any]:
        return await run(station.start_transaction(connector, tag))

    @app.post("/stop")
    async def stop(connector: int = 1, reason: str = "Local") -> dict[str, Any]:
        return await run(station.stop_transaction(connector, reason))

    @app.post("/suspend")
    async def suspend(connector: int = 1) -> dict[str, Any]:
        return await run(station.ev_suspend(connector))

    @app.post("/resume")
    async def resume(connector: int = 1) -> dict[str, Any]:
        return await run(station.ev_resume(connector))

    @app.post("/fault")
    async def fault(connector: int = 1, code: str = "OtherError") -> dict[str, Any]:
        return await run(station.fault(connector, code))

    @app.post("/clear")
    async def clear(connector: int = 1) -> dict[str, Any]:
        return await run(station.clear_fault(connector))

    @app.post("/call/{action}")
    async def call(action: str, payload: dict[str, Any] = Body(default_factory=dict)) -> Any:  # noqa: B008
        return await run(station.call(action, payload))

    return app


async def serve_control_api(station: Any, port: int) -> ApiServer:
    """Start the control API on 127.0.0.1:``port`` (0 picks one); returns the server."""
    server = ApiServer(control_app(station), "127.0.0.1", port)
    await server.start()
    return server
