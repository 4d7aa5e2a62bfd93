"""The append-only evidence log on disk: append under a lock, read, verify, repair.

One writer at a time holds `evidence.jsonl.lock` (a file lock, so it serializes
separate processes). An append writes one whole line with O_APPEND and fsyncs before
the lock is released. Nothing here ever rewrites or deletes a line; `repair` only moves
a torn, unterminated tail fragment to `evidence.quarantine.jsonl`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from .errors import UserError
from .events import ACTORS, GENESIS, PAYLOADS, SCHEMA_VERSION, Event, line_hash

LOCK_TIMEOUT_S = 30


def lock_for(log_path: Path) -> FileLock:
    return FileLock(str(log_path) + ".lock", timeout=LOCK_TIMEOUT_S)


def read_bytes(log_path: Path, offset: int = 0) -> bytes:
    with open(log_path, "rb") as f:
        f.seek(offset)
        return f.read()


def split_complete(buf: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (with newline) and the unterminated tail fragment, if any."""
    if not buf:
        return [], b""
    lines = buf.split(b"\n")
    tail = lines.pop()  # b"" when buf ends with a newline
    return [ln + b"\n" for ln in lines], tail


def parse_lines(lines: list[bytes]) -> list[dict]:
    """Parsed events (dicts, upgraded to the current schema) of complete lines."""
    out = []
    loads = json.loads
    for ln in lines:
        raw = loads(ln)
        if raw.get("v") != SCHEMA_VERSION:
            raw = Event.from_dict(raw).to_dict()
        out.append(raw)
    return out


def iter_lines(log_path: Path) -> Iterator[bytes]:
    """Complete lines of the log, streamed (a torn, unterminated tail is not yielded)."""
    with open(log_path, "rb", buffering=1 << 20) as f:
        for line in f:
            if line.endswith(b"\n"):
                yield line


def iter_parsed(log_path: Path) -> Iterator[dict]:
    """Parsed events, streamed; constant memory however long the log is."""
    scan_once = json.JSONDecoder().scan_once  # the C scanner: we write lines without padding
    for line in iter_lines(log_path):
        raw = scan_once(line.decode("utf-8"), 0)[0]
        if raw.get("v") != SCHEMA_VERSION:
            raw = Event.from_dict(raw).to_dict()
        yield raw


def scan(log_path: Path) -> tuple[Tip, dict[str, str]]:
    """One cheap pass: where the log ends, and every retraction (target id -> its id)."""
    tip = Tip()
    retracted: dict[str, str] = {}
    last = b""
    for line in iter_lines(log_path):
        tip.offset += len(line)
        tip.count += 1
        last = line
        if b'"retraction"' in line:
            ev = json.loads(line)
            if ev["type"] == "retraction":
                retracted[ev["data"]["target"]] = ev["id"]
    if last:
        tip.last_hash = line_hash(last)
        ev = json.loads(last)
        tip.last_id, tip.last_ts = ev["id"], ev["ts"]
    tip.last_len = len(last)
    return tip, retracted


def read_events(log_path: Path) -> list[dict]:
    return list(iter_parsed(log_path))


def iter_events(log_path: Path) -> Iterator[Event]:
    for raw in read_events(log_path):
        yield Event.from_dict(raw)


class TornLogError(UserError):
    pass


def torn_message(log_path: Path, n: int) -> str:
    return (
        f"The evidence log {log_path} ends with a torn, incomplete line ({n} bytes), "
        "probably from a crash mid-write. Nothing was recorded. Run `llmlab verify` to "
        "see the details and `llmlab repair` to move the fragment to quarantine; every "
        "complete event is kept."
    )


def append_line(log_path: Path, line: bytes) -> None:
    """Append one complete line and fsync. Caller holds the lock."""
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    try:
        view = memoryview(line)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Tip:
    """Where the log ends: bytes, line count, hash of the last line."""

    offset: int = 0
    count: int = 0
    last_hash: str = GENESIS
    last_id: str | None = None
    last_ts: str | None = None
    last_len: int = 0


@dataclass
class Report:
    events: int = 0
    ok: bool = True
    chain_ok: bool = True
    torn_tail: int = 0  # bytes of an unterminated last fragment
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"events": self.events, "ok": self.ok, "chain_ok": self.chain_ok,
                "torn_tail_bytes": self.torn_tail, "problems": self.problems}


def verify(log_path: Path, known_retraction_targets: Callable[[str], bool] | None = None) -> Report:
    """Replay the log: hash chain, sequential ids, schema of every event, torn tail."""
    rep = Report()
    buf = read_bytes(log_path)
    lines, tail = split_complete(buf)
    prev = GENESIS
    ids: set[str] = set()
    for n, ln in enumerate(lines, start=1):
        where = f"line {n}"
        try:
            raw = json.loads(ln)
            ev = Event.from_dict(raw)
        except (ValueError, KeyError, TypeError, UserError) as e:
            rep.problems.append(f"{where}: not a valid event ({e}).")
            rep.chain_ok = False
            prev = line_hash(ln)
            continue
        if ev.id != f"evt_{n:06d}":
            rep.problems.append(f"{where}: id {ev.id} breaks the sequence (expected evt_{n:06d}).")
        if ev.prev != prev:
            rep.chain_ok = False
            rep.problems.append(f"{where} ({ev.id}): hash chain broken: prev does not match the "
                                "previous line (the log was edited).")
        if ev.actor not in ACTORS:
            rep.problems.append(f"{where} ({ev.id}): unknown actor '{ev.actor}'.")
        model = PAYLOADS.get(ev.type)
        if model is None:
            rep.problems.append(f"{where} ({ev.id}): unknown event type '{ev.type}'.")
        else:
            try:
                model(**ev.data)
            except Exception as e:  # pydantic ValidationError: report, keep going
                rep.problems.append(f"{where} ({ev.id}): payload invalid: {e.errors()[0]['msg']}"
                                    if hasattr(e, "errors") else f"{where}: {e}")
        if ev.type in ("retraction", "misconception_resolved") and ev.data.get("target") not in ids:
            rep.problems.append(f"{where} ({ev.id}): refers to unknown earlier event "
                                f"{ev.data.get('target')}.")
        ids.add(ev.id)
        prev = line_hash(ln)
    rep.events = len(lines)
    rep.torn_tail = len(tail)
    if tail:
        rep.problems.append(f"torn last line: {len(tail)} bytes without a newline after event "
                            f"{len(lines)}. Run `llmlab repair` to quarantine it.")
    rep.ok = not rep.problems
    return rep


def repair(log_path: Path) -> dict:
    """Move a torn tail fragment to evidence.quarantine.jsonl; keep every complete event."""
    quarantine = log_path.with_name("evidence.quarantine.jsonl")
    with lock_for(log_path):
        buf = read_bytes(log_path)
        lines, tail = split_complete(buf)
        if not tail:
            return {"repaired": False, "quarantined_bytes": 0, "quarantine": str(quarantine),
                    "events": len(lines)}
        record = json.dumps({"offset": len(buf) - len(tail), "bytes": len(tail),
                             "fragment": tail.decode("utf-8", errors="replace")},
                            ensure_ascii=False) + "\n"
        fd = os.open(quarantine, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, record.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        with open(log_path, "r+b") as f:
            f.truncate(len(buf) - len(tail))
            f.flush()
            os.fsync(f.fileno())
        return {"repaired": True, "quarantined_bytes": len(tail), "quarantine": str(quarantine),
                "events": len(lines)}
