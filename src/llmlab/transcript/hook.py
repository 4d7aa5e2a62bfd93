"""A Claude Code hook that refreshes the transcript after each turn.

`install` merges a `Stop` hook into the project's `.claude/settings.json`: existing
settings and hooks are kept, an existing copy of ours is not added twice, and a file
that is not valid JSON is refused rather than overwritten. The hook runs
`<this python> -m llmlab transcript hook run`, which reads the hook payload
(`transcript_path`) on stdin.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from .. import files
from ..errors import UserError

MARK = "llmlab transcript hook run"


def command(out: Path | None, extra: list[str] | None = None) -> str:
    """This interpreter by absolute path, so the hook works without an activated venv;
    `extra` carries render options (e.g. ["--tools", "brief"]) to every refresh."""
    args = (["--out", str(out)] if out else []) + list(extra or [])
    return " ".join([shlex.quote(sys.executable), "-m", MARK, *map(shlex.quote, args)])


def _ours(h) -> bool:
    return isinstance(h, dict) and MARK in str(h.get("command", ""))


FIX = "Fix the file, then run `llmlab transcript hook install` again."


def _stop_hooks(doc: dict, path: Path) -> list:
    stop = files.section(doc, "hooks", path).setdefault("Stop", [])
    if not isinstance(stop, list):
        raise UserError(f"{path}: \"hooks.Stop\" is not a list; llmlab will not replace it. "
                        f"{FIX} Nothing was changed.")
    return stop


def install(project: Path, out: Path | None = None, extra: list[str] | None = None) -> dict:
    path = project / ".claude" / "settings.json"
    cmd = command(out, extra)

    def add(doc: dict) -> None:
        stop = _stop_hooks(doc, path)
        ours = [h for g in stop if isinstance(g, dict) for h in (g.get("hooks") or []) if _ours(h)]
        if ours:
            ours[0]["command"] = cmd
        else:
            stop.append({"hooks": [{"type": "command", "command": cmd, "timeout": 120}]})

    _, change = files.edit_config(path, add, fix=FIX)
    return {"settings": str(path), "changed": change != "unchanged", "command": cmd}


def uninstall(project: Path) -> dict:
    path = project / ".claude" / "settings.json"
    removed = 0

    def remove(doc: dict) -> None:
        nonlocal removed
        stop = (doc.get("hooks") or {}).get("Stop") if isinstance(doc.get("hooks"), dict) else None
        if not isinstance(stop, list):
            return
        for group in list(stop):
            if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
                continue
            keep = [h for h in group["hooks"] if not _ours(h)]
            removed += len(group["hooks"]) - len(keep)
            group["hooks"] = keep
            if not keep:
                stop.remove(group)
        if not stop:
            del doc["hooks"]["Stop"]
        if not doc["hooks"]:
            del doc["hooks"]

    files.edit_config(path, remove, fix=FIX)
    return {"settings": str(path), "changed": bool(removed), "removed": removed}


def payload_path(raw: str) -> Path | None:
    """The session log named by a hook payload, or None."""
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return None
    p = data.get("transcript_path") if isinstance(data, dict) else None
    return Path(p).expanduser() if isinstance(p, str) and p else None
