"""Local authorization: local list (1.6 §3.5.2, §5.10, §5.15; 2.0.1 D01/D02), cache
(1.6 §3.5.1; 2.0.1 C10/C11), and the decision (1.6 §3.5, §3.5.3, §9.1; 2.0.1 C12–C15).

Replies are round-tripped through ``validate_payload``; requests are decoded from wire JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from ocppkit.messages import v16, v201
from ocppkit.protocol import validate_payload
from ocppkit.station.authorization import (
    AuthInfo,
    AuthorizationCache,
    DecisionKind,
    LocalAuthList,
    LocalAuthorization,
    SnapshotError,
    token_key,
)
from ocppkit.station.config16 import Configuration16
from ocppkit.station.device_model import DeviceModel, VariableKey

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
ACCEPT = DecisionKind.ACCEPT
REJECT = DecisionKind.REJECT
AUTHORIZE = DecisionKind.AUTHORIZE


@dataclass
class Flags:
    """The five flags decide() reads (AuthSettings)."""

    local_pre_authorize: bool = False
    local_authorize_offline: bool = True
    allow_offline_tx_for_unknown_id: bool = False
    authorization_cache_enabled: bool = True
    local_auth_list_enabled: bool = True


def send_list_16(
    auth: LocalAuthorization,
    version: int,
    update: str,
    entries: list[dict[str, Any]] | None,
    config: Any = None,
) -> v16.UpdateStatus:
    payload: dict[str, Any] = {"listVersion": version, "updateType": update}
    if entries is not None:
        payload["localAuthorizationList"] = entries
    request = validate_payload("1.6", "SendLocalList", json.dumps(payload).encode())
    assert isinstance(request, v16.SendLocalListRequest)
    response = auth.send_local_list_v16(request, config=config or Flags())
    validate_payload("1.6", "SendLocalList", msgspec.json.encode(response), response=True)
    return response.status


def send_list_201(
    auth: LocalAuthorization,
    version: int,
    update: str,
    entries: list[dict[str, Any]] | None,
    config: Any = None,
) -> v201.SendLocalListStatusEnum:
    payload: dict[str, Any] = {"versionNumber": version, "updateType": update}
    if entries is not None:
        payload["localAuthorizationList"] = entries
    request = validate_payload("2.0.1", "SendLocalList", json.dumps(payload).encode())
    assert isinstance(request, v201.SendLocalListRequest)
    response = auth.send_local_list_v201(request, config=config or Flags())
    validate_payload("2.0.1", "SendLocalList", msgspec.json.encode(response), response=True)
    return response.status


def tag(id_tag: str, status: str | None = "Accepted", expiry: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"idTag": id_tag}
    if status is not None:
        entry["idTagInfo"] = {"status": status}
        if expiry is not None:
            entry["idTagInfo"]["expiryDate"] = expiry
    return entry


def list_version_16(auth: LocalAuthorization, config: Any = None) -> int:
    response = auth.get_local_list_version_v16(config=config or Flags())
    validate_payload("1.6", "GetLocalListVersion", msgspec.json.encode(response), response=True)
    return response.list_version


# -- local list, 1.6 -------------------------------------------------------------------------


def test_full_update_replaces_the_list_and_sets_the_version() -> None:
    """§5.15 / §3.5.2: Full replaces the whole list; GetLocalListVersion reports it (§5.10)."""
    auth = LocalAuthorization()
    assert list_version_16(auth) == 0  # §5.10: 0 = empty / no list
    assert send_list_16(auth, 3, "Full", [tag("A"), tag("B", "Blocked")]) is (
        v16.UpdateStatus.ACCEPTED
    )
    assert list_version_16(auth) == 3
    assert send_list_16(auth, 4, "Full", [tag("C")]) is v16.UpdateStatus.ACCEPTED
    assert auth.local_list.get("A") is None
    assert auth.local_list.get("C") == AuthInfo("Accepted")


def test_full_update_without_entries_empties_the_list() -> None:
    """§5.15: a Full update with no localAuthorizationList clears the list."""
    auth = LocalAuthorization()
    send_list_16(auth, 1, "Full", [tag("A")])
    assert send_list_16(auth, 2, "Full", None) is v16.UpdateStatus.ACCEPTED
    assert len(auth.local_list) == 0
    assert list_version_16(auth) == 2


def test_differential_update_adds_updates_and_removes() -> None:
    """§5.15: Differential: entries with idTagInfo are added/updated, without are removed."""
    auth = LocalAuthorization()
    send_list_16(auth, 1, "Full", [tag("A"), tag("B")])
    status = send_list_16(auth, 2, "Differential", [tag("A", "Blocked"), tag("B", None), tag("C")])
    assert status is v16.UpdateStatus.ACCEPTED
    assert auth.local_list.get("A") == AuthInfo("Blocked")
    assert auth.local_list.get("B") is None
    assert auth.local_list.get("C") == AuthInfo("Accepted")
    assert list_version_16(auth) == 2


def test_differential_update_without_entries_has_no_effect() -> None:
    """§5.15 / D01: a Differential update without localAuthorizationList changes nothing."""
    auth = LocalAuthorization()
    send_list_16(auth, 3, "Full", [tag("A")])
    assert send_list_16(auth, 9, "Differential", None) is v16.UpdateStatus.ACCEPTED
    assert list_version_16(auth) == 3
    assert auth.local_list.get("A") is not None


@pytest.mark.parametrize("version", [1, 5])
def test_differential_update_with_old_version_is_version_mismatch(version: int) -> None:
    """§5.15 / D01: a differential update not newer than the list -> VersionMismatch."""
    auth = LocalAuthorization()
    send_list_16(auth, 5, "Full", [tag("A")])
    assert send_list_16(auth, version, "Differential", [tag("Z")]) is (
        v16.UpdateStatus.VERSION_MISMATCH
    )
    assert auth.local_list.get("Z") is None
    assert list_version_16(auth) == 5


def test_update_longer_than_send_local_list_max_length_fails() -> None:
    """§9.2 SendLocalListMaxLength: a longer update -> Failed, nothing changes."""
    auth = LocalAuthorization(list_max_per_message=2)
    send_list_16(auth, 1, "Full", [tag("A")])
    assert send_list_16(auth, 2, "Full", [tag("X"), tag("Y"), tag("Z")]) is (
        v16.UpdateStatus.FAILED
    )
    assert auth.local_list.get("A") is not None
    assert list_version_16(auth) == 1


def test_list_beyond_local_auth_list_max_length_fails() -> None:
    """§9.2 LocalAuthListMaxLength: an update overflowing the list -> Failed, no change."""
    auth = LocalAuthorization(list_max_entries=2)
    send_list_16(auth, 1, "Full", [tag("A"), tag("B")])
    assert send_list_16(auth, 2, "Differential", [tag("C")]) is v16.UpdateStatus.FAILED
    assert send_list_16(auth, 3, "Differential", [tag("A", None), tag("C")]) is (
        v16.UpdateStatus.ACCEPTED
    )
    assert {auth.local_list.get(t) is not None for t in "BC"} == {True}


@pytest.mark.parametrize("version", [0, -1])
def test_list_version_zero_or_negative_fails(version: int) -> None:
    """§5.10: version 0 means "empty" and -1 "not supported"; the CSMS cannot send them."""
    auth = LocalAuthorization()
    assert send_list_16(auth, version, "Full", [tag("A")]) is v16.UpdateStatus.FAILED


def test_same_id_twice_in_one_update_fails() -> None:
    """§5.15: idTags in one update MUST be unique; a duplicate -> Failed (our answer)."""
    auth = LocalAuthorization()
    assert send_list_16(auth, 1, "Full", [tag("A"), tag("a", "Blocked")]) is (
        v16.UpdateStatus.FAILED
    )


def test_disabled_or_unsupported_list_is_not_supported_and_version_minus_one() -> None:
    """§5.15: NotSupported; §5.10: listVersion -1 when the station has no local list."""
    off = Flags(local_auth_list_enabled=False)
    auth = LocalAuthorization()
    assert send_list_16(auth, 1, "Full", [tag("A")], off) is v16.UpdateStatus.NOT_SUPPORTED
    assert list_version_16(auth, off) == -1
    unsupported = LocalAuthorization(list_supported=False)
    assert send_list_16(unsupported, 1, "Full", [tag("A")]) is v16.UpdateStatus.NOT_SUPPORTED
    assert list_version_16(unsupported) == -1


def test_id_tags_compare_case_insensitively() -> None:
    """1.6 IdToken is case-insensitive: "abc" and "ABC" are one entry."""
    auth = LocalAuthorization()
    send_list_16(auth, 1, "Full", [tag("AbC")])
    assert auth.local_list.get("abc") == AuthInfo("Accepted")


# -- local list, 2.0.1 -----------------------------------------------------------------------


def token(value: str, kind: str = "ISO14443") -> dict[str, Any]:
    return {"idToken": value, "type": kind}


def auth_data(
    value: str, status: str | None = "Accepted", kind: str = "ISO14443"
) -> dict[str, Any]:
    entry: dict[str, Any] = {"idToken": token(value, kind)}
    if status is not None:
        entry["idTokenInfo"] = {"status": status}
    return entry


def test_v201_full_and_differential_updates() -> None:
    """D01: Full replaces, Differential adds/removes; D02: GetLocalListVersion."""
    auth = LocalAuthorization()
    assert send_list_201(auth, 1, "Full", [auth_data("A"), auth_data("B")]) is (
        v201.SendLocalListStatusEnum.ACCEPTED
    )
    assert send_list_201(auth, 2, "Differential", [auth_data("B", None)]) is (
        v201.SendLocalListStatusEnum.ACCEPTED
    )
    response = auth.get_local_list_version_v201()
    validate_payload("2.0.1", "GetLocalListVersion", msgspec.json.encode(response), response=True)
    assert response.version_number == 2
    assert auth.local_list.get(v201.IdToken(id_token="a", type=v201.IdTokenEnum.ISO14443))
    assert auth.local_list.get(v201.IdToken(id_token="B", type=v201.IdTokenEnum.ISO14443)) is None


def test_v201_tokens_are_keyed_by_type_too() -> None:
    """2.0.1 IdTokenType: the same value with another type is another token."""
    auth = LocalAuthorization()
    send_list_201(auth, 1, "Full", [auth_data("A", kind="ISO14443")])
    assert auth.local_list.get(v201.IdToken(id_token="A", type=v201.IdTokenEnum.E_MAID)) is None


def test_v201_version_mismatch_and_disabled_list() -> None:
    """D01: differential with an old version -> VersionMismatch; a disabled list -> Failed."""
    auth = LocalAuthorization()
    send_list_201(auth, 4, "Full", [auth_data("A")])
    assert send_list_201(auth, 4, "Differential", [auth_data("C")]) is (
        v201.SendLocalListStatusEnum.VERSION_MISMATCH
    )
    off = Flags(local_auth_list_enabled=False)
    assert send_list_201(auth, 5, "Full", [auth_data("C")], off) is (
        v201.SendLocalListStatusEnum.FAILED
    )


# -- cache -----------------------------------------------------------------------------------


def test_cache_stores_every_status_and_replaces_entries() -> None:
    """§3.5.1 / C10: every IdTagInfo the CSMS sends is cached, any status."""
    cache = AuthorizationCache()
    cache.store("A", AuthInfo("Blocked"), now=NOW)
    assert cache.lookup("a", now=NOW) == AuthInfo("Blocked")
    cache.store("A", AuthInfo("Accepted"), now=NOW)
    assert cache.lookup("A", now=NOW) == AuthInfo("Accepted")
    assert len(cache) == 1


def test_cache_entry_past_its_expiry_is_expired() -> None:
    """§3.5.1: an entry whose expiryDate passed is changed to Expired in the cache."""
    cache = AuthorizationCache()
    cache.store("A", AuthInfo("Accepted", NOW + timedelta(hours=1)), now=NOW)
    assert cache.lookup("A", now=NOW + timedelta(minutes=59))
    later = cache.lookup("A", now=NOW + timedelta(hours=1))
    assert later is not None and later.status == "Expired"
    # It stays Expired (the status was changed in the cache).
    again = cache.lookup("A", now=NOW)
    assert again is not None and again.status == "Expired"


def test_cache_life_time_counts_from_last_use() -> None:
    """AuthCacheCtrlr.LifeTime: an entry expires that long after it was last used."""
    cache = AuthorizationCache(life_time=100)
    cache.store("A", AuthInfo("Accepted"), now=NOW)
    assert cache.lookup("A", now=NOW + timedelta(seconds=90)) == AuthInfo("Accepted")
    assert cache.lookup("A", now=NOW + timedelta(seconds=180)) == AuthInfo("Accepted")
    expired = cache.lookup("A", now=NOW + timedelta(seconds=281))
    assert expired is not None and expired.status == "Expired"


def test_cache_eviction_drops_invalid_entries_before_least_recently_used() -> None:
    """C10 (cache full): non-Accepted entries go first, then the least recently used."""
    cache = AuthorizationCache(max_entries=3)
    cache.store("old", AuthInfo("Accepted"), now=NOW)
    cache.store("blocked", AuthInfo("Blocked"), now=NOW + timedelta(seconds=1))
    cache.store("new", AuthInfo("Accepted"), now=NOW + timedelta(seconds=2))
    cache.store("fourth", AuthInfo("Accepted"), now=NOW + timedelta(seconds=3))
    assert cache.lookup("blocked", now=NOW) is None
    cache.lookup("old", now=NOW + timedelta(seconds=4))  # refresh: now "new" is the LRU
    cache.store("fifth", AuthInfo("Accepted"), now=NOW + timedelta(seconds=5))
    assert cache.lookup("new", now=NOW) is None
    assert len(cache) == 3


def test_clear_cache_accepted_or_rejected_when_disabled() -> None:
    """§5.4 / C11: ClearCache empties the cache; Rejected while it is disabled."""
    auth = LocalAuthorization()
    auth.cache.store("A", AuthInfo("Accepted"), now=NOW)
    off = Flags(authorization_cache_enabled=False)
    r16 = auth.clear_cache_v16(config=off)
    validate_payload("1.6", "ClearCache", msgspec.json.encode(r16), response=True)
    assert r16.status is v16.ClearCacheStatus.REJECTED
    assert len(auth.cache) == 1
    r201 = auth.clear_cache_v201(config=Flags())
    validate_payload("2.0.1", "ClearCache", msgspec.json.encode(r201), response=True)
    assert r201.status is v201.ClearCacheStatusEnum.ACCEPTED
    assert len(auth.cache) == 0
    assert auth.clear_cache_v16(config=Flags()).status is v16.ClearCacheStatus.ACCEPTED


def test_remember_stores_only_when_the_cache_is_enabled() -> None:
    """C10: only an enabled cache (AuthCacheCtrlr.Enabled) stores answers."""
    auth = LocalAuthorization()
    auth.remember(
        "A", AuthInfo("Accepted"), now=NOW, config=Flags(authorization_cache_enabled=False)
    )
    assert len(auth.cache) == 0
    auth.remember("A", AuthInfo("Accepted"), now=NOW, config=Flags())
    assert len(auth.cache) == 1


def test_auth_info_from_the_reply_structs() -> None:
    """IdTagInfo (1.6 Authorize/StartTransaction) and IdTokenInfo (2.0.1) become AuthInfo."""
    r16 = validate_payload(
        "1.6",
        "Authorize",
        b'{"idTagInfo":{"status":"Accepted","expiryDate":"2026-12-01T00:00:00Z",'
        b'"parentIdTag":"P"}}',
        response=True,
    )
    assert isinstance(r16, v16.AuthorizeResponse)
    info = AuthInfo.from_v16(r16.id_tag_info)
    assert info == AuthInfo("Accepted", datetime(2026, 12, 1, tzinfo=UTC), "P")
    validate_payload(
        "1.6", "Authorize", msgspec.json.encode({"idTagInfo": info.to_v16()}), response=True
    )
    r201 = validate_payload(
        "2.0.1",
        "Authorize",
        b'{"idTokenInfo":{"status":"NoCredit","groupIdToken":{"idToken":"G","type":"Central"}}}',
        response=True,
    )
    assert isinstance(r201, v201.AuthorizeResponse)
    info201 = AuthInfo.from_v201(r201.id_token_info)
    assert info201 == AuthInfo("NoCredit", None, "G")
    assert info201.to_v16().status is v16.AuthorizationStatus.INVALID  # 2.0.1-only status


# -- the decision ----------------------------------------------------------------------------


def listed(status: str = "Accepted", **kw: Any) -> LocalAuthorization:
    auth = LocalAuthorization(**kw)
    send_list_16(auth, 1, "Full", [tag("LISTED", status)])
    return auth


def test_online_without_local_pre_authorize_always_asks_the_csms() -> None:
    """§3.5 LocalPreAuthorize=false: online, every id goes to the CSMS (Authorize)."""
    auth = listed()
    decision = auth.decide("LISTED", online=True, now=NOW, config=Flags())
    assert decision.kind is AUTHORIZE
    assert decision.source == "csms"


def test_online_local_pre_authorize_accepts_valid_local_ids_at_once() -> None:
    """§3.5 / C14 / C12: LocalPreAuthorize -> a valid listed or cached id starts
    without an Authorize.
    """
    auth = listed()
    auth.cache.store("CACHED", AuthInfo("Accepted"), now=NOW)
    flags = Flags(local_pre_authorize=True)
    assert auth.decide("LISTED", online=True, now=NOW, config=flags).source == "local_list"
    cached = auth.decide("cached", online=True, now=NOW, config=flags)
    assert (cached.kind, cached.source) == (ACCEPT, "cache")
    assert auth.decide("OTHER", online=True, now=NOW, config=flags).kind is AUTHORIZE


def test_online_local_pre_authorize_asks_the_csms_for_invalid_local_ids() -> None:
    """C14 / C12: a listed/cached id that is not valid is sent to the CSMS."""
    auth = listed("Blocked")
    flags = Flags(local_pre_authorize=True)
    decision = auth.decide("LISTED", online=True, now=NOW, config=flags)
    assert decision.kind is AUTHORIZE
    assert decision.info == AuthInfo("Blocked")


def test_offline_local_authorize_offline_uses_list_and_cache() -> None:
    """§3.5 LocalAuthorizeOffline / C13: offline, valid local ids start; invalid ones
    are rejected; unknown ones are rejected unless AllowOfflineTxForUnknownId.
    """
    auth = listed()
    auth.cache.store("BLOCKED", AuthInfo("Blocked"), now=NOW)
    flags = Flags()
    assert auth.decide("LISTED", online=False, now=NOW, config=flags).kind is ACCEPT
    blocked = auth.decide("BLOCKED", online=False, now=NOW, config=flags)
    assert (blocked.kind, blocked.source) == (REJECT, "cache")
    unknown = auth.decide("UNKNOWN", online=False, now=NOW, config=flags)
    assert (unknown.kind, unknown.source) == (REJECT, "offline")


def test_offline_expired_list_entry_is_rejected() -> None:
    """§3.5.2: a listed id past its expiryDate is not valid."""
    auth = LocalAuthorization()
    send_list_16(auth, 1, "Full", [tag("X", "Accepted", "2026-11-27T09:00:00Z")])
    decision = auth.decide("X", online=False, now=NOW, config=Flags())
    assert decision.kind is REJECT
    assert decision.info is not None and decision.info.status == "Expired"


def test_local_list_takes_precedence_over_the_cache() -> None:
    """§3.5: an id in both the list and the cache is judged by the list."""
    auth = listed("Blocked")
    auth.cache.store("LISTED", AuthInfo("Accepted"), now=NOW)
    decision = auth.decide("LISTED", online=False, now=NOW, config=Flags())
    assert (decision.kind, decision.source) == (REJECT, "local_list")


def test_disabled_list_and_cache_are_ignored() -> None:
    """§9.1/§9.2: LocalAuthListEnabled / AuthorizationCacheEnabled false -> not consulted."""
    auth = listed()
    auth.cache.store("CACHED", AuthInfo("Accepted"), now=NOW)
    flags = Flags(local_auth_list_enabled=False, authorization_cache_enabled=False)
    assert auth.decide("LISTED", online=False, now=NOW, config=flags).kind is REJECT
    assert auth.decide("CACHED", online=False, now=NOW, config=flags).kind is REJECT


def test_allow_offline_tx_for_unknown_id_accepts_unknown_ids_only() -> None:
    """§3.5.3 / C15: offline, unknown ids start when AllowOfflineTxForUnknownId;
    ids known as invalid are still rejected.
    """
    auth = listed("Blocked")
    flags = Flags(allow_offline_tx_for_unknown_id=True)
    unknown = auth.decide("NEW", online=False, now=NOW, config=flags)
    assert (unknown.kind, unknown.source) == (ACCEPT, "unknown_offline")
    assert auth.decide("LISTED", online=False, now=NOW, config=flags).kind is REJECT
    # Online the flag changes nothing: the CSMS is asked.
    assert auth.decide("NEW", online=True, now=NOW, config=flags).kind is AUTHORIZE


def test_without_local_authorize_offline_valid_ids_are_not_accepted_locally() -> None:
    """§3.5 LocalAuthorizeOffline=false: offline, a listed valid id is not accepted from
    the list; it is treated as unknown (accepted only with AllowOfflineTxForUnknownId).
    """
    auth = listed()
    flags = Flags(local_authorize_offline=False)
    assert auth.decide("LISTED", online=False, now=NOW, config=flags).kind is REJECT
    flags.allow_offline_tx_for_unknown_id = True
    decision = auth.decide("LISTED", online=False, now=NOW, config=flags)
    assert (decision.kind, decision.source) == (ACCEPT, "unknown_offline")


def test_decide_reads_the_flags_of_both_configuration_models() -> None:
    """Configuration16 (1.6 keys) and DeviceModel (2.0.1 AuthCtrlr) both drive decide()."""
    auth = listed()
    config16 = Configuration16({"LocalPreAuthorize": "true"})
    assert auth.decide("LISTED", online=True, now=NOW, config=config16).kind is ACCEPT
    model = DeviceModel(values={VariableKey("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): "true"})
    decision = auth.decide("NEW", online=False, now=NOW, config=model)
    assert decision.kind is ACCEPT
    v201_token = v201.IdToken(id_token="listed", type=v201.IdTokenEnum.ISO14443)
    assert token_key(v201_token) != token_key("LISTED")  # 2.0.1 tokens carry their type


# -- snapshots -------------------------------------------------------------------------------


def test_snapshot_roundtrips_through_json() -> None:
    """to_dict/from_dict keep the list, its version and the cache (persisted per station)."""
    auth = LocalAuthorization(cache_life_time=100)
    send_list_16(
        auth, 7, "Full", [tag("A", "Accepted", "2027-01-01T00:00:00Z"), tag("B", "Blocked")]
    )
    auth.cache.store("C", AuthInfo("Accepted", None, "G"), now=NOW)
    data = json.loads(json.dumps(auth.to_dict()))
    restored = LocalAuthorization.from_dict(data, cache_life_time=100)
    assert restored.to_dict() == auth.to_dict()
    assert list_version_16(restored) == 7
    assert restored.local_list.get("a") == AuthInfo("Accepted", datetime(2027, 1, 1, tzinfo=UTC))
    assert restored.cache.lookup("c", now=NOW) == AuthInfo("Accepted", None, "G")


def test_snapshot_rejects_malformed_data() -> None:
    """A corrupt snapshot is reported, not half-loaded."""
    with pytest.raises(SnapshotError):
        LocalAuthList.from_dict({"version": "x"})
    with pytest.raises(SnapshotError):
        LocalAuthList.from_dict({"entries": [[["", "a"], {"status": 3}]]})
    with pytest.raises(SnapshotError):
        AuthorizationCache.from_dict({"entries": [[["", "a"], {"status": "Accepted"}, "nope"]]})
    with pytest.raises(SnapshotError):
        LocalAuthorization.from_dict({"local_list": []})


@pytest.mark.parametrize("module", ["config16", "device_model", "authorization"])
def test_modules_are_pure_and_import_no_higher_layer(module: str) -> None:
    """design.md layers: station imports no csms/api/node/cli; these modules do no I/O and
    read no clock (the time is a parameter).
    """
    import ast
    from pathlib import Path

    import ocppkit.station

    path = Path(ocppkit.station.__file__).parent / f"{module}.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    forbidden = {"asyncio", "socket", "selectors", "ssl", "time", "threading", "websockets"}
    assert not {n for n in names if n.split(".")[0] in forbidden}
    higher = ("ocppkit.csms", "ocppkit.api", "ocppkit.node", "ocppkit.cli", "ocppkit.storage")
    assert not {n for n in names if n.startswith(higher)}
    source = path.read_text(encoding="utf-8")
    assert ".now(" not in source and "utcnow" not in source
