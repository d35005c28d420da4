"""``/api/messages``: the message log (every frame in or out), filtered and paged.

Paged by keyset, not offset: the log grows by thousands of rows a minute, and an offset
would rescan every row before the page and shift as rows arrive. Each page carries
``next_cursor`` (null on the last page); pass it back as ``cursor`` with the same filters
and order. Rows are ordered by their id, which follows the order frames were written.
``raw`` is the frame as received or sent, verbatim in a JSON string (never interpreted).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from ocppkit.csms.service import CsmsService
from ocppkit.storage import repositories

from .schemas import MAX_PAGE, MAX_ROW_NUMBER

__all__ = ["MessageOut", "MessagePage", "messages_router"]


class MessageOut(BaseModel):
    id: int
    time: datetime
    station_id: str
    direction: str
    message_type: int
    action: str | None
    message_id: str | None
    raw: str


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: int | None


def messages_router(service: CsmsService) -> APIRouter:
    router = APIRouter(prefix="/api/messages", tags=["message log"])

    @router.get("", response_model=MessagePage)
    async def list_messages(
        station: str | None = Query(None, max_length=48, description="Station id."),
        action: str | None = Query(None, max_length=64, description="CALL action."),
        direction: Literal["in", "out"] | None = None,
        since: Annotated[AwareDatetime | None, Query(description="Inclusive.")] = None,
        until: Annotated[AwareDatetime | None, Query(description="Exclusive.")] = None,
        order: Literal["newest", "oldest"] = "newest",
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        cursor: int | None = Query(
            None, ge=0, le=MAX_ROW_NUMBER, description="`next_cursor` of the last page."
        ),
    ) -> MessagePage:
        """Logged frames, newest or oldest first."""
        newest = order == "newest"
        async with service.db.session() as session:
            rows = await repositories.list_message_log(
                session,
                station_id=station,
                action=action,
                direction=direction,
                since=since,
                until=until,
                before_id=cursor if newest else None,
                after_id=None if newest else cursor,
                newest_first=newest,
                limit=limit + 1,  # one more tells whether there is a next page
            )
        items = [MessageOut.model_validate(row, from_attributes=True) for row in rows[:limit]]
        next_cursor = items[-1].id if len(rows) > limit else None
        return MessagePage(items=items, next_cursor=next_cursor)

    return router
