"""Bodies the HTTP API shares between its routers: errors, health, paging bounds.

Every error body is ``{"detail": ...}``: a string for ours, FastAPI's list of problems for
a 422 on bad input. Strings that came from stations (vendor, model, id tags, raw frames)
are returned as JSON strings, verbatim: the API never interprets or renders them, and
JSON encoding escapes what needs escaping (reliability.md G6).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["MAX_PAGE", "MAX_ROW_NUMBER", "Health", "Problem", "StationCounts"]

#: The most rows one listing returns.
MAX_PAGE = 1000

#: The bound of every id, offset and cursor the API takes: the largest integer SQLite's
#: INTEGER and PostgreSQL's BIGINT hold. A larger one is a 422, not a driver overflow (500).
MAX_ROW_NUMBER = 2**63 - 1


class Problem(BaseModel):
    detail: str


class StationCounts(BaseModel):
    connected: int
    total: int | None


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "error"]
    stations: StationCounts
