"""``kill -9`` of a process writing to the station store (checklist F4; module docstring of
:mod:`ocppkit.station.store`: WAL + ``synchronous=NORMAL`` survives a process kill).

A real child process runs 40 emulated stations that enqueue, remove heads (as after a
CALLRESULT) and save state as fast as they can, and appends a line to a report file after
each call *returned*. It is killed with SIGKILL at a random moment. The reopened store must
hold every message whose enqueue was reported, exactly once, in order; no reported removal
may come back; no state blob may go back in time; and the file must open without incident.
Each station works sequentially, so at most one call per station can have committed without
being reported.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from ocppkit.station.store import StationStore

CHILD = r"""
import asyncio, json, os, sys
from ocppkit.station.store import NewMessage, StationStore

REPORT = os.open(sys.argv[2], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

def report(line):
    os.write(REPORT, (line + "\n").encode())

async def station(store, sid, n):
    # Stations start at different n so that they are in different phases at any moment.
    while True:
        payload = json.dumps({"s": sid, "n": n}).encode()
        await store.enqueue(NewMessage(sid, "MeterValues", payload, tx_key="tx", seq_no=n))
        report(f"E {sid} {n}")
        if n % 3 == 2:
            head = await store.head(sid)
            if await store.remove(head.id):
                report(f"R {sid} {json.loads(head.payload)['n']}")
        if n % 5 == 4:
            await store.save_state(sid, {"n": n, "pad": "x" * 300})
            report(f"S {sid} {n}")
        n += 1

async def main():
    store = await StationStore.open(sys.argv[1])
    report("READY")
    await asyncio.gather(*(station(store, f"CS{i:02}", i) for i in range(40)))

asyncio.run(main())
"""

ITERATIONS = 6


def _run_and_kill(tmp: Path, db: Path, report: Path, delay: float) -> None:
    script = tmp / "child.py"
    script.write_text(CHILD)
    child = subprocess.Popen([sys.executable, str(script), str(db), str(report)], cwd=tmp)
    try:
        deadline = time.monotonic() + 30
        while not (report.exists() and report.read_bytes().startswith(b"READY")):
            assert child.poll() is None, "child died before it was ready"
            assert time.monotonic() < deadline, "child never became ready"
            time.sleep(0.01)
        time.sleep(delay)
        assert child.poll() is None, "child exited on its own"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def _parse(report: Path) -> tuple[dict[str, list[int]], dict[str, set[int]], dict[str, int]]:
    """Acknowledged enqueues (in order), removals and the last saved state per station."""
    enqueued: dict[str, list[int]] = defaultdict(list)
    removed: dict[str, set[int]] = defaultdict(set)
    saved: dict[str, int] = {}
    # Drop READY and the last element: "" after the final newline, or a torn line.
    for line in report.read_text().split("\n")[1:-1]:
        op, sid, n = line.split()
        if op == "E":
            enqueued[sid].append(int(n))
        elif op == "R":
            removed[sid].add(int(n))
        else:
            saved[sid] = int(n)
    return enqueued, removed, saved


@pytest.mark.parametrize("iteration", range(ITERATIONS))
async def test_every_acknowledged_write_survives_sigkill(tmp_path: Path, iteration: int) -> None:
    rng = random.Random(1000 + iteration)
    delay = rng.uniform(0.05, 0.8)
    db, report = tmp_path / "fleet.db", tmp_path / "report.txt"
    _run_and_kill(tmp_path, db, report, delay)

    enqueued, removed, saved = _parse(report)
    assert sum(map(len, enqueued.values())) > 0, f"killed too early (delay {delay:.3f})"

    async with await StationStore.open(db) as store:
        assert store.incidents == (), "a process kill must never damage the file"
        for sid, reported in enqueued.items():
            queued = await store.pending(sid)
            ns = [json.loads(q.payload)["n"] for q in queued]
            # In order and exactly once.
            assert ns == sorted(set(ns)), (sid, ns)
            last = reported[-1]
            # Nothing beyond the one enqueue that may have committed unreported.
            assert all(n <= last + 1 for n in ns), (sid, ns, last)
            # Every reported, not-removed message is there, except that one removal of the
            # head may have committed unreported: only the oldest may be missing.
            expected = [n for n in reported if n not in removed[sid]]
            missing = [n for n in expected if n not in ns]
            assert missing in ([], expected[:1]), (sid, missing, expected[:3])
            # Reported removals never come back.
            assert not removed[sid] & set(ns), (sid, removed[sid] & set(ns))
            # seqNo counters are never behind an acknowledged message.
            counter = (await store.seq_counters(sid))["tx"]
            assert last + 1 <= counter <= last + 2, (sid, counter, last)
            state = await store.load_state(sid)
            if sid in saved:
                assert state is not None and saved[sid] <= state["n"] <= last + 1
