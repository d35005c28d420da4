"""OCPP versions and their WebSocket subprotocol names.

A version is named by the string users type ("1.6", "2.0.1", "2.1"); the wire name is the
subprotocol the station offers in ``Sec-WebSocket-Protocol`` (2.0.1 Part 4 §3.1.3).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["OcppVersion", "parse_version"]


class OcppVersion(StrEnum):
    """An OCPP version, valued by its number as users write it."""

    V16 = "1.6"
    V201 = "2.0.1"
    V21 = "2.1"

    @property
    def subprotocol(self) -> str:
        """The WebSocket subprotocol name, e.g. ``ocpp2.0.1``."""
        return "ocpp" + self.value

    @property
    def is_2x(self) -> bool:
        """True for 2.0.1 and 2.1, which share the 2.x error codes and frame rules."""
        return self is not OcppVersion.V16

    @classmethod
    def from_subprotocol(cls, name: str) -> OcppVersion:
        """The version for a subprotocol name; ``ValueError`` when it is not one of ours."""
        if name.startswith("ocpp"):
            try:
                return cls(name[4:])
            except ValueError:
                pass
        raise ValueError(f"not an OCPP subprotocol: {name[:40]!r}")


def parse_version(version: str | OcppVersion) -> OcppVersion:
    """Accept ``"1.6"``, ``"2.0.1"``, ``"2.1"`` (or an :class:`OcppVersion`).

    Raises:
        ValueError: the string names no supported version.
    """
    if isinstance(version, OcppVersion):
        return version
    try:
        return OcppVersion(version)
    except ValueError:
        raise ValueError(
            f"unsupported OCPP version {str(version)[:20]!r}; expected 1.6, 2.0.1 or 2.1"
        ) from None
