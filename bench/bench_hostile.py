"""CPU cost of hostile frames (checklist B7): ocppkit's parser vs the mobilityhouse library.

For each input of ``tests/helpers/hostile.py`` (deep nesting, huge numbers, NaN, lone
surrogates, long arrays, random bytes...), the time ocppkit's ``FrameParser.parse`` takes to
accept or reject it, and what the reference's ``ocpp.messages.unpack`` does with the same
input (its outcome: parsed, a documented OCPP error, or another exception escaping).

Reproduce::

    .venv/bin/python -m bench.bench_hostile --cpu 1
"""

from __future__ import annotations

import argparse
import os
import time

from ocpp import messages as mh_messages
from ocpp.exceptions import OCPPError

from ocppkit.protocol.errors import FrameError
from ocppkit.protocol.frames import FrameParser
from ocppkit.protocol.versions import OcppVersion
from tests.helpers.hostile import HOSTILE


def ours(data: bytes) -> str:
    try:
        FrameParser(OcppVersion.V201).parse(data)
    except FrameError as error:
        return f"CALLERROR {error.code}"
    return "parsed"


def reference(data: bytes) -> str:
    try:
        mh_messages.unpack(data.decode("utf-8", "replace"))
    except OCPPError as error:
        return f"CALLERROR {type(error).__name__}"
    except Exception as error:
        return f"escapes: {type(error).__name__}"
    return "parsed"


def cpu_ms(fn: object, data: bytes, repeat: int = 5) -> tuple[float, str]:
    best, outcome = float("inf"), ""
    for _ in range(repeat):
        start = time.process_time()
        outcome = fn(data)  # type: ignore[operator]
        best = min(best, time.process_time() - start)
    return best * 1e3, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", type=int, help="pin this process to one CPU core")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    print(f"{'input':<28}{'ocppkit ms':>11}  {'outcome':<32}{'ref ms':>8}  reference outcome")
    worst = 0.0
    for name, data in HOSTILE.items():
        ms, outcome = cpu_ms(ours, data)
        ref_ms, ref_outcome = cpu_ms(reference, data)
        worst = max(worst, ms)
        print(f"{name:<28}{ms:>11.3f}  {outcome:<32}{ref_ms:>8.3f}  {ref_outcome}")
    print(f"worst ocppkit CPU time: {worst:.3f} ms")


if __name__ == "__main__":
    main()
