"""CustomerInformation, pure (OCPP 2.0.1 N09, N10): the reply's status, how the customer
is named, and the NotifyCustomerInformation pages; and the page cutter they share."""

from __future__ import annotations

import datetime
from typing import Any

import msgspec
import pytest

from ocppkit.messages import v201
from ocppkit.station.customer_information import (
    DATA_SIZE,
    answer,
    notify_customer_information,
    reference,
)
from ocppkit.station.paging import chunk
from tests.unit import test_layers

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
TOKEN = {"idToken": "ABC", "type": "ISO14443"}
CERT = {"hashAlgorithm": "SHA256", "issuerNameHash": "a", "issuerKeyHash": "b", "serialNumber": "7"}


def request(report: bool = True, clear: bool = False, **refs: Any) -> Any:
    raw = {"requestId": 1, "report": report, "clear": clear, **refs}
    return msgspec.convert(raw, v201.CustomerInformationRequest)


def test_module_is_pure() -> None:
    """design.md rule 1: no I/O, no clock reads, no global random state."""
    test_layers.test_station_core_is_pure("customer_information")


@pytest.mark.parametrize(
    ("req", "status"),
    [
        (request(idToken=TOKEN), "Accepted"),
        (request(False, True, customerIdentifier="C1"), "Accepted"),
        (request(True, True, customerCertificate=CERT), "Accepted"),
        (request(False, False, idToken=TOKEN), "Rejected"),  # N09.FR.07 / N10.FR.07
        (request(), "Invalid"),  # N09.FR.04: no customer named
        (request(idToken=TOKEN, customerIdentifier="C1"), "Invalid"),
        (request(customerIdentifier="C1", customerCertificate=CERT), "Invalid"),
    ],
)
def test_answer_n09_n10(req: Any, status: str) -> None:
    assert answer(req).status == status


def test_reference_names_the_customer() -> None:
    assert reference(request(idToken=TOKEN)) == "idToken ABC (ISO14443)"
    assert reference(request(customerIdentifier="C1")) == "customerIdentifier C1"
    assert reference(request(customerCertificate=CERT)) == "customerCertificate serial 7"


def test_notify_pages_cut_the_text() -> None:
    """``data`` at most 512 characters, seqNo 0.., tbc on all but the last; the pages joined
    are the lines joined by newlines; nothing still sends one message."""
    lines = ["x" * 300, "y" * 300, "z" * 500]
    pages = notify_customer_information(9, lines, generated_at=T0)
    assert "".join(p.data for p in pages) == "\n".join(lines)
    assert [p.seq_no for p in pages] == [0, 1, 2]
    assert [p.tbc for p in pages] == [True, True, msgspec.UNSET]
    assert all(len(p.data) <= DATA_SIZE and p.request_id == 9 for p in pages)
    (empty,) = notify_customer_information(9, [], generated_at=T0)
    assert (empty.data, empty.tbc) == ("", msgspec.UNSET)


def test_chunk_by_items_and_bytes() -> None:
    """The shared cutter: at most ``max_items`` per chunk and ``max_bytes`` with the
    envelope; an item too large goes alone; no items, no chunks."""
    assert chunk([1, 2, 3, 4, 5], max_items=2, max_bytes=1000) == [[1, 2], [3, 4], [5]]
    assert chunk(["aaaa", "b", "c"], max_items=9, max_bytes=12, envelope=4) == [
        ["aaaa"],
        ["b", "c"],
    ]
    assert chunk(["a" * 50, "b"], max_items=9, max_bytes=10) == [["a" * 50], ["b"]]
    assert chunk([], max_items=1, max_bytes=1) == []
    assert chunk([1, 2], max_items=0, max_bytes=1000) == [[1], [2]]
