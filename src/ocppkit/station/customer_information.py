"""CustomerInformation of an emulated 2.0.1 station (OCPP 2.0.1 Part 2, N09 and N10).

The CSMS asks a station to report and/or clear what it holds about one customer, named by
an idToken, a customerIdentifier or a customerCertificate (N09.FR.04 / N10.FR.08: the
request carries a reference to the customer). :func:`answer` decides the reply: ``Rejected``
when neither ``report`` nor ``clear`` is set (N09.FR.07 / N10.FR.07: nothing to do),
``Invalid`` unless exactly one reference is given (none names no customer; several could
name different ones), else ``Accepted``. The station then sends what it found -- or that it
found nothing (N09.FR.06 / N10.FR.04), or that it cleared the data (N10.FR.06) -- as
NotifyCustomerInformation messages: :func:`notify_customer_information` cuts the text into
the 512-character ``data`` of each, seqNo from 0, ``tbc`` on all but the last. Pure.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import msgspec

from ocppkit.messages import v201
from ocppkit.station.paging import numbered

__all__ = ["DATA_SIZE", "answer", "notify_customer_information", "reference"]

#: The most characters of ``data`` in one NotifyCustomerInformation.
DATA_SIZE = 512


def answer(request: v201.CustomerInformationRequest) -> v201.CustomerInformationResponse:
    """The reply to a CustomerInformation request (see the module docstring)."""
    status = v201.CustomerInformationStatusEnum
    if not request.report and not request.clear:
        return v201.CustomerInformationResponse(
            status=status.REJECTED, status_info=v201.StatusInfo(reason_code="NothingToDo")
        )
    given = [
        field
        for field in (request.id_token, request.customer_identifier, request.customer_certificate)
        if field is not msgspec.UNSET
    ]
    if len(given) != 1:
        return v201.CustomerInformationResponse(
            status=status.INVALID,
            status_info=v201.StatusInfo(reason_code="OneReferenceNeeded"),
        )
    return v201.CustomerInformationResponse(status=status.ACCEPTED)


def reference(request: v201.CustomerInformationRequest) -> str:
    """How the reports name the customer of an accepted request."""
    token = request.id_token
    if token is not msgspec.UNSET:
        return f"idToken {token.id_token} ({token.type})"
    if request.customer_identifier is not msgspec.UNSET:
        return f"customerIdentifier {request.customer_identifier}"
    cert = request.customer_certificate
    assert cert is not msgspec.UNSET, "answer() accepts only a request with one reference"
    return f"customerCertificate serial {cert.serial_number}"


def notify_customer_information(
    request_id: int, lines: Sequence[str], *, generated_at: datetime.datetime
) -> list[v201.NotifyCustomerInformationRequest]:
    """``lines`` (joined by newlines) as NotifyCustomerInformation messages of at most
    :data:`DATA_SIZE` characters of ``data`` each; at least one message."""
    text = "\n".join(lines)
    parts = [text[i : i + DATA_SIZE] for i in range(0, len(text), DATA_SIZE)] or [""]
    return numbered(
        parts,
        lambda seq_no, part: v201.NotifyCustomerInformationRequest(
            data=part, seq_no=seq_no, generated_at=generated_at, request_id=request_id
        ),
    )
