"""Fleet templates: what the stations of a fleet look like, read from a TOML file.

Why: a fleet of thousands is described once — an id pattern, the vendor and model, how the
fleet splits between OCPP versions, connectors, supply, security — and expanded into one
station configuration per station. The expansion is deterministic: the same template, count
and seed give the same stations (ids, versions, per-station seeds, passwords), so a run can
be repeated and a failing station found again.

Format (every key optional; ``docs/fleet.md`` has the reference)::

    id_pattern = "CP{n:05}"            # Python format; n counts from `first`
    first = 1
    vendor = "ocppkit"
    model = "Emulator"
    serial_pattern = "SN{n:08}"        # optional; {n} and {id} available
    firmware_version = "1.0.0"
    versions = { "1.6" = 0.7, "2.0.1" = 0.3 }   # weights; the counts are exact
    connectors = 2                     # 1.6 connectors / 2.0.1 EVSEs
    supply = "ac"                      # "ac" or "dc"
    phases = 3
    voltage = 230.0
    max_current = 32.0
    max_power_w = 50000.0
    security_profile = 0               # 0..3
    password_pattern = "secret-{id}"   # profiles 1 and 2
    ca_file = "ca.pem"                 # profiles 2 and 3
    client_cert = "certs/{id}.pem"     # profile 3; {id} and {n} available; both or neither
    client_key = "certs/{id}.key"      # (neither: the certificate each station's store holds)
    heartbeat_interval = 300           # omit: the CSMS's interval from BootNotification
    meter_values_interval = 60
    clock_aligned_interval = 0
    measurands = ["Energy.Active.Import.Register", "Power.Active.Import"]

    [behaviour]                        # the default behaviour model (ocppkit.fleet.behaviour)
    arrivals_per_hour = 1.0
    ...

Theory of operation
-------------------
:func:`parse_template` checks every key and collects **all** mistakes, one line each
(``versions: weights must be >= 0, got -1``), raised together as :class:`TemplateError`.
:meth:`FleetTemplate.station_kwargs` expands the template for ``count`` stations: station
``i`` (0-based) gets ``n = first + i``; versions are assigned in exact proportion to the
weights (largest remainder) and shuffled with ``random.Random(seed)``; each station's own
seed is derived from the fleet seed and ``n``. The result is a list of plain keyword
dictionaries (picklable, so worker processes can receive them) that
:func:`ocppkit.fleet.runner.station_config` turns into :class:`StationConfig` objects.
"""

from __future__ import annotations

import math
import random
import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocppkit.fleet.behaviour import (
    BehaviourError,
    BehaviourSettings,
    parse_behaviour,
    unknown_key_error,
)

__all__ = [
    "SUPPORTED_VERSIONS",
    "FleetTemplate",
    "TemplateError",
    "load_template",
    "parse_template",
    "station_seed",
]

SUPPORTED_VERSIONS = ("1.6", "2.0.1")
_FIELDS = {"n", "id"}


class TemplateError(ValueError):
    """A template (or behaviour table) with mistakes; ``errors`` holds one line per mistake."""

    def __init__(self, errors: list[str], *, source: str = "template") -> None:
        self.errors = list(errors)
        self.source = source
        super().__init__("\n".join(f"{source}: {line}" for line in self.errors))


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetTemplate:
    """A validated fleet template; :meth:`station_kwargs` expands it."""

    id_pattern: str = "CP{n:05}"
    first: int = 1
    vendor: str = "ocppkit"
    model: str = "Emulator"
    serial_pattern: str | None = None
    firmware_version: str | None = None
    versions: tuple[tuple[str, float], ...] = (("1.6", 1.0),)
    connectors: int = 1
    supply: str = "ac"
    phases: int = 3
    voltage: float = 230.0
    max_current: float = 32.0
    max_power_w: float = 50_000.0
    security_profile: int = 0
    password_pattern: str | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    heartbeat_interval: int | None = None
    meter_values_interval: int = 60
    clock_aligned_interval: int = 0
    measurands: tuple[str, ...] = ("Energy.Active.Import.Register", "Power.Active.Import")
    behaviour: BehaviourSettings = field(default_factory=BehaviourSettings)

    def version_counts(self, count: int) -> dict[str, int]:
        """How many of ``count`` stations get each version: exact shares, largest remainder."""
        total = sum(weight for _, weight in self.versions)
        shares = [(version, count * weight / total) for version, weight in self.versions]
        counts = {version: math.floor(share) for version, share in shares}
        left = count - sum(counts.values())
        by_remainder = sorted(shares, key=lambda vs: (-(vs[1] - math.floor(vs[1])), vs[0]))
        for version, _ in by_remainder[:left]:
            counts[version] += 1
        return counts

    def station_kwargs(self, count: int, csms_url: str, *, seed: int = 0) -> list[dict[str, Any]]:
        """Keyword arguments of ``StationConfig`` for ``count`` stations, deterministic in
        ``seed``. Raises :class:`TemplateError` when two stations would get the same id."""
        if count < 1:
            raise TemplateError([f"the fleet needs at least 1 station, got {count}"])
        versions = [v for v, k in self.version_counts(count).items() for _ in range(k)]
        random.Random(seed).shuffle(versions)
        result: list[dict[str, Any]] = []
        seen: set[str] = set()
        for index, version in enumerate(versions):
            n = self.first + index
            station_id = self.id_pattern.format(n=n)
            if station_id in seen:
                raise TemplateError(
                    [f"id_pattern: {self.id_pattern!r} gives {station_id!r} twice (n={n})"]
                )
            seen.add(station_id)
            kwargs: dict[str, Any] = {
                "station_id": station_id,
                "csms_url": csms_url,
                "ocpp_version": version,
                "vendor": self.vendor,
                "model": self.model,
                "connectors": self.connectors,
                "supply": self.supply,
                "phases": self.phases,
                "voltage": self.voltage,
                "max_current": self.max_current,
                "max_power_w": self.max_power_w,
                "security_profile": self.security_profile,
                "seed": station_seed(seed, n),
                "heartbeat_interval": self.heartbeat_interval,
                "meter_values_interval": self.meter_values_interval,
                "clock_aligned_interval": self.clock_aligned_interval,
                "measurands": self.measurands,
            }
            values = {"n": n, "id": station_id}
            if self.serial_pattern is not None:
                kwargs["serial_number"] = self.serial_pattern.format(**values)
            if self.firmware_version is not None:
                kwargs["firmware_version"] = self.firmware_version
            if self.password_pattern is not None:
                kwargs["password"] = self.password_pattern.format(**values)
            for key in ("ca_file", "client_cert", "client_key"):
                pattern = getattr(self, key)
                if pattern is not None:
                    kwargs[key] = pattern.format(**values)
            result.append(kwargs)
        return result


def station_seed(fleet_seed: int, n: int) -> int:
    """The seed of station number ``n``: distinct per station, fixed by the fleet seed."""
    return random.Random(f"ocppkit-fleet:{fleet_seed}:{n}").getrandbits(63)


def load_template(path: str | Path) -> FleetTemplate:
    """Read and validate a template file; :class:`TemplateError` names every mistake."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError([f"cannot read: {exc.strerror or exc}"], source=str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError([f"not valid TOML: {exc}"], source=str(path)) from None
    try:
        return parse_template(data)
    except TemplateError as exc:
        raise TemplateError(exc.errors, source=str(path)) from None


def _check_pattern(pattern: str, allowed: set[str], key: str, errors: list[str]) -> bool:
    """A format pattern uses only the allowed fields and formats for a sample value."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None}
    except ValueError as exc:
        errors.append(f"{key}: not a valid pattern ({exc}): {pattern!r}")
        return False
    unknown = sorted(name for name in names if name not in allowed)
    if unknown:
        errors.append(
            f"{key}: unknown field {{{unknown[0]}}} in {pattern!r} "
            f"(use {', '.join('{' + a + '}' for a in sorted(allowed))})"
        )
        return False
    try:
        pattern.format(n=1, id="CP1")
    except (ValueError, IndexError, KeyError) as exc:
        errors.append(f"{key}: cannot format {pattern!r}: {exc}")
        return False
    return True


_STRING_KEYS = ("vendor", "model", "firmware_version")
_OPTIONAL_PATTERNS = ("serial_pattern", "password_pattern", "ca_file", "client_cert", "client_key")
_INT_RANGES: dict[str, tuple[int, int]] = {
    "first": (0, 10**12),
    "connectors": (1, 100),
    "phases": (1, 3),
    "security_profile": (0, 3),
    "heartbeat_interval": (1, 86_400),
    "meter_values_interval": (0, 86_400),
    "clock_aligned_interval": (0, 86_400),
}
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "voltage": (1.0, 1_000.0),
    "max_current": (0.1, 1_000.0),
    "max_power_w": (1.0, 10_000_000.0),
}
_KNOWN = {
    "id_pattern",
    "versions",
    "supply",
    "measurands",
    "behaviour",
    *_STRING_KEYS,
    *_OPTIONAL_PATTERNS,
    *_INT_RANGES,
    *_FLOAT_RANGES,
}


def parse_template(data: Mapping[str, Any]) -> FleetTemplate:
    """Validate a template table (parsed TOML); every mistake is one line of the error."""
    errors: list[str] = []
    values: dict[str, Any] = {}
    for key in data:
        if key not in _KNOWN:
            errors.append(unknown_key_error(key, _KNOWN))
    pattern = data.get("id_pattern", "CP{n:05}")
    if not isinstance(pattern, str) or not pattern:
        errors.append(f"id_pattern: must be a non-empty string, got {pattern!r}")
    elif _check_pattern(pattern, {"n"}, "id_pattern", errors):
        if "{n" not in pattern:
            errors.append(f"id_pattern: must contain {{n}} so station ids differ: {pattern!r}")
        else:
            values["id_pattern"] = pattern
    for key in _STRING_KEYS:
        if key in data:
            value = data[key]
            if not isinstance(value, str) or not value:
                errors.append(f"{key}: must be a non-empty string, got {value!r}")
            else:
                values[key] = value
    for key in _OPTIONAL_PATTERNS:
        if key in data:
            value = data[key]
            if not isinstance(value, str) or not value:
                errors.append(f"{key}: must be a non-empty string, got {value!r}")
            elif _check_pattern(value, _FIELDS, key, errors):
                values[key] = value
    for key, (low, high) in _INT_RANGES.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int):
                errors.append(f"{key}: must be an integer, got {value!r}")
            elif not low <= value <= high:
                errors.append(f"{key}: must be between {low} and {high}, got {value}")
            else:
                values[key] = value
    for key, (flow, fhigh) in _FLOAT_RANGES.items():
        if key in data:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int | float):
                errors.append(f"{key}: must be a number, got {value!r}")
            elif not flow <= value <= fhigh:
                errors.append(f"{key}: must be between {flow:g} and {fhigh:g}, got {value}")
            else:
                values[key] = float(value)
    if "supply" in data:
        if data["supply"] not in ("ac", "dc"):
            errors.append(f'supply: must be "ac" or "dc", got {data["supply"]!r}')
        else:
            values["supply"] = data["supply"]
    if "versions" in data:
        versions = _parse_versions(data["versions"], errors)
        if versions is not None:
            values["versions"] = versions
    if "measurands" in data:
        measurands = data["measurands"]
        if (
            not isinstance(measurands, list)
            or not measurands
            or not all(isinstance(m, str) and m for m in measurands)
        ):
            errors.append(f"measurands: must be a non-empty list of strings, got {measurands!r}")
        else:
            values["measurands"] = tuple(measurands)
    profile = values.get("security_profile", 0)
    if profile in (1, 2) and "password_pattern" not in data:
        errors.append(f"password_pattern: required with security_profile {profile}")
    if ("client_cert" in data) != ("client_key" in data):
        # Profile 3 without either is checked at each station's start: its certificate
        # store may hold a certificate from an earlier CertificateSigned (--store).
        errors.append("client_cert and client_key: give both or neither")
    if "behaviour" in data:
        table = data["behaviour"]
        if not isinstance(table, Mapping):
            errors.append(f"behaviour: must be a table ([behaviour]), got {table!r}")
        else:
            try:
                values["behaviour"] = parse_behaviour(table)
            except BehaviourError as exc:
                errors.extend(exc.errors)
    if errors:
        raise TemplateError(errors)
    return FleetTemplate(**values)


def _parse_versions(value: Any, errors: list[str]) -> tuple[tuple[str, float], ...] | None:
    if isinstance(value, str):
        value = {value: 1.0}
    if not isinstance(value, Mapping) or not value:
        example = '{ "1.6" = 0.5, "2.0.1" = 0.5 }'
        errors.append(f"versions: must be a table like {example}, got {value!r}")
        return None
    result: list[tuple[str, float]] = []
    ok = True
    for version, weight in value.items():
        if version not in SUPPORTED_VERSIONS:
            errors.append(
                f"versions: unsupported OCPP version {version!r} "
                f"(supported: {', '.join(SUPPORTED_VERSIONS)})"
            )
            ok = False
        elif isinstance(weight, bool) or not isinstance(weight, int | float) or weight < 0:
            errors.append(f"versions: weight of {version!r} must be a number >= 0, got {weight!r}")
            ok = False
        else:
            result.append((version, float(weight)))
    if ok and sum(weight for _, weight in result) <= 0:
        errors.append("versions: at least one weight must be > 0")
        ok = False
    return tuple(result) if ok else None
