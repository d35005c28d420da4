"""Fleet templates (issue 4 "A fleet": id pattern, vendor/model, version mix, connectors,
AC/DC power, security profile, behaviour): parsing, one error line per mistake, and a
deterministic expansion from a seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocppkit.fleet.behaviour import BehaviourSettings
from ocppkit.fleet.template import (
    FleetTemplate,
    TemplateError,
    load_template,
    parse_template,
    station_seed,
)

URL = "ws://127.0.0.1:9000/ocpp"


def test_defaults_give_numbered_16_stations() -> None:
    kwargs = FleetTemplate().station_kwargs(3, URL)
    assert [k["station_id"] for k in kwargs] == ["CP00001", "CP00002", "CP00003"]
    assert {k["ocpp_version"] for k in kwargs} == {"1.6"}
    assert all(k["csms_url"] == URL for k in kwargs)


def test_full_template_maps_every_key() -> None:
    template = parse_template(
        {
            "id_pattern": "EVB-{n:03}",
            "first": 7,
            "vendor": "Acme",
            "model": "Wallbox 22",
            "serial_pattern": "SN-{id}",
            "firmware_version": "2.1.0",
            "connectors": 2,
            "supply": "dc",
            "max_power_w": 150000,
            "security_profile": 1,
            "password_pattern": "pw-{id}-{n}",
            "heartbeat_interval": 60,
            "meter_values_interval": 30,
            "clock_aligned_interval": 900,
            "measurands": ["Energy.Active.Import.Register", "SoC"],
            "behaviour": {"arrivals_per_hour": 3, "id_tags": 5},
        }
    )
    (first,) = template.station_kwargs(1, URL, seed=1)
    assert first["station_id"] == "EVB-007"
    assert first["serial_number"] == "SN-EVB-007"
    assert first["password"] == "pw-EVB-007-7"
    assert first["vendor"] == "Acme" and first["model"] == "Wallbox 22"
    assert first["firmware_version"] == "2.1.0"
    assert first["supply"] == "dc" and first["max_power_w"] == 150000.0
    assert first["connectors"] == 2 and first["security_profile"] == 1
    assert first["heartbeat_interval"] == 60 and first["meter_values_interval"] == 30
    assert first["clock_aligned_interval"] == 900
    assert first["measurands"] == ("Energy.Active.Import.Register", "SoC")
    assert template.behaviour == BehaviourSettings(arrivals_per_hour=3.0, id_tags=5)


@pytest.mark.parametrize(
    ("weights", "count", "expected"),
    [
        ({"1.6": 0.5, "2.0.1": 0.5}, 10, {"1.6": 5, "2.0.1": 5}),
        ({"1.6": 0.7, "2.0.1": 0.3}, 1000, {"1.6": 700, "2.0.1": 300}),
        ({"1.6": 1, "2.0.1": 2}, 10, {"1.6": 3, "2.0.1": 7}),
        ({"1.6": 1, "2.0.1": 1}, 1, {"1.6": 1, "2.0.1": 0}),
        ({"1.6": 0, "2.0.1": 1}, 4, {"1.6": 0, "2.0.1": 4}),
    ],
)
def test_version_mix_is_exact(weights: dict[str, float], count: int, expected: dict) -> None:
    """The counts follow the weights exactly (largest remainder), whatever the seed."""
    template = parse_template({"versions": weights})
    assert template.version_counts(count) == expected
    for seed in (0, 1, 2):
        got = [k["ocpp_version"] for k in template.station_kwargs(count, URL, seed=seed)]
        assert {v: got.count(v) for v in expected} == expected


def test_expansion_is_deterministic_in_the_seed() -> None:
    template = parse_template({"versions": {"1.6": 0.5, "2.0.1": 0.5}})
    a = template.station_kwargs(50, URL, seed=42)
    assert a == template.station_kwargs(50, URL, seed=42)
    b = template.station_kwargs(50, URL, seed=43)
    assert [k["ocpp_version"] for k in a] != [k["ocpp_version"] for k in b]
    assert len({k["seed"] for k in a}) == 50  # every station its own random stream
    assert a[0]["seed"] == station_seed(42, 1) != station_seed(43, 1)


def test_duplicate_ids_are_refused() -> None:
    parse_template({"id_pattern": "CP{n:02}"}).station_kwargs(100, URL)  # CP100 is distinct
    with pytest.raises(TemplateError) as info:
        parse_template({"id_pattern": "CP{n:.0e}"}).station_kwargs(20, URL)
    assert info.value.errors == ["id_pattern: 'CP{n:.0e}' gives 'CP1e+01' twice (n=11)"]


def test_every_mistake_is_one_line() -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(
            {
                "vendr": "x",
                "id_pattern": "CP",
                "versions": {"1.5": 1, "2.0.1": -1},
                "connectors": 0,
                "supply": "solar",
                "phases": "3",
                "voltage": 5000,
                "security_profile": 2,
                "behaviour": {"arrivals_per_hour": 0, "min_duration": 10, "max_duration": 5},
            }
        )
    errors = info.value.errors
    expected_fragments = [
        "unknown key 'vendr' (did you mean 'vendor'?)",
        "id_pattern: must contain {n}",
        "versions: unsupported OCPP version '1.5'",
        "versions: weight of '2.0.1' must be a number >= 0",
        "connectors: must be between 1 and 100, got 0",
        'supply: must be "ac" or "dc"',
        "phases: must be an integer",
        "voltage: must be between",
        "password_pattern: required with security_profile 2",
        "behaviour.arrivals_per_hour: must be > 0",
        "behaviour.max_duration: must be >= min_duration",
    ]
    for fragment in expected_fragments:
        assert any(fragment in line for line in errors), (fragment, errors)
    assert len(errors) == len(expected_fragments)
    assert all("\n" not in line for line in errors)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"id_pattern": "CP{x}"}, "unknown field {x}"),
        ({"id_pattern": "CP{n"}, "not a valid pattern"),
        ({"password_pattern": "{station}"}, "unknown field {station}"),
        ({"versions": {}}, "must be a table like"),
        ({"versions": {"1.6": 0}}, "at least one weight must be > 0"),
        ({"measurands": []}, "non-empty list"),
        ({"security_profile": 3, "client_cert": "c.pem"}, "client_cert and client_key: give both"),
        ({"behaviour": {"id_tags": 0}}, "behaviour.id_tags: must be >= 1"),
        ({"behaviour": {"id_tag_pattern": "TAG"}}, "must contain {n}"),
        ({"behaviour": {"arrival_per_hour": 1}}, "did you mean 'arrivals_per_hour'"),
        ({"behaviour": 3}, "behaviour: must be a table"),
    ],
)
def test_single_mistakes(data: dict, fragment: str) -> None:
    with pytest.raises(TemplateError) as info:
        parse_template(data)
    assert any(fragment in line for line in info.value.errors), info.value.errors


def test_a_single_version_string_is_accepted() -> None:
    assert parse_template({"versions": "2.0.1"}).versions == (("2.0.1", 1.0),)


def test_load_template_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text('connectors = "two"\n', encoding="utf-8")
    with pytest.raises(TemplateError) as info:
        load_template(path)
    assert str(info.value) == f"{path}: connectors: must be an integer, got 'two'"
    path.write_text("connectors = \n", encoding="utf-8")
    with pytest.raises(TemplateError, match="not valid TOML"):
        load_template(path)
    with pytest.raises(TemplateError, match="cannot read"):
        load_template(tmp_path / "missing.toml")


def test_example_template_parses() -> None:
    path = Path(__file__).parents[3] / "examples" / "fleet.toml"
    template = load_template(path)
    assert len(template.station_kwargs(100, URL)) == 100
