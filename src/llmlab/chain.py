"""The complete prefix of the evidence log, checked event by event (no IO).

*The complete prefix* of `evidence.jsonl` is every line up to the first one that is not a
valid next event: newline-terminated, a JSON object, the next sequential id, `prev` equal
to the hash of the line before (the chain), a known type and actor, an object `data`, a
time that is not before the previous event's and not in the future. Readers fold the
prefix and warn about the rest; the write path refuses to append after damage. `log`
(reading and appending) and `integrity` (the tail anchor and `repair`) both build on this.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .core import parse_ts
from .errors import UserError
from .events import (ACTORS, GENESIS, MAX_SKEW, PAYLOADS, SCHEMA_VERSION, TEXT_MAX,
                     check_payload, is_event_id, line_hash, now_utc)
from .schema import Invalid

ANCHOR = "anchor.json"  # state/anchor.json: the last acknowledged event (see `integrity`)

@dataclass
class Tip:
    """Where the complete prefix of the log ends: bytes, line count, hash of the last line,
    and, when the log goes on past it, what is wrong there."""

    offset: int = 0
    count: int = 0
    last_hash: str = GENESIS
    last_id: str | None = None
    last_ts: str | None = None
    last_len: int = 0
    damage: str | None = None  # first problem after the complete prefix, one sentence
    warnings: list[str] = field(default_factory=list)


def future_limit(now: datetime | None = None) -> datetime:
    return (now or now_utc()) + MAX_SKEW


class Chain:
    """Checks lines one by one; `feed` returns False at the first one that does not
    continue the complete prefix (and records why in `damage`)."""

    def __init__(self, now: datetime | None = None, count: int = 0, offset: int = 0,
                 last_hash: str = GENESIS, last_ts: str | None = None, fast: bool = False):
        # fast: only the byte-level checks (newline, id, chain), for the first pass of a
        # full rebuild; `EventCheck` does the rest on the parsed events of the second.
        self.fast = fast
        self.limit = future_limit(now)
        self.count, self.offset, self.last_hash = count, offset, last_hash
        self._last_hash_b = last_hash.encode()  # what the next line's prev must be
        self.last_ts = last_ts
        self._last_t = parse_ts(last_ts) if last_ts else None
        self.last_len = 0
        self.damage: str | None = None
        self.last_event: dict | None = None
        self.hashes: dict[int, str] = {}  # line number -> hash, only for `keep`
        self.keep: int | None = None

    def feed(self, line: bytes, full: bool = False) -> bool:
        """Whether `line` continues the complete prefix. `full`: parse and check it even
        when `fast` (then `last_event` is this line's event when it is accepted)."""
        n = self.count + 1
        problem = self._problem(line, n, full)
        if problem:
            self.damage = problem
            return False
        h = line_hash(line)
        if n == self.keep:
            self.hashes[n] = h
        self.count, self.offset, self.last_hash, self.last_len = n, self.offset + len(line), h, \
            len(line)
        self._last_hash_b = h.encode()
        return True

    @property
    def last_id(self) -> str | None:
        """The id of the last line of the complete prefix (ids are sequential)."""
        return f"evt_{self.count:06d}" if self.count else None

    def _problem(self, line: bytes, n: int, full: bool = False) -> str | None:
        if not line.endswith(b"\n"):
            return (f"it ends with a torn, incomplete line ({len(line)} bytes without a newline) "
                    f"after event {n - 1}, probably from a crash mid-write.")
        if self.fast and not full:
            want = b'{"id":"evt_%06d",' % n  # how llmlab writes a line
            i = line.find(b'"prev":"', 0, 256)
            if (line.startswith(want) and i > 0
                    and line[i + 8:i + 72] == self._last_hash_b and line[i + 72:i + 73] == b'"'):
                return None
        try:
            ev = json.loads(line.decode("utf-8"))  # str: a BOM or invalid UTF-8 is damage too
        except ValueError:
            return not_json(line, n)
        if not isinstance(ev, dict):
            return f"line {n} is a JSON {type(ev).__name__}, not an event object."
        want = f"evt_{n:06d}"
        if ev.get("id") != want:
            return f"line {n} has id {ev.get('id')!r}, expected {want} (lines missing or added)."
        if ev.get("prev") != self.last_hash:
            return (f"the hash chain breaks at line {n} ({want}): its prev does not match the "
                    "line before it (the log was edited, or a line deleted).")
        if ev.get("v") != SCHEMA_VERSION:
            return f"line {n} ({want}) has schema version {ev.get('v')!r}."
        if ev.get("type") not in PAYLOADS or ev.get("actor") not in ACTORS:
            return f"line {n} ({want}) has an unknown type or actor."
        problem, t = check_event(ev, n, self._last_t, self.limit)
        if problem:
            return problem
        self._last_t, self.last_ts, self.last_event = t, ev["ts"], ev
        return None

    def tip(self, log_path: Path | None = None) -> Tip:
        tip = Tip(self.offset, self.count, self.last_hash, self.last_id, self.last_ts,
                  self.last_len, self.damage)
        if self.damage:
            tip.warnings.append(f"The evidence log is damaged: {self.damage} Only the "
                                f"{self.count} events before it count. Run `llmlab verify` "
                                "and `llmlab repair`.")
        return tip


def not_json(line: bytes, n: int) -> str:
    """The damage message for line `n` that is not one UTF-8 JSON value."""
    what = "blank" if not line.strip() else "not UTF-8 JSON"
    return f"line {n} is {what}, not an event."


_TEXT_MAX = TEXT_MAX


def _plain_observation(d: dict) -> bool:
    """Whether `d` is an observation payload as llmlab writes it, which the `Observation`
    model accepts as it is: exactly its four fields, ASCII strings (`check_payload` refuses
    a lone surrogate, which JSON can spell), the quality a float in [0, 1], the evidence 1 to
    20,000 characters and the probe at most 20,000. Anything else (False) goes through the
    model, which accepts a superset of these and words what is wrong. (Once per observation
    of a rebuild: the model costs several times this.)"""
    if len(d) != 4:
        return False
    try:
        c, q, e, p = d["concept"], d["quality"], d["evidence"], d["probe"]
    except KeyError:
        return False
    return (type(q) is float and 0.0 <= q <= 1.0 and type(c) is str and c.isascii()
            and type(e) is str and e.isascii() and 0 < len(e) <= _TEXT_MAX
            and type(p) is str and p.isascii() and len(p) <= _TEXT_MAX)


def check_event(ev: dict, n: int, last_t: datetime | None,
                limit: datetime) -> tuple[str | None, datetime | None]:
    """What is wrong with parsed event `ev` as line `n` (after the byte-level checks), and
    its time. (Runs on every event of a rebuild: the id is spelled only for a message.)"""
    if not isinstance(ev, dict):
        return f"line {n} is a JSON {type(ev).__name__}, not an event object.", None
    if ev.get("v") != SCHEMA_VERSION:
        return f"line {n} (evt_{n:06d}) has schema version {ev.get('v')!r}.", None
    if ev.get("type") not in PAYLOADS or ev.get("actor") not in ACTORS:
        return f"line {n} (evt_{n:06d}) has an unknown type or actor.", None
    data = ev.get("data")
    if not isinstance(data, dict):
        return f"line {n} (evt_{n:06d}) has no data object.", None
    try:
        if not (ev["type"] == "observation" and _plain_observation(data)):
            check_payload(ev["type"], data)
    except Invalid as e:
        return (f"line {n} (evt_{n:06d}) has an invalid {ev['type']} payload "
                f"({e.problems[0]})."), None
    if "target" in data and not (is_event_id(data["target"]) and int(data["target"][4:]) < n):
        return f"line {n} (evt_{n:06d}) refers to {data['target']!r}, not an earlier event.", None
    try:
        t = parse_ts(ev.get("ts"))
    except UserError:
        return f"line {n} (evt_{n:06d}) has an invalid time {ev.get('ts')!r}.", None
    if t > limit:
        return (f"line {n} (evt_{n:06d}) is dated {ev['ts']}, in the future (it and every "
                "later event stop counting until repaired)."), None
    if last_t is not None and t < last_t:
        return f"line {n} (evt_{n:06d}) is dated {ev['ts']}, before the event before it.", None
    return None, t


class Damaged(Exception):
    def __init__(self, n: int, problem: str):
        super().__init__(problem)
        self.n, self.problem = n, problem


def checked(events, now: datetime | None = None):
    """`events` (parsed, in order from line 1), checked by `check_event`; raises `Damaged`
    at the first bad one (the second pass of a full rebuild)."""
    limit = future_limit(now)
    last_t = None
    for n, ev in enumerate(events, 1):
        problem, last_t = check_event(ev, n, last_t, limit)
        if problem:
            raise Damaged(n, problem)
        yield ev


def anchor_problem(anchor: dict, count: int, hash_at: Callable[[int], str]) -> str | None:
    """What is wrong with a log of `count` complete lines against the anchor, if anything."""
    k = anchor["count"]
    if k == 0:
        return None
    if count < k:
        return (f"the log is shorter than its tail anchor: {anchor.get('id')} was recorded "
                f"(state/{ANCHOR}) but the log has only {count} events: acknowledged events "
                "were removed. Restore the log from a backup or git; `llmlab repair` accepts "
                "the log as it is now.")
    if hash_at(k) != anchor["hash"]:
        return (f"the log differs at its tail anchor: {anchor.get('id')} is not the line that "
                f"was recorded (state/{ANCHOR}): it was edited. Restore the log from a backup "
                "or git; `llmlab repair` accepts the log as it is now.")
    return None


def lines_of(buf: bytes):
    """The lines of `buf`, each with its newline (the last may lack one)."""
    start = 0
    while start < len(buf):
        end = buf.find(b"\n", start)
        end = len(buf) if end < 0 else end + 1
        yield buf[start:end]
        start = end
