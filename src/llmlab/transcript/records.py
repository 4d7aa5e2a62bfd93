"""One Claude Code JSONL record in, one slim scrubbed `Node` out.

The real format (`~/.claude/projects/<project>/<session>.jsonl`): one JSON object per
line with `type` `user` | `assistant` | `system` | `summary` | `file-history-snapshot` |
`queue-operation` | `attachment` | `progress` | whatever a later version adds. Message
records carry `uuid`, `parentUuid` (after a compaction, `logicalParentUuid`),
`timestamp`, `cwd`, `isSidechain`, `isMeta`, `isCompactSummary`, and `message` in the
Anthropic API shape. Text is scrubbed here, once, as each record is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from .harness import one_line, split_user_text
from .model import Image, Message, Stats, Text, Thinking, ToolCall, ToolResult
from .scrub import Scrubber

MESSAGE_TYPES = {"user", "assistant", "system"}
#: Records that carry no conversation. They still take part in the parentUuid chain.
QUIET_TYPES = {"file-history-snapshot", "queue-operation", "attachment", "progress", "summary"}


@dataclass
class Node:
    uuid: str
    parent: str | None
    idx: int
    type: str
    ts: datetime | None = None
    sidechain: bool = False
    agent_id: str = ""
    msg_id: str = ""  # assistant: message.id shared by the lines of one streamed message
    model: str = ""
    blocks: list = field(default_factory=list)  # assistant blocks
    messages: list[Message] = field(default_factory=list)  # user/system: learner or harness
    results: list[tuple[str, ToolResult]] = field(default_factory=list)
    agent_link: tuple[str, str] | None = None  # (agentId, tool_use_id)
    branch: bool = False  # set by ordering: a typed prompt that re-takes an earlier point (rewind/edit)

    @property
    def typed(self) -> bool:
        """A user record holding words the learner typed."""
        return self.type == "user" and any(m.role == "learner" for m in self.messages)


def parse_ts(s) -> datetime | None:
    if not isinstance(s, str) or not s:
        return None
    try:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None


def _image(src: dict) -> Image:
    src = src or {}
    data = src.get("data", "") if src.get("type") == "base64" else ""
    return Image(media_type=str(src.get("media_type", "image")), data=data,
                 size=len(data) * 3 // 4 - data[-2:].count("="))


def _tool_summary(name: str, inp) -> str:
    if not isinstance(inp, dict):
        return ""
    for key in ("command", "file_path", "pattern", "path", "url", "query", "description", "notebook_path",
                "skill", "prompt"):
        v = inp.get(key)
        if isinstance(v, str) and v.strip():
            return one_line(v, 160)
    if name == "TodoWrite" and isinstance(inp.get("todos"), list):
        return f"{len(inp['todos'])} items"
    return ""


def _result(block: dict, scrub: Scrubber) -> ToolResult:
    content = block.get("content")
    images: list[Image] = []
    if isinstance(content, list):
        parts = []
        for c in content:
            if not isinstance(c, dict):
                parts.append(str(c))
            elif c.get("type") == "text":
                parts.append(c.get("text", ""))
            elif c.get("type") == "image":
                images.append(_image(c.get("source")))
            else:
                parts.append(json.dumps(c, ensure_ascii=False))
        text = "\n".join(parts)
    elif content is None:
        text = ""
    else:
        text = str(content)
    return ToolResult(text=scrub(text, "tool result"), is_error=bool(block.get("is_error")), images=images)


def _assistant_blocks(content, scrub: Scrubber) -> list:
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    out = []
    for b in content if isinstance(content, list) else []:
        if not isinstance(b, dict):
            continue
        t = b.get("type")
        if t == "text":
            if isinstance(b.get("text"), str) and b["text"].strip():
                out.append(Text(scrub(b["text"], "assistant text")))
        elif t == "thinking":
            out.append(Thinking(scrub(b.get("thinking", "") or "", "thinking"), signed=bool(b.get("signature"))))
        elif t == "redacted_thinking":
            out.append(Thinking("", signed=True))
        elif t in ("tool_use", "server_tool_use"):
            name = str(b.get("name", "tool"))
            inp = b.get("input", {})
            out.append(ToolCall(id=str(b.get("id", "")), name=name,
                                input=scrub(json.dumps(inp, indent=2, ensure_ascii=False), "tool input"),
                                summary=scrub(_tool_summary(name, inp), "tool input")))
        elif t == "image":
            out.append(_image(b.get("source")))
    return out


def _user_parts(node: Node, rec: dict, content, scrub: Scrubber, stats: Stats) -> None:
    meta, compact = bool(rec.get("isMeta")), bool(rec.get("isCompactSummary"))
    if isinstance(content, str):
        content = [{"type": "text", "text": content}]
    for b in content if isinstance(content, list) else []:
        if not isinstance(b, dict):
            continue
        t = b.get("type")
        if t == "tool_result" or (isinstance(t, str) and t.endswith("_tool_result")):
            node.results.append((str(b.get("tool_use_id", "")), _result(b, scrub)))
        elif t == "text":
            where = "summary" if compact else "user text"
            for p in split_user_text(str(b.get("text") or ""), is_meta=meta, is_compact=compact, hidden=stats.hidden):
                node.messages.append(Message(p.role, [Text(scrub(p.text, where))], node.ts, p.label))
        elif t == "image":
            if meta:
                stats.hide("meta")
                continue
            if node.messages and node.messages[-1].role == "learner":
                node.messages[-1].blocks.append(_image(b.get("source")))
            else:
                node.messages.append(Message("learner", [_image(b.get("source"))], node.ts))


def _system(node: Node, rec: dict, scrub: Scrubber, stats: Stats) -> None:
    sub = rec.get("subtype", "")
    if sub == "compact_boundary":
        meta = rec.get("compactMetadata") or {}
        how = meta.get("trigger", "")
        pre = meta.get("preTokens")
        detail = ", ".join(x for x in (how, f"{pre:,} tokens before" if isinstance(pre, int) else "") if x)
        node.messages.append(Message("harness", [Text("Context compacted" + (f" ({detail})" if detail else ""))],
                                     node.ts, "Compaction"))
    elif sub == "local_command" and isinstance(rec.get("content"), str):
        for p in split_user_text(rec["content"], hidden=stats.hidden):
            node.messages.append(Message("harness", [Text(scrub(p.text, "command"))], node.ts, "Command"))
    else:
        stats.hide(f"system:{sub or 'other'}")


def parse(rec: dict, idx: int, scrub: Scrubber, stats: Stats) -> Node | None:
    """A Node for a record that takes part in the conversation tree, or None."""
    t = rec.get("type")
    uuid = rec.get("uuid")
    if t not in MESSAGE_TYPES:
        if t not in QUIET_TYPES:
            stats.skip(str(t))
        elif t != "summary":
            stats.skip(t)
        if not isinstance(uuid, str):
            return None
        node = Node(uuid, rec.get("parentUuid") or rec.get("logicalParentUuid"), idx, str(t))
        if t == "progress":
            data = rec.get("data") or {}
            if isinstance(data, dict) and data.get("agentId") and rec.get("parentToolUseID"):
                node.agent_link = (str(data["agentId"]), str(rec["parentToolUseID"]))
        return node
    if not isinstance(uuid, str):
        stats.skip(f"{t} without uuid")
        return None
    node = Node(uuid, rec.get("parentUuid") or rec.get("logicalParentUuid"), idx, t, parse_ts(rec.get("timestamp")),
                bool(rec.get("isSidechain")), str(rec.get("agentId") or ""))
    msg = rec.get("message") if isinstance(rec.get("message"), dict) else {}
    if t == "assistant":
        node.msg_id = str(msg.get("id") or uuid)
        node.model = str(msg.get("model") or "")
        node.blocks = _assistant_blocks(msg.get("content"), scrub)
    elif t == "user":
        _user_parts(node, rec, msg.get("content"), scrub, stats)
        tur = rec.get("toolUseResult")
        if isinstance(tur, dict) and tur.get("agentId") and node.results:
            node.agent_link = (str(tur["agentId"]), node.results[0][0])
    else:
        _system(node, rec, scrub, stats)
    return node
