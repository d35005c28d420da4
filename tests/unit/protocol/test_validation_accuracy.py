"""Accuracy: our acceptance agrees with a reference JSON-Schema validator, 100 %.

For every action of every version (1.6 with its Security extension, 2.0.1, 2.1), in both
directions, valid payloads and payloads broken by one mutation are judged by
``validate_payload`` and by ``jsonschema`` (the schema's own draft, format checking on).
They must agree on every example, except the one case named here where the reference
itself is wrong and the spec's intent wins:

* **multipleOf 0.1** (1.6 charging profiles, checklist D6): ``jsonschema`` divides floats and
  rejects values such as 0.3 or 21.4 (0.3 / 0.1 = 2.9999999999999996). We accept a number
  within 1e-9 of a multiple.

When both reject a mutation, our CallError code must be the one the error-code table gives
for that kind of mutation, spelled for the version.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocppkit.protocol import PayloadError, validate_payload
from ocppkit.protocol.errors import error_code_from_wire
from tests.helpers.instances import EXPECTED_CODE, MUTATIONS, mutate, valid
from tests.helpers.schemas import SchemaCase, reference_errors, schema_cases

CASES = schema_cases()
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)


def ours(case: SchemaCase, instance: Any) -> PayloadError | None:
    try:
        validate_payload(
            case.version, case.action, json.dumps(instance).encode(), response=case.response
        )
    except PayloadError as error:
        return error
    return None


def named_reference_mistake(errors: list[Any]) -> str | None:
    """The named case where the reference is wrong, if every error it reports is that case."""
    if errors and all(
        e.validator == "multipleOf"
        and abs(e.instance / e.validator_value - round(e.instance / e.validator_value)) < 1e-9
        for e in errors
    ):
        return "float multipleOf precision (D6)"
    return None


def check_agreement(case: SchemaCase, instance: Any, mutation: str | None) -> None:
    error = ours(case, instance)
    reference = reference_errors(case, instance)
    if error is None and reference and named_reference_mistake(reference):
        return
    assert (error is None) == (not reference), (
        f"{case.id} {mutation or 'valid'}: ours={'accept' if error is None else error.code} "
        f"reference={[e.message[:80] for e in reference]} instance={json.dumps(instance)[:300]}"
    )
    if error is not None and mutation is not None:
        expected = EXPECTED_CODE[mutation]
        # Replacing an enum or date-time by a value of another type is a type error first.
        assert error_code_from_wire(error.code).value == expected, (
            f"{case.id} {mutation}: got {error.code} ({error.description})"
        )
        if case.version == "1.6":
            assert error.code not in {
                "FormatViolation",
                "OccurrenceConstraintViolation",
                "RpcFrameworkError",
                "MessageTypeNotSupported",
            }


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_valid_payloads_agree(case: SchemaCase) -> None:
    """Every generated valid payload is accepted by both (and agreement is exact)."""

    @SETTINGS
    @given(valid(case.schema, case.schema))
    def run(instance: Any) -> None:
        check_agreement(case, instance, None)

    run()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_mutated_payloads_agree(case: SchemaCase) -> None:
    """One mutation of each kind: acceptance agrees, and the code is the table's."""

    @SETTINGS
    @given(valid(case.schema, case.schema), st.sampled_from(MUTATIONS), st.integers(0, 1000))
    def run(instance: Any, mutation: str, pick: int) -> None:
        broken = mutate(instance, case.schema, case.schema, mutation, pick)
        if broken is not None:
            check_agreement(case, broken, mutation)

    run()


def test_every_schema_file_is_covered() -> None:
    """1.6 has 39 actions (Security extension included), 2.0.1 has 64, 2.1 all of its own."""
    per_version: dict[str, set[str]] = {}
    for case in CASES:
        per_version.setdefault(case.version, set()).add(case.action)
    assert len(per_version["1.6"]) == 39
    assert len(per_version["2.0.1"]) == 64
    assert len(per_version["2.1"]) >= 90
