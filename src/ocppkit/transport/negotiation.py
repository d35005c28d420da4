"""Subprotocol negotiation: the client's order of preference wins.

The station lists ``ocpp2.1``, ``ocpp2.0.1``, ``ocpp1.6`` (or a subset) in
``Sec-WebSocket-Protocol`` in the order it prefers; the server picks the first one it
supports (2.0.1 Part 4 §3.1.3). python-websockets picks by the *server's* order and answers
HTTP 400 when nothing matches; OCPP instead requires the handshake to complete without the
header and the server to close at once (2.0.1 Part 4 §3.2), so we override both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ocppkit.protocol.versions import OcppVersion

__all__ = ["DEFAULT_PREFERENCE", "choose_subprotocol"]

#: The client's default order of preference: newest first.
DEFAULT_PREFERENCE: tuple[OcppVersion, ...] = (OcppVersion.V21, OcppVersion.V201, OcppVersion.V16)


def choose_subprotocol(offered: Sequence[str], supported: Iterable[OcppVersion]) -> str | None:
    """The first subprotocol in ``offered`` that names a version in ``supported``, else None."""
    names = {version.subprotocol for version in supported}
    for name in offered:
        if name in names:
            return name
    return None
