"""What the site needs from the log beyond the derived state, kept up to date incrementally.

The derived state (`snapshot`) already folds only new lines. The pages also need, per
concept, its latest evidence rows and how many there are; the events per day (the activity
chart); and the prequential replay (the model page). `Aggregates` folds events into exactly
that, and is cached in `state/site.json` with where in the log it stops: line count, byte
offset and start of the last line, the hash of that line, its time.

`current(ws, count)` brings the cache up to the state's line count by reading only the lines
after it. It folds the whole log instead when there is no usable cache (absent, unreadable,
another format, curriculum or parameters), when the log no longer continues where the cache
stops (edited, rewritten or repaired: the hash of the last folded line differs), or when a
new line is a retraction (it changes rows already shown). Both ways give the same
aggregates: `test_site_incremental` compares the resulting sites byte for byte.

Like every cache under `state/`, it is derived, safe to delete, and never the truth.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import log as log_mod
from ..chain import Chain, lines_of
from ..config import MasteryParams
from ..errors import UserError
from ..events import GENESIS, line_hash
from ..files import atomic_write
from ..modelcheck import Replay
from ..schema import dump
from ..workspace import Workspace

FORMAT = 1
CACHE = "site.json"
EVIDENCE_KEEP = 60  # evidence rows per concept shown on its page and in its JSON twin


def _event_text(ev: dict) -> str:
    """The words an event carries (evidence, claim, notes...), for evidence lists."""
    d = ev["data"]
    for k in ("evidence", "claim", "notes", "reason", "text"):
        if d.get(k):
            return str(d[k])
    if ev["type"] == "prediction":
        return f"predicted {d['experiment']}.{d['quantity']} = {d['value']:g}" + (
            f" ({d['note']})" if d.get("note") else "")
    if ev["type"] == "experiment_run":
        return f"lab run {d['experiment']} ({d['run_id']})"
    return ""


def _evidence_row(ev: dict, retracted: dict[str, str]) -> dict:
    d = ev["data"]
    return {"id": ev["id"], "ts": ev["ts"], "type": ev["type"], "actor": ev["actor"],
            "quality": d.get("quality"), "text": _event_text(ev), "probe": d.get("probe", ""),
            "quote": d.get("quote", ""), "passed": d.get("passed"),
            "retracted_by": retracted.get(ev["id"])}


@dataclass
class Aggregates:
    """The log-wide inputs of the pages, folded event by event (plain JSON when saved)."""

    rows: dict[str, list[dict]]  # concept -> its latest EVIDENCE_KEEP rows, oldest first
    totals: dict[str, int]  # concept -> how many evidence rows it has in all
    replay: Replay
    per_day: dict[str, int] = field(default_factory=dict)  # UTC day -> events
    opened: dict[str, str] = field(default_factory=dict)  # misconception event -> concept
    # where in the log the fold stops
    events: int = 0
    offset: int = 0
    line_start: int = 0
    last_hash: str = GENESIS
    last_ts: str | None = None

    @classmethod
    def empty(cls, concept_ids, p: MasteryParams) -> Aggregates:
        return cls(rows={c: [] for c in concept_ids}, totals={c: 0 for c in concept_ids},
                   replay=Replay(p))

    def fold(self, events: list[dict], retracted: dict[str, str]) -> None:
        """Fold `events` (in log order); `retracted`: target id -> retraction id."""
        rows, totals, per_day, opened = self.rows, self.totals, self.per_day, self.opened
        for ev in events:
            d = ev["data"]
            day = ev["ts"][:10]
            per_day[day] = per_day.get(day, 0) + 1
            typ = ev["type"]
            if typ == "observation" and ev["id"] not in retracted:
                self.replay.feed(d["concept"], d["quality"], ev["ts"])
            cids = []
            if d.get("concept"):
                cids.append(d["concept"])
            cids += [c for c in d.get("concepts", ()) if c not in cids]
            if typ == "misconception_opened":
                opened[ev["id"]] = d["concept"]
            elif typ == "misconception_resolved" and d.get("target") in opened:
                cids.append(opened[d["target"]])
            if not cids:
                continue
            row = _evidence_row(ev, retracted)
            for cid in cids:
                if cid in rows:
                    keep = rows[cid]
                    keep.append(row)
                    if len(keep) > EVIDENCE_KEEP:
                        del keep[0]
                    totals[cid] += 1

    def to_json(self, key: str) -> bytes:
        doc = {"key": key, "events": self.events, "offset": self.offset,
               "line_start": self.line_start, "last_hash": self.last_hash,
               "last_ts": self.last_ts, "rows": self.rows, "totals": self.totals,
               "per_day": self.per_day, "opened": self.opened, "replay": self.replay.to_dict()}
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes, key: str, p: MasteryParams) -> Aggregates | None:
        try:
            d = json.loads(raw)
            if d.get("key") != key:
                return None
            return cls(rows=d["rows"], totals=d["totals"], replay=Replay(p, d["replay"]),
                       per_day=d["per_day"], opened=d["opened"], events=d["events"],
                       offset=d["offset"], line_start=d["line_start"],
                       last_hash=d["last_hash"], last_ts=d["last_ts"])
        except Exception:  # any unreadable or wrong-shape cache is rebuilt from the log
            return None


def cache_key(concept_ids, p: MasteryParams) -> str:
    """What the cached aggregates depend on besides the log."""
    key = json.dumps([FORMAT, EVIDENCE_KEEP, list(concept_ids), dump(p)], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _tail(log_path: Path, agg: Aggregates, count: int) -> list[dict] | None:
    """Events agg.events+1 .. count, read from where `agg` stops, or None when the log does
    not continue there (or a new line is a retraction)."""
    buf = log_mod.read_bytes(log_path, agg.line_start)
    head, rest = buf[: agg.offset - agg.line_start], buf[agg.offset - agg.line_start:]
    if agg.events and not (head.endswith(b"\n") and line_hash(head) == agg.last_hash):
        return None
    if not agg.events and agg.offset:
        return None
    chain = Chain(count=agg.events, offset=agg.offset, last_hash=agg.last_hash,
                  last_ts=agg.last_ts)
    lines = []
    for ln in lines_of(rest):
        if len(lines) == count - agg.events:
            break
        if not chain.feed(ln):
            return None
        lines.append(ln)
    if len(lines) != count - agg.events:
        return None
    if not lines:
        return []
    events = log_mod.parse_lines(lines)
    if any(ev["type"] == "retraction" for ev in events):
        return None
    agg.events, agg.offset, agg.last_hash = chain.count, chain.offset, chain.last_hash
    agg.line_start, agg.last_ts = chain.offset - chain.last_len, chain.last_ts
    return events


def _whole(log_path: Path, concept_ids, p: MasteryParams, count: int) -> Aggregates:
    """The aggregates of the log's first `count` lines (the lines the state covers)."""
    agg = Aggregates.empty(concept_ids, p)
    lines = []
    if count:
        for ln in lines_of(log_mod.read_bytes(log_path)):
            if len(lines) == count or not ln.endswith(b"\n"):
                break
            lines.append(ln)
    events = log_mod.parse_lines(lines)
    agg.fold(events, {ev["data"]["target"]: ev["id"] for ev in events
                      if ev["type"] == "retraction"})
    agg.events = len(lines)
    agg.offset = sum(map(len, lines))
    if lines:
        agg.line_start, agg.last_hash = agg.offset - len(lines[-1]), line_hash(lines[-1])
        agg.last_ts = events[-1]["ts"]
    return agg


def current(ws: Workspace, count: int, force: bool = False) -> tuple[Aggregates, str]:
    """The aggregates of the log's first `count` lines (the state's event count), and how
    they were made: "cached" (nothing new), "incremental" (only the new lines read) or
    "full" (the whole log read: no usable cache, a mismatch, a retraction, or `force`)."""
    cur, p = ws.curriculum, ws.config.mastery
    key = cache_key(cur.concepts, p)
    path = ws.state_dir / CACHE
    agg = None
    if not force:
        try:
            agg = Aggregates.from_json(path.read_bytes(), key, p)
        except OSError:
            agg = None
    mode = "full"
    if agg is not None and agg.events <= count:
        try:
            new = _tail(ws.log_path, agg, count)
        except (OSError, ValueError, KeyError, TypeError, UserError):
            new = None
        if new is not None:
            if not new:
                return agg, "cached"
            try:
                agg.fold(new, {})  # a retraction only ever targets an earlier event
                mode = "incremental"
            except (KeyError, TypeError, ValueError, AttributeError):
                agg = None
        else:
            agg = None
    else:
        agg = None
    if agg is None:
        agg = _whole(ws.log_path, cur.concepts, p, count)
    try:
        ws.state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(path, agg.to_json(key), mode=0o600)
    except OSError:
        pass  # a cache that cannot be written is rebuilt next time
    return agg, mode
