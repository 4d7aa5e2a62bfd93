"""The append-only evidence log on disk: append under a lock, read, verify, repair.

One writer at a time holds `evidence.jsonl.lock` (a file lock, so it serializes
separate processes). An append writes one whole line with O_APPEND and fsyncs before
the lock is released; if the write fails (disk full, I/O error) the file is truncated
back to its previous size, so a rejected event leaves the log byte-identical. Nothing
here ever rewrites a complete, valid line; `repair` only moves damage (a torn tail, and
an invalid line with everything after it) to `evidence.quarantine.jsonl`.

Readers use the *complete prefix*: every line up to the first damaged one (see
`integrity`), and carry a warning naming `verify` and `repair`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .chain import (Chain, Damaged, Tip, anchor_problem, checked,
                    future_limit, not_json)
from .errors import UserError
from .events import ACTORS, GENESIS, PAYLOADS, SCHEMA_VERSION, Event, check_payload, line_hash
from .schema import Invalid

LOCK_TIMEOUT_S = 30


class LogWriteError(UserError):
    """A write to the log failed; the log was left as it was."""


def os_message(e: OSError, path: Path | str, doing: str) -> str:
    """One paragraph for an OS error while `doing` something with `path`."""
    code = e.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        why, fix = "the disk is full", "Free some space and run the command again."
    elif code in (errno.EROFS, errno.EACCES, errno.EPERM):
        why, fix = ("the file or its folder is read-only or not yours",
                    f"Check the permissions of {Path(path).parent} (it must be writable).")
    elif code == errno.EIO:
        why, fix = "the disk reported an I/O error", "Check the disk, then run the command again."
    elif code == errno.EISDIR:
        why, fix = "a folder is where a file should be", f"Move the folder {path} away."
    elif code == errno.ENOTDIR:
        why, fix = "a file is where a folder should be", f"Move that file away ({path})."
    elif code == errno.ENOENT:
        why, fix = "it does not exist", "Check the workspace (`llmlab verify`)."
    else:
        why, fix = e.strerror or type(e).__name__, "Fix the cause and run the command again."
    return f"Could not {doing} {path}: {why} ({e.strerror or e}). {fix}"


class _Lock:
    """The writers' lock (an exclusive `flock` on `evidence.jsonl.lock`, released by the
    system when its holder exits), with its failures turned into user errors. On POSIX it
    is `fcntl.flock` itself, polled until `timeout`: what the `filelock` package does there,
    without its ~25 ms import on every `llmlab log observe` (issue 19); elsewhere `filelock`."""

    def __init__(self, log_path: Path, timeout: float):
        self.path = str(log_path) + ".lock"
        self.timeout = timeout
        self.fd: int | None = None
        self.lock = None

    def _timed_out(self) -> LogWriteError:
        return LogWriteError(
            f"Another process has held the evidence log's lock ({self.path}) for more than "
            f"{self.timeout:g} s. Nothing was recorded. Wait for it (an llmlab command, "
            "the MCP server or a lab run writing to this workspace) to finish and try "
            "again; the lock is released by the system when its holder exits.")

    def __enter__(self):
        try:
            try:
                import fcntl
            except ImportError:  # Windows
                from filelock import FileLock, Timeout

                self.lock = FileLock(self.path, timeout=self.timeout)
                try:
                    self.lock.acquire()
                except Timeout:
                    raise self._timed_out() from None
                return self
            import time

            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            deadline = time.monotonic() + self.timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        raise self._timed_out() from None
                    time.sleep(0.02)
                except OSError:
                    os.close(fd)
                    raise
            self.fd = fd
        except OSError as e:
            raise LogWriteError(os_message(e, self.path, "take the evidence log's lock")
                                + " Nothing was recorded.") from None
        return self

    def __exit__(self, *exc):
        try:
            if self.fd is not None:
                os.close(self.fd)  # closing the descriptor releases the flock
                self.fd = None
            elif self.lock is not None:
                self.lock.release()
        except OSError:
            pass


def lock_for(log_path: Path, timeout: float | None = None) -> _Lock:
    return _Lock(log_path, LOCK_TIMEOUT_S if timeout is None else timeout)


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


def parse_line(line: bytes) -> dict:
    """One line as an event dict upgraded to the current schema; raises ValueError,
    UserError (newer schema) when it is not one."""
    raw = json.loads(line)
    if not isinstance(raw, dict):
        raise ValueError(f"a JSON {type(raw).__name__}, not an object")
    if raw.get("v") != SCHEMA_VERSION:
        raw = Event.from_dict(raw).to_dict()
    return raw


def parse_lines(lines: list[bytes]) -> list[dict]:
    """Parsed events (dicts, upgraded to the current schema) of complete, checked lines."""
    return [parse_line(ln) for ln in lines]


def iter_lines(log_path: Path) -> Iterator[bytes]:
    """Complete lines of the log, streamed (a torn, unterminated tail is not yielded)."""
    with open(log_path, "rb", buffering=1 << 20) as f:
        for line in f:
            if line.endswith(b"\n"):
                yield line


def iter_parsed(log_path: Path, limit: int | None = None) -> Iterator[dict]:
    """Parsed events, streamed; constant memory however long the log is. With `limit`
    (the complete prefix `scan` found), stops there. A torn, unterminated tail is not
    parsed (it can only be the last line). `Damaged` at a line that is not one JSON
    value (the first pass checks the lines llmlab writes at the byte level only)."""
    scan_once = json.JSONDecoder().scan_once  # the C scanner: we write lines without padding
    with open(log_path, "rb", buffering=1 << 20) as f:
        for n, line in enumerate(f, 1):
            if limit is not None and n > limit or not line.endswith(b"\n"):
                return
            try:
                s = line.decode("utf-8")
                raw, end = scan_once(s, 0)
            except (StopIteration, ValueError):  # no JSON value here; bad UTF-8 or JSON
                raise Damaged(n, not_json(line, n)) from None
            if end != len(s) - 1 and s[end:].strip():  # something after the value
                raise Damaged(n, not_json(line, n))
            if raw.get("v") != SCHEMA_VERSION:
                raw = Event.from_dict(raw).to_dict()
            yield raw


def iter_checked(log_path: Path, limit: int, done: list[int], now=None) -> Iterator[dict]:
    """`checked(iter_parsed(log_path, limit))`, counting: the parsed events of the first
    `limit` lines, each checked by `check_event`; `Damaged` at the first bad one (a line
    that is not JSON at its own number). `done[0]` is how many were yielded (the line a
    fold error is reported at). Only damaged logs get here (`rebuild.one_pass` reads a
    sound one), so it stays the plain composition."""
    for n, raw in enumerate(checked(iter_parsed(log_path, limit), now), 1):
        done[0] = n
        yield raw


def scan(log_path: Path, now=None) -> tuple[Tip, dict[str, str]]:
    """One cheap pass: where the complete prefix ends (see `integrity.Chain`), its
    retractions (target id -> retraction id), and the first damage after it, if any.

    A line as llmlab writes it (the next id first, `prev` the hash of the line before) is
    checked here, inline: the loop runs once per event of a rebuild. Any other line goes
    through `Chain.feed`, which parses it and words what is wrong; so does every line that
    may be a retraction (it has the bytes `"retraction"`), which is parsed and checked in
    full here, so a damaged one is damage at its line, like any other bad line."""
    chain = Chain(now=now, fast=True)
    retracted: dict[str, str] = {}
    sha256 = hashlib.sha256
    n, offset, last, last_len = 0, 0, chain._last_hash_b, 0
    with open(log_path, "rb", buffering=1 << 20) as f:
        for line in f:
            maybe_retraction = b'"retraction"' in line
            i = line.find(b'"prev":"', 0, 256)
            if (i > 0 and line[i + 8:i + 72] == last and line[i + 72:i + 73] == b'"'
                    and not maybe_retraction and line.endswith(b"\n")
                    and line.startswith(b'{"id":"evt_%06d",' % (n + 1))):
                last = sha256(line[:-1]).hexdigest().encode()  # `line_hash`
                n, offset, last_len = n + 1, offset + len(line), len(line)
                continue
            chain.count, chain.offset, chain.last_len = n, offset, last_len
            chain.last_hash, chain._last_hash_b = last.decode(), last
            if not chain.feed(line, full=maybe_retraction):
                break
            n, offset, last, last_len = chain.count, chain.offset, chain._last_hash_b, \
                chain.last_len
            if maybe_retraction and chain.last_event["type"] == "retraction":
                retracted[chain.last_event["data"]["target"]] = chain.last_event["id"]
        else:
            chain.count, chain.offset, chain.last_len = n, offset, last_len
            chain.last_hash, chain._last_hash_b = last.decode(), last
    return chain.tip(log_path), retracted


def read_events(log_path: Path) -> list[dict]:
    """The events of the complete prefix (a damaged line and what follows are left out)."""

    tip, _ = scan(log_path)
    out: list[dict] = []
    try:
        out.extend(checked(iter_parsed(log_path, tip.count)))
    except (Damaged, ValueError, UserError):
        pass  # the events before the damage; readers warn through the state's tip
    return out


def iter_events(log_path: Path) -> Iterator[Event]:
    for raw in read_events(log_path):
        yield Event.from_dict(raw)


def damaged_message(log_path: Path, tip: Tip) -> str:
    return (f"The evidence log {log_path} is damaged: {tip.damage} Nothing was recorded: "
            "events are never appended after damage. Run `llmlab verify` to see the details "
            "and `llmlab repair` to move the damaged part to evidence.quarantine.jsonl (every "
            "event before it is kept); then record again.")


def append_line(log_path: Path, line: bytes, expected_size: int | None = None) -> None:
    """Append one complete line and fsync. Caller holds the lock.

    On any failure (disk full, I/O error, read-only) the file is truncated back to its
    size before the append and fsynced, so the log is byte-identical, and a
    `LogWriteError` says what happened.
    """
    try:
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND)
    except OSError as e:
        raise LogWriteError(os_message(e, log_path, "open for appending")
                            + " Nothing was recorded.") from None
    try:
        size = os.fstat(fd).st_size
        if expected_size is not None and size != expected_size:
            raise LogWriteError(
                f"The evidence log {log_path} changed size while it was locked ({size} bytes, "
                f"expected {expected_size}): something other than llmlab writes to it. "
                "Nothing was recorded. Stop that writer and run `llmlab verify`.")
        try:
            view = memoryview(line)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        except OSError as e:
            _truncate_back(fd, size)
            raise LogWriteError(os_message(e, log_path, "append to")
                                + " Nothing was recorded: the log is exactly as it was.") from None
    finally:
        os.close(fd)


def _truncate_back(fd: int, size: int) -> None:
    """Undo a partial append (truncate never needs free space)."""
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError:
        pass  # the next reader sees a torn tail; verify/repair name it


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


def verify(log_path: Path, known_retraction_targets: Callable[[str], bool] | None = None,
           anchor: dict | None = None, now=None) -> Report:
    """Replay the log: hash chain, sequential ids, schema of every event, time order,
    future times, torn tail, and the recorded tail anchor."""
    from .core import parse_ts

    rep = Report()
    limit = future_limit(now)
    buf = read_bytes(log_path)
    lines, tail = split_complete(buf)
    prev = GENESIS
    last_ts = None
    ids: set[str] = set()
    hashes: list[str] = []
    for n, ln in enumerate(lines, start=1):
        where = f"line {n}"
        try:
            raw = parse_line(ln)
            ev = Event.from_dict(raw)
            if not isinstance(ev.data, dict):
                raise ValueError("data is not an object")
        except (ValueError, KeyError, TypeError, UserError) as e:
            rep.problems.append(f"{where}: not a valid event ({e}).")
            rep.chain_ok = False
            prev = line_hash(ln)
            hashes.append(prev)
            continue
        if ev.id != f"evt_{n:06d}":
            rep.problems.append(f"{where}: id {ev.id!r} breaks the sequence (expected "
                                f"evt_{n:06d}).")
        if ev.prev != prev:
            rep.chain_ok = False
            rep.problems.append(f"{where} ({ev.id}): hash chain broken: prev does not match the "
                                "previous line (the log was edited).")
        if ev.actor not in ACTORS:
            rep.problems.append(f"{where} ({ev.id}): unknown actor {ev.actor!r}.")
        try:
            t = parse_ts(ev.ts)
            if t > limit:
                rep.problems.append(f"{where} ({ev.id}): dated {ev.ts}, in the future. "
                                    "`llmlab repair` moves it and every later event to "
                                    "quarantine.")
            elif last_ts is not None and t < last_ts:
                rep.problems.append(f"{where} ({ev.id}): dated {ev.ts}, before the event "
                                    "before it (the log is in time order).")
            last_ts = t
        except (UserError, TypeError):
            rep.problems.append(f"{where} ({ev.id}): invalid time {ev.ts!r}.")
        if ev.type not in PAYLOADS:
            rep.problems.append(f"{where} ({ev.id}): unknown event type {ev.type!r}.")
        else:
            try:
                check_payload(ev.type, ev.data)
            except Invalid as e:  # report, keep going
                rep.problems.append(f"{where} ({ev.id}): payload invalid: {e.problems[0]}")
        if ev.type in ("retraction", "misconception_resolved") and ev.data.get("target") not in ids:
            rep.problems.append(f"{where} ({ev.id}): refers to unknown earlier event "
                                f"{ev.data.get('target')!r}.")
        ids.add(ev.id)
        prev = line_hash(ln)
        hashes.append(prev)
    rep.events = len(lines)
    rep.torn_tail = len(tail)
    if tail:
        rep.problems.append(f"torn last line: {len(tail)} bytes without a newline after event "
                            f"{len(lines)}. Run `llmlab repair` to quarantine it.")
    if anchor is not None:
        problem = anchor_problem(anchor, len(hashes), lambda k: hashes[k - 1])
        if problem:
            rep.problems.append(problem)
    rep.ok = not rep.problems
    return rep
