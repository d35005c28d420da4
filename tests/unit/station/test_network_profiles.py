"""Network connection profiles and fail-over: OCPP 2.0.1 B09 (SetNetworkProfile) and B10
(Migrate to new CSMS: B10.FR.03 attempts per entry, B10.FR.04 first entry after a reboot,
B10.FR.07 fallback to the last good profile), A00.FR.005 (no security downgrade), OCPP-J
Part 4 §3.1.1 (the identity is the last path segment).

The module is pure: these tests drive it with attempt outcomes, no sockets.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocppkit.station.network_profiles import (
    Endpoint,
    Failover,
    endpoint_from_profile,
    failover_order,
    parse_priority,
    profile_problem,
    station_url,
)


def profile(**changes: Any) -> dict[str, Any]:
    """A valid NetworkConnectionProfile in wire names, with ``changes`` applied."""
    base: dict[str, Any] = {
        "ocppVersion": "OCPP20",
        "ocppTransport": "JSON",
        "ocppCsmsUrl": "wss://csms-b.example.com/ocpp",
        "messageTimeout": 30,
        "securityProfile": 2,
        "ocppInterface": "Wired0",
    }
    base.update(changes)
    return base


def run(failover: Failover, outcomes: str) -> list[int]:
    """The slot of each attempt; ``outcomes`` says per attempt: ``f`` failed, ``c``
    connected (then lost, so the next character is the next attempt)."""
    slots = []
    for outcome in outcomes:
        slots.append(failover.slot)
        if outcome == "f":
            failover.failed()
        else:
            failover.connected()
    return slots


# -- URLs (Part 4 §3.1.1) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("ws://h:9000/ocpp", "ws://h:9000/ocpp/CS%201"),
        ("ws://h:9000/ocpp/", "ws://h:9000/ocpp/CS%201"),
        ("wss://h", "wss://h/CS%201"),
    ],
)
def test_station_url_appends_the_percent_encoded_identity_part4_3_1_1(
    base: str, expected: str
) -> None:
    """The profile's ocppCsmsUrl has no identity part: the identity is appended as the
    last path segment, percent-encoded, with exactly one slash before it."""
    assert station_url(base, "CS 1") == expected


def test_endpoint_from_a_stored_profile_b09() -> None:
    """A stored profile (wire names) gives URL, security profile and message timeout."""
    endpoint = endpoint_from_profile(3, profile(messageTimeout=12))
    assert endpoint == Endpoint(
        slot=3,
        csms_url="wss://csms-b.example.com/ocpp",
        security_profile=2,
        message_timeout=12.0,
    )
    assert endpoint.url("CS1") == "wss://csms-b.example.com/ocpp/CS1"
    with pytest.raises(KeyError):
        endpoint_from_profile(1, {"ocppVersion": "OCPP20"})


# -- set-time validation (B09.FR.02) -----------------------------------------------------------


def test_a_usable_profile_has_no_problem_b09_fr_01() -> None:
    assert profile_problem(profile(), has_client_certificate=False) is None
    assert profile_problem(profile(securityProfile=3), has_client_certificate=True) is None
    plain = profile(ocppCsmsUrl="ws://10.0.0.1:9000/", securityProfile=0)
    assert profile_problem(plain, has_client_certificate=False) is None


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"ocppVersion": "OCPP16"}, "ocppVersion"),
        ({"ocppVersion": "OCPP15"}, "ocppVersion"),
        ({"ocppTransport": "SOAP"}, "ocppTransport"),
        ({"ocppCsmsUrl": "http://csms.example.com/ocpp"}, "ws://"),
        ({"ocppCsmsUrl": "wss:///ocpp"}, "host"),
        ({"ocppCsmsUrl": "not a url"}, "ws://"),
        ({"ocppCsmsUrl": "wss://h/ocpp?x=1"}, "query"),
        ({"securityProfile": 4}, "0..3"),
        ({"securityProfile": -1}, "0..3"),
        ({"securityProfile": 2, "ocppCsmsUrl": "ws://h/ocpp"}, "wss://"),
        ({"securityProfile": 3, "ocppCsmsUrl": "ws://h/ocpp"}, "wss://"),
        ({"securityProfile": 3}, "client certificate"),
        ({"messageTimeout": 0}, "messageTimeout"),
    ],
)
def test_profiles_the_station_cannot_use_are_named_b09_fr_02(
    changes: dict[str, Any], needle: str
) -> None:
    """B09.FR.02: a profile the station cannot connect with gets a reason (-> Rejected)."""
    problem = profile_problem(profile(**changes), has_client_certificate=False)
    assert problem is not None and needle in problem


# -- NetworkConfigurationPriority --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "slots"),
    [("0", (0,)), ("1,0", (1, 0)), (" 2, 1 ,0", (2, 1, 0)), ("1,1,0", (1, 0)), ("", ()),
     (None, ()), ("x,3", (3,))],
)  # fmt: skip
def test_parse_priority_keeps_order_and_each_slot_once(
    value: str | None, slots: tuple[int, ...]
) -> None:
    assert parse_priority(value) == slots


def _endpoints(**security: int) -> dict[int, Endpoint]:
    return {
        int(name[1:]): Endpoint(slot=int(name[1:]), csms_url=f"ws://{name}", security_profile=level)
        for name, level in security.items()
    }


def test_order_skips_empty_slots_and_weaker_profiles_a00_fr_005() -> None:
    """Only slots holding a profile are dialled, and none below the current security
    profile (A00.FR.005: no downgrade); the order of the priority list is kept."""
    endpoints = _endpoints(s0=1, s1=2, s3=3)
    assert failover_order((3, 2, 1, 0), endpoints, security_profile=1) == (3, 1, 0)
    assert failover_order((3, 2, 1, 0), endpoints, security_profile=2) == (3, 1)


def test_order_with_no_usable_entry_is_slot_0() -> None:
    """A priority naming only empty slots still leaves the station a way out: slot 0."""
    assert failover_order((5, 6), _endpoints(s0=0), security_profile=0) == (0,)


# -- fail-over (B10) ---------------------------------------------------------------------------


def test_first_entry_after_a_reboot_b10_fr_04() -> None:
    """B10.FR.04: a new fail-over (made at each reboot) dials the first entry."""
    assert Failover((1, 0), attempts=3).slot == 1
    assert Failover((1, 0), attempts=3, last_good=0).slot == 1


def test_attempts_per_entry_then_the_next_wrapping_around_b10_fr_03() -> None:
    """B10.FR.03: NetworkProfileConnectionAttempts failed attempts per entry, then the next
    entry; after the last entry the first again."""
    failover = Failover((0, 1, 2), attempts=2)
    assert run(failover, "f" * 8) == [0, 0, 1, 1, 2, 2, 0, 0]


def test_failed_reports_when_the_slot_changes() -> None:
    failover = Failover((0, 1), attempts=2)
    assert [failover.failed() for _ in range(4)] == [False, True, False, True]
    single = Failover((0,), attempts=1)
    assert [single.failed() for _ in range(3)] == [False, False, False]
    assert single.slot == 0


def test_a_lost_connection_retries_the_connected_slot_first_b10_fr_03() -> None:
    """B10.FR.03 ("when connection to CSMS is lost"): the slot that was connected gets a
    fresh count of attempts before the next entry."""
    failover = Failover((0, 1), attempts=2)
    assert run(failover, "ffcffff") == [0, 0, 1, 1, 1, 0, 0]
    assert failover.last_good == 1


def test_fallback_to_the_last_good_profile_after_every_entry_failed_b10_fr_07() -> None:
    """B10.FR.07: migrated to priority "1" only, and slot 1 cannot be reached: after its
    attempts the station falls back to the slot it last connected with (0), and after
    that the list again (it never gives up)."""
    failover = Failover((1,), attempts=2, last_good=0)
    assert run(failover, "ffffff") == [1, 1, 0, 0, 1, 1]


def test_fallback_only_after_every_entry_used_its_attempts_b10_fr_07() -> None:
    failover = Failover((1, 2), attempts=1, last_good=0)
    assert run(failover, "fffff") == [1, 2, 0, 1, 2]


def test_connecting_on_the_fallback_keeps_it_until_it_fails_b10_fr_07() -> None:
    """Connected on the fallback, then lost: the fallback slot is retried, then the list."""
    failover = Failover((1,), attempts=1, last_good=0)
    assert run(failover, "fcff") == [1, 0, 0, 1]


def test_no_fallback_when_the_last_good_is_in_the_list() -> None:
    """The last good slot is an entry: the wrap-around reaches it, no extra round."""
    failover = Failover((1, 0), attempts=1, last_good=0)
    assert run(failover, "ffff") == [1, 0, 1, 0]


def test_at_least_one_attempt_per_entry_and_a_nonempty_order() -> None:
    assert Failover((0,), attempts=0).attempts == 1
    with pytest.raises(ValueError, match="at least one slot"):
        Failover((), attempts=3)


@given(
    order=st.lists(st.integers(0, 7), min_size=1, max_size=8, unique=True),
    attempts=st.integers(1, 5),
    last_good=st.none() | st.integers(0, 7),
)
def test_every_entry_is_dialled_within_one_round_b10_fr_03(
    order: list[int], attempts: int, last_good: int | None
) -> None:
    """Whatever the list: each entry gets exactly ``attempts`` consecutive attempts, every
    entry is dialled within one round (the entries plus a possible fallback), and only
    entries or the last good slot are ever dialled."""
    failover = Failover(order, attempts=attempts, last_good=last_good)
    extra = 0 if last_good is None or last_good in order else 1
    rounds = len(order) + extra
    slots = run(failover, "f" * attempts * rounds * 2)
    assert set(slots) <= {*order, *(() if last_good is None else (last_good,))}
    runs = [slots[i : i + attempts] for i in range(0, len(slots), attempts)]
    assert all(len(set(chunk)) == 1 for chunk in runs)
    assert set(slots[: attempts * rounds]) >= set(order)
    assert slots[: attempts * rounds] == slots[attempts * rounds :]
