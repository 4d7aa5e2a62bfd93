"""`state/brief.json`: the session-start brief, cached so the hook usually needs no pydantic.

Like every file in `state/`, it is derived and safe to delete. It is used only when
- its key matches: the evidence log's and `llmlab.toml`'s size and modification time, every
  curriculum file's size and modification time, and the llmlab version; and
- `now` is before its `valid_until`: the brief depends on time only through staleness (due
  reviews, exit readiness, next probes), and with no new events a concept can only turn
  stale, never back, so if no flag differs between the time of computing and
  `valid_until`, none differs in between (see `valid_until`).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

from .. import __version__

FILE = "brief.json"
FORMAT = 1
HORIZONS = (timedelta(days=3), timedelta(days=1), timedelta(hours=12), timedelta(hours=1),
            timedelta(minutes=10))


def curriculum_dir(root: Path, ref: str) -> Path:
    """`workspace.resolve_curriculum` without importing the curriculum loader."""
    if ref == "default":
        local = root / "curriculum"
        return local if (local / "course.toml").is_file() else \
            Path(__file__).resolve().parents[1] / "curriculum" / "default"
    p = Path(ref).expanduser()
    return p if p.is_absolute() else root / p


def _stat(p: Path) -> list:
    try:
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]
    except OSError:
        return [None, None]


def key(root: Path, curriculum_ref: str, probes: int) -> list:
    cdir = curriculum_dir(root, curriculum_ref)
    files = []
    for dirpath, dirnames, filenames in os.walk(cdir):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            files.append([str(p.relative_to(cdir)), *_stat(p)])
    return [FORMAT, __version__, probes, _stat(root / "evidence.jsonl"),
            _stat(root / "llmlab.toml"), str(cdir), files]


def read(root: Path, k: list, now: datetime) -> str | None:
    """The cached brief text, or None when missing, unreadable, stale or for other inputs."""
    try:
        d = json.loads((root / "state" / FILE).read_bytes())
        if d["key"] != k or now >= datetime.fromisoformat(d["valid_until"]):
            return None
        return d["text"] if isinstance(d["text"], str) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write(root: Path, k: list, text: str, valid_until: datetime) -> None:
    from ..snapshot import atomic_write

    doc = {"key": k, "valid_until": valid_until.isoformat(), "text": text}
    try:
        atomic_write(root / "state" / FILE, json.dumps(doc).encode())
    except OSError:
        pass  # a cache that cannot be written is computed again next time


def valid_until(stale_at, now: datetime) -> datetime | None:
    """The longest horizon over which no concept's stale flag changes; `stale_at(t)` gives
    the flags at time t. None when even the shortest horizon sees a change."""
    flags = stale_at(now)
    for h in HORIZONS:
        if stale_at(now + h) == flags:
            return now + h
    return None
