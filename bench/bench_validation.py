"""µs per message: frame decode + full payload validation, ocppkit vs the mobilityhouse library.

Both sides do the same job in the same run on the same bytes: read an OCPP-J CALL frame and
validate its payload against the action's schema.

* ocppkit: ``FrameParser.parse`` + ``Validator.decode`` (payload bytes decoded straight into
  the typed msgspec Struct; that decode *is* the validation).
* reference: ``ocpp.messages.unpack`` + ``ocpp.messages._validate_payload`` (json.loads +
  jsonschema), the path its ``ChargePoint`` runs on every message; and the same plus its
  ``camel_to_snake_case`` step, which its handlers also pay.

Reproduce (pinned to one core)::

    .venv/bin/python -m bench.bench_validation --cpu 1

Prints a table and, with ``--json FILE``, writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from ocpp import messages as mh_messages
from ocpp.charge_point import camel_to_snake_case

import ocppkit
from ocppkit.protocol.frames import FrameParser
from ocppkit.protocol.validation import Validator
from ocppkit.protocol.versions import OcppVersion


def _meter_values_16(samples: int) -> dict[str, Any]:
    measurands = [
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "Current.Import",
        "Voltage",
        "SoC",
        "Temperature",
        "Frequency",
        "Power.Offered",
        "Current.Offered",
        "Energy.Reactive.Import.Register",
    ]
    return {
        "connectorId": 1,
        "transactionId": 12345,
        "meterValue": [
            {
                "timestamp": "2026-11-27T10:00:00.000Z",
                "sampledValue": [
                    {
                        "value": f"{1234.5 + i:.1f}",
                        "context": "Sample.Periodic",
                        "format": "Raw",
                        "measurand": measurands[i % len(measurands)],
                        "phase": "L1",
                        "location": "Outlet",
                        "unit": "Wh" if i % len(measurands) == 0 else "W",
                    }
                    for i in range(samples)
                ],
            }
        ],
    }


CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    (
        "1.6 BootNotification",
        "1.6",
        "BootNotification",
        {
            "chargePointVendor": "ACME",
            "chargePointModel": "X1",
            "chargePointSerialNumber": "S1",
            "firmwareVersion": "1.2.3",
            "iccid": "8931",
            "imsi": "2620",
            "meterType": "AC",
        },
    ),
    (
        "2.0.1 BootNotification",
        "2.0.1",
        "BootNotification",
        {
            "reason": "PowerUp",
            "chargingStation": {
                "vendorName": "ACME",
                "model": "X1",
                "serialNumber": "S1",
                "firmwareVersion": "1.2.3",
                "modem": {"iccid": "8931", "imsi": "2620"},
            },
        },
    ),
    ("1.6 MeterValues, 2 samples", "1.6", "MeterValues", _meter_values_16(2)),
    ("1.6 MeterValues, 10 samples", "1.6", "MeterValues", _meter_values_16(10)),
    (
        "2.0.1 TransactionEvent",
        "2.0.1",
        "TransactionEvent",
        {
            "eventType": "Updated",
            "timestamp": "2026-11-27T10:00:00.000Z",
            "triggerReason": "MeterValuePeriodic",
            "seqNo": 7,
            "offline": False,
            "transactionInfo": {
                "transactionId": "f6a6c6f4-2f1c-4f0e-9a55-6d0d7c3b8e21",
                "chargingState": "Charging",
            },
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [
                {
                    "timestamp": "2026-11-27T10:00:00.000Z",
                    "sampledValue": [
                        {
                            "value": 1234.5,
                            "context": "Sample.Periodic",
                            "measurand": "Energy.Active.Import.Register",
                            "unitOfMeasure": {"unit": "Wh"},
                        },
                        {"value": 7200.0, "measurand": "Power.Active.Import", "phase": "L1"},
                        {"value": 230.1, "measurand": "Voltage", "phase": "L1-N"},
                        {"value": 31.5, "measurand": "Current.Import", "phase": "L1"},
                        {"value": 55, "measurand": "SoC", "location": "EV"},
                    ],
                }
            ],
        },
    ),
]


def per_call_us(fn: Callable[[], object], *, min_time: float = 0.3, repeat: int = 5) -> float:
    """Best of ``repeat`` rounds, in µs per call; each round runs at least ``min_time`` s."""
    number = 1
    while True:
        elapsed = _time_loop(fn, number)
        if elapsed >= min_time:
            break
        number *= 2
    return min([elapsed] + [_time_loop(fn, number) for _ in range(repeat - 1)]) / number * 1e6


def _time_loop(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - start


def measure(label: str, version: str, action: str, payload: Any, min_time: float) -> dict[str, Any]:
    """Time ocppkit and the reference on the same CALL frame."""
    text = json.dumps([2, "b6b8f8c4-6f3e-4a33-9d1c-0d1b9a4b1e77", action, payload])
    data = text.encode()
    parser = FrameParser(OcppVersion(version))
    validator = Validator(version)

    def ours() -> object:
        frame = parser.parse(data)
        return validator.decode(frame.action, frame.payload)  # type: ignore[union-attr]

    def reference() -> Any:
        message = mh_messages.unpack(text)
        mh_messages._validate_payload(message, version)
        return message

    def reference_snake() -> object:
        return camel_to_snake_case(reference().payload)

    ours()  # warm: decoders are built on first use, as on a connection's first message
    reference()
    ours_us = per_call_us(ours, min_time=min_time)
    ref_us = per_call_us(reference, min_time=min_time)
    snake_us = per_call_us(reference_snake, min_time=min_time)
    return {
        "case": label,
        "frame_bytes": len(data),
        "ocppkit_us": round(ours_us, 3),
        "reference_us": round(ref_us, 2),
        "reference_with_snake_us": round(snake_us, 2),
        "ratio": round(ref_us / ours_us, 1),
        "ratio_with_snake": round(snake_us / ours_us, 1),
    }


def run(min_time: float) -> list[dict[str, Any]]:
    return [measure(*case, min_time) for case in CASES]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU core")
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds per timing round")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    results = run(args.min_time)
    header = (
        f"{'case':<30}{'bytes':>7}{'ocppkit µs':>12}{'ref µs':>10}{'ref+snake µs':>14}"
        f"{'ratio':>8}{'ratio+snake':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['case']:<30}{r['frame_bytes']:>7}{r['ocppkit_us']:>12.2f}"
            f"{r['reference_us']:>10.1f}{r['reference_with_snake_us']:>14.1f}"
            f"{r['ratio']:>7.0f}x{r['ratio_with_snake']:>12.0f}x"
        )
    print(
        f"geometric-mean ratio: {statistics.geometric_mean(r['ratio'] for r in results):.0f}x "
        f"(ocppkit {ocppkit.__version__}, ocpp {mh_version()}, Python {platform.python_version()})"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(
                {
                    "results": results,
                    "python": platform.python_version(),
                    "command": "python -m bench.bench_validation --cpu 1",
                },
                out,
                indent=2,
            )


def mh_version() -> str:
    from importlib.metadata import version

    return version("ocpp")


if __name__ == "__main__":
    main()
