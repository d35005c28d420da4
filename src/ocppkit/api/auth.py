"""Who may use the HTTP API: a bearer token from the settings, checked on every route.

Why one app-wide dependency: every route added to the application (by any router,
including ones written later) is covered without its author doing anything; a route
cannot be forgotten. The exceptions are the liveness probe (``GET /health``, which load
balancers and orchestrators call without credentials) and the interactive docs
(``/docs``, ``/openapi.json``, which FastAPI serves outside its dependency system).

* ``api_token`` set: ``Authorization: Bearer <token>`` is required; a missing or wrong
  token gets 401 with ``WWW-Authenticate: Bearer`` before the handler runs, so nothing
  changes (reliability.md G7). The comparison is constant-time (``hmac.compare_digest``).
* no token: the settings keep the API on a loopback address (``check_supported``).
  A browser page from another site can still reach a loopback port, so a request whose
  ``Origin`` is not the API's own origin is refused with 403 (cross-site request
  forgery). With a token this is moot: browsers never attach bearer tokens by themselves.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = ["PUBLIC_PATHS", "document_public_paths", "token_guard"]

#: Paths answered without a token (the liveness probe).
PUBLIC_PATHS = frozenset({"/health"})

_bearer = HTTPBearer(
    auto_error=False,
    description="The CSMS's `api_token` (`OCPPKIT_API_TOKEN`).",
)

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
Guard = Callable[[Request, HTTPAuthorizationCredentials | None], Awaitable[None]]


def token_guard(token: str | None) -> Guard:
    """A FastAPI dependency enforcing ``token`` (or, without one, same-origin requests)."""
    expected = token.encode() if token is not None else None

    async def guard(request: Request, credentials: Credentials) -> None:
        if request.url.path in PUBLIC_PATHS:
            return
        if expected is None:
            if _cross_origin(request):
                raise HTTPException(403, "cross-origin request refused")
            return
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorized("missing bearer token")
        if not hmac.compare_digest(credentials.credentials.encode(), expected):
            raise _unauthorized("invalid bearer token")

    return guard


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _cross_origin(request: Request) -> bool:
    """True when the browser says the request comes from a page of another origin."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return True
    origin = request.headers.get("origin")
    if origin is None:
        return False  # not a browser cross-origin request (curl, scripts, same-origin GET)
    host = request.headers.get("host", "")
    parts = urlsplit(origin)
    return parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower()


def document_public_paths(api: FastAPI) -> None:
    """Make the OpenAPI schema say that :data:`PUBLIC_PATHS` need no token (``security:
    []``); the app-wide dependency otherwise marks every operation as secured."""
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = generate()  # caches it in api.openapi_schema
            for path in PUBLIC_PATHS:
                for operation in schema.get("paths", {}).get(path, {}).values():
                    operation["security"] = []
        return api.openapi_schema or {}

    api.openapi = openapi  # type: ignore[method-assign]
