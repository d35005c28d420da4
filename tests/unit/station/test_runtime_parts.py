"""Pure parts of the station runtime: stop-reason names, the configuration's rules, and the
persisted forms of a transaction and a reservation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ocppkit.station.behaviour import Reservation, Tx, stop_cause
from ocppkit.station.meter import StopCause
from ocppkit.station.station import StationConfig


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("Local", StopCause.LOCAL),
        ("remote", StopCause.REMOTE),
        ("EVDisconnected", StopCause.EV_DISCONNECTED),
        ("ev_disconnected", StopCause.EV_DISCONNECTED),
        ("PowerLoss", StopCause.POWER_LOSS),
        ("SoftReset", StopCause.SOFT_RESET),  # the 1.6 spelling
        ("ImmediateReset", StopCause.HARD_RESET),  # the 2.0.1 spelling of the same cause
        ("DeAuthorized", StopCause.DE_AUTHORIZED),
        ("Reboot", StopCause.SOFT_RESET),
    ],
)
def test_stop_reason_names_of_both_versions(name: str, cause: StopCause) -> None:
    """1.6 Reason and 2.0.1 ReasonEnum names both name a cause (console, control API)."""
    assert stop_cause(name) is cause


def test_unknown_stop_reason_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown stop reason"):
        stop_cause("Bored")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ocpp_version": "2.1"}, "ocpp_version"),
        ({"connectors": 0}, "at least one connector"),
        ({"supply": "solar"}, "supply"),
        ({"security_profile": 4}, "0..3"),
        ({"csms_url": "http://h/ocpp"}, "ws:// or wss://"),
        ({"security_profile": 2}, "wss://"),
        ({"csms_url": "wss://h", "security_profile": 3, "client_cert": "c.pem"}, "client_key"),
    ],
)
def test_config_rejects_what_cannot_run(kwargs: dict[str, object], message: str) -> None:
    values: dict[str, object] = {"station_id": "X", "csms_url": "ws://h/ocpp", **kwargs}
    with pytest.raises(ValueError, match=message):
        StationConfig(**values)  # type: ignore[arg-type]


def test_station_id_is_the_last_path_segment_percent_encoded() -> None:
    """design.md contract: ws[s]://HOST:PORT/<prefix>/<stationId>, percent-decoded by the CSMS."""
    assert StationConfig(station_id="CP/1 a", csms_url="ws://h:9/ocpp/").url == (
        "ws://h:9/ocpp/CP%2F1%20a"
    )
    assert StationConfig(station_id="CP1", csms_url="ws://h:9").url == "ws://h:9/CP1"


def test_transaction_and_reservation_round_trip() -> None:
    started = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    tx = Tx(key="k", id_token="T", started_at=started, meter_start=12, remote_start_id=3)
    again = Tx.from_dict(tx.to_dict())
    assert again.to_dict() == tx.to_dict() and again.started_at == started
    reservation = Reservation(id=1, id_token="T", expires_at=started, parent_id="P")
    assert Reservation.from_dict(reservation.to_dict()) == reservation
