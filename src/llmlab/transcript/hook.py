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

from ..errors import UserError
from .publish import atomic_write

MARK = "llmlab transcript hook run"


def command(out: Path | None, extra: list[str] | None = None) -> str:
    """This interpreter by absolute path, so the hook works without an activated venv;
    `extra` carries render options (e.g. ["--tools", "brief"]) to every refresh."""
    args = (["--out", str(out)] if out else []) + list(extra or [])
    return " ".join([shlex.quote(sys.executable), "-m", MARK, *map(shlex.quote, args)])


def _ours(h) -> bool:
    return isinstance(h, dict) and MARK in str(h.get("command", ""))


def _load(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({e}); not touching it. Fix the file, then run "
                        "`llmlab transcript hook install` again.") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} does not hold a JSON object; not touching it. Fix the file first.")
    return data


def install(project: Path, out: Path | None = None, extra: list[str] | None = None) -> dict:
    path = project / ".claude" / "settings.json"
    data = _load(path)
    hooks = data.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise UserError(f"{path}: \"hooks\" is not an object; fix it by hand, then install again.")
    stop = hooks.setdefault("Stop", [])
    if not isinstance(stop, list):
        raise UserError(f"{path}: \"hooks.Stop\" is not a list; fix it by hand, then install again.")
    cmd = command(out, extra)
    for group in stop:
        for h in (group.get("hooks") or []) if isinstance(group, dict) else []:
            if _ours(h):
                if h["command"] == cmd:
                    return {"settings": str(path), "changed": False, "command": cmd}
                h["command"] = cmd
                atomic_write(path, [json.dumps(data, indent=2) + "\n"])
                return {"settings": str(path), "changed": True, "command": cmd}
    stop.append({"hooks": [{"type": "command", "command": cmd, "timeout": 120}]})
    atomic_write(path, [json.dumps(data, indent=2) + "\n"])
    return {"settings": str(path), "changed": True, "command": cmd}


def uninstall(project: Path) -> dict:
    path = project / ".claude" / "settings.json"
    data = _load(path)
    stop = (data.get("hooks") or {}).get("Stop")
    removed = 0
    if isinstance(stop, list):
        for group in list(stop):
            if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
                continue
            keep = [h for h in group["hooks"] if not _ours(h)]
            removed += len(group["hooks"]) - len(keep)
            group["hooks"] = keep
            if not keep:
                stop.remove(group)
        if not stop:
            del data["hooks"]["Stop"]
        if not data["hooks"]:
            del data["hooks"]
    if removed:
        atomic_write(path, [json.dumps(data, indent=2) + "\n"])
    return {"settings": str(path), "changed": bool(removed), "removed": removed}


def payload_path(raw: str) -> Path | None:
    """The session log named by a hook payload, or None."""
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        return None
    p = data.get("transcript_path") if isinstance(data, dict) else None
    return Path(p).expanduser() if isinstance(p, str) and p else None
