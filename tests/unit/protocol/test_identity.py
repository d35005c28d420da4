"""Station identity from the URL (2.0.1 Part 4 §3.1.1; checklist A4)."""

from __future__ import annotations

import pytest

from ocppkit.protocol.identity import InvalidIdentityError, identity_from_path


@pytest.mark.parametrize(
    ("path", "identity"),
    [
        ("/ocpp/CP001", "CP001"),
        ("/a/b/c/CP-1", "CP-1"),
        ("/CP%2D1", "CP-1"),
        ("/ocpp/CP1?token=x", "CP1"),
        ("/ocpp/CP1#frag", "CP1"),
        ("/" + "x" * 48, "x" * 48),
        ("/A*-_=+|@.9", "A*-_=+|@.9"),
    ],
)
def test_last_segment_percent_decoded(path: str, identity: str) -> None:
    """The last path segment, percent-decoded, is the identity; 48 characters is the bound."""
    assert identity_from_path(path) == identity


@pytest.mark.parametrize(
    "path",
    [
        "/ocpp/",
        "/",
        "",
        "/a%3Ab",
        "/a:b",
        "/" + "x" * 49,
        "/%zz",
        "/%4",
        "/%C3%A9",
        "/%FF",
        "/a%2F..%2Fb",
        "/a b",
        "/é",
    ],
)
def test_refused(path: str) -> None:
    """Empty, ':', over 48, bad escape, non-ASCII or '/' after decoding -> refused."""
    with pytest.raises(InvalidIdentityError):
        identity_from_path(path)
