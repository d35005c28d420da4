"""ocppkit: an OCPP 1.6 / 2.0.1 / 2.1 toolkit.

The protocol core lives in :mod:`ocppkit.protocol` (pure, no I/O), the generated typed
messages in :mod:`ocppkit.messages`, the asyncio WebSocket driver in :mod:`ocppkit.transport`.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
