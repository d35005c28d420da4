"""The 2.0.1 station's monitoring, customer information and display messages (blocks N, O).

:class:`Diagnostics201` is the part of :class:`~.behaviour_v201.Behaviour201` that answers

* SetVariableMonitoring (N04), ClearVariableMonitoring (N06), SetMonitoringBase (N03),
  SetMonitoringLevel (N05) and GetMonitoringReport (N02, then NotifyMonitoringReport),
  with the logic of :mod:`.monitoring`;
* CustomerInformation (N09, N10, then NotifyCustomerInformation), from the station's
  local list, authorization cache and running transactions (:mod:`.customer_information`);
* SetDisplayMessage (O01, O02, O06), GetDisplayMessages (O03, O04, then
  NotifyDisplayMessages) and ClearDisplayMessage (O05), with :mod:`.display_messages`;

and sends NotifyEvent (N07, N08) when a monitored Actual value changes. The values the
station itself changes are the ones monitored: ``AvailabilityState`` of every connector, EVSE
and the station (mirrored from the status model after each status change), ``EVSE.Power``
(after each meter step) and what a SetVariables changes; Periodic monitors ride the
station's timer. An event goes out when its severity is within
``MonitoringCtrlr.ActiveMonitoringLevel`` (N05.FR.03); offline, only those within
``OfflineQueuingSeverity`` are kept, in the persistent queue, for the next connection
(N07.FR.04), the others are lost. Monitors and display messages are persisted with the
station state (N07.FR.13).

The station's factory monitors: a hard-wired UpperThreshold on each ``EVSE.Power`` at its
maximum (an overload), and a preconfigured Delta on ``ChargingStation.AvailabilityState``.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from ocppkit.messages import v201
from ocppkit.protocol import ErrorCode, HandlerError
from ocppkit.station.authorization import token_key
from ocppkit.station.behaviour import Behaviour
from ocppkit.station.customer_information import (
    answer,
    notify_customer_information,
    reference,
)
from ocppkit.station.device_model import (
    DISPLAY_MESSAGES_MAX,
    DeviceModel,
    DeviceModelError,
    VariableKey,
    VariableSpec,
)
from ocppkit.station.display_messages import (
    DisplayMessages,
    DisplaySupport,
    notify_display_messages,
)
from ocppkit.station.monitoring import (
    Monitor,
    Monitoring,
    Trigger,
    notify_monitoring_reports,
    reportable,
)
from ocppkit.station.status import Station201

__all__ = ["Diagnostics201", "factory_monitors"]

_MON = "MonitoringCtrlr"
_DISPLAY = "DisplayMessageCtrlr"
_TOO_MANY = ErrorCode("OccurrenceConstraintViolation")


def _key(component: str, variable: str, instance: str | None = None) -> VariableKey:
    return VariableKey(component, variable, variable_instance=instance)


def _given(value: Any) -> Any:
    return None if value is msgspec.UNSET else value


@functools.lru_cache(maxsize=32)
def factory_monitors(evses: int, max_power: float) -> tuple[Monitor, ...]:
    """The monitors a station of this shape comes with (shared: they are frozen)."""
    kind = v201.EventNotificationEnum
    hard_wired = [
        Monitor(
            id=evse,
            key=VariableKey("EVSE", "Power", evse=evse),
            type=v201.MonitorEnum.UPPER_THRESHOLD,
            value=max_power,
            severity=3,
            kind=kind.HARD_WIRED_MONITOR,
        )
        for evse in range(1, evses + 1)
    ]
    preconfigured = Monitor(
        id=evses + 1,
        key=VariableKey("ChargingStation", "AvailabilityState"),
        type=v201.MonitorEnum.DELTA,
        value=1,
        severity=5,
        kind=kind.PRECONFIGURED_MONITOR,
    )
    return (*hard_wired, preconfigured)


class Diagnostics201(Behaviour):
    """Blocks N and O of a 2.0.1 station (see the module docstring)."""

    dm: DeviceModel
    model: Station201
    _dm_snapshot: dict[str, Any] | None

    def init_diagnostics(self, evses: int, max_power: float) -> None:
        """Create the monitors (the factory set) and the display messages."""
        self._evse_power_max = max_power
        self._factory = factory_monitors(evses, max_power)
        self.monitoring = Monitoring(self._factory)
        self.display = DisplayMessages(max_messages=DISPLAY_MESSAGES_MAX)

    def register_diagnostics(self) -> None:
        r = self.register
        r("SetVariableMonitoring", self.on_set_variable_monitoring)
        r("ClearVariableMonitoring", self.on_clear_variable_monitoring)
        r("SetMonitoringBase", self.on_set_monitoring_base)
        r("SetMonitoringLevel", self.on_set_monitoring_level)
        r("GetMonitoringReport", self.on_get_monitoring_report)
        r("CustomerInformation", self.on_customer_information)
        r("SetDisplayMessage", self.on_set_display_message)
        r("GetDisplayMessages", self.on_get_display_messages)
        r("ClearDisplayMessage", self.on_clear_display_message)

    def diagnostics_to_dict(self) -> dict[str, Any]:
        return {"monitoring": self.monitoring.to_dict(), "display": self.display.to_dict()}

    def diagnostics_from_dict(self, data: dict[str, Any]) -> None:
        """Restore the monitors (those of variables the model still has) and messages."""
        self.monitoring = Monitoring.from_dict(
            data.get("monitoring", {}), self._factory, model=self.dm
        )
        self.display = DisplayMessages.from_dict(
            data.get("display", {}), max_messages=DISPLAY_MESSAGES_MAX
        )
        self._count_messages()

    async def _send_all(self, action: str, messages: list[Any]) -> None:
        for message in messages:
            await self.st.request(action, message, while_pending=True)

    def _dm_changed(self) -> None:
        self._dm_snapshot = None

    # -- what the station observes -------------------------------------------------------

    def _tx_at(self, key: VariableKey) -> str | None:
        """The transaction running where ``key`` is: on its EVSE, or (a station-wide
        variable) any."""
        ports = [self.ports[key.evse]] if key.evse in self.ports else []
        if key.evse is None:
            ports = list(self.ports.values())
        return next((p.tx.key for p in ports if p.tx is not None), None)

    def observe(self, key: VariableKey, value: str) -> None:
        """The station sets an Actual value: store it, and report what the monitors of
        ``key`` make of it (N07). Runtime values do not invalidate the device-model
        snapshot: they are re-derived after a restart."""
        try:
            if self.dm.actual(key) == value:
                return
            self.dm.set_actual(key, value)
        except DeviceModelError:
            return
        self._changed(key)

    def _changed(self, key: VariableKey) -> None:
        if self.monitoring.watches(key):
            triggers = self.monitoring.observe(
                key, self.dm.actual(key), now=self.st.now(), tx_id=self._tx_at(key)
            )
            self.send_events(triggers)

    def sync_availability(self) -> None:
        """Mirror the status model into the AvailabilityState variables."""
        statuses = []
        for (evse, connector), state in sorted(self.model.connectors.items()):
            status = str(state.status)
            statuses.append(status)
            self.observe(
                VariableKey("Connector", "AvailabilityState", None, evse, connector), status
            )
            self.observe(VariableKey("EVSE", "AvailabilityState", evse=evse), status)
        overall = "Available"
        for shared in ("Unavailable", "Faulted"):
            if statuses and all(s == shared for s in statuses):
                overall = shared
        self.observe(_key("ChargingStation", "AvailabilityState"), overall)

    def post_statuses(self, notes: Any) -> None:
        super().post_statuses(notes)
        self.sync_availability()

    def advance(self, port: Any) -> None:
        super().advance(port)
        power = min(max(port.meter.power_w, 0.0), self._evse_power_max)
        self.observe(VariableKey("EVSE", "Power", evse=port.id), f"{power:.1f}")

    def after_boot(self) -> None:
        super().after_boot()
        self.sync_availability()
        self.monitoring.start_periodic(self.st.now())
        self._wake_for_periodic()

    def _wake_for_periodic(self) -> None:
        """Let the timer re-plan when a periodic monitor is due (only then: the timer
        runs at its own pace otherwise)."""
        if self.monitoring.next_due() is not None:
            self.st.wake_timer()

    def observe_set_variables(self, reply: v201.SetVariablesResponse) -> None:
        """The Actual values a SetVariables changed (B05) go past their monitors."""
        for result in reply.set_variable_result:
            attribute = _given(result.attribute_type)
            accepted = result.attribute_status is v201.SetVariableStatusEnum.ACCEPTED
            if accepted and attribute in (None, v201.AttributeEnum.ACTUAL):
                found = self.dm.lookup(result.component, result.variable)
                if isinstance(found, VariableSpec):
                    self._changed(found.key)

    async def on_timer(self) -> float | None:
        """The base timer, then the Periodic monitors due (N08)."""
        due = await super().on_timer()
        now = self.st.now()
        self.send_events(self.monitoring.periodic(now, self.dm.actual, self._tx_at))
        nxt = self.monitoring.next_due()
        if nxt is None:
            return due
        at = self.st.clock() + max(0.0, (nxt - now).total_seconds())
        return at if due is None else min(due, at)

    def send_events(self, triggers: list[Trigger]) -> None:
        """One NotifyEvent (seqNo 0, N07.FR.07) with the events the monitoring level lets
        through (N05.FR.03); offline, those within OfflineQueuingSeverity are queued
        (N07.FR.04, N08.FR.03) and the rest dropped."""
        if not triggers or self.dm.actual(_key(_MON, "Enabled")) == "false":
            return
        level = self._int(_key(_MON, "ActiveMonitoringLevel"), 9)
        online = self.st.online
        if not online:
            level = min(level, self._int(_key(_MON, "OfflineQueuingSeverity"), 0))
        events = reportable(triggers, level)
        if not events:
            return
        request = v201.NotifyEventRequest(generated_at=self.st.now(), seq_no=0, event_data=events)
        if online:
            self.st.post("NotifyEvent", request)
        else:
            self.st.spawn(self.st.enqueue("NotifyEvent", request, tx_key=None))

    def _int(self, key: VariableKey, default: int) -> int:
        value = self.dm.actual(key)
        return default if value is None else int(value)

    def _check_items(self, count: int, instance: str) -> None:
        """N04.FR.09 / N06.FR.06: more items than ``ItemsPerMessage`` is the CSMS's fault."""
        limit = self._int(_key(_MON, "ItemsPerMessage", instance), 20)
        if count > limit:
            raise HandlerError(_TOO_MANY, f"{instance}: more than {limit} items")

    # -- monitoring (N02-N06) ------------------------------------------------------------

    async def on_set_variable_monitoring(
        self, req: v201.SetVariableMonitoringRequest, _: Any
    ) -> v201.SetVariableMonitoringResponse:
        """N04: one result per item; the monitors kept with the station state."""
        self._check_items(len(req.set_monitoring_data), "SetVariableMonitoring")
        results, triggers = self.monitoring.set_monitoring(
            req.set_monitoring_data, self.dm, now=self.st.now(), tx_for=self._tx_at
        )
        await self.st.save()
        self.send_events(triggers)  # N07.FR.11
        self._wake_for_periodic()
        return v201.SetVariableMonitoringResponse(set_monitoring_result=results)

    async def on_clear_variable_monitoring(
        self, req: v201.ClearVariableMonitoringRequest, _: Any
    ) -> v201.ClearVariableMonitoringResponse:
        """N06: one result per id (Accepted / NotFound / Rejected for a hard-wired one)."""
        self._check_items(len(req.id), "ClearVariableMonitoring")
        results = self.monitoring.clear(req.id)
        await self.st.save()
        return v201.ClearVariableMonitoringResponse(clear_monitoring_result=results)

    async def on_set_monitoring_base(
        self, req: v201.SetMonitoringBaseRequest, _: Any
    ) -> v201.SetMonitoringBaseResponse:
        """N03.FR.01: every base is supported; ``ActiveMonitoringBase`` shows it."""
        self.monitoring.set_base(req.monitoring_base, now=self.st.now())
        self.dm.set_actual(_key(_MON, "ActiveMonitoringBase"), req.monitoring_base.value)
        self._dm_changed()
        await self.st.save()
        self._wake_for_periodic()
        return v201.SetMonitoringBaseResponse(status=v201.GenericDeviceModelStatusEnum.ACCEPTED)

    async def on_set_monitoring_level(
        self, req: v201.SetMonitoringLevelRequest, _: Any
    ) -> v201.SetMonitoringLevelResponse:
        """N05: a severity 0-9 is Accepted (FR.01) and becomes ``ActiveMonitoringLevel``;
        another is Rejected (FR.02)."""
        if not 0 <= req.severity <= 9:
            return v201.SetMonitoringLevelResponse(
                status=v201.GenericStatusEnum.REJECTED,
                status_info=v201.StatusInfo(reason_code="SeverityOutOfRange"),
            )
        self.dm.set_actual(_key(_MON, "ActiveMonitoringLevel"), str(req.severity))
        self._dm_changed()
        await self.st.save()
        return v201.SetMonitoringLevelResponse(status=v201.GenericStatusEnum.ACCEPTED)

    def on_get_monitoring_report(
        self, req: v201.GetMonitoringReportRequest, _: Any
    ) -> v201.GetMonitoringReportResponse:
        """N02: Accepted then NotifyMonitoringReport pages (DeviceDataCtrlr ItemsPerMessage /
        BytesPerMessage of GetReport), EmptyResultSet, NotSupported."""
        cvs = _given(req.component_variable) or []
        if len(cvs) > self.dm.items_per_message("GetReport"):
            raise HandlerError(
                _TOO_MANY, "more componentVariables than ItemsPerMessage"
            )  # N02.FR.07
        status, data = self.monitoring.report(self.dm, _given(req.monitoring_criteria) or [], cvs)
        if data:
            pages = notify_monitoring_reports(
                req.request_id,
                data,
                generated_at=self.st.now(),
                items_per_message=self.dm.items_per_message("GetReport"),
                bytes_per_message=self._int(
                    _key("DeviceDataCtrlr", "BytesPerMessage", "GetReport"), 65000
                ),
            )
            self.st.spawn(self._send_all("NotifyMonitoringReport", pages))
        return v201.GetMonitoringReportResponse(status=status)

    # -- customer information (N09, N10) -------------------------------------------------

    async def on_customer_information(
        self, req: v201.CustomerInformationRequest, _: Any
    ) -> v201.CustomerInformationResponse:
        """N09/N10: Accepted, then what the station holds about the customer (its local
        list entry, cache entry and running transactions of the idToken) -- or that it
        holds nothing (N09.FR.06, N10.FR.04). ``clear`` removes the cache entry but never
        the local list, the CSMS's to change (N10.FR.02/03/06)."""
        reply = answer(req)
        if reply.status is not v201.CustomerInformationStatusEnum.ACCEPTED:
            return reply
        who = reference(req)
        token = _given(req.id_token)
        found: list[str] = []
        if token is not None:
            found = self._customer_data(token)
        lines = [f"{who}: {line}" for line in found] if req.report else []
        if req.clear and token is not None and self.auth.cache.forget(token) is not None:
            lines.append(f"{who}: authorization cache entry cleared")
            await self.st.save()
        elif req.clear and found:
            lines.append(f"{who}: nothing to clear but the local list, which the CSMS keeps")
        if not found:
            lines = [f"{who}: no data found"]
        pages = notify_customer_information(req.request_id, lines, generated_at=self.st.now())
        self.st.spawn(self._send_all("NotifyCustomerInformation", pages))
        return reply

    def _customer_data(self, token: v201.IdToken) -> list[str]:
        listed = self.auth.local_list.get(token)
        cached = self.auth.cache.peek(token)
        lines = []
        for where, info in (("local authorization list", listed), ("authorization cache", cached)):
            if info is not None:
                expiry = (
                    "" if info.expires_at is None else f", expires {info.expires_at.isoformat()}"
                )
                group = "" if info.group_id is None else f", group {info.group_id}"
                lines.append(f"{where}: {info.status}{expiry}{group}")
        wanted = token_key(token)
        for port in self.ports.values():
            tx = port.tx
            if tx is None or tx.id_token is None:
                continue
            if (tx.token_type or "ISO14443", tx.id_token.casefold()) != wanted:
                continue
            lines.append(
                f"transaction {tx.key} on EVSE {port.id} since {tx.started_at.isoformat()}, "
                f"meter start {tx.meter_start} Wh"
            )
        return lines

    # -- display messages (O01-O06) ------------------------------------------------------

    def _display_support(self) -> DisplaySupport:
        enabled = self.dm.actual(_key(_DISPLAY, "Enabled")) != "false"
        available = self.dm.actual(_key(_DISPLAY, "Available")) != "false"
        formats = self.dm.actual(_key(_DISPLAY, "SupportedFormats")) or ""
        priorities = self.dm.actual(_key(_DISPLAY, "SupportedPriorities")) or ""
        return DisplaySupport(
            enabled=enabled and available,
            formats=frozenset(v201.MessageFormatEnum(f) for f in formats.split(",") if f),
            priorities=frozenset(v201.MessagePriorityEnum(p) for p in priorities.split(",") if p),
        )

    def _transactions(self) -> set[str]:
        return {p.tx.key for p in self.ports.values() if p.tx is not None}

    def _count_messages(self) -> None:
        self.dm.set_actual(_key(_DISPLAY, "DisplayMessages"), str(len(self.display)))

    async def on_set_display_message(
        self, req: v201.SetDisplayMessageRequest, _: Any
    ) -> v201.SetDisplayMessageResponse:
        """O01/O02/O06 (see :meth:`.DisplayMessages.set`)."""
        status, reason = self.display.set(
            req.message,
            now=self.st.now(),
            support=self._display_support(),
            transactions=self._transactions(),
        )
        self._count_messages()
        await self.st.save()
        reply = v201.SetDisplayMessageResponse(status=status)
        if reason is not None:
            reply.status_info = v201.StatusInfo(reason_code=reason)
        return reply

    def on_get_display_messages(
        self, req: v201.GetDisplayMessagesRequest, _: Any
    ) -> v201.GetDisplayMessagesResponse:
        """O03/O04: Accepted then NotifyDisplayMessages pages, or Unknown."""
        messages = self.display.get(
            now=self.st.now(),
            transactions=self._transactions(),
            ids=_given(req.id),
            priority=_given(req.priority),
            state=_given(req.state),
        )
        self._count_messages()
        if not messages:
            return v201.GetDisplayMessagesResponse(status=v201.GetDisplayMessagesStatusEnum.UNKNOWN)
        pages = notify_display_messages(
            req.request_id,
            messages,
            items_per_message=self.dm.items_per_message("GetReport"),
            bytes_per_message=self._int(
                _key("DeviceDataCtrlr", "BytesPerMessage", "GetReport"), 65000
            ),
        )
        self.st.spawn(self._send_all("NotifyDisplayMessages", pages))
        return v201.GetDisplayMessagesResponse(status=v201.GetDisplayMessagesStatusEnum.ACCEPTED)

    async def on_clear_display_message(
        self, req: v201.ClearDisplayMessageRequest, _: Any
    ) -> v201.ClearDisplayMessageResponse:
        """O05: Accepted (removed) or Unknown."""
        status = self.display.clear(req.id, now=self.st.now(), transactions=self._transactions())
        self._count_messages()
        await self.st.save()
        return v201.ClearDisplayMessageResponse(status=status)
