"""Prometheus metrics of one CSMS node, in a registry of its own.

:class:`CsmsMetrics` owns a :class:`prometheus_client.CollectorRegistry`: no metric lives in
the library's global registry, so two CSMS instances in one process (tests, an embedding
application) never clash, and ``GET /metrics`` shows exactly this node.

Series (all names prefixed ``ocppkit_``):

``connected_stations``                      gauge, read from the service at scrape time
``messages_total{direction,type,action}``   every OCPP-J frame in and out; ``type`` is
                                            CALL, CALLRESULT, CALLERROR, CALLRESULTERROR,
                                            SEND or INVALID; a reply is counted under the
                                            action of the CALL it answers
``call_errors_total{direction,code}``       CALLERRORs (and 2.1 CALLRESULTERRORs) by code
``handler_seconds{action}``                 histogram: time in the handler of each
                                            station-initiated CALL
``db_batch_rows{batch}``                    histogram: rows per database batch
``db_batch_seconds{batch}``                 histogram: time to commit a batch
``db_batch_failures_total{batch}``          batches the database refused (they are retried)
``tls_handshake_failures_total{reason}``    TLS handshakes the OCPP port refused (profiles 2
                                            and 3), by a closed set of reasons
                                            (:data:`~ocppkit.transport.tls.TLS_REFUSAL_REASONS`),
                                            each present from the start at 0

Theory of operation (the hot path): the frame observer sees every frame as raw text. Only
the frame's head is read, by one anchored regular expression (message type, message id and
the third element, which is the action of a CALL or the code of a CALLERROR); the payload is
never parsed. Replies are matched to the action of the CALL they answer through the one CALL
per direction OCPP-J allows to be outstanding (§4.1.1): each connection remembers the id
and action of its last CALL each way (a weak reference to the connection, so nothing needs
cleaning up when it goes). A reply that matches neither, e.g. a late reply to a CALL that
timed out, is counted with action ``unknown``. A frame is classified by its head alone: one
that starts like a CALL but is not valid JSON further on still counts as a CALL (the CSMS
answers it with a CALLERROR, counted as such). The per-frame counts are plain dict
increments, turned into series only when scraped (:class:`_FrameCounters`).

Label values come from the wire, so they are bounded before use: an action that is not an
action of the connection's OCPP version, and a CallError code that no version defines, are
counted as ``unknown`` / ``other``, never as themselves: a station cannot grow the
registry.
"""

from __future__ import annotations

import bisect
import itertools
import weakref
from collections import Counter as Tally
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Final, cast

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from ocppkit.protocol.errors import error_code_from_wire
from ocppkit.protocol.frames import FrameHead
from ocppkit.protocol.validation import message_types
from ocppkit.protocol.versions import OcppVersion
from ocppkit.transport.tls import TLS_REFUSAL_REASONS

__all__ = ["CONTENT_TYPE", "DB_ROWS_BUCKETS", "LATENCY_BUCKETS", "CsmsMetrics"]

#: The media type of :meth:`CsmsMetrics.exposition`.
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
#: Seconds: from half a millisecond (a cached answer) to ten seconds (a stuck database).
LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Rows per batch: one sample to a full message-log flush.
DB_ROWS_BUCKETS: Final = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 100_000)

_TYPES: Final = {
    2: "CALL",
    3: "CALLRESULT",
    4: "CALLERROR",
    5: "CALLRESULTERROR",
    6: "SEND",
}
_OTHER_SIDE: Final = {"in": "out", "out": "in"}
# [type, "messageId", "action-or-code", ...: the head only, anchored. The id is an unrolled
# JSON string loop (linear; several times faster in `re` than a bounded alternation).
_UNKNOWN: Final = "unknown"


class _FrameCounters(Collector):
    """The per-frame counters, kept in plain dicts and turned into series at scrape time:
    the frame observer runs for every frame, and a ``prometheus_client.Counter`` takes a
    lock on each increment (about 1 us); a dict increment is a tenth of that. Everything
    runs on the event loop's thread, scrapes included."""

    def __init__(
        self, messages: Tally[tuple[str, str, str]], call_errors: Tally[tuple[str, str]]
    ) -> None:
        self._messages = messages
        self._call_errors = call_errors

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield from self._families(empty=True)

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield from self._families(empty=False)

    def _families(self, *, empty: bool) -> Iterator[CounterMetricFamily]:
        messages = CounterMetricFamily(
            "ocppkit_messages",
            "OCPP-J frames by direction, message type and action (replies: the action of "
            "the CALL they answer).",
            labels=["direction", "type", "action"],
        )
        errors = CounterMetricFamily(
            "ocppkit_call_errors",
            "CALLERRORs by direction and error code.",
            labels=["direction", "code"],
        )
        if not empty:
            for key, count in list(self._messages.items()):
                messages.add_metric(key, count)
            for error_key, count in list(self._call_errors.items()):
                errors.add_metric(error_key, count)
        yield messages
        yield errors


class _Histogram(Collector):
    """A histogram by one label kept as plain bucket counts, turned into a series at scrape
    time.

    It is observed once per station-initiated CALL (handler latency) and once per stored
    message (database writes); ``prometheus_client.Histogram`` takes a lock and walks every
    bucket on each observation (6 us for the two of a meter-values write, measured), a
    bisect and two list updates cost a fraction of that. Prometheus' ``le`` buckets are
    cumulative and inclusive, so a value goes to the first bucket whose bound is not below it.
    """

    def __init__(self, name: str, documentation: str, label: str, buckets: Sequence[float]) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._bounds = sorted(buckets)
        bound_label = cast(Callable[[float], str], floatToGoString)  # untyped upstream
        self._labels = [*(bound_label(bound) for bound in self._bounds), "+Inf"]
        self._counts: dict[str, list[int]] = {}  # label value -> count per bucket, +Inf last
        self._sums: dict[str, float] = {}

    def observe(self, key: str, value: float) -> None:
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0] * len(self._labels)
            self._sums[key] = 0.0
        counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sums[key] += value

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self._name, self._documentation, labels=[self._label])

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=[self._label])
        for key, counts in sorted(self._counts.items()):
            cumulative = itertools.accumulate(counts)
            family.add_metric(
                [key], list(zip(self._labels, cumulative, strict=True)), self._sums[key]
            )
        yield family


class _Peer:
    """What the metrics remember about one connection."""

    __slots__ = ("actions", "pending")

    def __init__(self, actions: frozenset[str]) -> None:
        self.actions = actions
        # The direction a CALL went -> (its message id, its action).
        self.pending: dict[str, tuple[str, str]] = {}


class CsmsMetrics:
    """The metrics of one CSMS node; :attr:`registry` is scraped by ``GET /metrics``.

    Args:
        connected: returns the number of stations connected now (read at scrape time).
        latency_buckets: histogram buckets of handler and database latencies, in seconds.
        rows_buckets: histogram buckets of database batch sizes, in rows.
    """

    def __init__(
        self,
        *,
        connected: Callable[[], int] | None = None,
        latency_buckets: Sequence[float] = LATENCY_BUCKETS,
        rows_buckets: Sequence[float] = DB_ROWS_BUCKETS,
    ) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.connected_stations = Gauge(
            "ocppkit_connected_stations",
            "Stations connected to this node now.",
            registry=registry,
        )
        if connected is not None:
            self.connected_stations.set_function(connected)
        #: (direction, type, action) -> frames; exposed as ``ocppkit_messages_total``.
        self.messages: Tally[tuple[str, str, str]] = Tally()
        #: (direction, code) -> CALLERRORs; exposed as ``ocppkit_call_errors_total``.
        self.call_errors: Tally[tuple[str, str]] = Tally()
        registry.register(_FrameCounters(self.messages, self.call_errors))
        self.handler_seconds = _Histogram(
            "ocppkit_handler_seconds",
            "Time in the handler of each station-initiated CALL.",
            "action",
            latency_buckets,
        )
        self.db_batch_rows = _Histogram(
            "ocppkit_db_batch_rows", "Rows per database batch.", "batch", rows_buckets
        )
        self.db_batch_seconds = _Histogram(
            "ocppkit_db_batch_seconds",
            "Time to write and commit one database batch.",
            "batch",
            latency_buckets,
        )
        for histogram in (self.handler_seconds, self.db_batch_rows, self.db_batch_seconds):
            registry.register(histogram)
        self.db_batch_failures = Counter(
            "ocppkit_db_batch_failures",
            "Database batches that failed (their rows are retried or the sender is told).",
            ["batch"],
            registry=registry,
        )
        self.tls_handshake_failures = Counter(
            "ocppkit_tls_handshake_failures",
            "TLS handshakes the OCPP port refused (no station id is known then), by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in TLS_REFUSAL_REASONS:  # every series from 0: rate() sees the first one
            self.tls_handshake_failures.labels(reason)
        self._peers: weakref.WeakKeyDictionary[Any, _Peer] = weakref.WeakKeyDictionary()
        self._actions: dict[OcppVersion, frozenset[str]] = {}

    # -- frames -----------------------------------------------------------------------------

    def frame(self, connection: Any, direction: str, head: FrameHead | None) -> None:
        """Count one frame that went ``direction`` ("in" or "out") on ``connection``.

        ``connection`` needs ``session.version`` (an :class:`OcppVersion`); ``head`` is the
        frame's :func:`~ocppkit.protocol.frames.peek_head` (see the module docstring).
        """
        peer = self._peers.get(connection)
        if peer is None:
            peer = self._peers[connection] = _Peer(self._actions_of(connection.session.version))
        if head is None:
            self.messages[direction, "INVALID", ""] += 1
            return
        number, message_id, third = head
        kind = _TYPES[number]
        if kind == "CALL" or kind == "SEND":
            action = third if third is not None and third in peer.actions else _UNKNOWN
            if kind == "CALL":
                peer.pending[direction] = (message_id, action)
            self.messages[direction, kind, action] += 1
            return
        answered = peer.pending.get(_OTHER_SIDE[direction])
        if answered is not None and answered[0] == message_id:
            del peer.pending[_OTHER_SIDE[direction]]
            action = answered[1]
        else:
            action = _UNKNOWN
        self.messages[direction, kind, action] += 1
        if kind != "CALLRESULT":
            code = "other" if third is None or error_code_from_wire(third) is None else third
            self.call_errors[direction, code] += 1

    def _actions_of(self, version: OcppVersion) -> frozenset[str]:
        actions = self._actions.get(version)
        if actions is None:
            actions = self._actions[version] = frozenset(message_types(version))
        return actions

    # -- handlers and the database ----------------------------------------------------------

    def handler(self, action: str, seconds: float) -> None:
        """Record the time one handler of ``action`` took (a known action: it was routed)."""
        self.handler_seconds.observe(action, seconds)

    def db_batch(self, batch: str, rows: int, seconds: float) -> None:
        """Record one committed batch of ``rows`` rows (``batch``: which writer)."""
        self.db_batch_rows.observe(batch, rows)
        self.db_batch_seconds.observe(batch, seconds)

    def db_batch_failed(self, batch: str) -> None:
        """Record a batch the database refused."""
        self.db_batch_failures.labels(batch).inc()

    def tls_handshake_failed(self, reason: str) -> None:
        """Count one refused TLS handshake; a reason outside the closed set counts as other."""
        label = reason if reason in TLS_REFUSAL_REASONS else "other"
        self.tls_handshake_failures.labels(label).inc()

    # -- exposition -------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """Every series in the Prometheus text format (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
