"""The official OCA JSON schemas, as shipped in the ``ocpp`` package, and a reference validator.

Used by the accuracy tests: ``jsonschema`` with the schema's own draft and format checking
on (``rfc3339-validator`` and ``rfc3986-validator`` are installed, so ``date-time`` and
``uri`` are really checked; shared/tooling-notes.md).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import ocpp

SCHEMA_DIRS = {"1.6": "v16", "2.0.1": "v201", "2.1": "v21"}


@dataclass(frozen=True)
class SchemaCase:
    version: str
    action: str
    response: bool
    schema: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.version}-{self.action}{'Response' if self.response else 'Request'}"


def _schema_dir(version: str) -> Path:
    return Path(ocpp.__file__).parent / SCHEMA_DIRS[version] / "schemas"


@functools.cache
def schema_cases() -> tuple[SchemaCase, ...]:
    cases = []
    for version in SCHEMA_DIRS:
        for path in sorted(_schema_dir(version).glob("*.json")):
            name = path.stem
            response = name.endswith("Response")
            action = name.removesuffix("Response").removesuffix("Request")
            schema = json.loads(path.read_text(encoding="utf-8"))
            # The 1.6 Security-extension schemas carry a urn $id that breaks local $ref
            # resolution in some tools (shared/tooling-notes.md); it carries no constraint.
            schema.pop("$id", None)
            cases.append(SchemaCase(version, action, response, schema))
    return tuple(cases)


@functools.cache
def _validator(case_id: str) -> Any:
    case = next(c for c in schema_cases() if c.id == case_id)
    cls = jsonschema.validators.validator_for(case.schema)
    return cls(case.schema, format_checker=cls.FORMAT_CHECKER)


def reference_errors(case: SchemaCase, instance: Any) -> list[Any]:
    """The reference validator's errors for ``instance`` (empty when it is valid)."""
    return list(_validator(case.id).iter_errors(instance))
