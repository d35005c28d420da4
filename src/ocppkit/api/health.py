"""``GET /health``: liveness for load balancers and operators, answered without a token.

``database`` is a real round trip (``SELECT 1`` and a count of stations); when it fails
the answer is 503 with ``status: degraded``, so an orchestrator can take the node out.
``stations.connected`` counts live connections on this node. Public: no token needed
(:data:`ocppkit.api.auth.PUBLIC_PATHS`).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from ocppkit.csms.service import CsmsService
from ocppkit.storage import repositories

from .schemas import Health, StationCounts

__all__ = ["health_router"]


def health_router(service: CsmsService) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get(
        "/health",
        response_model=Health,
        responses={503: {"model": Health, "description": "The database does not answer."}},
    )
    async def health() -> JSONResponse:
        """Liveness: the database answers; stations connected to this node and known."""
        connected = sum(1 for connection in service.connections.values() if not connection.closed)
        try:
            async with service.db.session() as session:
                await session.execute(text("SELECT 1"))
                total = await repositories.count_stations(session)
        except Exception:
            body = Health(
                status="degraded",
                database="error",
                stations=StationCounts(connected=connected, total=None),
            )
            return JSONResponse(body.model_dump(), status_code=503)
        body = Health(
            status="ok", database="ok", stations=StationCounts(connected=connected, total=total)
        )
        return JSONResponse(body.model_dump())

    return router
