"""Local authorization of an emulated station: the local list, the cache, and the decision.

Theory of operation
-------------------
A station presented with an id token either asks the CSMS (Authorize) or decides itself
from two local sources:

* the **local authorization list** (:class:`LocalAuthList`), managed by the CSMS with
  SendLocalList / GetLocalListVersion (1.6 §3.5.2, §5.10, §5.15; 2.0.1 D01, D02). A *Full*
  update replaces the list, a *Differential* one adds, updates (entry with info) or removes
  (entry without info) ids; a Differential without entries has no effect, a Full one
  empties the list. Version 0 means "no list" and is never sent by the CSMS; a
  differential update whose version is not above ours is ``VersionMismatch``; an update
  longer than ``SendLocalListMaxLength`` / ``ItemsPerMessage`` or one that would make the
  list longer than ``LocalAuthListMaxLength`` / ``Entries.maxLimit`` is ``Failed`` and
  changes nothing. A 1.6 station without the feature answers ``NotSupported`` and reports
  version -1 (§5.10).
* the **authorization cache** (:class:`AuthorizationCache`, 1.6 §3.5.1, 2.0.1 C10/C11):
  every IdTagInfo / IdTokenInfo the CSMS returns in Authorize, StartTransaction and
  TransactionEvent replies is stored (any status), with its expiry; an entry unused for
  ``life_time`` seconds expires (AuthCacheCtrlr.LifeTime); when full, non-Accepted entries
  are evicted first, then the least recently used (Policy LRU); ClearCache empties it
  (``Rejected`` while the cache is disabled, C11).

:meth:`LocalAuthorization.decide` applies the flags (1.6 §3.5, §3.5.3 and key table §9.1;
2.0.1 C12–C15):

==========  =====================================================  ======================
Online?     Token                                                  Decision
==========  =====================================================  ======================
online      LocalPreAuthorize and Accepted in list, else cache     ACCEPT (no Authorize)
online      anything else                                          AUTHORIZE (ask CSMS)
offline     LocalAuthorizeOffline and found in list, else cache    ACCEPT if Accepted,
                                                                   else REJECT
offline     unknown (or known Accepted, LocalAuthorizeOffline off) ACCEPT if
                                                                   AllowOfflineTxFor-
                                                                   UnknownId, else REJECT
offline     known not Accepted, LocalAuthorizeOffline off          REJECT
==========  =====================================================  ======================

The list wins over the cache when a token is in both (1.6 §3.5: the local authorization
list takes precedence over the cache). An entry whose expiry date has passed counts
as ``Expired``. Token comparison is case-insensitive (1.6 IdToken, 2.0.1 IdTokenType);
2.0.1 tokens are also keyed by their type. Pure: the current time is a parameter.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

import msgspec

from ocppkit.messages import v16, v201

__all__ = [
    "AuthInfo",
    "AuthSettings",
    "AuthorizationCache",
    "Decision",
    "DecisionKind",
    "LocalAuthList",
    "LocalAuthorization",
    "SnapshotError",
    "TokenKey",
    "token_key",
]

ACCEPTED: Final = "Accepted"
EXPIRED: Final = "Expired"

#: ``(token type, case-folded token)``; the type is ``""`` for a 1.6 idTag.
TokenKey = tuple[str, str]


class SnapshotError(ValueError):
    """Local misuse: a malformed snapshot given to ``from_dict``."""


def token_key(token: str | v201.IdToken) -> TokenKey:
    """The lookup key of a 1.6 idTag or 2.0.1 IdToken (case-insensitive)."""
    if isinstance(token, str):
        return ("", token.casefold())
    return (token.type.value, token.id_token.casefold())


@dataclass(frozen=True)
class AuthInfo:
    """What is known of a token: its status (the wire string), expiry and group/parent id."""

    status: str
    expires_at: datetime | None = None
    group_id: str | None = None

    def status_at(self, now: datetime) -> str:
        """The status, ``Expired`` once ``expires_at`` has passed."""
        if self.expires_at is not None and now >= self.expires_at:
            return EXPIRED
        return self.status

    @classmethod
    def from_v16(cls, info: v16.IdTagInfo) -> AuthInfo:
        """From a 1.6 IdTagInfo (Authorize, StartTransaction, SendLocalList)."""
        return cls(
            info.status.value,
            None if isinstance(info.expiry_date, msgspec.UnsetType) else info.expiry_date,
            None if isinstance(info.parent_id_tag, msgspec.UnsetType) else info.parent_id_tag,
        )

    @classmethod
    def from_v201(cls, info: v201.IdTokenInfo) -> AuthInfo:
        """From a 2.0.1 IdTokenInfo (Authorize, TransactionEvent, SendLocalList)."""
        expires = info.cache_expiry_date_time
        group = info.group_id_token
        return cls(
            info.status.value,
            None if isinstance(expires, msgspec.UnsetType) else expires,
            None if isinstance(group, msgspec.UnsetType) else group.id_token,
        )

    def to_v16(self) -> v16.IdTagInfo:
        """As a 1.6 IdTagInfo (2.0.1-only statuses become ``Invalid``)."""
        try:
            status = v16.AuthorizationStatus(self.status)
        except ValueError:
            status = v16.AuthorizationStatus.INVALID
        info = v16.IdTagInfo(status=status)
        if self.expires_at is not None:
            info.expiry_date = self.expires_at
        if self.group_id is not None:
            info.parent_id_tag = self.group_id[:20]
        return info

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "status": self.status,
            "expires_at": None if self.expires_at is None else self.expires_at.isoformat(),
            "group_id": self.group_id,
        }

    @classmethod
    def from_dict(cls, data: Any) -> AuthInfo:
        """From :meth:`to_dict`.

        Raises:
            SnapshotError: malformed data.
        """
        try:
            status = data["status"]
            expires = data.get("expires_at")
            group = data.get("group_id")
            if not isinstance(status, str) or not isinstance(group, str | None):
                raise SnapshotError("authorization snapshot: bad entry")
            when = None if expires is None else datetime.fromisoformat(expires)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SnapshotError("authorization snapshot: bad entry") from exc
        return cls(status, when, group)


def _key_to_json(key: TokenKey) -> list[str]:
    return [key[0], key[1]]


def _key_from_json(data: Any) -> TokenKey:
    if not (isinstance(data, list) and len(data) == 2 and all(isinstance(x, str) for x in data)):
        raise SnapshotError("authorization snapshot: bad token key")
    return (data[0], data[1])


class LocalAuthList:
    """The local authorization list and its version.

    Args:
        max_entries: most entries the list holds (``LocalAuthListMaxLength`` /
            ``LocalAuthListCtrlr.Entries`` maxLimit).
        max_per_message: most entries one SendLocalList may carry
            (``SendLocalListMaxLength`` / ``LocalAuthListCtrlr.ItemsPerMessage``).
    """

    def __init__(self, *, max_entries: int = 1000, max_per_message: int = 100) -> None:
        self.max_entries = max_entries
        self.max_per_message = max_per_message
        self.version = 0
        self._entries: dict[TokenKey, AuthInfo] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str | v201.IdToken) -> AuthInfo | None:
        """The entry of ``token``, if listed."""
        return self._entries.get(token_key(token))

    def update(
        self,
        version: int,
        full: bool,
        entries: Sequence[tuple[TokenKey, AuthInfo | None]],
    ) -> str:
        """Apply one SendLocalList; the status string (``Accepted``, ``Failed``,
        ``VersionMismatch``). Nothing changes unless ``Accepted``.
        """
        if version <= 0 or len(entries) > self.max_per_message:
            return "Failed"
        keys = [key for key, _ in entries]
        if len(set(keys)) != len(keys):
            return "Failed"  # ids "MUST be unique" (1.6 §5.15, D01): one twice is ambiguous
        if not full and not entries:
            return ACCEPTED  # "will have no effect on the list" (1.6 §5.15, D01)
        if not full and version <= self.version:
            return "VersionMismatch"
        new = {} if full else dict(self._entries)
        for key, info in entries:
            if info is None:
                new.pop(key, None)
            else:
                new[key] = info
        if len(new) > self.max_entries:
            return "Failed"
        self._entries = new
        self.version = version
        return ACCEPTED

    def update_v16(self, request: v16.SendLocalListRequest) -> str:
        """Apply a 1.6 SendLocalList (§5.15); the UpdateStatus string."""
        items = [] if isinstance(request.local_authorization_list, msgspec.UnsetType) else (
            request.local_authorization_list
        )  # fmt: skip
        entries = [
            (
                token_key(item.id_tag),
                None
                if isinstance(item.id_tag_info, msgspec.UnsetType)
                else AuthInfo.from_v16(item.id_tag_info),
            )
            for item in items
        ]
        return self.update(
            request.list_version, request.update_type is v16.UpdateType.FULL, entries
        )

    def update_v201(self, request: v201.SendLocalListRequest) -> str:
        """Apply a 2.0.1 SendLocalList (D01); the SendLocalListStatus string."""
        items = [] if isinstance(request.local_authorization_list, msgspec.UnsetType) else (
            request.local_authorization_list
        )  # fmt: skip
        entries = [
            (
                token_key(item.id_token),
                None
                if isinstance(item.id_token_info, msgspec.UnsetType)
                else AuthInfo.from_v201(item.id_token_info),
            )
            for item in items
        ]
        return self.update(
            request.version_number, request.update_type is v201.UpdateEnum.FULL, entries
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable snapshot (version and entries)."""
        return {
            "version": self.version,
            "entries": [[_key_to_json(k), v.to_dict()] for k, v in self._entries.items()],
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, max_entries: int = 1000, max_per_message: int = 100
    ) -> LocalAuthList:
        """Rebuild from :meth:`to_dict`.

        Raises:
            SnapshotError: malformed data.
        """
        result = cls(max_entries=max_entries, max_per_message=max_per_message)
        version = data.get("version", 0)
        rows = data.get("entries", [])
        if not isinstance(version, int) or not isinstance(rows, list):
            raise SnapshotError("local list snapshot: bad version or entries")
        for row in rows:
            if not isinstance(row, list) or len(row) != 2:
                raise SnapshotError("local list snapshot: bad entry")
            result._entries[_key_from_json(row[0])] = AuthInfo.from_dict(row[1])
        result.version = version
        return result


@dataclass
class _CacheEntry:
    info: AuthInfo
    last_used: datetime


class AuthorizationCache:
    """Ids the CSMS answered for, kept to authorize locally later.

    Args:
        max_entries: capacity; when full the next store evicts (non-Accepted first, then
            least recently used).
        life_time: seconds an entry lives after its last use (``AuthCacheCtrlr.LifeTime``);
            ``None`` = until its own expiry date.
    """

    def __init__(self, *, max_entries: int = 1000, life_time: float | None = None) -> None:
        self.max_entries = max_entries
        self.life_time = life_time
        self._entries: dict[TokenKey, _CacheEntry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def store(self, token: str | v201.IdToken, info: AuthInfo, *, now: datetime) -> None:
        """Store (or replace) what the CSMS said about ``token`` (C10, 1.6 §3.5.1)."""
        key = token_key(token)
        self._entries.pop(key, None)
        while self._entries and len(self._entries) >= self.max_entries:
            self._evict(now)
        if self.max_entries > 0:
            self._entries[key] = _CacheEntry(info, now)

    def _evict(self, now: datetime) -> None:
        def rank(item: tuple[TokenKey, _CacheEntry]) -> tuple[bool, datetime]:
            entry = item[1]
            return (self._status(entry, now) == ACCEPTED, entry.last_used)

        victim = min(self._entries.items(), key=rank)[0]
        del self._entries[victim]

    def _status(self, entry: _CacheEntry, now: datetime) -> str:
        if self.life_time is not None and now >= entry.last_used + timedelta(
            seconds=self.life_time
        ):
            return EXPIRED
        return entry.info.status_at(now)

    def lookup(self, token: str | v201.IdToken, *, now: datetime) -> AuthInfo | None:
        """The entry of ``token`` with its status as of ``now`` (``Expired`` when past its
        expiry or life time, 1.6 §3.5.1); using an Accepted entry refreshes its life time.
        """
        entry = self._entries.get(token_key(token))
        if entry is None:
            return None
        status = self._status(entry, now)
        if status != entry.info.status:
            # Expired entries stay expired in the cache (1.6 §3.5.1).
            entry.info = AuthInfo(status, entry.info.expires_at, entry.info.group_id)
        elif status == ACCEPTED:
            entry.last_used = now
        return entry.info

    def clear(self) -> None:
        """Remove every entry (ClearCache)."""
        self._entries.clear()

    def peek(self, token: str | v201.IdToken) -> AuthInfo | None:
        """The entry of ``token`` as stored, without using it (a report, not an
        authorization: N09)."""
        entry = self._entries.get(token_key(token))
        return None if entry is None else entry.info

    def forget(self, token: str | v201.IdToken) -> AuthInfo | None:
        """Remove the entry of ``token`` (clearing a customer's data, N10); what it held."""
        entry = self._entries.pop(token_key(token), None)
        return None if entry is None else entry.info

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable snapshot."""
        return {
            "entries": [
                [_key_to_json(k), e.info.to_dict(), e.last_used.isoformat()]
                for k, e in self._entries.items()
            ]
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, max_entries: int = 1000, life_time: float | None = None
    ) -> AuthorizationCache:
        """Rebuild from :meth:`to_dict` (at most ``max_entries``, most recent kept).

        Raises:
            SnapshotError: malformed data.
        """
        cache = cls(max_entries=max_entries, life_time=life_time)
        rows = data.get("entries", [])
        if not isinstance(rows, list):
            raise SnapshotError("cache snapshot: entries must be a list")
        loaded: list[tuple[TokenKey, _CacheEntry]] = []
        for row in rows:
            if not isinstance(row, list) or len(row) != 3 or not isinstance(row[2], str):
                raise SnapshotError("cache snapshot: bad entry")
            try:
                used = datetime.fromisoformat(row[2])
            except ValueError as exc:
                raise SnapshotError("cache snapshot: bad time") from exc
            loaded.append((_key_from_json(row[0]), _CacheEntry(AuthInfo.from_dict(row[1]), used)))
        loaded.sort(key=lambda item: item[1].last_used)
        for key, entry in loaded[-max_entries:] if max_entries > 0 else []:
            cache._entries[key] = entry
        return cache


class AuthSettings(Protocol):
    """The flags :meth:`LocalAuthorization.decide` reads; ``Configuration16`` and
    ``DeviceModel`` both provide them.
    """

    @property
    def local_pre_authorize(self) -> bool: ...
    @property
    def local_authorize_offline(self) -> bool: ...
    @property
    def allow_offline_tx_for_unknown_id(self) -> bool: ...
    @property
    def authorization_cache_enabled(self) -> bool: ...
    @property
    def local_auth_list_enabled(self) -> bool: ...


class DecisionKind(enum.Enum):
    """What the station does with a presented token."""

    AUTHORIZE = "authorize"  # send Authorize to the CSMS and follow its answer
    ACCEPT = "accept"  # start without asking
    REJECT = "reject"  # refuse locally


@dataclass(frozen=True)
class Decision:
    """The outcome of :meth:`LocalAuthorization.decide`.

    ``source`` is where it came from: ``"local_list"``, ``"cache"``, ``"unknown_offline"``
    (AllowOfflineTxForUnknownId), ``"offline"`` (no way to authorize) or ``"csms"``.
    ``info`` is the local entry used, when there was one.
    """

    kind: DecisionKind
    source: str
    info: AuthInfo | None = None


class LocalAuthorization:
    """A station's local list and cache together, and the authorization decision.

    Args:
        list_max_entries, list_max_per_message: limits of the :class:`LocalAuthList`.
        cache_max_entries, cache_life_time: limits of the :class:`AuthorizationCache`.
        list_supported: ``False`` models a 1.6 station without LocalAuthListManagement
            (SendLocalList -> ``NotSupported``, GetLocalListVersion -> -1).
    """

    def __init__(
        self,
        *,
        list_max_entries: int = 1000,
        list_max_per_message: int = 100,
        cache_max_entries: int = 1000,
        cache_life_time: float | None = None,
        list_supported: bool = True,
    ) -> None:
        self.local_list = LocalAuthList(
            max_entries=list_max_entries, max_per_message=list_max_per_message
        )
        self.cache = AuthorizationCache(max_entries=cache_max_entries, life_time=cache_life_time)
        self.list_supported = list_supported

    # -- the decision ---------------------------------------------------------------------

    def _known(
        self, token: str | v201.IdToken, now: datetime, config: AuthSettings
    ) -> tuple[str, AuthInfo] | None:
        if self.list_supported and config.local_auth_list_enabled:
            listed = self.local_list.get(token)
            if listed is not None:
                return "local_list", AuthInfo(listed.status_at(now), listed.expires_at,
                                              listed.group_id)  # fmt: skip
        if config.authorization_cache_enabled:
            cached = self.cache.lookup(token, now=now)
            if cached is not None:
                return "cache", cached
        return None

    def decide(
        self, token: str | v201.IdToken, *, online: bool, now: datetime, config: AuthSettings
    ) -> Decision:
        """What to do with ``token`` presented now (see the table in the module docstring)."""
        known = self._known(token, now, config)
        if online:
            if config.local_pre_authorize and known is not None and known[1].status == ACCEPTED:
                return Decision(DecisionKind.ACCEPT, known[0], known[1])
            return Decision(DecisionKind.AUTHORIZE, "csms", None if known is None else known[1])
        if known is not None:
            source, info = known
            if info.status != ACCEPTED:
                return Decision(DecisionKind.REJECT, source, info)
            if config.local_authorize_offline:
                return Decision(DecisionKind.ACCEPT, source, info)
        if config.allow_offline_tx_for_unknown_id:
            return Decision(DecisionKind.ACCEPT, "unknown_offline")
        return Decision(DecisionKind.REJECT, "offline", None if known is None else known[1])

    def remember(self, token: str | v201.IdToken, info: AuthInfo, *, now: datetime,
                 config: AuthSettings) -> None:  # fmt: skip
        """Store a CSMS answer in the cache when the cache is enabled (C10).

        Call it with the IdTagInfo / IdTokenInfo of Authorize, StartTransaction and
        TransactionEvent replies.
        """
        if config.authorization_cache_enabled:
            self.cache.store(token, info, now=now)

    # -- messages -------------------------------------------------------------------------

    def send_local_list_v16(
        self, request: v16.SendLocalListRequest, *, config: AuthSettings
    ) -> v16.SendLocalListResponse:
        """Answer a 1.6 SendLocalList (§5.15)."""
        if not self.list_supported or not config.local_auth_list_enabled:
            return v16.SendLocalListResponse(status=v16.UpdateStatus.NOT_SUPPORTED)
        status = self.local_list.update_v16(request)
        return v16.SendLocalListResponse(status=v16.UpdateStatus(status))

    def get_local_list_version_v16(
        self, *, config: AuthSettings
    ) -> v16.GetLocalListVersionResponse:
        """Answer a 1.6 GetLocalListVersion (§5.10: -1 when not supported, 0 = empty)."""
        if not self.list_supported or not config.local_auth_list_enabled:
            return v16.GetLocalListVersionResponse(list_version=-1)
        return v16.GetLocalListVersionResponse(list_version=self.local_list.version)

    def send_local_list_v201(
        self, request: v201.SendLocalListRequest, *, config: AuthSettings
    ) -> v201.SendLocalListResponse:
        """Answer a 2.0.1 SendLocalList (D01); a disabled list answers ``Failed``."""
        if not self.list_supported or not config.local_auth_list_enabled:
            return v201.SendLocalListResponse(
                status=v201.SendLocalListStatusEnum.FAILED,
                status_info=v201.StatusInfo(reason_code="NotEnabled"),
            )
        status = self.local_list.update_v201(request)
        return v201.SendLocalListResponse(status=v201.SendLocalListStatusEnum(status))

    def get_local_list_version_v201(self) -> v201.GetLocalListVersionResponse:
        """Answer a 2.0.1 GetLocalListVersion (D02; 0 = no list)."""
        return v201.GetLocalListVersionResponse(version_number=self.local_list.version)

    def clear_cache_v16(self, *, config: AuthSettings) -> v16.ClearCacheResponse:
        """Answer a 1.6 ClearCache (§5.4): Rejected while the cache is disabled."""
        if not config.authorization_cache_enabled:
            return v16.ClearCacheResponse(status=v16.ClearCacheStatus.REJECTED)
        self.cache.clear()
        return v16.ClearCacheResponse(status=v16.ClearCacheStatus.ACCEPTED)

    def clear_cache_v201(self, *, config: AuthSettings) -> v201.ClearCacheResponse:
        """Answer a 2.0.1 ClearCache (C11): Rejected while the cache is disabled."""
        if not config.authorization_cache_enabled:
            return v201.ClearCacheResponse(status=v201.ClearCacheStatusEnum.REJECTED)
        self.cache.clear()
        return v201.ClearCacheResponse(status=v201.ClearCacheStatusEnum.ACCEPTED)

    # -- snapshots ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable snapshot of the list and the cache."""
        return {"local_list": self.local_list.to_dict(), "cache": self.cache.to_dict()}

    def load_dict(self, data: Mapping[str, Any]) -> None:
        """Replace the list and cache with a :meth:`to_dict` snapshot, keeping the limits.

        Raises:
            SnapshotError: malformed data.
        """
        local = data.get("local_list", {})
        cache = data.get("cache", {})
        if not isinstance(local, Mapping) or not isinstance(cache, Mapping):
            raise SnapshotError("authorization snapshot: bad sections")
        self.local_list = LocalAuthList.from_dict(
            local,
            max_entries=self.local_list.max_entries,
            max_per_message=self.local_list.max_per_message,
        )
        self.cache = AuthorizationCache.from_dict(
            cache, max_entries=self.cache.max_entries, life_time=self.cache.life_time
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **limits: Any) -> LocalAuthorization:
        """A new instance with ``limits`` (the constructor's keywords), loaded from ``data``."""
        result = cls(**limits)
        result.load_dict(data)
        return result
