"""`state/brief.json`: the session-start brief, cached so the hook usually needs no state engine.

Like every file in `state/`, it is derived and safe to delete. It holds the brief as a list
of time segments, each valid from one moment to the next, and is used only when its key
matches: the evidence log's and `llmlab.toml`'s size and modification time, every
curriculum file's size and modification time, and the llmlab version.

Why segments are exact: with no new events the brief depends on time only through
staleness (due reviews, exit readiness, next probes), and a concept can only turn stale,
never back. So the times at which some concept turns stale (found by bisection, to the
minute) cut the coming days into segments over which every flag is constant, and each
segment's brief can be computed in advance, stamped with its start time ("as of").
The stop hook computes a week of segments in the background after every turn that changed
the log; a session start that finds no segment computes just the current one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from .. import __version__
from ..core import LOG_FILE, resolve_curriculum

FILE = "brief.json"
FORMAT = 1
HORIZON = timedelta(days=7)  # how far ahead the background refresh computes segments
TOLERANCE = timedelta(minutes=1)  # precision of a stale flip time
MAX_SEGMENTS = 100
LOG_KEY = 3  # the index of the evidence log's size and time in the key


def _stat(p: Path) -> list:
    try:
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [None, None]


def key(root: Path, curriculum_ref: str, probes: int) -> list:
    cdir = resolve_curriculum(root, curriculum_ref)
    files = []
    for dirpath, dirnames, filenames in os.walk(cdir):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            files.append([str(p.relative_to(cdir)), *_stat(p)])
    return [FORMAT, __version__, probes, _stat(root / LOG_FILE),  # LOG_KEY: the log's stat
            _stat(root / "llmlab.toml"), str(cdir), files]


def read(root: Path, k: list, now: datetime) -> str | None:
    """The cached brief text for `now`, or None when missing, unreadable, for other inputs
    or with no segment covering `now`."""
    try:
        d = json.loads((root / "state" / FILE).read_bytes())
        if d["key"] != k:
            return None
        for seg in d["segments"]:
            if datetime.fromisoformat(seg["from"]) <= now < datetime.fromisoformat(seg["until"]):
                return seg["text"] if isinstance(seg["text"], str) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return None


def read_stale(root: Path, k: list, now: datetime) -> str | None:
    """The cached brief for the same curriculum, settings and version but an older log (the
    log changed since it was computed), for `now` or its last segment; None otherwise."""
    try:
        d = json.loads((root / "state" / FILE).read_bytes())
        old = d["key"]
        if not isinstance(old, list) or len(old) != len(k) or \
                [x for i, x in enumerate(old) if i != LOG_KEY] != \
                [x for i, x in enumerate(k) if i != LOG_KEY] or not d["segments"]:
            return None
        segs = d["segments"]
        seg = next((x for x in segs if datetime.fromisoformat(x["from"]) <= now
                    < datetime.fromisoformat(x["until"])), segs[-1])
        return seg["text"] if isinstance(seg["text"], str) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write(root: Path, k: list, segments: list[tuple[datetime, datetime, str]]) -> None:
    from ..files import atomic_write

    doc = {"key": k, "segments": [{"from": a.isoformat(), "until": b.isoformat(), "text": t}
                                  for a, b, t in segments]}
    try:
        atomic_write(root / "state" / FILE, json.dumps(doc).encode())
    except OSError:
        pass  # a cache that cannot be written is computed again next time


def flip_times(stale: Callable[[str, datetime], bool], ids: list[str], now: datetime,
               horizon: datetime) -> list[datetime]:
    """When, between `now` and `horizon`, each concept that is fresh now turns stale: the
    first minute at which it is stale (bisection; `stale(id, t)` is monotone in t)."""
    out = set()
    for cid in ids:
        if stale(cid, now) or not stale(cid, horizon):
            continue
        lo, hi = now, horizon
        while hi - lo > TOLERANCE:
            mid = lo + (hi - lo) / 2
            if stale(cid, mid):
                hi = mid
            else:
                lo = mid
        out.add(hi)
    return sorted(out)


def segments(flips: list[datetime], now: datetime, horizon: datetime,
             text_at: Callable[[datetime], str], full: bool) -> list[tuple[datetime, datetime, str]]:
    """(from, until, text) over [now, horizon), cut at the flips; only the first one unless
    `full`."""
    bounds = [now, *[f for f in flips if now < f < horizon], horizon][: MAX_SEGMENTS + 1]
    pairs = list(zip(bounds, bounds[1:]))
    return [(a, b, text_at(a)) for a, b in (pairs if full else pairs[:1])]
