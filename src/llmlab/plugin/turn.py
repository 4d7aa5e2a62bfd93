"""What happened in the turn that just ended, read from the Claude Code session log.

Claude Code passes every hook `transcript_path`, the session's JSONL log: one record per
line with `type` (`user`, `assistant`, `system`, `summary`, `progress`, ...), a
`message` whose `content` is a string or a list of blocks (`text`, `tool_use` with
`name`/`input`, `tool_result`, `thinking`), a `timestamp`, and flags such as `isMeta`
(harness-injected text) and `isSidechain` (a sub-agent's conversation).
Reference: https://code.claude.com/docs/en/hooks#common-input-fields (transcript_path;
"written asynchronously and may lag", so the caller also checks the evidence log).

The log can be large, so it is read backwards from its end, a block at a time, and only
as far as the learner's last typed message and the tutor's text before it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from .answer import is_answer

BLOCK = 1 << 16
MAX_BYTES = 16 << 20  # never read more than this much of a session log

# The MCP server's write tools (record an observation, open/resolve a misconception, an exit
# attempt, a prediction, a retraction, a lab run). Tool names are matched loosely so that a
# renamed tool still counts; read tools (state, next probes, concept) never match.
WRITE_TOOL = re.compile(
    r"(?:^|_)(?:record|observe|observation|misconception|resolve|exit|attempt|predict|prediction"
    r"|retract|retraction|undo)(?:_|$)|^run_|_run$", re.IGNORECASE)
# CLI commands that append evidence, as the tutor would run them through the Bash tool.
WRITE_CLI = re.compile(
    r"\b(?:llmlab|python\d*(?:\.\d+)?\s+-m\s+llmlab)\s+"
    r"(?:log\s+(?:observe|misconception|resolve|exit)|predict|undo|lab\s+run)\b")
REMINDER_TAG = re.compile(r"<system-reminder>.*?</system-reminder>", re.DOTALL)
HARNESS_PREFIXES = ("<command-name>", "<command-message>", "<local-command-stdout>",
                    "<local-command-stderr>", "Caveat: ", "[Request interrupted")


class Turn:
    """What the stop hook needs to know about the turn (a plain class: see settings.py)."""

    def __init__(self) -> None:
        self.prompt: str | None = None  # the learner's last typed message
        self.prompt_ts: str | None = None  # its timestamp (RFC 3339)
        self.command = False  # the message was a slash command, not an answer
        self.probe: str | None = None  # the tutor's last text before that message
        self.write_calls: list[str] = []  # evidence writes seen in this turn

    @property
    def answered_probe(self) -> bool:
        """The learner's message reads as a substantive answer to a question the tutor
        asked (see `answer.is_answer`); a slash command never does."""
        return not self.command and is_answer(self.probe, self.prompt)


def records_backwards(path: Path, max_bytes: int = MAX_BYTES,
                      keep: Callable[[bytes], bool] | None = None) -> Iterator[dict]:
    """Parsed JSONL records from the end of the file towards its start (newest first);
    with `keep`, only the lines it accepts are parsed (a cheap test on the raw bytes).

    A torn or unparseable line (the log is being written) is skipped, never fatal."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        pos = f.tell()
        stop = max(0, pos - max_bytes)
        carry = b""
        while pos > stop:
            n = min(BLOCK, pos - stop)
            pos -= n
            f.seek(pos)
            buf = f.read(n) + carry
            lines = buf.split(b"\n")
            carry = lines.pop(0) if pos > stop else b""
            for line in reversed(lines):
                if keep is not None and not keep(line):
                    continue
                rec = _parse(line)
                if rec is not None:
                    yield rec
        if carry and (keep is None or keep(carry)):
            rec = _parse(carry)
            if rec is not None:
                yield rec


def _parse(line: bytes) -> dict | None:
    line = line.strip()
    if not line:
        return None
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _blocks(rec: dict) -> list:
    msg = rec.get("message")
    content = msg.get("content") if isinstance(msg, dict) else None
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def typed_text(rec: dict) -> str | None:
    """The text the learner typed, if this `user` record is a typed message (not a tool
    result, harness note, compaction summary or sub-agent message)."""
    if rec.get("type") != "user" or rec.get("isMeta") or rec.get("isCompactSummary") \
            or rec.get("isSidechain"):
        return None
    blocks = _blocks(rec)
    if not blocks or any(b.get("type") == "tool_result" for b in blocks):
        return None
    text = "\n".join(b.get("text", "") for b in blocks if b.get("type") == "text")
    text = REMINDER_TAG.sub("", text).strip()
    return text or None


def is_write_call(block: dict) -> str | None:
    """A label for a tool call that appends evidence, or None."""
    if block.get("type") != "tool_use":
        return None
    name = str(block.get("name", ""))
    if name.startswith("mcp__") and "llmlab" in name.lower():
        tool = name.rsplit("__", 1)[-1]
        return name if WRITE_TOOL.search(tool) else None
    if name == "Bash":
        cmd = (block.get("input") or {}).get("command", "")
        if isinstance(cmd, str) and WRITE_CLI.search(cmd):
            return f"Bash: {cmd[:80]}"
    return None


def last_turn(path: Path, max_bytes: int = MAX_BYTES) -> Turn:
    """The learner's last typed message, the tutor's text before it, and the evidence
    writes made after it."""
    turn = Turn()
    in_turn = True
    for rec in records_backwards(path, max_bytes):
        if rec.get("isSidechain"):
            continue
        kind = rec.get("type")
        if in_turn:
            if kind == "assistant":
                for b in _blocks(rec):
                    label = is_write_call(b)
                    if label:
                        turn.write_calls.append(label)
            elif kind == "user":
                text = typed_text(rec)
                if text is None:
                    continue
                if text.startswith(HARNESS_PREFIXES):
                    if text.startswith(("<command-name>", "<command-message>")):
                        turn.command = True  # the turn began with a slash command
                    else:
                        continue  # harness output, not the learner's words
                turn.prompt, turn.prompt_ts = text, rec.get("timestamp")
                in_turn = False
        else:
            if kind == "user" and typed_text(rec) is not None:
                break  # the previous turn had no tutor text
            if kind == "assistant":
                texts = [b.get("text", "") for b in _blocks(rec) if b.get("type") == "text"]
                texts = [t for t in texts if t.strip()]
                if texts:
                    turn.probe = texts[-1]
                    break
    return turn


def _user_or_tool_use(line: bytes) -> bool:
    """Could this line be a typed learner message or a tool call? (Most of a session log's
    bytes are the tutor's text and tool results, which need no parsing here.)"""
    return b'"user"' in line or b'"tool_use"' in line


def prompts_since_write(path: Path, max_bytes: int = MAX_BYTES) -> int:
    """How many typed learner messages the session holds after its last evidence write
    (counting back through the log's tail only)."""
    n = 0
    for rec in records_backwards(path, max_bytes, _user_or_tool_use):
        if rec.get("isSidechain"):
            continue
        if rec.get("type") == "assistant" and any(is_write_call(b) for b in _blocks(rec)):
            break
        text = typed_text(rec) if rec.get("type") == "user" else None
        if text is not None and not text.startswith(HARNESS_PREFIXES):
            n += 1
    return n
