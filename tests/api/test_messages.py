"""``/api/messages``: the message log filtered and keyset-paged, on both storage backends,
from the frames of real 1.6 stations (mobilityhouse)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from ocpp.v16 import call as c16


async def wait_logged(client: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    """All logged frames (oldest first) once at least ``count`` are written (the log is
    flushed in batches every 0.5 s)."""
    for _ in range(300):
        body = (await client.get("/api/messages", params={"limit": 1000, "order": "oldest"})).json()
        if len(body["items"]) >= count:
            return list(body["items"])
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} frames logged")


async def test_filters(api: Any, stations: Any) -> None:
    """station, action, direction, since (inclusive) / until (exclusive); CALLRESULTs have
    no action; raw is the frame as sent."""
    running, client = await api()
    cp1 = await stations(running.port, "CP1")  # Boot: 2 frames
    await stations(running.port, "CP2")  # Boot: 2 frames
    await wait_logged(client, 4)
    middle = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await cp1.call(c16.Heartbeat())
    frames = await wait_logged(client, 6)

    async def get(**params: Any) -> list[dict[str, Any]]:
        response = await client.get("/api/messages", params=params)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    cp1_frames = await get(station="CP1")
    assert [(f["direction"], f["message_type"], f["action"]) for f in cp1_frames] == [
        ("out", 3, None),
        ("in", 2, "Heartbeat"),
        ("out", 3, None),
        ("in", 2, "BootNotification"),
    ]
    assert cp1_frames[1]["raw"].startswith('[2,"') and '"Heartbeat"' in cp1_frames[1]["raw"]
    assert cp1_frames[0]["message_id"] == cp1_frames[1]["message_id"]
    boots = await get(action="BootNotification")
    assert sorted(f["station_id"] for f in boots) == ["CP1", "CP2"]
    assert {f["direction"] for f in await get(direction="out")} == {"out"}
    assert len(await get(direction="in")) == 3
    assert [f["action"] for f in await get(since=middle.isoformat(), direction="in")] == [
        "Heartbeat"
    ]
    assert len(await get(until=middle.isoformat())) == 4
    assert await get(since=middle.isoformat(), until=middle.isoformat()) == []
    assert await get(station="NOPE") == []
    assert len(frames) == 6


async def test_keyset_paging_both_orders(api: Any, stations: Any) -> None:
    """Pages of 3 with next_cursor walk every row exactly once, newest first or oldest first;
    the last page has next_cursor null; rows arriving meanwhile do not shift the pages."""
    running, client = await api()
    cp = await stations(running.port, "CP1")
    for _ in range(4):
        await cp.call(c16.Heartbeat())
    frames = await wait_logged(client, 10)
    all_ids = [f["id"] for f in frames]
    assert all_ids == sorted(all_ids) and len(set(all_ids)) == 10

    async def walk(order: str, during: Any = None) -> tuple[list[int], int]:
        seen: list[int] = []
        params: dict[str, Any] = {"limit": 3, "order": order, "station": "CP1"}
        pages = 0
        while True:
            body = (await client.get("/api/messages", params=params)).json()
            seen.extend(f["id"] for f in body["items"])
            pages += 1
            if during is not None and pages == 1:
                await during()
            if body["next_cursor"] is None:
                return seen, pages
            assert body["next_cursor"] == body["items"][-1]["id"]
            params["cursor"] = body["next_cursor"]

    async def heartbeat() -> None:  # two newer rows: not on the following pages
        await cp.call(c16.Heartbeat())
        await wait_logged(client, 12)

    assert await walk("newest", during=heartbeat) == (all_ids[::-1], 4)
    all_ids = [f["id"] for f in await wait_logged(client, 12)]
    assert await walk("oldest") == (all_ids, 4)

    exact = (await client.get("/api/messages", params={"limit": 12})).json()
    assert len(exact["items"]) == 12 and exact["next_cursor"] is None


async def test_bad_parameters_are_422(api: Any) -> None:
    _, client = await api()
    for bad in (
        {"limit": 0},
        {"limit": 1001},
        {"cursor": -1},
        {"cursor": "abc"},
        {"direction": "sideways"},
        {"order": "random"},
        {"since": "2026-01-01T00:00:00"},  # naive
        {"until": "soon"},
    ):
        response = await client.get("/api/messages", params=bad)
        assert response.status_code == 422, bad
        assert isinstance(response.json()["detail"], list)
    assert (await client.get("/api/messages")).json() == {"items": [], "next_cursor": None}
