"""Finding session logs: a file, a folder of sessions, or this project's Claude Code logs.

Claude Code keeps `~/.claude/projects/<project>/<session>.jsonl`, where <project> is the
working directory with every non-alphanumeric character replaced by `-`. Sub-agent
(sidechain) logs live either flat beside the sessions (`agent-<id>.jsonl`, whose records
carry the parent's `sessionId`) or under `<session>/subagents/agent-<id>.jsonl`. They
belong to their session and are never listed as sessions of their own.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError


@dataclass
class Source:
    kind: str  # "claude-code" | "chatgpt"
    path: Path
    agents: dict[str, Path] = field(default_factory=dict)  # agent id -> log


def claude_home() -> Path:
    return Path(os.environ.get("CLAUDE_CONFIG_DIR") or Path.home() / ".claude")


def project_dir(cwd: Path) -> Path:
    return claude_home() / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(cwd.resolve()))


def _session_id(path: Path) -> str:
    """The sessionId of the first records of a log (cheap: reads a few lines)."""
    try:
        with open(path, "rb") as f:
            for _ in range(20):
                line = f.readline()
                if not line:
                    break
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("sessionId"), str):
                    return rec["sessionId"]
    except OSError:
        pass
    return ""


def _agent_id(p: Path) -> str:
    return p.stem[len("agent-"):] if p.stem.startswith("agent-") else p.stem


def _is_chatgpt(path: Path) -> bool:
    if path.name == "conversations.json":
        return True
    if path.suffix != ".json":
        return False
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    return head.startswith(b"[") and b'"mapping"' in head or head.startswith(b'{"mapping"')


def _sessions_in(folder: Path) -> list[Source]:
    logs = sorted(p for p in folder.glob("*.jsonl") if p.is_file())
    mains = [p for p in logs if not p.name.startswith("agent-")]
    flat = [p for p in logs if p.name.startswith("agent-")]
    by_sid: dict[str, list[Path]] = {}
    for a in flat:
        by_sid.setdefault(_session_id(a), []).append(a)
    out = []
    for m in mains:
        src = Source("claude-code", m)
        sid = _session_id(m) or m.stem
        for key in {sid, m.stem}:
            for a in by_sid.get(key, []):
                src.agents[_agent_id(a)] = a
        sub = folder / m.stem / "subagents"
        if sub.is_dir():
            for a in sorted(sub.glob("agent-*.jsonl")):
                src.agents[_agent_id(a)] = a
        out.append(src)
    return out


def find(paths: list[Path], cwd: Path | None = None) -> list[Source]:
    """Sources for the given paths; with none, this project's Claude Code sessions."""
    if not paths:
        d = project_dir(cwd or Path.cwd())
        if not d.is_dir():
            raise UserError(
                f"No Claude Code sessions for this folder (looked in {d}). Pass a session "
                "file or folder: `llmlab transcript build PATH.jsonl` (or a ChatGPT "
                "conversations.json)."
            )
        paths = [d]
    out: list[Source] = []
    for p in paths:
        p = Path(p).expanduser()
        if not p.exists():
            raise UserError(f"{p} does not exist. Pass a session .jsonl file, a folder of sessions, "
                            "or a ChatGPT export's conversations.json.")
        if p.is_file():
            if _is_chatgpt(p):
                out.append(Source("chatgpt", p))
            elif p.name.startswith("agent-"):
                raise UserError(f"{p.name} is a sub-agent log; it is published inside its parent "
                                "session. Pass the session's .jsonl (or its folder) instead.")
            else:
                found = [s for s in _sessions_in(p.parent) if s.path == p]
                out.extend(found or [Source("claude-code", p)])
        else:
            if (p / "conversations.json").is_file():
                out.append(Source("chatgpt", p / "conversations.json"))
            found = _sessions_in(p)
            if not found and not out:  # a folder of projects, e.g. ~/.claude/projects
                for sub in sorted(d for d in p.iterdir() if d.is_dir()):
                    found.extend(_sessions_in(sub))
            out.extend(found)
    if not out:
        raise UserError(f"No session logs found in {', '.join(map(str, paths))}. Claude Code keeps them "
                        "in ~/.claude/projects/<project>/*.jsonl.")
    return out
