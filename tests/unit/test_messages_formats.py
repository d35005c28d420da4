"""The hand-written format helpers of the generated messages (``ocppkit.messages._formats``).

``URI_PATTERN`` is written from RFC 3986 and compared with ``rfc3986_validator`` (what
``jsonschema`` checks ``format: uri`` with) on a few thousand generated strings: they agree
except on the two cases where the validator departs from the RFC, named and tested here.
"""

from __future__ import annotations

import random
import re
import time

import msgspec
import pytest
from rfc3986_validator import validate_rfc3986

from ocppkit.messages._formats import URI_PATTERN, check_multiple_of

URI = re.compile(URI_PATTERN)


def ours(value: str) -> bool:
    return URI.search(value) is not None


def reference(value: str) -> bool:
    return validate_rfc3986(value, rule="URI") is not None


def ipv6_literal(rng: random.Random) -> str:
    """An IPv6 address, often valid, often one group or one colon off."""
    groups = [f"{rng.randrange(0x10000):x}"[: rng.randint(1, 5)] for _ in range(rng.randint(0, 9))]
    if rng.random() < 0.3:
        groups[-1:] = [".".join(str(rng.choice([0, 1, 99, 199, 255, 256])) for _ in range(4))]
    text = ":".join(groups)
    if rng.random() < 0.6:
        cut = rng.randint(0, len(text))
        text = text[:cut] + rng.choice(["::", ":", ":::"]) + text[cut:]
    return text


def uri_like(rng: random.Random) -> str:
    """A string built from URI parts, valid or broken in one of many small ways."""
    scheme = rng.choice(["http", "https", "ftp", "a", "a+b.c-d", "1a", "", "-a", "a_b", "é"])
    host = rng.choice(
        ["", "host", "h-o.st", "1.2.3.4", "256.1.1.1", "h%20x", "h%2x", "h%zz", "ho st", "@",
         f"[{ipv6_literal(rng)}]", "[v1.x]", "[v1.]", "[vZ.x]", "[::1", "a]", "h_o~st!$&'()*+,;="]
    )  # fmt: skip
    userinfo = rng.choice(["", "", "user@", "u:p@", "u%41@", "u@v@", "u[@", "@"])
    port = rng.choice(["", "", ":", ":80", ":8a", "::80"])
    path = rng.choice(
        ["", "/", "/a/b", "a/b", "//", "/a%20b", "/%", "/a b", "/a:b@c", "/ä", "/a\\b"]
    )
    query = rng.choice(["", "", "?", "?a=b&c", "?a?b/c", "?a b", "?%41", "?%4"])
    fragment = rng.choice(["", "", "#", "#x", "#x#y", "#a?/b", "#%zz", "#[x]"])
    form = rng.randrange(3)
    if form == 0:
        value = f"{scheme}://{userinfo}{host}{port}{path}{query}{fragment}"
    elif form == 1:
        value = f"{scheme}:{path}{query}{fragment}"
    else:
        value = f"{scheme}:{userinfo}{host}{query}{fragment}"
    if rng.random() < 0.05:
        value += rng.choice([" ", "\t", "%", "]", "\x00"])
    return value


def named_difference(value: str) -> bool:
    """The two cases where rfc3986_validator departs from RFC 3986 (see _formats.py)."""
    return value.endswith("\n") or "[V" in value


def test_uri_pattern_agrees_with_rfc3986_validator_on_generated_strings() -> None:
    rng = random.Random(20260527)
    values = [uri_like(rng) for _ in range(4000)]
    values += [f"http://[{ipv6_literal(rng)}]/" for _ in range(2000)]
    disagreements = [v for v in values if ours(v) != reference(v)]
    assert disagreements == []
    accepted = sum(map(ours, values))
    assert 500 < accepted < len(values) - 500, "the sample should hold both kinds"


@pytest.mark.parametrize(
    "value",
    ["http://example.com/fw.bin", "ftp://user:pw@10.0.0.1:21/diag/", "https://[::1]:8443/x?y=1#z",
     "sftp://[fe80::1:2]/", "https://[v1.a:b]/", "urn:oca:ocpp", "a:", "file:///tmp/x",
     "http://h/%41%c3%a9", "HTTP://EXAMPLE.COM", "mailto:a@b.c", "x+y.z-w://h"],
)  # fmt: skip
def test_uri_pattern_accepts_uris(value: str) -> None:
    assert ours(value) and reference(value)


@pytest.mark.parametrize(
    "value",
    ["", "example.com/fw.bin", "//host/path", "1http://h/", "http://h/a b", "http://h/%4",
     "http://h/%zz", "http://[::1/", "http://[1:2:3:4:5:6:7:8:9]/", "http://h:8a/",
     "http://h/é", "http://h/#a#b", "http://h/\\x"],
)  # fmt: skip
def test_uri_pattern_rejects_non_uris(value: str) -> None:
    assert not ours(value) and not reference(value)


def test_uri_with_trailing_newline_is_rejected_although_the_validator_accepts_it() -> None:
    """RFC 3986 has no newline; rfc3986_validator's ``$`` matches before a final one."""
    assert reference("http://example.com/\n")
    assert not ours("http://example.com/\n")


def test_ipvfuture_with_upper_case_v_is_accepted_although_the_validator_rejects_it() -> None:
    """ABNF quoted strings are case-insensitive (RFC 5234 §2.3): "v" also matches "V"."""
    assert not reference("http://[V1.x]/")
    assert ours("http://[V1.x]/")


def test_named_differences_are_the_only_disagreements_on_those_shapes() -> None:
    rng = random.Random(7)
    values = [uri_like(rng) + "\n" for _ in range(300)]
    values += [uri_like(rng).replace("[v1.x]", "[V1.x]") for _ in range(300)]
    assert all(ours(v) == reference(v) or named_difference(v) for v in values)


def test_uri_pattern_rejects_a_long_bad_string_in_linear_time() -> None:
    """Possessive repetitions: a 1 MiB string failing at its end takes one pass, not n²."""
    for value in ["http://" + "a" * 2**20 + " ", "a:" + "/a" * 2**19 + " ", "a://" + "a:" * 2**19]:
        start = time.perf_counter()
        assert not ours(value)
        assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("value", [0, 0.0, 0.1, 0.3, 0.7, 1.0, 21.4, 32.0, -0.3, 1e6 + 0.1, 10])
def test_check_multiple_of_accepts_decimal_multiples(value: float) -> None:
    check_multiple_of(value, 0.1, "limit")


@pytest.mark.parametrize("value", [0.05, 0.15, 21.45, 0.31, float("nan"), float("inf")])
def test_check_multiple_of_rejects_other_values_in_msgspec_words(value: float) -> None:
    with pytest.raises(ValueError, match=r"^Expected `float` that's a multiple of 0\.1 "):
        check_multiple_of(value, 0.1, "limit")


def test_check_multiple_of_accepts_an_unset_optional_field() -> None:
    check_multiple_of(msgspec.UNSET, 0.1, "minChargingRate")
