"""The derived-state cache: `state/snapshot.json`, safe to delete.

The snapshot stores the folded `State` plus where in the log it stops (byte offset and
the hash of the last folded line) and a fingerprint of the curriculum and parameters.
`current` uses it only when all of these still match, then folds just the new lines, so
an append does not re-read the whole log.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

from . import log as log_mod
from .config import MasteryParams
from .curriculum import Curriculum
from .events import line_hash
from .files import atomic_write
from .state import State, derive, extend

FORMAT = 2


def fingerprint(cur: Curriculum, p: MasteryParams) -> str:
    key = json.dumps([FORMAT, [(m.id, m.order, list(m.concepts)) for m in cur.modules],
                      p.model_dump()], sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def load(path: Path, fp: str) -> tuple[State, int, int, str] | None:
    """(state, offset, line_start, last_hash) from the cache, or None if unusable."""
    try:
        d = json.loads(path.read_bytes())
        if d.get("fingerprint") != fp:
            return None
        return State.from_dict(d["state"]), d["offset"], d["line_start"], d["last_hash"]
    except Exception:  # any unreadable or wrong-shape cache is simply rebuilt from the log
        return None


def save(path: Path, fp: str, state: State, offset: int, line_start: int, last_hash: str) -> None:
    doc = {"fingerprint": fp, "offset": offset, "line_start": line_start,
           "last_hash": last_hash, "state": state.to_dict()}
    try:
        atomic_write(path, json.dumps(doc, separators=(",", ":")), mode=0o600)
    except OSError:
        pass  # a cache that cannot be written is rebuilt next time


def current(log_path: Path, cache_path: Path, cur: Curriculum, p: MasteryParams,
            use_cache: bool = True) -> tuple[State, log_mod.Tip]:
    """The state folded over every complete line of the log, using the cache when valid."""
    fp = fingerprint(cur, p)
    cached = load(cache_path, fp) if use_cache else None
    if cached is not None:
        st, offset, line_start, last_hash = cached
        buf = log_mod.read_bytes(log_path, line_start)
        head, rest = buf[: offset - line_start], buf[offset - line_start:]
        if offset == 0 or (head.endswith(b"\n") and line_hash(head) == last_hash):
            lines, _tail = log_mod.split_complete(rest)
            if not lines:
                return st, log_mod.Tip(offset, st.events, last_hash, st.last_id, st.last_ts)
            st = extend(st, cur, lambda: from_scratch(log_path, cur, p)[0],
                        log_mod.parse_lines(lines), p)
            end = offset + sum(map(len, lines))
            tip = log_mod.Tip(end, st.events, line_hash(lines[-1]), st.last_id, st.last_ts)
            save(cache_path, fp, st, end, end - len(lines[-1]), tip.last_hash)
            return st, tip
    state, tip = from_scratch(log_path, cur, p)
    save(cache_path, fp, state, tip.offset, tip.offset - tip.last_len, tip.last_hash)
    return state, tip


def advance(log_path: Path, cache_path: Path, cur: Curriculum, p: MasteryParams, state: State,
            tip: log_mod.Tip, line: bytes) -> None:
    """Fold one just-appended line into `state` (which the caller hands over) and cache it."""
    state = extend(state, cur, lambda: from_scratch(log_path, cur, p)[0],
                   log_mod.parse_lines([line]), p)
    end = tip.offset + len(line)
    save(cache_path, fingerprint(cur, p), state, end, tip.offset, line_hash(line))


def from_scratch(log_path: Path, cur: Curriculum, p: MasteryParams) -> tuple[State, log_mod.Tip]:
    """Fold the whole log, streamed in two passes (retractions first)."""
    tip, retracted = log_mod.scan(log_path)
    events = itertools.islice(log_mod.iter_parsed(log_path), tip.count)  # not past the scan
    return derive(cur, events, p, retracted), tip
