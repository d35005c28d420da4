"""API security, checklist rows G6 (station strings come back as inert JSON strings) and G7
(no token / wrong token -> 401, cross-site request -> 403, no state change), over real
loopback HTTP on both storage backends."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from ocpp.v16 import call as c16

from ocppkit.api import create_api
from ocppkit.csms import CsmsSettings
from ocppkit.csms.settings import SettingsError, load_settings
from tests.api.conftest import iso

TOKEN = "s3cret-token-0123456789abcdef"
#: Served by FastAPI itself, outside its dependency system (no data behind them).
DOCS_PATHS = {"/docs", "/docs/oauth2-redirect", "/openapi.json", "/redoc"}
PATH_VALUES = {"station_id": "CP1", "transaction_id": "1", "id_tag": "TAG1"}


def concrete(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES.get(m.group(1), "x"), path)


def operations(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every FastAPI route of ``app``, through included routers (FastAPI
    0.16x keeps them as included-router entries, older versions flatten them); a route of
    any other kind must be one of the docs pages."""
    found: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            found += [(method, route.path) for method in sorted(route.methods)]
        elif hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                original = context.original_route
                assert isinstance(original, APIRoute), original
                found += [(method, context.path) for method in sorted(original.methods)]
        else:
            assert getattr(route, "path", None) in DOCS_PATHS, route
    return found


async def snapshot(client: httpx.AsyncClient) -> tuple[Any, ...]:
    """What an unauthorized request must not change."""
    return (
        (await client.get("/api/stations")).json(),
        (await client.get("/api/id-tags")).json(),
    )


# -- G7: authentication ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token-0123456789abc", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
)
async def test_G7_every_route_refuses_missing_or_wrong_token(
    api: Any, authorization: str | None
) -> None:
    """Checklist G7: with api_token set, every route of the assembled app (including routes
    other modules add: named commands, metrics) answers 401 with ``WWW-Authenticate: Bearer``
    to a missing, wrong or non-Bearer token, except /health and the docs; nothing changes."""
    running, client = await api(api_token=TOKEN)
    await client.post("/api/stations", json={"id": "CP1"})
    await client.post("/api/id-tags", json={"id_tag": "TAG1"})
    before = await snapshot(client)
    headers = {} if authorization is None else {"Authorization": authorization}
    bare = httpx.AsyncClient(base_url=str(client.base_url), timeout=10, headers=headers)
    checked = 0
    async with bare:
        for method, path in operations(create_api(running.service)):
            response = await bare.request(
                method, concrete(path), json={"id": "CP9", "id_tag": "TAG9"}
            )
            if path == "/health":
                assert response.status_code == 200
                continue
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "detail" in response.json()
            checked += 1
    assert checked >= 15  # stations 5, id tags 5, transactions 2, messages, call, ...
    assert await snapshot(client) == before


async def test_G7_right_token_is_accepted(api: Any) -> None:
    """The configured token opens every resource; the scheme name is case-insensitive
    (RFC 7235); /health, /docs and /openapi.json need none."""
    _, client = await api(api_token=TOKEN)
    for path in ("/api/stations", "/api/id-tags", "/api/transactions", "/api/messages"):
        assert (await client.get(path)).status_code == 200, path
    base = str(client.base_url)
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"bearer {TOKEN}"}) as c:
        assert (await c.post("/api/stations", json={"id": "CP1"})).status_code == 201
    async with httpx.AsyncClient(base_url=base) as anonymous:
        assert (await anonymous.get("/health")).json()["status"] == "ok"
        assert (await anonymous.get("/docs")).status_code == 200
        schema = (await anonymous.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The CSMS's `api_token` (`OCPPKIT_API_TOKEN`).",
    }
    assert schema["paths"]["/health"]["get"]["security"] == []
    assert schema["paths"]["/api/stations"]["post"]["security"] == [{"HTTPBearer": []}]


def test_G7_token_settings() -> None:
    """Without a token the API may only listen on loopback; a token is at least 16
    characters; it can come from the environment."""
    with pytest.raises(SettingsError, match="api_token"):
        load_settings(environ={"OCPPKIT_API_HOST": "0.0.0.0"})
    with pytest.raises(SettingsError, match="16 characters"):
        load_settings(environ={"OCPPKIT_API_TOKEN": "short"})
    settings = load_settings(environ={"OCPPKIT_API_HOST": "0.0.0.0", "OCPPKIT_API_TOKEN": TOKEN})
    assert isinstance(settings, CsmsSettings) and settings.api_token == TOKEN


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://127.0.0.1:1"},  # same host, another port: another origin
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_G7_cross_site_requests_refused_without_token(
    api: Any, headers: dict[str, str]
) -> None:
    """Checklist G7 (CSRF): without a token the API trusts loopback, so a browser request
    from a page of another origin is refused with 403, before anything changes."""
    _, client = await api()
    before = await snapshot(client)
    for method, path, body in (
        ("POST", "/api/stations", {"id": "CP1"}),
        ("POST", "/api/id-tags", {"id_tag": "TAG1"}),
        ("GET", "/api/stations", None),
    ):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 403, (method, path, response.text)
    assert await snapshot(client) == before


async def test_same_origin_browser_requests_allowed_without_token(api: Any) -> None:
    """The API's own pages (/docs, a future dashboard) send their own origin: allowed."""
    _, client = await api()
    origin = str(client.base_url).rstrip("/")
    headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
    response = await client.post("/api/stations", json={"id": "CP1"}, headers=headers)
    assert response.status_code == 201, response.text


# -- G6: station strings -----------------------------------------------------------------------

VENDOR = "<script>x</script>"
MODEL = "\r\nFAKE LOG"
FIRMWARE = "%s%s%n{0}${jndi:x}"
TAG = '<b>"q"</b>\r\n\\'
INFO = "<img src=x onerror=1>"


async def test_G6_station_strings_come_back_verbatim_as_json(api: Any, stations: Any) -> None:
    """Checklist G6: strings a station sends (vendor, model, firmware, idTag, connector info)
    are stored and returned exactly, as JSON strings: control characters escaped (no raw
    CR/LF in the body), served as application/json, never interpreted; the message log
    returns the raw frame verbatim."""
    running, client = await api()
    cp = await stations(running.port, "CP1", boot=False)
    boot = await cp.call(
        c16.BootNotification(
            charge_point_vendor=VENDOR, charge_point_model=MODEL, firmware_version=FIRMWARE
        )
    )
    assert boot.status == "Accepted"
    await cp.call(
        c16.StatusNotification(connector_id=1, error_code="NoError", status="Available", info=INFO)
    )
    await cp.call(c16.StartTransaction(connector_id=1, id_tag=TAG, meter_start=0, timestamp=iso()))

    station = await client.get("/api/stations/CP1")
    assert station.headers["content-type"] == "application/json"
    assert b"\r" not in station.content and b"\n" not in station.content
    body = station.json()
    assert (body["vendor"], body["model"], body["firmware_version"]) == (VENDOR, MODEL, FIRMWARE)
    assert body["connectors"][0]["info"] == INFO
    listed = await client.get("/api/stations", params={"vendor": VENDOR})
    assert [s["id"] for s in listed.json()] == ["CP1"]

    transactions = await client.get("/api/transactions", params={"id_tag": TAG})
    assert b"\r" not in transactions.content and b"\n" not in transactions.content
    assert [t["id_tag"] for t in transactions.json()] == [TAG]

    for _ in range(300):
        frames = (await client.get("/api/messages", params={"action": "BootNotification"})).json()
        if frames["items"]:
            break
        await asyncio.sleep(0.02)
    raw = frames["items"][0]["raw"]
    assert VENDOR in raw and "\\r\\nFAKE LOG" in raw  # the frame's own JSON escapes, kept
