"""The central system: per-version handlers over storage, run by ``ocppkit csms``."""

from ocppkit.csms.app import run_csms, start_csms
from ocppkit.csms.service import CsmsService
from ocppkit.csms.settings import CsmsSettings, load_settings

__all__ = ["CsmsService", "CsmsSettings", "load_settings", "run_csms", "start_csms"]
