"""``/api/id-tags``: the authorization list the CSMS answers Authorize and transactions from.

One table serves every version, so the length rule follows the entry's kind:

* no ``token_type``: a 1.6 idTag, CiString20 (at most 20 characters); also usable by 2.x
  stations, whose idToken is longer;
* with ``token_type`` (2.0.1 ``IdTokenEnumType``, or a 2.1 type of at most 20 characters):
  a 2.0.1 idToken, at most 36 characters.

``parent_id_tag`` (1.6 parentIdTag, 2.x groupIdToken) follows the same rule and need not be
an entry itself. Ids are printable ASCII without spaces at the ends. 1.6 compares idTags
case-insensitively (CiString), so an id that differs from an existing one only in case is
refused as a duplicate (409). Any printable character may be part of an id tag, ``/``
included, so the routes take the rest of the path as the id (percent-encode ``?``, ``#``
and ``%``). Deleting an entry does not touch transactions: they keep the
id tag they were started with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self
from urllib.parse import quote

import structlog
from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.exc import IntegrityError

from ocppkit.csms.service import CsmsService
from ocppkit.storage import repositories
from ocppkit.storage.models import IdTag

from .schemas import MAX_PAGE, MAX_ROW_NUMBER, Problem

__all__ = ["IdTagIn", "IdTagOut", "IdTagPatch", "id_tags_router"]

_log = structlog.get_logger("ocppkit.api")

#: 1.6 idTag: CiString20.
MAX_ID_TAG_16 = 20
#: 2.0.1 IdTokenType.idToken: string(36).
MAX_ID_TOKEN_201 = 36

AuthorizationStatus = Literal["Accepted", "Blocked", "Expired", "Invalid"]
_PRINTABLE = r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$"


class IdTagOut(BaseModel):
    id_tag: str
    token_type: str | None
    status: str
    expiry_date: datetime | None
    parent_id_tag: str | None


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored

    token_type: str | None = Field(
        None,
        max_length=20,
        pattern=r"^[A-Za-z0-9]+$",
        examples=["ISO14443"],
        description="2.x idToken type; omit for a 1.6 idTag",
    )
    status: AuthorizationStatus = "Accepted"
    expiry_date: AwareDatetime | None = None
    parent_id_tag: str | None = Field(None, pattern=_PRINTABLE)


def _check_lengths(id_tag: str, fields: _Fields) -> None:
    limit = MAX_ID_TAG_16 if fields.token_type is None else MAX_ID_TOKEN_201
    kind = "a 1.6 idTag (CiString20)" if fields.token_type is None else "a 2.0.1 idToken"
    for name, value in (("id_tag", id_tag), ("parent_id_tag", fields.parent_id_tag)):
        if value is not None and len(value) > limit:
            raise ValueError(f"{name}: {kind} has at most {limit} characters")


class IdTagIn(_Fields):
    id_tag: str = Field(pattern=_PRINTABLE, examples=["04A2B3C4D5E6F7"])

    @model_validator(mode="after")
    def _lengths(self) -> Self:
        _check_lengths(self.id_tag, self)
        return self


class IdTagPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token_type: str | None = Field(None, max_length=20, pattern=r"^[A-Za-z0-9]+$")
    status: AuthorizationStatus | None = None
    expiry_date: AwareDatetime | None = None
    parent_id_tag: str | None = Field(None, pattern=_PRINTABLE)


def id_tags_router(service: CsmsService) -> APIRouter:
    router = APIRouter(prefix="/api/id-tags", tags=["id tags"])

    @router.get("", response_model=list[IdTagOut])
    async def list_id_tags(
        status: AuthorizationStatus | None = None,
        id_prefix: str | None = Query(None, max_length=255),
        parent_id_tag: str | None = Query(None, max_length=255),
        limit: int = Query(100, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0, le=MAX_ROW_NUMBER),
    ) -> list[IdTagOut]:
        """Authorization entries by id tag."""
        async with service.db.session() as session:
            rows = await repositories.list_id_tags(
                session,
                status=status,
                id_prefix=id_prefix,
                parent_id_tag=parent_id_tag,
                limit=limit,
                offset=offset,
            )
        return [IdTagOut.model_validate(row, from_attributes=True) for row in rows]

    @router.get("/{id_tag:path}", response_model=IdTagOut, responses={404: {"model": Problem}})
    async def get_id_tag(id_tag: str) -> IdTagOut:
        """One entry (exact id)."""
        async with service.db.session() as session:
            row = await repositories.get_id_tag(session, id_tag)
        if row is None:
            raise HTTPException(404, f"unknown id tag {id_tag!r}")
        return IdTagOut.model_validate(row, from_attributes=True)

    @router.post(
        "",
        response_model=IdTagOut,
        status_code=201,
        responses={409: {"model": Problem, "description": "The id tag exists (any case)."}},
    )
    async def create_id_tag(body: IdTagIn, response: Response) -> IdTagOut:
        """Add an entry."""
        try:
            async with service.db.write_session() as session:
                existing = await repositories.find_id_tag_ci(session, body.id_tag)
                if existing is not None:
                    raise HTTPException(409, f"id tag {existing.id_tag!r} already exists")
                session.add(IdTag(**body.model_dump()))
                await session.commit()
        except IntegrityError:  # PostgreSQL: a concurrent create of the same id won the race
            raise HTTPException(409, f"id tag {body.id_tag!r} already exists") from None
        _log.info("id tag created", id_tag=body.id_tag, status=body.status)
        response.headers["Location"] = f"/api/id-tags/{quote(body.id_tag, safe='')}"
        return IdTagOut(**body.model_dump())

    @router.patch(
        "/{id_tag:path}",
        response_model=IdTagOut,
        responses={404: {"model": Problem}},
    )
    async def update_id_tag(id_tag: str, body: IdTagPatch) -> IdTagOut:
        """Change status, expiry, parent or type; fields left out are kept, null clears."""
        async with service.db.write_session() as session:
            row = await repositories.get_id_tag(session, id_tag)
            if row is None:
                raise HTTPException(404, f"unknown id tag {id_tag!r}")
            merged = IdTagOut.model_validate(row, from_attributes=True).model_dump()
            merged.update(body.model_dump(include=body.model_fields_set))
            if merged["status"] is None:
                raise HTTPException(422, "status cannot be null")
            try:
                checked = IdTagIn.model_validate(merged)
            except ValueError as exc:
                raise HTTPException(422, _first_error(exc)) from None
            for name, value in checked.model_dump(exclude={"id_tag"}).items():
                setattr(row, name, value)
            await session.commit()
        _log.info("id tag updated", id_tag=id_tag, changed=sorted(body.model_fields_set))
        return IdTagOut(**checked.model_dump())

    @router.delete("/{id_tag:path}", status_code=204, responses={404: {"model": Problem}})
    async def delete_id_tag(id_tag: str) -> Response:
        """Remove an entry; transactions keep their id tag."""
        async with service.db.write_session() as session:
            if not await repositories.delete_id_tag(session, id_tag):
                raise HTTPException(404, f"unknown id tag {id_tag!r}")
            await session.commit()
        _log.info("id tag deleted", id_tag=id_tag)
        return Response(status_code=204)

    return router


def _first_error(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(exc)
