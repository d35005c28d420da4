"""The CSMS's HTTP API (FastAPI, OpenAPI at ``/docs``), served next to the OCPP server."""

from ocppkit.api.app import create_api
from ocppkit.api.server import ApiServer

__all__ = ["ApiServer", "create_api"]
