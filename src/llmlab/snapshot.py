"""The derived-state cache: `state/snapshot.json`, safe to delete.

The snapshot stores the folded `State` plus where in the log it stops (byte offset and
the hash of the last folded line) and a fingerprint of the curriculum and parameters.
`current` uses it only when all of these still match, then folds just the new lines, so
an append does not re-read the whole log.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from . import log as log_mod
from .config import MasteryParams
from .curriculum import Curriculum
from .core import parse_ts
from .errors import UserError
from .events import line_hash
from .chain import lines_of
from .files import atomic_write
from .schema import dump
from .state import State, derive, extend

FORMAT = 3  # 3: the state keeps the tutor's notes


def fingerprint(cur: Curriculum, p: MasteryParams) -> str:
    key = json.dumps([FORMAT, [(m.id, m.order, list(m.concepts)) for m in cur.modules],
                      dump(p)], sort_keys=True)
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


STALE_TMP_S = 600  # a temp file this old belongs to a writer that was killed


def clean_stale_tmp(folder: Path) -> int:
    """Remove `.NAME.*.tmp` files that killed writers left behind (a live writer's temp
    file is seconds old). Returns how many."""
    n = 0
    now = time.time()
    try:
        for f in folder.glob(".*.tmp"):
            try:
                if now - f.stat().st_mtime > STALE_TMP_S:
                    f.unlink()
                    n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


def save(path: Path, fp: str, state: State, offset: int, line_start: int, last_hash: str) -> None:
    clean_stale_tmp(path.parent)
    doc = {"fingerprint": fp, "offset": offset, "line_start": line_start,
           "last_hash": last_hash, "state": state.to_dict()}
    try:
        atomic_write(path, json.dumps(doc, separators=(",", ":")), mode=0o600, durable=False)
    except OSError:
        pass  # a cache that cannot be written is rebuilt next time


def current(log_path: Path, cache_path: Path, cur: Curriculum, p: MasteryParams,
            use_cache: bool = True) -> tuple[State, log_mod.Tip]:
    """The state folded over the complete prefix of the log (see `integrity`), using the
    cache when valid. `tip.damage`/`tip.warnings` say what follows the prefix, if anything."""
    from .chain import Chain, future_limit

    fp = fingerprint(cur, p)
    cached = load(cache_path, fp) if use_cache else None
    if cached is not None:
        st, offset, line_start, last_hash = cached
        buf = log_mod.read_bytes(log_path, line_start)
        head, rest = buf[: offset - line_start], buf[offset - line_start:]
        fresh = st.last_ts is None or parse_ts(st.last_ts) <= future_limit()
        if fresh and (offset == 0 and line_start == 0 or (
                head.endswith(b"\n") and line_hash(head) == last_hash)):
            chain = Chain(count=st.events, offset=offset, last_hash=last_hash,
                          last_ts=st.last_ts)
            lines = []
            for ln in lines_of(rest):
                if not chain.feed(ln):
                    break
                lines.append(ln)
            tip = chain.tip(log_path)
            if not lines:
                return st, tip
            try:
                st = extend(st, cur, lambda: from_scratch(log_path, cur, p)[0],
                            log_mod.parse_lines(lines), p)
            except _FOLD_ERRORS:
                return from_scratch(log_path, cur, p, cache_path, fp)
            if tip.damage is None:
                save(cache_path, fp, st, tip.offset, tip.offset - tip.last_len, tip.last_hash)
            return st, tip
    return from_scratch(log_path, cur, p, cache_path, fp)


_FOLD_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError, UserError)




def advance(log_path: Path, cache_path: Path, cur: Curriculum, p: MasteryParams, state: State,
            tip: log_mod.Tip, line: bytes) -> None:
    """Fold one just-appended line into `state` (which the caller hands over) and cache it."""
    state = extend(state, cur, lambda: from_scratch(log_path, cur, p)[0],
                   log_mod.parse_lines([line]), p)
    end = tip.offset + len(line)
    save(cache_path, fingerprint(cur, p), state, end, tip.offset, line_hash(line))


def from_scratch(log_path: Path, cur: Curriculum, p: MasteryParams, cache_path: Path | None = None,
                 fp: str | None = None) -> tuple[State, log_mod.Tip]:
    """Fold the complete prefix, streamed: in one pass when the log is sound
    (`rebuild.one_pass`), else in two (retractions first).

    An event that passes the line checks but whose payload the fold cannot use (a field
    edited by hand) ends the prefix there: the fold is redone up to it.
    """
    from .rebuild import one_pass

    done = one_pass(log_path, cur, p, errors=_FOLD_ERRORS)  # a sound log: one pass
    state, tip = done if done is not None else two_passes(log_path, cur, p)
    if cache_path is not None and tip.damage is None:
        save(cache_path, fp, state, tip.offset, tip.offset - tip.last_len, tip.last_hash)
    return state, tip


def two_passes(log_path: Path, cur: Curriculum, p: MasteryParams) -> tuple[State, log_mod.Tip]:
    """`from_scratch` in two passes, which find and word the damage: the hash chain and
    the retractions (`log.scan`), then the checked events (`log.iter_checked`)."""
    from .chain import Damaged

    tip, retracted = log_mod.scan(log_path)
    limit = tip.count
    while True:
        done = [0]
        events = log_mod.iter_checked(log_path, limit, done)
        try:
            state = derive(cur, events, p, retracted)
            break
        except Damaged as e:  # found by the second pass's event checks
            bad, why = e.n, e.problem
        except _FOLD_ERRORS + (UnicodeDecodeError,):
            bad = done[0]
            why = f"line {bad} (evt_{bad:06d}) has a payload the state cannot use."
        limit = bad - 1
        retracted = {t: r for t, r in retracted.items() if int(r[4:]) <= limit}
        tip = _prefix_tip(log_path, limit)
        tip.damage = why
        tip.warnings = [f"The evidence log is damaged: {why} Only the {limit} events before "
                        "it count. Run `llmlab verify` and `llmlab repair`."]
    tip.last_ts = state.last_ts
    return state, tip


def _prefix_tip(log_path: Path, count: int) -> log_mod.Tip:
    from .chain import Chain

    chain = Chain()
    with open(log_path, "rb") as f:
        for line in f:
            if chain.count >= count or not chain.feed(line):
                break
    return chain.tip()
