"""Network connection profiles: which CSMS a 2.0.1 station dials, and when it switches.

Why: a 2.0.1 station does not have *a* CSMS URL; it has numbered configuration slots, each
holding a NetworkConnectionProfile (SetNetworkProfile, B09), an ordered list of the slots to
try (``OCPPCommCtrlr.NetworkConfigurationPriority``) and a number of attempts per slot
(``OCPPCommCtrlr.NetworkProfileConnectionAttempts``). That is what lets a CSMS move a
station to another CSMS (B10, "Migrate to new CSMS") and what keeps a station reachable
when one CSMS endpoint goes away. This module decides; :mod:`.station` dials.

Theory of operation
-------------------
* **Endpoints.** A slot's profile becomes an :class:`Endpoint`: the profile's
  ``ocppCsmsUrl`` with the station identity appended as the last path segment (the URL in
  the profile is the CSMS's, without the identity part; OCPP-J 2.0.1 Part 4 §3.1.1 puts
  the identity last), its ``securityProfile`` and its ``messageTimeout``. The URL and
  security profile the station was started with are the factory profile of slot 0 (the
  default ``NetworkConfigurationPriority`` is ``"0"``); a profile the CSMS stores in slot
  0 replaces it.
* **Set time (B09).** :func:`profile_problem` says why a profile cannot be used (B09.FR.02:
  Rejected); a profile below the current ``SecurityCtrlr.SecurityProfile`` is Rejected
  (B09.FR.04 / A00.FR.005) by the caller, which knows the current level.
* **Order.** :func:`failover_order` turns the priority list into the slots to dial: the
  listed slots, in order, that hold a profile no weaker than the current security profile
  (a station never downgrades, A00.FR.005).
* **Fail-over.** :class:`Failover` is the per-boot state. After a reboot (power-up, Reset)
  the station begins with the first entry (B10.FR.04); each entry gets
  ``NetworkProfileConnectionAttempts`` failed attempts (B10.FR.03), then the next entry is
  dialled. When every entry has used its attempts since the last successful connection,
  the station falls back to the profile it last connected with if that one is not in the
  list (B10.FR.07, the way back from a failed migration); otherwise the list wraps around
  (after the last entry comes the first), and after a failed fallback it starts over at
  the first entry: it never gives up (2.1 B10.FR.09, a station must not become a stranded
  asset). A lost connection starts a fresh count on the slot that was connected
  (B10.FR.03, "when connection to CSMS is lost").
* Waiting between attempts is not decided here: the reconnect back-off
  (:mod:`.backoff`, Part 4 §5.3) applies to every attempt, whichever slot it dials.
* Every connection after a switch boots again (B10.FR.10); the station boots on every
  connection anyway.

OCPP 1.6 has no network profiles: a 1.6 station always dials the URL it was started with.

The module is pure: no I/O, no clock; the caller reports each attempt's outcome.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Endpoint",
    "Failover",
    "ProfileHost",
    "endpoint_from_profile",
    "failover_order",
    "parse_priority",
    "profile_problem",
    "station_url",
]

_OCPP_VERSION = "OCPP20"
"""The ``ocppVersion`` of a profile a 2.0.1 station can speak (OCPPVersionEnumType)."""


def station_url(csms_url: str, station_id: str) -> str:
    """``csms_url`` with ``station_id`` (percent-encoded) appended as the last path segment
    (OCPP-J Part 4 §3.1.1 / 1.6 §3.1: the identity is the last segment)."""
    return csms_url.rstrip("/") + "/" + urllib.parse.quote(station_id, safe="")


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where and how one connection attempt goes."""

    slot: int
    """The configuration slot (0: the factory profile unless the CSMS replaced it)."""
    csms_url: str
    """``ws[s]://host:port/<prefix>``, without the station identity."""
    security_profile: int
    """The security profile to connect with (0..3)."""
    message_timeout: float | None = None
    """Seconds before a CALL times out on this connection; None: the station's setting."""

    def url(self, station_id: str) -> str:
        """The URL to dial: :attr:`csms_url` plus the station identity."""
        return station_url(self.csms_url, station_id)


def endpoint_from_profile(slot: int, profile: Mapping[str, Any]) -> Endpoint:
    """The endpoint of a stored NetworkConnectionProfile (wire names, as SetNetworkProfile
    sent it). Raises KeyError / TypeError / ValueError for a profile without the fields."""
    return Endpoint(
        slot=slot,
        csms_url=str(profile["ocppCsmsUrl"]),
        security_profile=int(profile["securityProfile"]),
        message_timeout=float(profile["messageTimeout"]),
    )


def profile_problem(profile: Mapping[str, Any], *, has_client_certificate: bool) -> str | None:
    """Why this station could not connect with ``profile`` (B09.FR.02: then Rejected), or
    None when it could. The reasons are short ``statusInfo.additionalInfo`` texts.

    Checked: ``ocppVersion`` OCPP20 (this station speaks 2.0.1 only), ``ocppTransport``
    JSON (no SOAP), a ``ws://`` or ``wss://`` URL with a host, ``securityProfile`` 0..3,
    TLS (``wss://``) for profiles 2 and 3 (A00: both are TLS profiles), a client
    certificate for profile 3 (``has_client_certificate``: the station's certificate store
    holds one or files are configured, :meth:`.station.Station.has_client_certificate`)
    and ``messageTimeout`` > 0. The APN, VPN and
    ``ocppInterface`` describe the station's modem and network interfaces; the emulator
    has one network and ignores them.
    """
    if profile.get("ocppVersion") != _OCPP_VERSION:
        return f"ocppVersion {profile.get('ocppVersion')!r} not supported (OCPP20 only)"
    if profile.get("ocppTransport") != "JSON":
        return f"ocppTransport {profile.get('ocppTransport')!r} not supported (JSON only)"
    url = str(profile.get("ocppCsmsUrl", ""))
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return "ocppCsmsUrl must be a ws:// or wss:// URL with a host"
    if parts.query or parts.fragment:
        return "ocppCsmsUrl must not have a query or fragment"
    security = profile.get("securityProfile")
    if not isinstance(security, int) or not 0 <= security <= 3:
        return "securityProfile must be 0..3"
    if security >= 2 and parts.scheme != "wss":
        return f"securityProfile {security} needs a wss:// URL"
    if security == 3 and not has_client_certificate:
        return "securityProfile 3 needs a client certificate, and there is none"
    timeout = profile.get("messageTimeout")
    if not isinstance(timeout, int) or timeout <= 0:
        return "messageTimeout must be > 0"
    return None


def parse_priority(value: str | None) -> tuple[int, ...]:
    """The slots of a NetworkConfigurationPriority value (``"1,0"`` -> ``(1, 0)``), in
    order, each once; items that are not integers are skipped (the device model validated
    the value against its valuesList when it was set)."""
    slots: list[int] = []
    for item in (value or "").split(","):
        try:
            slot = int(item.strip())
        except ValueError:
            continue
        if slot not in slots:
            slots.append(slot)
    return tuple(slots)


def failover_order(
    priority: Iterable[int], endpoints: Mapping[int, Endpoint], *, security_profile: int
) -> tuple[int, ...]:
    """The slots to dial, in priority order: those holding a profile whose security profile
    is not below ``security_profile`` (A00.FR.005: never downgrade).

    When none qualifies (a priority naming only empty slots), slot 0 (the profile the
    station was set up with) is dialled rather than nothing."""
    order = tuple(
        slot
        for slot in priority
        if slot in endpoints and endpoints[slot].security_profile >= security_profile
    )
    return order or (0,)


class Failover:
    """Which configuration slot the next connection attempt dials (see the module
    docstring): created at each reboot (B10.FR.04), told each attempt's outcome."""

    __slots__ = ("_exhausted", "_failures", "_fallback", "_index", "attempts", "last_good", "order")

    def __init__(self, order: Iterable[int], *, attempts: int, last_good: int | None = None):
        """``order``: the slots to dial (:func:`failover_order`), not empty; ``attempts``:
        NetworkProfileConnectionAttempts (at least one attempt per entry is made);
        ``last_good``: the slot of the last successful connection, if known (B10.FR.07).

        Raises ValueError for an empty ``order``."""
        self.order = tuple(order)
        if not self.order:
            raise ValueError("a fail-over needs at least one slot")
        self.attempts = max(1, attempts)
        self.last_good = last_good
        self._index = 0
        self._fallback = False
        self._failures = 0
        """Failed attempts on the current slot."""
        self._exhausted = 0
        """Entries that used all their attempts since the last successful connection."""

    @property
    def slot(self) -> int:
        """The slot the next attempt dials."""
        if self._fallback and self.last_good is not None:
            return self.last_good
        return self.order[self._index]

    @property
    def failures(self) -> int:
        """Failed attempts on :attr:`slot` so far."""
        return self._failures

    def failed(self) -> bool:
        """An attempt on :attr:`slot` failed; True when the next attempt dials another
        entry (B10.FR.03 attempts used up)."""
        self._failures += 1
        if self._failures < self.attempts:
            return False
        self._failures = 0
        if self._fallback:  # the fallback failed too: the list again, from the top
            self._fallback = False
            self._index = 0
            self._exhausted = 0
            return True
        self._exhausted += 1
        if self._exhausted >= len(self.order):  # every entry tried since the last success
            self._exhausted = 0
            if self.last_good is not None and self.last_good not in self.order:
                self._fallback = True  # B10.FR.07
                return True
        if len(self.order) == 1:
            return False
        self._index = (self._index + 1) % len(self.order)  # the next entry, wrapping around
        return True

    def connected(self) -> None:
        """An attempt on :attr:`slot` succeeded: it is the last good one; a later loss
        retries it first with a fresh count (B10.FR.03)."""
        self.last_good = self.slot
        self._failures = 0
        self._exhausted = 0


@runtime_checkable
class ProfileHost(Protocol):
    """What the station runtime needs from a behaviour with network profiles (2.0.1)."""

    def network_endpoints(self) -> Mapping[int, Endpoint]:
        """Every slot that holds a profile (slot 0 always: the factory profile)."""
        ...

    def network_failover(self) -> Failover:
        """A fresh fail-over from the device model, as after a reboot (B10.FR.04)."""
        ...

    def network_connected(self, endpoint: Endpoint) -> None:
        """A connection with ``endpoint`` is up: record it in the device model."""
        ...
