"""CSMS settings: one object, from CLI flags > ``OCPPKIT_*`` environment > TOML file > defaults.

Every field is validated (msgspec constraints); a bad value from any source is reported as
one line naming the setting and its source (design.md "Conventions"; the CLI prints it and
exits 2), never as a traceback.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "CsmsSettings",
    "SettingsError",
    "StationPolicy",
    "TagPolicy",
    "check_supported",
    "load_settings",
]

ENV_PREFIX = "OCPPKIT_"
#: Where the HTTP API may listen while it has no authentication.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class StationPolicy(StrEnum):
    """What to do with a station id the registry does not know."""

    ACCEPT = "accept"  # auto-register (the default of a plain local start)
    PENDING = "pending"  # Boot answered Pending until an operator accepts
    REJECT = "reject"  # refused (the default once a security profile is set)


class TagPolicy(StrEnum):
    """What to answer for an id tag the registry does not know."""

    ACCEPT = "accept"  # a new user can charge at once on a plain local start
    REJECT = "reject"  # Invalid


Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]


class CsmsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything ``ocppkit csms`` can be told."""

    host: str = "127.0.0.1"
    port: Port = 9000
    api_host: str = "127.0.0.1"
    api_port: Port = 8080
    database: str = "sqlite+aiosqlite:///ocppkit.sqlite3"
    security_profile: Annotated[int, msgspec.Meta(ge=0, le=3)] = 0
    unknown_stations: StationPolicy | None = None  # None: accept at profile 0, else reject
    unknown_id_tags: TagPolicy | None = None  # None: accept at profile 0, else reject
    heartbeat_interval: Annotated[int, msgspec.Meta(ge=1, le=86400)] = 300
    call_timeout: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 30.0
    max_frame_size: Annotated[int, msgspec.Meta(ge=1024, le=64 << 20)] = 1 << 20
    message_log_retention_days: Annotated[int, msgspec.Meta(ge=0)] = 30
    # Security profiles (reliability.md 1.2): TLS files are PEM paths.
    tls_cert: str | None = None  # server certificate chain (profiles 2 and 3)
    tls_key: str | None = None  # its private key
    tls_client_ca: str | None = None  # CA bundle that signs station certificates (profile 3)
    cpo_name: str | None = None  # profile 3: required O= of station certificates (A00.FR.404)
    # Station certificates (A02/A03): a CA that signs CSRs; without one, SignCertificate is
    # answered Rejected (ocppkit.csms.certificate_authority).
    ca_cert: str | None = None  # PEM: the signing CA certificate, then any above it
    ca_key: str | None = None  # PEM: its unencrypted private key
    certificate_validity_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 365
    auth_attempts_per_minute: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 10
    duplicate_probe_timeout: Annotated[float, msgspec.Meta(gt=0, le=120)] = 5.0
    # HTTP API: without a token it stays on localhost.
    api_token: str | None = None
    # Limits (docs/limits.md).
    handshake_timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0
    max_inbound_queue: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 16
    max_messages_per_second: Annotated[float, msgspec.Meta(gt=0, le=100_000)] = 20.0
    message_burst: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 200
    # Logs (stderr): level and format.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"

    @property
    def station_policy(self) -> StationPolicy:
        """The effective policy for unknown stations."""
        if self.unknown_stations is not None:
            return self.unknown_stations
        return StationPolicy.ACCEPT if self.security_profile == 0 else StationPolicy.REJECT

    @property
    def tag_policy(self) -> TagPolicy:
        """The effective policy for unknown id tags."""
        if self.unknown_id_tags is not None:
            return self.unknown_id_tags
        return TagPolicy.ACCEPT if self.security_profile == 0 else TagPolicy.REJECT


class SettingsError(ValueError):
    """A setting has a bad value; the message is one line fit for the terminal."""


_FIELDS = frozenset(CsmsSettings.__struct_fields__)


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("csms", data)
    unknown = sorted(set(section) - _FIELDS)
    if unknown:
        raise SettingsError(f"config file {path}: unknown setting {unknown[0]!r}")
    return dict(section)


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in _FIELDS:
        raw = environ.get(ENV_PREFIX + field.upper())
        if raw is not None:
            values[field] = raw
    return values


def _check(values: dict[str, Any], source: str, *, from_strings: bool) -> None:
    for key, value in values.items():
        try:
            msgspec.convert({key: value}, CsmsSettings, strict=not from_strings)
        except msgspec.ValidationError as exc:
            reason = str(exc).split(" - at ", 1)[0]
            where = f"{ENV_PREFIX}{key.upper()}={value!r:.40}" if from_strings else key
            raise SettingsError(f"invalid {where} from {source}: {reason}") from None


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> CsmsSettings:
    """Merge the sources (flags > environment > TOML > defaults) and validate.

    Raises:
        SettingsError: a value is invalid, a file unreadable, or a TOML key unknown.
    """
    file_values = _from_toml(config_file) if config_file is not None else {}
    env_values = _from_env(os.environ if environ is None else environ)
    flag_values = {k: v for k, v in (flags or {}).items() if v is not None}
    _check(file_values, f"config file {config_file}", from_strings=False)
    _check(env_values, "the environment", from_strings=True)
    _check(flag_values, "the command line", from_strings=False)
    merged = {**file_values, **env_values, **flag_values}
    settings = msgspec.convert(merged, CsmsSettings, strict=False)
    check_supported(settings)
    return settings


def check_supported(settings: CsmsSettings) -> None:
    """Refuse combinations that cannot work or would run less safely than asked.

    Raises:
        SettingsError: an API reachable from other hosts without ``api_token``; profile 2 or
            3 without ``tls_cert`` and ``tls_key``; profile 3 without ``tls_client_ca``;
            a short API token; ``ca_cert`` without ``ca_key`` or the reverse.
    """
    if settings.api_token is not None and len(settings.api_token) < 16:
        raise SettingsError("api_token: use at least 16 characters")
    if settings.api_host not in LOOPBACK_HOSTS and settings.api_token is None:
        raise SettingsError(
            f"api_host {settings.api_host!r}: set api_token (OCPPKIT_API_TOKEN) before "
            "exposing the HTTP API beyond localhost"
        )
    profile = settings.security_profile
    if profile >= 2 and (settings.tls_cert is None or settings.tls_key is None):
        raise SettingsError(f"security_profile {profile} needs tls_cert and tls_key (PEM files)")
    if profile == 3 and settings.tls_client_ca is None:
        raise SettingsError("security_profile 3 needs tls_client_ca (CA of station certificates)")
    if (settings.ca_cert is None) != (settings.ca_key is None):
        raise SettingsError("ca_cert and ca_key go together: set both or neither")
