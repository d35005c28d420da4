"""``GET /metrics``: the node's Prometheus metrics (:class:`~ocppkit.csms.metrics.CsmsMetrics`).

Plain text exposition format, for a Prometheus scrape job. The series are listed in
:mod:`ocppkit.csms.metrics`; they describe this node only.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from ocppkit.csms.metrics import CONTENT_TYPE
from ocppkit.csms.service import CsmsService

__all__ = ["metrics_router"]


def metrics_router(service: CsmsService) -> APIRouter:
    """The ``/metrics`` route of ``service``."""
    router = APIRouter(tags=["metrics"])

    @router.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text."}},
    )
    async def metrics() -> Response:
        """Every metric of this node in the Prometheus text exposition format."""
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE)

    return router
