"""The log's integrity beyond the complete prefix (`chain`): the tail anchor and `repair`.

*The tail anchor* (`state/anchor.json`) records the id, line count and hash of the last
event llmlab appended. A log that is shorter than the anchor, or whose line at the anchor
hashes differently, lost or changed acknowledged events, which the chain alone cannot
show for the last line. Deleting `state/` forgets the anchor (nothing else is lost).

`repair` only truncates and moves: the damaged part goes to `evidence.quarantine.jsonl`,
never silently dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .chain import ANCHOR, Chain, Tip, anchor_problem, lines_of
from .errors import UserError
from .events import line_hash
from .log import lock_for, os_message, read_bytes, split_complete



# ---------------------------------------------------------------- the tail anchor

def anchor_path(state_dir: Path) -> Path:
    return state_dir / ANCHOR


def read_anchor(state_dir: Path) -> dict | None:
    try:
        d = json.loads(anchor_path(state_dir).read_bytes())
        if isinstance(d, dict) and isinstance(d.get("count"), int) and isinstance(d.get("hash"), str):
            return d
    except (OSError, ValueError):
        pass
    return None


def write_anchor(state_dir: Path, count: int, last_hash: str) -> None:
    """Best effort (a missing anchor only weakens the tail check): temp file and rename,
    without an fsync of its own (the log's append has just been fsynced; an anchor lost
    in a crash is an older one, which still checks a prefix)."""
    doc = {"id": f"evt_{count:06d}" if count else None, "count": count, "hash": last_hash}
    path = anchor_path(state_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True) if tmp.parent.is_dir() else None


def check_anchor(log_path: Path, state_dir: Path, tip: Tip) -> str | None:
    anchor = read_anchor(state_dir)
    if anchor is None or anchor["count"] == 0:
        return None
    if anchor["count"] == tip.count:
        return anchor_problem(anchor, tip.count, lambda k: tip.last_hash)
    if anchor["count"] > tip.count:
        return anchor_problem(anchor, tip.count, lambda k: "")
    chain = Chain()
    chain.keep = anchor["count"]
    with open(log_path, "rb") as f:
        for line in f:
            if chain.count >= anchor["count"] or not chain.feed(line):
                break
    return anchor_problem(anchor, chain.count, lambda k: chain.hashes.get(k, ""))


# ---------------------------------------------------------------- repair

def repair(log_path: Path, state_dir: Path) -> dict:
    """Move the damaged part (a torn tail; an invalid line and everything after it) to
    evidence.quarantine.jsonl and truncate the log to its complete prefix; re-anchor.

    Works on a full disk: truncation needs no space. If the quarantine record cannot be
    written, a torn tail (never acknowledged: its writer died or failed before fsync) is
    still cut and returned in the result, so it is shown, not lost; complete events after
    a damaged line are never cut without their quarantine copy.
    """
    quarantine = log_path.with_name("evidence.quarantine.jsonl")
    with lock_for(log_path):
        buf = read_bytes(log_path)
        chain = Chain()
        for line in lines_of(buf):
            if not chain.feed(line):
                break
        cut = buf[chain.offset:]
        anchor = read_anchor(state_dir)
        anchor_note = None
        if anchor is not None:
            anchor_note = anchor_problem(anchor, chain.count,
                                         lambda k: _hash_of_line(buf, k))
        res = {"repaired": False, "quarantined_bytes": 0, "quarantine": str(quarantine),
               "events": chain.count, "damage": chain.damage, "anchor": anchor_note}
        if cut:
            lines, tail = split_complete(cut)
            record = json.dumps({"offset": chain.offset, "bytes": len(cut),
                                 "reason": chain.damage,
                                 "fragment": cut.decode("utf-8", errors="replace")},
                                ensure_ascii=False) + "\n"
            try:
                _append_fsync(quarantine, record.encode("utf-8"))
            except OSError as e:
                if lines:  # complete lines would be lost: refuse, the log is unchanged
                    raise UserError(os_message(e, quarantine, "write the quarantine file")
                                    + f" The log is unchanged; {len(lines)} line(s) after the "
                                    "damage need a quarantine copy before they are cut.") from None
                res["fragment"] = record  # shown to the user instead of a file
                res["quarantine_error"] = os_message(e, quarantine, "write")
            try:
                with open(log_path, "r+b") as f:
                    f.truncate(chain.offset)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                raise UserError(os_message(e, log_path, "truncate")) from None
            res.update(repaired=True, quarantined_bytes=len(cut))
        if cut or anchor_note:
            write_anchor(state_dir, chain.count, chain.last_hash)
            (state_dir / "snapshot.json").unlink(missing_ok=True)
            res["repaired"] = True
        return res




def _hash_of_line(buf: bytes, k: int) -> str:
    lines = buf.split(b"\n", k)
    return line_hash(lines[k - 1]) if len(lines) >= k else ""


def _append_fsync(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
            raise
    finally:
        os.close(fd)
