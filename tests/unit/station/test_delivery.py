"""The pure delivery policy: retries (1.6 §3.7.1, 2.0.1 E13), ordering (1.6 §3.7), the 1.6
``transactionId = -1`` rule (errata 3.18), seqNo / offline (E01.FR.07, E11/E12) and F8 thinning.

Times are a fake clock: plain numbers handed to the pure functions.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from ocppkit.messages.v16 import datatypes as dt16
from ocppkit.messages.v16 import requests as v16
from ocppkit.messages.v21 import datatypes as dt21
from ocppkit.messages.v21 import enums as v21enums
from ocppkit.messages.v21 import requests as v21
from ocppkit.messages.v201 import datatypes as dt201
from ocppkit.messages.v201 import requests as v201
from ocppkit.messages.v201.enums import TransactionEventEnum, TriggerReasonEnum
from ocppkit.station.delivery import (
    KEYS_V16,
    KEYS_V201,
    UNKNOWN_TRANSACTION_ID,
    Drop,
    EventKind,
    Idle,
    Outcome,
    QueueHead,
    Remove,
    Resend,
    Retry,
    RetryPolicy,
    SendNonTransaction,
    SendTransaction,
    SeqNos,
    ThinCandidate,
    TransactionIds,
    WaitUntil,
    after_outcome,
    event_kind,
    is_queued_message,
    is_transaction_message,
    mark_offline,
    next_to_send,
    should_thin,
    thin_updates,
    with_transaction_id,
)

T = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _meter_values(transaction_id: int | None = None) -> v16.MeterValuesRequest:
    value = [dt16.MeterValue(timestamp=T, sampled_value=[dt16.SampledValue(value="1")])]
    if transaction_id is None:
        return v16.MeterValuesRequest(connector_id=1, meter_value=value)
    return v16.MeterValuesRequest(connector_id=1, transaction_id=transaction_id, meter_value=value)


def _event(kind: TransactionEventEnum, seq_no: int = 0) -> v201.TransactionEventRequest:
    return v201.TransactionEventRequest(
        event_type=kind,
        timestamp=T,
        trigger_reason=TriggerReasonEnum.METER_VALUE_PERIODIC,
        seq_no=seq_no,
        transaction_info=dt201.Transaction(transaction_id="tx-1"),
    )


def _run_until_settled(policy: RetryPolicy, outcomes: list[Outcome]) -> list[object]:
    """Feed outcomes one by one like the runtime does; return the decisions."""
    failures, now, decisions = 0, 1000.0, []
    for outcome in outcomes:
        decision = after_outcome(outcome, failures=failures, now=now, policy=policy)
        decisions.append(decision)
        if isinstance(decision, Retry):
            failures, now = decision.failures, decision.at
        else:
            break
    return decisions


# ----------------------------------------------------------------------------- classification


def test_transaction_messages_are_start_stop_txmetervalues_and_transactionevent() -> None:
    """1.6 §3.7: StartTransaction, StopTransaction and MeterValues of a transaction;
    2.0.1: TransactionEvent. Authorize, StatusNotification, plain MeterValues are not."""
    assert is_transaction_message("StartTransaction")
    assert is_transaction_message("StopTransaction")
    assert is_transaction_message("TransactionEvent")
    assert is_transaction_message("MeterValues", _meter_values(transaction_id=7))
    assert not is_transaction_message("MeterValues", _meter_values())
    assert not is_transaction_message("Authorize")
    assert not is_transaction_message("StatusNotification")


def test_a04_fr_02_security_events_are_queued_but_not_transaction_messages() -> None:
    """A04.FR.02: SecurityEventNotification goes through the persistent queue
    (is_queued_message) without being a transaction message (no transactionId rewriting,
    no seqNo, no kind, never thinned); other non-transaction messages are not queued."""
    assert is_queued_message("SecurityEventNotification")
    assert not is_transaction_message("SecurityEventNotification")
    assert event_kind("SecurityEventNotification") is None
    assert is_queued_message("StartTransaction") and is_queued_message("TransactionEvent")
    assert is_queued_message("MeterValues", _meter_values(transaction_id=7))
    assert not is_queued_message("MeterValues", _meter_values())
    assert not is_queued_message("StatusNotification")
    assert not is_queued_message("SignCertificate")
    payload = b'{"type":"TamperDetectionActivated","timestamp":"2026-01-01T00:00:00Z"}'
    assert with_transaction_id("SecurityEventNotification", payload, 5) == payload


def test_event_kind_maps_both_versions() -> None:
    assert event_kind("StartTransaction") is EventKind.STARTED
    assert event_kind("StopTransaction") is EventKind.ENDED
    assert event_kind("MeterValues", _meter_values(3)) is EventKind.UPDATED
    assert event_kind("MeterValues", _meter_values()) is None
    assert event_kind("Heartbeat") is None
    for wire, kind in [
        (TransactionEventEnum.STARTED, EventKind.STARTED),
        (TransactionEventEnum.UPDATED, EventKind.UPDATED),
        (TransactionEventEnum.ENDED, EventKind.ENDED),
    ]:
        assert event_kind("TransactionEvent", _event(wire)) is kind
    with pytest.raises(ValueError):
        event_kind("TransactionEvent", object())


# ----------------------------------------------------------------------------- retries


def test_spec_example_attempts_3_interval_60_waits_60_then_120_then_drops() -> None:
    """1.6 §3.7.1 example: TransactionMessageAttempts 3, RetryInterval 60 -> send, fail,
    wait 60, resend, fail, wait 120, resend, fail, discard and continue."""
    decisions = _run_until_settled(RetryPolicy(3, 60), [Outcome.CALL_ERROR] * 5)
    assert decisions == [
        Retry(at=1060.0, failures=1),
        Retry(at=1180.0, failures=2),
        Drop(reason="CALLERROR on attempt 3 of 3", failures=3),
    ]


def test_timeout_counts_as_failure_like_callerror() -> None:
    """1.6 §3.7.1 "what kind of response, or failure to respond": no answer counts too
    (TC_E_41_CS silent CSMS / TC_E_50_CS InternalError, checklist F2)."""
    decisions = _run_until_settled(RetryPolicy(2, 10), [Outcome.TIMEOUT, Outcome.TIMEOUT])
    assert decisions == [
        Retry(at=1010.0, failures=1),
        Drop(reason="no answer on attempt 2 of 2", failures=2),
    ]


@pytest.mark.parametrize(
    "code",
    ["InternalError", "NotImplemented", "FormationViolation", "SecurityError", "GenericError"],
)
def test_every_callerror_code_is_retried(code: str) -> None:
    """1.6 §3.7.1 names no CALLERROR that may be skipped without retries; OCPP-J 2.0.1 §4.2.3:
    a CALLERROR is how a server reports a failure to process the message."""
    decision = after_outcome(
        Outcome.CALL_ERROR, failures=0, now=0.0, policy=RetryPolicy(3, 5), error_code=code
    )
    assert decision == Retry(at=5.0, failures=1)
    last = after_outcome(
        Outcome.CALL_ERROR, failures=2, now=0.0, policy=RetryPolicy(3, 5), error_code=code
    )
    assert isinstance(last, Drop) and code in last.reason


def test_success_on_attempt_two_stops_retrying() -> None:
    """Checklist F3 / TC_E_42_CS, TC_E_51_CS: a CALLRESULT on the retry removes the message."""
    decisions = _run_until_settled(RetryPolicy(3, 60), [Outcome.CALL_ERROR, Outcome.RESULT])
    assert decisions == [Retry(at=1060.0, failures=1), Remove()]


def test_disconnect_is_not_a_failure_to_process() -> None:
    """No answer because the socket closed: resend after reconnect, failure count unchanged."""
    assert (
        after_outcome(Outcome.DISCONNECTED, failures=1, now=0.0, policy=RetryPolicy()) == Resend()
    )


@pytest.mark.parametrize("attempts", [0, 1, -4])
def test_attempts_below_two_send_once_and_drop_on_first_failure(attempts: int) -> None:
    """The first send is attempt 1; with attempts <= 1 there is no retransmission."""
    decision = after_outcome(
        Outcome.CALL_ERROR, failures=0, now=0.0, policy=RetryPolicy(attempts, 60)
    )
    assert isinstance(decision, Drop) and decision.failures == 1


def test_retry_policy_from_configuration_keys() -> None:
    """1.6 TransactionMessageAttempts / RetryInterval; 2.0.1 OCPPCommCtrlr keys (E13)."""
    p16 = RetryPolicy.from_config(
        {"TransactionMessageAttempts": "5", "TransactionMessageRetryInterval": "30"}, KEYS_V16
    )
    assert p16 == RetryPolicy(5, 30.0)
    p201 = RetryPolicy.from_config(
        {
            "OCPPCommCtrlr.MessageAttemptsTransactionEvent": 4,
            "OCPPCommCtrlr.MessageAttemptIntervalTransactionEvent": 12,
        },
        KEYS_V201,
    )
    assert p201 == RetryPolicy(4, 12.0)
    assert RetryPolicy.from_config({"TransactionMessageAttempts": "x"}, KEYS_V16) == RetryPolicy()
    assert (
        RetryPolicy.from_config({"TransactionMessageRetryInterval": "-3"}, KEYS_V16).interval == 0.0
    )


# ----------------------------------------------------------------------------- ordering


def test_non_transaction_message_overtakes_the_queue() -> None:
    """1.6 §3.7: Authorize / notifications MAY be delivered before the queue is emptied."""
    assert (
        next_to_send(
            now=0.0,
            online=True,
            call_in_flight=False,
            head=QueueHead(1),
            non_transaction_waiting=True,
        )
        == SendNonTransaction()
    )


def test_queue_head_goes_next_and_waits_for_its_retry_time() -> None:
    """Only the head is ever sent (FIFO; new transaction messages wait behind it), and a
    failed head not before interval × n (1.6 §3.7.1)."""
    head = QueueHead(4, not_before=100.0)
    args = {"online": True, "call_in_flight": False, "non_transaction_waiting": False}
    assert next_to_send(now=99.9, head=head, **args) == WaitUntil(100.0)
    assert next_to_send(now=100.0, head=head, **args) == SendTransaction(4)
    assert next_to_send(now=0.0, head=QueueHead(5), **args) == SendTransaction(5)
    assert next_to_send(now=0.0, head=None, **args) == Idle()


def test_nothing_is_sent_offline_or_while_a_call_is_in_flight() -> None:
    """Offline: messages wait in the queue (1.6 §3.7). OCPP-J §4.1.1: one CALL at a time."""
    for online, in_flight in [(False, False), (True, True)]:
        assert (
            next_to_send(
                now=0.0,
                online=online,
                call_in_flight=in_flight,
                head=QueueHead(1),
                non_transaction_waiting=True,
            )
            == Idle()
        )


# ----------------------------------------------------------------------------- 1.6 ids


def test_unconfirmed_start_gives_minus_one_and_confirmation_substitutes_real_id() -> None:
    """1.6-errata 3.18: after a StartTransaction that was not confirmed, later messages carry
    transactionId -1; a Start confirmed before they are sent gives them the real id."""
    ids = TransactionIds()
    stored = msgspec.json.encode(
        v16.StopTransactionRequest(meter_stop=10, timestamp=T, transaction_id=0)
    )
    assert ids.resolve("c1-1") == UNKNOWN_TRANSACTION_ID == -1
    sent = msgspec.json.decode(with_transaction_id("StopTransaction", stored, ids.resolve("c1-1")))
    assert sent["transactionId"] == -1
    ids.confirm("c1-1", 4711)
    assert ids.is_confirmed("c1-1")
    sent = msgspec.json.decode(with_transaction_id("StopTransaction", stored, ids.resolve("c1-1")))
    assert sent["transactionId"] == 4711
    mv = msgspec.json.encode(_meter_values(0))
    assert (
        msgspec.json.decode(with_transaction_id("MeterValues", mv, 4711))["transactionId"] == 4711
    )
    assert with_transaction_id("Heartbeat", b"{}", 1) == b"{}"
    restored = TransactionIds.from_dict(msgspec.json.decode(msgspec.json.encode(ids.to_dict())))
    assert restored.resolve("c1-1") == 4711
    restored.forget("c1-1")
    assert restored.resolve("c1-1") == -1


def test_with_transaction_id_rejects_a_payload_of_the_wrong_shape() -> None:
    with pytest.raises(msgspec.ValidationError):
        with_transaction_id("StopTransaction", b'{"meterStop": "x"}', 1)


# ----------------------------------------------------------------------------- seqNo, offline


def test_seqno_counts_from_zero_per_transaction_and_survives_round_trip() -> None:
    """E01.FR.07 (edition 2): seqNo starts at 0 for each transaction."""
    seq = SeqNos()
    assert [seq.next("a"), seq.next("a"), seq.next("b"), seq.next("a")] == [0, 1, 0, 2]
    assert seq.peek("a") == 3
    again = SeqNos.from_dict(seq.to_dict())
    assert again.next("a") == 3
    again.merge({"a": 2, "b": 7, "c": 1})  # the store's counters are never lowered
    assert again.to_dict() == {"a": 4, "b": 7, "c": 1}
    again.forget("b")
    assert again.next("b") == 0


def test_offline_events_are_marked_offline_true() -> None:
    """E11 / E12, TC_E_40_CS: events that happened offline carry offline=true."""
    event = _event(TransactionEventEnum.UPDATED, seq_no=3)
    assert mark_offline(event, online=True) is event
    marked = mark_offline(event, online=False)
    assert marked.offline is True
    assert msgspec.json.decode(msgspec.json.encode(marked))["offline"] is True
    event21 = v21.TransactionEventRequest(
        event_type=v21enums.TransactionEventEnum.ENDED,
        timestamp=T,
        trigger_reason=v21enums.TriggerReasonEnum.EV_DEPARTED,
        seq_no=9,
        transaction_info=dt21.Transaction(transaction_id="tx-1"),
    )
    assert mark_offline(event21, online=False).offline is True


# ----------------------------------------------------------------------------- F8


def test_thinning_drops_every_second_updated_never_started_or_ended() -> None:
    """Checklist F8 (libocpp): at the threshold drop every second Updated event of each
    transaction; Started and Ended are never dropped, nor the message in flight."""
    U, S, E = EventKind.UPDATED, EventKind.STARTED, EventKind.ENDED
    entries = [
        ThinCandidate(1, "a", S),
        ThinCandidate(2, "a", U, in_flight=False),
        ThinCandidate(3, "b", S),
        ThinCandidate(4, "a", U),
        ThinCandidate(5, "b", U),
        ThinCandidate(6, "a", U),
        ThinCandidate(7, "b", U),
        ThinCandidate(8, "a", U),
        ThinCandidate(9, "a", E),
        ThinCandidate(10, "b", E),
        ThinCandidate(11, None, None),
    ]
    assert thin_updates(entries) == [4, 7, 8]
    assert thin_updates([ThinCandidate(1, "a", U), ThinCandidate(2, "a", U, in_flight=True)]) == []
    assert should_thin(10, limit=10) and not should_thin(9, limit=10)
