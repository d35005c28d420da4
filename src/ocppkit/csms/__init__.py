"""The central system: settings and per-version handlers over storage.

``ocppkit.node`` assembles a running node (OCPP server, HTTP API, storage) from these.
"""

from ocppkit.csms.service import CsmsService
from ocppkit.csms.settings import CsmsSettings, load_settings

__all__ = ["CsmsService", "CsmsSettings", "load_settings"]
