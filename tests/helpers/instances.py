"""Hypothesis strategies for schema instances: valid ones, and invalid ones by one mutation.

A small generator written for the OCPP schemas (objects, arrays, strings with lengths and
formats, integers and numbers with bounds and multipleOf, enums, local ``$ref``), much faster
than a general JSON-Schema generator over 387 schemas. Mutations follow the issue: drop a
required field, change a type, break an enum, overflow a length, add a property, break a
date-time, go past a bound, break an array's cardinality.
"""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

Schema = dict[str, Any]


def resolve(node: Schema, root: Schema) -> Schema:
    while "$ref" in node:
        node = root["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


_datetimes = st.builds(
    # Not strftime: glibc's %Y does not zero-pad years below 1000.
    lambda d, frac, zone: f"{d.year:04d}-{d:%m-%dT%H:%M:%S}{frac}{zone}",
    st.datetimes(),
    st.sampled_from(["", ".5", ".123", ".123456"]),
    st.sampled_from(["Z", "+00:00", "+05:30", "-08:00", "+23:59"]),
)
_uris = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}/{path}",
    st.sampled_from(["ftp", "http", "https", "sftp"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5}){0,2}", fullmatch=True),
    st.from_regex(r"([A-Za-z0-9._~-]|%[0-9A-F]{2}){0,20}", fullmatch=True),
)


any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**31), 2**31)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def valid(node: Schema, root: Schema) -> st.SearchStrategy[Any]:
    """Instances the schema accepts."""
    node = resolve(node, root)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind is None:  # 2.x DataTransfer.data: any JSON value
        return any_json
    if kind == "object":
        properties = node.get("properties", {})
        required = set(node.get("required", []))
        optional = {k: valid(v, root) for k, v in properties.items() if k not in required}
        if node.get("additionalProperties", True) is not False:
            # 2.x CustomDataType is open: vendors may add properties.
            optional["vendorExtension"] = any_json
        return st.fixed_dictionaries(
            {k: valid(v, root) for k, v in properties.items() if k in required},
            optional=optional,
        )
    if kind == "array":
        low = node.get("minItems", 0)
        high = node.get("maxItems", low + 3)
        return st.lists(valid(node["items"], root), min_size=low, max_size=min(high, low + 3))
    if kind == "string":
        if node.get("format") == "date-time":
            return _datetimes
        if node.get("format") == "uri":
            return _uris
        high = node.get("maxLength", 40)
        at_max = st.text(min_size=1, max_size=5).map(lambda t: (t * high)[:high])
        return st.text(max_size=min(high, 40)) | at_max
    if kind == "integer":
        # 2.1 writes some integer bounds as floats ("minimum": 0.0).
        low, high = int(node.get("minimum", -(2**31))), int(node.get("maximum", 2**31 - 1))
        return st.integers(low, high) | st.sampled_from([low, high])
    if kind == "number":
        if "multipleOf" in node:
            step = node["multipleOf"]
            return st.integers(-100_000, 100_000).map(lambda i: round(i * step, 6))
        return st.floats(
            node.get("minimum"), node.get("maximum"), allow_nan=False, allow_infinity=False
        ) | st.integers(int(node.get("minimum", -1000)), int(node.get("maximum", 1000)))
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"schema construct not covered by the generator: {node}")


@dataclass(frozen=True)
class Site:
    """A place in an instance: ``container[key]`` holds a value of ``schema``."""

    container: Any
    key: Any
    schema: Schema


def sites(instance: Any, node: Schema, root: Schema) -> list[Site]:
    """Every (container, key, schema) in a valid instance, the root as (None, None)."""
    found: list[Site] = []

    def walk(container: Any, key: Any, value: Any, schema: Schema) -> None:
        schema = resolve(schema, root)
        found.append(Site(container, key, schema))
        if isinstance(value, dict) and schema.get("type") == "object":
            for k, v in value.items():
                if k in schema.get("properties", {}):
                    walk(value, k, v, schema["properties"][k])
        elif isinstance(value, list) and schema.get("type") == "array":
            for i, v in enumerate(value):
                walk(value, i, v, schema["items"])

    walk(None, None, instance, node)
    return found


MUTATIONS = (
    "drop_required",
    "wrong_type",
    "bad_enum",
    "overflow_length",
    "add_property",
    "bad_datetime",
    "past_bound",
    "array_cardinality",
    "null_value",
)

#: The code each mutation must produce (2.x spelling), when the reference rejects it too.
EXPECTED_CODE = {
    "drop_required": "OccurrenceConstraintViolation",
    "wrong_type": "TypeConstraintViolation",
    "bad_enum": "PropertyConstraintViolation",
    "overflow_length": "PropertyConstraintViolation",
    "add_property": "FormatViolation",
    "bad_datetime": "PropertyConstraintViolation",
    "past_bound": "PropertyConstraintViolation",
    "array_cardinality": "OccurrenceConstraintViolation",
    "null_value": "TypeConstraintViolation",
}

_OTHER_TYPE = {
    "string": 12,
    "integer": "12",
    "number": "1.5",
    "boolean": "true",
    "object": ["not", "an", "object"],
    "array": {"not": "an array"},
}


def _get(site: Site, root_value: Any) -> Any:
    return root_value if site.container is None else site.container[site.key]


def _set(site: Site, root_holder: list[Any], value: Any) -> None:
    if site.container is None:
        root_holder[0] = value
    else:
        site.container[site.key] = value


def mutate(instance: Any, node: Schema, root: Schema, kind: str, pick: int) -> Any | None:
    """``instance`` with one mutation of ``kind`` at the ``pick``-th applicable site, or None
    when no site admits that mutation."""
    instance = copy.deepcopy(instance)
    holder = [instance]
    candidates = []
    for site in sites(instance, node, root):
        schema, value = site.schema, _get(site, instance)
        if kind == "drop_required":
            missing = [k for k in schema.get("required", []) if isinstance(value, dict)]
            candidates += [(site, k) for k in missing]
        elif kind == "wrong_type" and site.container is not None and "type" in schema:
            candidates.append((site, _OTHER_TYPE[schema["type"]]))
        elif kind == "bad_enum" and "enum" in schema:
            candidates.append((site, "NotAnEnumValue"))
        elif kind == "overflow_length" and "maxLength" in schema:
            candidates.append((site, "x" * (schema["maxLength"] + 1)))
        elif kind == "add_property" and schema.get("type") == "object":
            candidates.append((site, None))
        elif kind == "bad_datetime" and schema.get("format") == "date-time":
            candidates += [
                (site, bad)
                for bad in (
                    "2024-13-01T00:00:00Z",
                    "2024-02-30T00:00:00Z",
                    "not-a-date",
                    "2024-01-01T00:00:00",
                    "2024-01-01",
                    "2024-01-01T25:00:00Z",
                )
            ]
        elif kind == "past_bound" and schema.get("type") in ("integer", "number"):
            as_type = int if schema["type"] == "integer" else float
            if "minimum" in schema:
                candidates.append((site, as_type(schema["minimum"] - 1)))
            if "maximum" in schema:
                candidates.append((site, as_type(schema["maximum"] + 1)))
        elif kind == "array_cardinality" and schema.get("type") == "array":
            if schema.get("minItems", 0) > 0:
                candidates.append((site, []))
            if "maxItems" in schema and isinstance(value, list) and value:
                candidates.append(
                    (site, value + [value[0]] * (schema["maxItems"] + 1 - len(value)))
                )
        elif (
            kind == "null_value" and site.container is not None and isinstance(site.container, dict)
        ):
            candidates.append((site, None))
    if not candidates:
        return None
    site, arg = candidates[pick % len(candidates)]
    if kind == "drop_required":
        del _get(site, instance)[arg]
    elif kind == "add_property":
        _get(site, instance)["unexpected" + string.ascii_uppercase[pick % 26]] = 1
    else:
        _set(site, holder, arg)
    return holder[0]
