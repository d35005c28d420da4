"""``/api/id-tags``: authorization list CRUD on both storage backends, and its effect on what
the CSMS answers a real 1.6 station (mobilityhouse) in Authorize."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import pytest
from ocpp.v16 import call as c16


async def test_crud_round_trip(api: Any) -> None:
    """Create (201 + Location), read, list, update (fields left out kept, null clears),
    delete (204, then 404)."""
    _, client = await api()
    created = await client.post(
        "/api/id-tags",
        json={
            "id_tag": "TAG-1",
            "status": "Accepted",
            "expiry_date": "2030-01-01T00:00:00Z",
            "parent_id_tag": "FLEET-A",
        },
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/api/id-tags/TAG-1"
    assert created.json() == {
        "id_tag": "TAG-1",
        "token_type": None,
        "status": "Accepted",
        "expiry_date": "2030-01-01T00:00:00Z",
        "parent_id_tag": "FLEET-A",
    }
    assert (await client.get("/api/id-tags/TAG-1")).json() == created.json()
    assert (await client.get("/api/id-tags")).json() == [created.json()]

    blocked = await client.patch("/api/id-tags/TAG-1", json={"status": "Blocked"})
    assert blocked.status_code == 200, blocked.text
    assert blocked.json() == created.json() | {"status": "Blocked"}
    cleared = await client.patch("/api/id-tags/TAG-1", json={"expiry_date": None})
    assert cleared.json()["expiry_date"] is None and cleared.json()["status"] == "Blocked"
    assert (await client.get("/api/id-tags/TAG-1")).json() == cleared.json()

    assert (await client.delete("/api/id-tags/TAG-1")).status_code == 204
    assert (await client.get("/api/id-tags/TAG-1")).status_code == 404
    assert (await client.delete("/api/id-tags/TAG-1")).status_code == 404
    assert (await client.patch("/api/id-tags/TAG-1", json={})).status_code == 404


async def test_duplicates_ignore_case(api: Any) -> None:
    """1.6 idTag is a CiString: 'tag-1' duplicates 'TAG-1' (409), nothing changes."""
    _, client = await api()
    await client.post("/api/id-tags", json={"id_tag": "TAG-1"})
    for duplicate in ("TAG-1", "tag-1"):
        response = await client.post(
            "/api/id-tags", json={"id_tag": duplicate, "status": "Blocked"}
        )
        assert response.status_code == 409, response.text
        assert "'TAG-1'" in response.json()["detail"]
    assert [t["status"] for t in (await client.get("/api/id-tags")).json()] == ["Accepted"]


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        ({"id_tag": "A" * 20}, True),  # 1.6 CiString20: boundary
        ({"id_tag": "A" * 21}, False),
        ({"id_tag": "A" * 36, "token_type": "ISO14443"}, True),  # 2.0.1 idToken string(36)
        ({"id_tag": "A" * 37, "token_type": "ISO14443"}, False),
        ({"id_tag": "A", "parent_id_tag": "P" * 21}, False),
        ({"id_tag": "A", "parent_id_tag": "P" * 36, "token_type": "Central"}, True),
        ({"id_tag": ""}, False),
        ({"id_tag": " TAG"}, False),
        ({"id_tag": "TAG "}, False),
        ({"id_tag": "TA G"}, True),
        ({"id_tag": "TAG\r\n1"}, False),
        ({"id_tag": "TÄG"}, False),
        ({"id_tag": "TAG", "status": "ConcurrentTx"}, False),  # not an operator status
        ({"id_tag": "TAG", "status": "accepted"}, False),
        ({"id_tag": "TAG", "expiry_date": "2030-01-01T00:00:00"}, False),  # naive
        ({"id_tag": "TAG", "expiry_date": "tomorrow"}, False),
        ({"id_tag": "TAG", "token_type": "ISO 14443"}, False),
        ({"id_tag": "TAG", "token_type": "X" * 21}, False),
        ({"id_tag": "TAG", "expiryDate": "2030-01-01T00:00:00Z"}, False),  # misspelt
    ],
)
async def test_validation(api: Any, body: dict[str, Any], ok: bool) -> None:
    """CiString20 for a 1.6 idTag (no token_type), string(36) for a 2.0.1 idToken;
    printable ASCII without surrounding spaces; statuses of the 1.6/2.x operator set;
    timezone-aware expiry."""
    _, client = await api()
    response = await client.post("/api/id-tags", json=body)
    assert response.status_code == (201 if ok else 422), response.text
    assert len((await client.get("/api/id-tags")).json()) == (1 if ok else 0)


async def test_patch_revalidates_length_against_type(api: Any) -> None:
    """Removing the token type of a 30-character idToken would make it an over-long 1.6
    idTag: 422, unchanged."""
    _, client = await api()
    await client.post("/api/id-tags", json={"id_tag": "T" * 30, "token_type": "eMAID"})
    response = await client.patch(f"/api/id-tags/{'T' * 30}", json={"token_type": None})
    assert response.status_code == 422, response.text
    assert "20" in response.json()["detail"]
    assert (await client.get(f"/api/id-tags/{'T' * 30}")).json()["token_type"] == "eMAID"
    assert (
        await client.patch(f"/api/id-tags/{'T' * 30}", json={"status": None})
    ).status_code == 422


async def test_list_filters_and_paging(api: Any) -> None:
    _, client = await api()
    for id_tag, status, parent in (
        ("A_1", "Accepted", "G1"),
        ("AB1", "Blocked", "G1"),
        ("B-1", "Expired", None),
        ("B-2", "Invalid", None),
    ):
        await client.post(
            "/api/id-tags", json={"id_tag": id_tag, "status": status, "parent_id_tag": parent}
        )

    async def ids(**params: Any) -> list[str]:
        response = await client.get("/api/id-tags", params=params)
        assert response.status_code == 200, response.text
        return [t["id_tag"] for t in response.json()]

    assert await ids() == ["AB1", "A_1", "B-1", "B-2"]
    assert await ids(status="Blocked") == ["AB1"]
    assert await ids(id_prefix="A_") == ["A_1"]  # literal underscore
    assert await ids(parent_id_tag="G1") == ["AB1", "A_1"]
    assert await ids(limit=3, offset=1) == ["A_1", "B-1", "B-2"]
    assert (await client.get("/api/id-tags", params={"status": "Nope"})).status_code == 422


async def test_station_sees_the_list(api: Any, stations: Any) -> None:
    """What the API stores is what Authorize answers (1.6 §6.1): Blocked, expired (Accepted
    with a past expiry -> Expired), parent id tag, and unknown tags by policy."""
    running, client = await api(unknown_id_tags="reject")
    cp = await stations(running.port, "CP1")
    await client.post("/api/id-tags", json={"id_tag": "GOOD", "parent_id_tag": "FLEET"})
    await client.post("/api/id-tags", json={"id_tag": "BAD", "status": "Blocked"})
    await client.post(
        "/api/id-tags", json={"id_tag": "OLD", "expiry_date": "2001-01-01T00:00:00+00:00"}
    )

    async def authorize(id_tag: str) -> dict[str, Any]:
        return dict((await cp.call(c16.Authorize(id_tag=id_tag))).id_tag_info)

    good = await authorize("GOOD")
    assert (good["status"], good["parent_id_tag"]) == ("Accepted", "FLEET")
    assert (await authorize("BAD"))["status"] == "Blocked"
    assert (await authorize("OLD"))["status"] == "Expired"
    assert (await authorize("NEW"))["status"] == "Invalid"
    await client.patch("/api/id-tags/BAD", json={"status": "Accepted"})
    assert (await authorize("BAD"))["status"] == "Accepted"
    await client.delete("/api/id-tags/GOOD")
    assert (await authorize("GOOD"))["status"] == "Invalid"


@pytest.mark.parametrize("id_tag", ["A/B", "x?y#z%", "../..", "a b+c"])
async def test_any_printable_id_tag_is_addressable(api: Any, id_tag: str) -> None:
    """Id tags are printable ASCII, '/' included: each can be read, updated and deleted
    by its percent-encoded path."""
    _, client = await api()
    created = await client.post("/api/id-tags", json={"id_tag": id_tag})
    assert created.status_code == 201, created.text
    path = created.headers["location"]
    assert path == "/api/id-tags/" + quote(id_tag, safe="")
    assert (await client.get(path)).json()["id_tag"] == id_tag
    assert (await client.patch(path, json={"status": "Blocked"})).json()["status"] == "Blocked"
    assert (await client.delete(path)).status_code == 204
    assert (await client.get("/api/id-tags")).json() == []


async def test_concurrent_creates_of_one_id_tag_one_201_the_rest_409(api: Any) -> None:
    """Ten POSTs of the same id at once: one entry, one 201, nine 409, never a 500 (on
    PostgreSQL the losers of the race meet the primary key, answered 409 as well)."""
    _, client = await api()
    body = {"id_tag": "RACE", "status": "Accepted"}
    responses = await asyncio.gather(*(client.post("/api/id-tags", json=body) for _ in range(10)))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert [t["id_tag"] for t in (await client.get("/api/id-tags")).json()] == ["RACE"]
