"""What every part of llmlab agrees on about a workspace on disk, in the standard library only.

The engine and the Claude Code hooks both import this module; the hooks must start fast,
so nothing here imports pydantic, typer, rich or torch. It owns the file names, finding a
workspace's root and its curriculum folder, reading the tail of the evidence log and parsing event timestamps.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from .errors import UserError

CONFIG_FILE = "llmlab.toml"
LOG_FILE = "evidence.jsonl"
STATE_DIR = "state"
SITE_DIR = "site"
RUNS_DIR = "lab/runs"
TAIL_BYTES = 65536  # enough for the last event of any log (an event is at most ~60 KB)


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds llmlab.toml, or None."""
    try:
        here = start.expanduser().resolve()
    except OSError:
        return None
    for d in (here, *here.parents):
        if (d / CONFIG_FILE).is_file():
            return d
    return None


def default_curriculum() -> Path:
    """The course that ships with the package."""
    return Path(__file__).resolve().parent / "curriculum" / "default"


def resolve_curriculum(root: Path, ref: str) -> Path:
    """The curriculum folder a workspace uses: `default` means `root/curriculum` when that
    holds a course (a local copy to edit), else the shipped default course."""
    if ref == "default":
        local = root / "curriculum"
        return local if (local / "course.toml").is_file() else default_curriculum()
    p = Path(ref).expanduser()
    return p if p.is_absolute() else root / p


def read_tail(path: Path, n: int = TAIL_BYTES) -> bytes:
    """The last `n` bytes of a file (b"" when it is missing or unreadable)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read()
    except OSError:
        return b""


def torn_tail(log_path: Path) -> int:
    """Bytes after the last newline of the log: a torn last line (0 when it ends cleanly)."""
    buf = read_tail(log_path)
    return len(buf) - buf.rfind(b"\n") - 1 if buf else 0


def last_event(log_path: Path) -> dict | None:
    """The last complete event of the log, reading only its tail, or None."""
    buf = read_tail(log_path)
    end = buf.rfind(b"\n")
    if end < 0:
        return None
    try:
        ev = json.loads(buf[buf.rfind(b"\n", 0, end) + 1:end])
    except ValueError:
        return None
    return ev if isinstance(ev, dict) else None


def parse_ts(s: str) -> datetime:
    """An RFC 3339 timestamp with a time zone, as UTC; a user error otherwise."""
    try:
        t = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError, OverflowError):
        raise UserError(
            f"'{s}' is not an RFC 3339 timestamp. Use e.g. 2026-11-22T10:00:00Z."
        ) from None
    if t.tzinfo is None:
        raise UserError(f"Timestamp '{s}' has no time zone. Add 'Z' for UTC, e.g. {s}Z.")
    try:
        return t.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00
        raise UserError(f"Timestamp '{s}' is out of range. Use a time near now.") from None


def parse_ts_or_none(s: object) -> datetime | None:
    """`parse_ts` for readers that skip what they cannot read (the hooks)."""
    try:
        return parse_ts(s) if isinstance(s, str) else None
    except UserError:
        return None
