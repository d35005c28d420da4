"""An in-memory pair of RPC sessions: a station and a CSMS joined without sockets.

Unit tests drive the sans-I/O core through it (design.md rule 9): frames one side emits are
delivered to the other by :meth:`SessionPair.pump`, with a fake clock the test advances.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ocppkit.protocol.session import Event, RpcSession


@dataclass
class SessionPair:
    station: RpcSession
    csms: RpcSession
    now: float = 0.0
    wire: list[tuple[str, bytes]] = field(default_factory=list)

    @classmethod
    def of(cls, version: str, **options: object) -> SessionPair:
        counters = {"station": 0, "csms": 0}

        def ids(side: str):  # readable, deterministic ids
            def make() -> str:
                counters[side] += 1
                return f"{side}-{counters[side]}"

            return make

        return cls(
            RpcSession(version, message_id_factory=ids("station"), **options),  # type: ignore[arg-type]
            RpcSession(version, message_id_factory=ids("csms"), **options),  # type: ignore[arg-type]
        )

    def pump(self) -> None:
        """Deliver frames both ways until neither side has anything left to send."""
        while True:
            to_csms = self.station.data_to_send()
            to_station = self.csms.data_to_send()
            if not to_csms and not to_station:
                return
            for frame in to_csms:
                self.wire.append(("station->csms", frame))
                self.csms.receive_data(frame, self.now)
            for frame in to_station:
                self.wire.append(("csms->station", frame))
                self.station.receive_data(frame, self.now)

    def events(self, side: RpcSession) -> list[Event]:
        return side.events_received()
