"""The base class of every generated message Struct (requests, responses, nested types).

``rename``, ``forbid_unknown_fields`` and ``omit_defaults`` are inherited by subclasses, so
they are set once here. ``kw_only`` is not inherited (msgspec applies it to the fields a
class itself defines), so every generated class passes ``kw_only=True`` again; that lets a
required field follow an optional one in the schema's property order.
"""

from __future__ import annotations

import msgspec

__all__ = ["OcppStruct"]


class OcppStruct(msgspec.Struct, rename="camel", forbid_unknown_fields=True, omit_defaults=True):
    """A JSON object of an OCPP payload.

    * Python field names are the snake_case of the schema's property names; ``rename="camel"``
      gives the wire names, and the generator adds an explicit ``msgspec.field(name=...)``
      wherever camelCase would not give back the schema's exact name (``responderURL``).
    * Unknown properties are rejected (the schemas say ``additionalProperties: false``);
      2.x ``CustomData`` alone turns this off.
    * Optional fields default to ``msgspec.UNSET`` and are left out when encoding; JSON
      ``null`` is rejected for them, as by the schemas.
    """
