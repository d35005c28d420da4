"""The router: handlers per action on an instance; NotSupported without one (2.0.1 P4 §4.3)."""

from __future__ import annotations

import pytest

from ocppkit.messages import v201
from ocppkit.protocol import ErrorCode, HandlerError, Router


async def test_sync_and_async_handlers() -> None:
    router = Router()

    @router.on("Heartbeat")
    async def heartbeat(request: object, context: object) -> object:
        return v201.HeartbeatResponse(current_time=context)  # type: ignore[arg-type]

    router.register(
        "ClearCache",
        lambda request, context: v201.ClearCacheResponse(status=v201.ClearCacheStatusEnum.ACCEPTED),
    )
    assert router.actions == {"Heartbeat", "ClearCache"}
    assert router.handles("Heartbeat") and not router.handles("Reset")
    result = await router.dispatch("ClearCache", v201.ClearCacheRequest(), None)
    assert result == v201.ClearCacheResponse(status=v201.ClearCacheStatusEnum.ACCEPTED)
    assert (await router.dispatch("Heartbeat", v201.HeartbeatRequest(), 5)).current_time == 5  # type: ignore[attr-defined]


async def test_no_handler_is_not_supported() -> None:
    with pytest.raises(HandlerError) as info:
        await Router().dispatch("Reset", v201.ResetRequest(type=v201.ResetEnum.IMMEDIATE), None)
    assert info.value.code is ErrorCode.NOT_SUPPORTED


def test_routers_do_not_share_handlers() -> None:
    """No module-level registry (design.md rule 10)."""
    a, b = Router(), Router()
    a.register("Heartbeat", lambda r, c: None)  # type: ignore[arg-type,return-value]
    assert not b.handles("Heartbeat")
