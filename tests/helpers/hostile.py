"""Hostile frames: checklist B7 of reliability.md §4 and the issue's list.

Shared by the fuzz tests (tests/unit/protocol/test_frames_fuzz.py) and the cost benchmark
(bench/bench_hostile.py).
"""

from __future__ import annotations

HOSTILE: dict[str, bytes] = {
    "2000 nested brackets": b"[" * 2000 + b"]" * 2000,
    "100000 nested brackets": b"[" * 100_000 + b"]" * 100_000,
    "100000 unclosed brackets": b"[" * 100_000,
    "nested objects in a CALL": b'[2,"1","Heartbeat",'
    + b'{"a":' * 5000
    + b"1"
    + b"}" * 5000
    + b"]",
    "5000-digit integer": b'[2,"1","Heartbeat",{"a":' + b"9" * 5000 + b"}]",
    "5000-digit message type": b"[" + b"9" * 5000 + b',"1","Heartbeat",{}]',
    "1e999": b'[2,"1","Heartbeat",{"a":1e999}]',
    "1e999 as message type": b'[1e999,"1","Heartbeat",{}]',
    "NaN": b'[2,"1","Heartbeat",{"a":NaN}]',
    "Infinity": b'[2,"1","Heartbeat",{"a":Infinity}]',
    "-Infinity": b'[2,"1","Heartbeat",{"a":-Infinity}]',
    "lone surrogate in id": b'[2,"\\ud800","Heartbeat",{}]',
    "lone surrogate in payload": b'[2,"1","Authorize",{"idTag":"\\ud800"}]',
    "duplicate keys": b'[2,"1","Authorize",{"idTag":"A","idTag":"B"}]',
    "10000-element array": b'[2,"1","Heartbeat",[' + b",".join([b"1"] * 10_000) + b"]]",
    "10000-element frame": b"[" + b",".join([b"2"] * 10_000) + b"]",
    "invalid utf-8": b'[2,"1","Authorize",{"idTag":"\xff\xfe"}]',
    "NUL bytes": b'[2,"1","Heartbeat",{}]\x00\x00',
    "empty": b"",
    "BOM": b'\xef\xbb\xbf[2,"1","Heartbeat",{}]',
}
