"""OCPP 1.6 configuration keys of an emulated station: table, GetConfiguration, ChangeConfiguration.

Why a table: every standard key (1.6 §9 plus the Security whitepaper's additions) is one
:class:`KeySpec` row saying its type, whether it is read-only, its default, how a new value
is validated and whether taking it needs a reboot. :class:`Configuration16` holds the values
of one station and answers the two configuration messages with the generated structs of
:mod:`ocppkit.messages.v16`; the runtime reads the values through typed properties.

Values are kept in their wire form (strings, as GetConfiguration returns them); the typed
properties parse them. Pure: no I/O, no clock.

Rules it implements:

* GetConfiguration (1.6 §5.8 / §6.23): no ``key`` -> every key; requested keys the station
  does not have go in ``unknownKey``. ``AuthorizationKey`` is *WriteOnly* (1.6J errata
  v4 §3.10): it is never returned; asked for by name it is reported in ``unknownKey``
  (our choice: its value cannot be read, and the CSMS learns nothing about it).
* ChangeConfiguration (1.6 §5.3): an unknown key -> ``NotSupported``; a read-only key or a
  value that fails validation -> ``Rejected``; a key whose change needs a reboot ->
  ``RebootRequired`` (the new value is kept pending and takes effect at
  :meth:`Configuration16.reboot`); otherwise ``Accepted``.
* ``SecurityProfile`` may not be lowered over OCPP (1.6 Security whitepaper A00.FR.005):
  a lower value is ``Rejected``.
* CSL keys name only allowed members (measurands for the ``*Data`` keys, 1.6 §9.1) and are
  no longer than their ``*MaxLength`` key says.

The RemoteTrigger profile defines no configuration key in 1.6 §9; its presence shows in
``SupportedFeatureProfiles``. FirmwareManagement has one, ``SupportedFileTransferProtocols``
(1.6 errata v4.0 §3.90, "9.5.1"; optional there, required by the Security whitepaper's L01
remark): read-only ``HTTP,HTTPS``, what a fetching station downloads (:mod:`.firmware`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ocppkit.messages import v16

__all__ = [
    "STANDARD_KEYS",
    "Configuration16",
    "ConfigurationError",
    "KeySpec",
    "KeyType",
]

#: Largest integer value accepted for an integer key (the JSON ``integer`` of 32-bit peers).
INT_MAX: Final = 2**31 - 1
#: Longest value ChangeConfiguration can carry (ChangeConfiguration.json ``value`` maxLength).
VALUE_MAX_LENGTH: Final = 500


class ConfigurationError(ValueError):
    """Local misuse: a bad initial value or snapshot given to :class:`Configuration16`."""


class KeyType(enum.Enum):
    """The value types of 1.6 §9: boolean, integer, comma separated list, string."""

    BOOL = "boolean"
    INT = "integer"
    CSL = "CSL"
    STRING = "string"


_MEASURANDS: Final = frozenset(m.value for m in v16.Measurand)
_PROFILES: Final = frozenset(
    {
        "Core",
        "FirmwareManagement",
        "LocalAuthListManagement",
        "Reservation",
        "SmartCharging",
        "RemoteTrigger",
    }
)
_PHASE_ROTATION: Final = re.compile(r"\d{1,3}\.(NotApplicable|Unknown|RST|RTS|SRT|STR|TRS|TSR)")
_HEX: Final = re.compile(r"[0-9A-Fa-f]+")


def _authorization_key_ok(value: str) -> bool:
    """1.6 Security whitepaper A00.FR.205: 16..20 bytes, sent as 32..40 hex digits.

    The OCTT (TC_085) also sends 16..20 plain characters, so both forms are accepted.
    """
    if 32 <= len(value) <= 40 and len(value) % 2 == 0 and _HEX.fullmatch(value):
        return True
    return 16 <= len(value) <= 20 and value.isprintable()


@dataclass(frozen=True)
class KeySpec:
    """One configuration key: its type, access, default and validation.

    ``default`` is the wire form of the initial value. ``members`` (CSL) is the set of
    allowed items, ``member_pattern`` a regex each item must match instead;
    ``max_items_key`` names the read-only key holding the longest list allowed.
    ``write_only`` keys are never reported (errata §3.10). ``reboot`` means a change is
    answered ``RebootRequired`` and applied at the next reboot.
    """

    name: str
    type: KeyType
    readonly: bool
    default: str
    profile: str
    required: bool = True
    min_value: int | None = None
    max_value: int | None = None
    members: frozenset[str] | None = None
    member_pattern: re.Pattern[str] | None = None
    max_items_key: str | None = None
    max_length: int = VALUE_MAX_LENGTH
    write_only: bool = False
    reboot: bool = False
    check: Callable[[str], bool] | None = None

    def normalise(self, value: str) -> str | None:
        """The value in canonical wire form, or ``None`` when it is not valid for this key.

        (CSL length against ``max_items_key`` is checked by :class:`Configuration16`, which
        knows the current value of that key.)
        """
        if len(value) > self.max_length:
            return None
        if self.type is KeyType.BOOL:
            lowered = value.strip().lower()
            return lowered if lowered in ("true", "false") else None
        if self.type is KeyType.INT:
            text = value.strip()
            if not re.fullmatch(r"[+-]?\d{1,10}", text):
                return None
            number = int(text)
            low = self.min_value if self.min_value is not None else -INT_MAX - 1
            high = self.max_value if self.max_value is not None else INT_MAX
            return str(number) if low <= number <= high else None
        if self.type is KeyType.CSL:
            items = split_csl(value)
            if items is None:
                return None
            for item in items:
                if self.members is not None and item not in self.members:
                    return None
                if self.member_pattern is not None and not self.member_pattern.fullmatch(item):
                    return None
            if len(set(items)) != len(items):
                return None
            return ",".join(items)
        if self.check is not None and not self.check(value):
            return None
        return value


def split_csl(value: str) -> list[str] | None:
    """Items of a comma separated list (spaces around items ignored); ``None`` if malformed.

    The empty string is the empty list; an empty item (``"a,,b"``) is malformed.
    """
    if value.strip() == "":
        return []
    items = [item.strip() for item in value.split(",")]
    return None if any(item == "" for item in items) else items


def _int(
    name: str,
    default: int,
    profile: str,
    *,
    readonly: bool = False,
    required: bool = True,
    low: int | None = 0,
    high: int | None = None,
    reboot: bool = False,
) -> KeySpec:
    return KeySpec(
        name,
        KeyType.INT,
        readonly,
        str(default),
        profile,
        required=required,
        min_value=low,
        max_value=high,
        reboot=reboot,
    )


def _bool(
    name: str, default: bool, profile: str, *, readonly: bool = False, required: bool = True
) -> KeySpec:
    return KeySpec(
        name, KeyType.BOOL, readonly, "true" if default else "false", profile, required=required
    )


def _measurands(name: str, default: str, max_key: str) -> KeySpec:
    return KeySpec(
        name, KeyType.CSL, False, default, "Core", members=_MEASURANDS, max_items_key=max_key
    )


#: Every standard key (1.6 §9.1 Core, §9.2 LocalAuthListManagement, §9.3 Reservation,
#: §9.4 SmartCharging; Security whitepaper ed. 2 §"Configuration Keys"). Defaults are those
#: of a plain one-connector AC station.
STANDARD_KEYS: Final[tuple[KeySpec, ...]] = (
    # 9.1 Core
    _bool("AllowOfflineTxForUnknownId", False, "Core", required=False),
    _bool("AuthorizationCacheEnabled", True, "Core", required=False),
    _bool("AuthorizeRemoteTxRequests", True, "Core"),
    _int("BlinkRepeat", 3, "Core", required=False),
    _int("ClockAlignedDataInterval", 0, "Core"),
    _int("ConnectionTimeOut", 60, "Core"),
    KeySpec(
        "ConnectorPhaseRotation",
        KeyType.CSL,
        False,
        "0.RST,1.RST",
        "Core",
        member_pattern=_PHASE_ROTATION,
        max_items_key="ConnectorPhaseRotationMaxLength",
        reboot=True,  # rewiring the phases of a real charger needs a restart
    ),
    _int("ConnectorPhaseRotationMaxLength", 2, "Core", readonly=True, required=False),
    _int("GetConfigurationMaxKeys", 64, "Core", readonly=True),
    _int("HeartbeatInterval", 300, "Core"),
    _int("LightIntensity", 100, "Core", required=False, high=100),
    _bool("LocalAuthorizeOffline", True, "Core"),
    _bool("LocalPreAuthorize", False, "Core"),
    _int("MaxEnergyOnInvalidId", 0, "Core", required=False),
    _measurands(
        "MeterValuesAlignedData", "Energy.Active.Import.Register", "MeterValuesAlignedDataMaxLength"
    ),
    _int("MeterValuesAlignedDataMaxLength", 8, "Core", readonly=True, required=False),
    _measurands(
        "MeterValuesSampledData", "Energy.Active.Import.Register", "MeterValuesSampledDataMaxLength"
    ),
    _int("MeterValuesSampledDataMaxLength", 8, "Core", readonly=True, required=False),
    _int("MeterValueSampleInterval", 60, "Core"),
    _int("MinimumStatusDuration", 0, "Core", required=False),
    _int("NumberOfConnectors", 1, "Core", readonly=True),
    _int("ResetRetries", 3, "Core"),
    _bool("StopTransactionOnEVSideDisconnect", True, "Core"),
    _bool("StopTransactionOnInvalidId", True, "Core"),
    _measurands("StopTxnAlignedData", "", "StopTxnAlignedDataMaxLength"),
    _int("StopTxnAlignedDataMaxLength", 8, "Core", readonly=True, required=False),
    _measurands("StopTxnSampledData", "", "StopTxnSampledDataMaxLength"),
    _int("StopTxnSampledDataMaxLength", 8, "Core", readonly=True, required=False),
    KeySpec(
        "SupportedFeatureProfiles",
        KeyType.CSL,
        True,
        "Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger",
        "Core",
        members=_PROFILES,
        max_items_key="SupportedFeatureProfilesMaxLength",
    ),
    _int("SupportedFeatureProfilesMaxLength", 6, "Core", readonly=True, required=False),
    _int("TransactionMessageAttempts", 3, "Core"),
    _int("TransactionMessageRetryInterval", 60, "Core"),
    _bool("UnlockConnectorOnEVSideDisconnect", True, "Core"),
    _int("WebSocketPingInterval", 0, "Core", required=False),
    # 9.2 Local Auth List Management
    _bool("LocalAuthListEnabled", True, "LocalAuthListManagement"),
    _int("LocalAuthListMaxLength", 1000, "LocalAuthListManagement", readonly=True),
    _int("SendLocalListMaxLength", 100, "LocalAuthListManagement", readonly=True),
    # 9.3 Reservation
    _bool("ReserveConnectorZeroSupported", False, "Reservation", readonly=True, required=False),
    # 9.4 Smart Charging
    _int("ChargeProfileMaxStackLevel", 8, "SmartCharging", readonly=True),
    KeySpec(
        "ChargingScheduleAllowedChargingRateUnit",
        KeyType.CSL,
        True,
        "Current,Power",
        "SmartCharging",
        members=frozenset({"Current", "Power"}),
    ),
    _int("ChargingScheduleMaxPeriods", 24, "SmartCharging", readonly=True),
    _bool(
        "ConnectorSwitch3to1PhaseSupported", False, "SmartCharging", readonly=True, required=False
    ),
    _int("MaxChargingProfilesInstalled", 8, "SmartCharging", readonly=True),
    # 9.5 Firmware Management (errata v4.0 §3.90)
    KeySpec(
        "SupportedFileTransferProtocols",
        KeyType.CSL,
        True,
        "HTTP,HTTPS",
        "FirmwareManagement",
        required=False,
        members=frozenset({"FTP", "FTPS", "HTTP", "HTTPS"}),
    ),
    # Security whitepaper (ed. 2) configuration keys
    _bool("AdditionalRootCertificateCheck", False, "Security", readonly=True, required=False),
    KeySpec(
        "AuthorizationKey",
        KeyType.STRING,
        False,
        "",
        "Security",
        required=False,
        max_length=40,
        write_only=True,
        check=_authorization_key_ok,
    ),
    _int("CertificateSignedMaxChainSize", 10000, "Security", readonly=True, required=False),
    _int("CertificateStoreMaxLength", 20, "Security", readonly=True, required=False),
    # resend SignCertificate while no CertificateSigned comes (as 2.0.1 A02.FR.17-19)
    _int("CertSigningRepeatTimes", 3, "Security", required=False),
    _int("CertSigningWaitMinimum", 30, "Security", required=False),
    KeySpec("CpoName", KeyType.STRING, False, "", "Security", required=False, max_length=500),
    _int("SecurityProfile", 0, "Security", required=False, high=3),
)


class Configuration16:
    """The configuration keys of one 1.6 station, with their current values.

    Args:
        values: initial values by key name (wire form), validated like a ChangeConfiguration
            but read-only keys may be set too (a station template fixes them).
        keys: the key table; the standard one by default. Pass a filtered or extended table
            to model a station with fewer profiles or vendor keys.
        extra_reboot_keys: names of keys whose change should also answer ``RebootRequired``.

    Raises:
        ConfigurationError: an unknown key or an invalid value in ``values``.
    """

    def __init__(
        self,
        values: Mapping[str, str] | None = None,
        *,
        keys: Iterable[KeySpec] = STANDARD_KEYS,
        extra_reboot_keys: Iterable[str] = (),
    ) -> None:
        self._specs: dict[str, KeySpec] = {spec.name: spec for spec in keys}
        self._extra_reboot = frozenset(extra_reboot_keys)
        self._values: dict[str, str] = {name: spec.default for name, spec in self._specs.items()}
        self._pending: dict[str, str] = {}
        # CSL keys last: their length limit is the value of another (read-only) key.
        given = sorted(
            (values or {}).items(),
            key=lambda item: item[0] in self._specs and self._specs[item[0]].type is KeyType.CSL,
        )
        for name, value in given:
            spec = self._specs.get(name)
            if spec is not None and value == spec.default:
                continue  # e.g. the empty AuthorizationKey: "no password set"
            normal = self._validate(spec, value) if spec is not None else None
            if normal is None:
                raise ConfigurationError(f"invalid configuration value for {name[:50]!r}")
            self._values[name] = normal

    # -- messages -------------------------------------------------------------------------

    def get_configuration(
        self, keys: Iterable[str] | None = None
    ) -> tuple[list[v16.KeyValue], list[str]]:
        """``(known, unknown)`` for a GetConfiguration of ``keys`` (all keys when ``None``).

        Write-only keys are never in ``known`` (errata §3.10); asked for by name they are
        in ``unknown``. Keys are reported once each, in the order asked.
        """
        names = list(self._specs) if keys is None else list(dict.fromkeys(keys))
        known: list[v16.KeyValue] = []
        unknown: list[str] = []
        for name in names:
            spec = self._specs.get(name)
            if spec is None or spec.write_only:
                if keys is not None:
                    unknown.append(name)
                continue
            known.append(v16.KeyValue(key=name, readonly=spec.readonly, value=self._values[name]))
        return known, unknown

    def handle_get_configuration(
        self, request: v16.GetConfigurationRequest
    ) -> v16.GetConfigurationResponse:
        """The reply to a GetConfiguration request (1.6 §5.8)."""
        requested = None if isinstance(request.key, msgspec.UnsetType) else request.key
        known, unknown = self.get_configuration(requested)
        response = v16.GetConfigurationResponse()
        if known:
            response.configuration_key = known
        if unknown:
            response.unknown_key = unknown
        return response

    def change_configuration(self, key: str, value: str) -> v16.ConfigurationStatus:
        """Apply a ChangeConfiguration (1.6 §5.3) and return its status."""
        spec = self._specs.get(key)
        if spec is None:
            return v16.ConfigurationStatus.NOT_SUPPORTED
        if spec.readonly:
            return v16.ConfigurationStatus.REJECTED
        normal = self._validate(spec, value)
        if normal is None:
            return v16.ConfigurationStatus.REJECTED
        if key == "SecurityProfile" and int(normal) < int(self._values[key]):
            return v16.ConfigurationStatus.REJECTED  # A00.FR.005: never lowered over OCPP
        if spec.reboot or key in self._extra_reboot:
            self._pending[key] = normal
            return v16.ConfigurationStatus.REBOOT_REQUIRED
        self._values[key] = normal
        return v16.ConfigurationStatus.ACCEPTED

    def handle_change_configuration(
        self, request: v16.ChangeConfigurationRequest
    ) -> v16.ChangeConfigurationResponse:
        """The reply to a ChangeConfiguration request."""
        return v16.ChangeConfigurationResponse(
            status=self.change_configuration(request.key, request.value)
        )

    def reboot(self) -> None:
        """Apply the values accepted with ``RebootRequired`` (the station restarted)."""
        self._values.update(self._pending)
        self._pending.clear()

    @property
    def pending(self) -> Mapping[str, str]:
        """Values waiting for a reboot, by key."""
        return dict(self._pending)

    # -- reading values -------------------------------------------------------------------

    def spec(self, key: str) -> KeySpec | None:
        """The table row of ``key``, if the station has that key."""
        return self._specs.get(key)

    def value(self, key: str) -> str | None:
        """The current wire value of ``key`` (write-only ones too: the station knows them)."""
        return self._values.get(key)

    def get_int(self, key: str, default: int = 0) -> int:
        """``key`` as an integer; ``default`` if the station lacks the key."""
        value = self._values.get(key)
        return default if value is None else int(value)

    def get_bool(self, key: str, default: bool = False) -> bool:
        """``key`` as a boolean; ``default`` if the station lacks the key."""
        value = self._values.get(key)
        return default if value is None else value == "true"

    def get_list(self, key: str) -> list[str]:
        """``key`` as the list of its CSL items (empty if the station lacks the key)."""
        return split_csl(self._values.get(key, "")) or []

    @property
    def heartbeat_interval(self) -> int:
        """Seconds between Heartbeats (``HeartbeatInterval``)."""
        return self.get_int("HeartbeatInterval", 300)

    @property
    def meter_value_sample_interval(self) -> int:
        """Seconds between sampled meter values in a transaction; 0 = none."""
        return self.get_int("MeterValueSampleInterval")

    @property
    def clock_aligned_data_interval(self) -> int:
        """Seconds of the clock-aligned interval (from midnight); 0 = none."""
        return self.get_int("ClockAlignedDataInterval")

    @property
    def meter_values_sampled_data(self) -> list[v16.Measurand]:
        """Measurands of the sampled MeterValues."""
        return [v16.Measurand(m) for m in self.get_list("MeterValuesSampledData")]

    @property
    def meter_values_aligned_data(self) -> list[v16.Measurand]:
        """Measurands of the clock-aligned MeterValues."""
        return [v16.Measurand(m) for m in self.get_list("MeterValuesAlignedData")]

    @property
    def stop_txn_sampled_data(self) -> list[v16.Measurand]:
        """Sampled measurands put in StopTransaction ``transactionData``."""
        return [v16.Measurand(m) for m in self.get_list("StopTxnSampledData")]

    @property
    def stop_txn_aligned_data(self) -> list[v16.Measurand]:
        """Clock-aligned measurands put in StopTransaction ``transactionData``."""
        return [v16.Measurand(m) for m in self.get_list("StopTxnAlignedData")]

    @property
    def transaction_message_attempts(self) -> int:
        """How often a rejected transaction message is tried (1.6 §4.10 / §3.7)."""
        return self.get_int("TransactionMessageAttempts", 3)

    @property
    def transaction_message_retry_interval(self) -> int:
        """Seconds before the first retry; attempt n waits n times this (1.6 §4.10)."""
        return self.get_int("TransactionMessageRetryInterval", 60)

    @property
    def local_pre_authorize(self) -> bool:
        """Start at once for ids valid in the local list or cache, online too (§3.5)."""
        return self.get_bool("LocalPreAuthorize")

    @property
    def local_authorize_offline(self) -> bool:
        """Accept ids valid in the local list or cache while offline (§3.5)."""
        return self.get_bool("LocalAuthorizeOffline")

    @property
    def allow_offline_tx_for_unknown_id(self) -> bool:
        """Accept unknown ids while offline (Unknown Offline Authorization, §3.5.3)."""
        return self.get_bool("AllowOfflineTxForUnknownId")

    @property
    def authorization_cache_enabled(self) -> bool:
        """Whether the authorization cache is used."""
        return self.get_bool("AuthorizationCacheEnabled")

    @property
    def local_auth_list_enabled(self) -> bool:
        """Whether the local authorization list is used (and the feature present)."""
        return self.get_bool("LocalAuthListEnabled")

    @property
    def local_auth_list_max_length(self) -> int:
        """Most entries the local list may hold."""
        return self.get_int("LocalAuthListMaxLength")

    @property
    def certificate_store_max_length(self) -> int:
        """Security whitepaper ``CertificateStoreMaxLength``: most certificates InstallCertificate
        may leave installed (M05.FR.03: beyond it, Rejected)."""
        return self.get_int("CertificateStoreMaxLength")

    @property
    def additional_root_certificate_check(self) -> bool:
        """Security whitepaper ``AdditionalRootCertificateCheck`` (M05.FR.08-13): one
        CentralSystemRootCertificate plus a fallback; a new one must be signed by the old."""
        return self.get_bool("AdditionalRootCertificateCheck")

    @property
    def send_local_list_max_length(self) -> int:
        """Most entries one SendLocalList may carry."""
        return self.get_int("SendLocalListMaxLength")

    @property
    def stop_transaction_on_invalid_id(self) -> bool:
        """Stop a transaction whose id the CSMS reports not Accepted in StartTransaction."""
        return self.get_bool("StopTransactionOnInvalidId")

    @property
    def stop_transaction_on_ev_side_disconnect(self) -> bool:
        """Stop the transaction when the cable is unplugged at the EV."""
        return self.get_bool("StopTransactionOnEVSideDisconnect")

    @property
    def authorize_remote_tx_requests(self) -> bool:
        """Authorize a RemoteStartTransaction's id as a local one would be (§5.11)."""
        return self.get_bool("AuthorizeRemoteTxRequests")

    @property
    def connection_timeout(self) -> int:
        """Seconds a presented id waits for the cable before it is dropped."""
        return self.get_int("ConnectionTimeOut", 60)

    @property
    def reset_retries(self) -> int:
        """How often a failed reset is retried."""
        return self.get_int("ResetRetries")

    @property
    def web_socket_ping_interval(self) -> int:
        """Seconds between WebSocket pings; 0 = none."""
        return self.get_int("WebSocketPingInterval")

    @property
    def minimum_status_duration(self) -> int:
        """Seconds a status must last before it is reported."""
        return self.get_int("MinimumStatusDuration")

    @property
    def number_of_connectors(self) -> int:
        """Connectors of the station (``NumberOfConnectors``)."""
        return self.get_int("NumberOfConnectors", 1)

    @property
    def security_profile(self) -> int:
        """The security profile in force (0..3)."""
        return self.get_int("SecurityProfile")

    @property
    def authorization_key(self) -> str | None:
        """The Basic-auth password, or ``None`` when none is set (never logged)."""
        return self._values.get("AuthorizationKey") or None

    # -- snapshots ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot: every value and the values pending a reboot."""
        return {"values": dict(self._values), "pending": dict(self._pending)}

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        keys: Iterable[KeySpec] = STANDARD_KEYS,
        extra_reboot_keys: Iterable[str] = (),
    ) -> Configuration16:
        """Rebuild from :meth:`to_dict`; keys no longer in the table are dropped.

        Raises:
            ConfigurationError: the snapshot is malformed or holds an invalid value.
        """
        values = data.get("values", {})
        pending = data.get("pending", {})
        if not isinstance(values, Mapping) or not isinstance(pending, Mapping):
            raise ConfigurationError("configuration snapshot must map key names to values")
        specs = list(keys)
        names = {spec.name for spec in specs}
        config = cls(
            {k: v for k, v in values.items() if k in names and isinstance(v, str)},
            keys=specs,
            extra_reboot_keys=extra_reboot_keys,
        )
        for name, value in pending.items():
            spec = config._specs.get(name)
            normal = config._validate(spec, value) if spec and isinstance(value, str) else None
            if normal is not None:
                config._pending[name] = normal
        return config

    # -- validation -----------------------------------------------------------------------

    def _validate(self, spec: KeySpec, value: str) -> str | None:
        normal = spec.normalise(value)
        if normal is None or spec.type is not KeyType.CSL or spec.max_items_key is None:
            return normal
        limit = self._values.get(spec.max_items_key)
        if limit is not None and len(split_csl(normal) or []) > int(limit):
            return None
        return normal
