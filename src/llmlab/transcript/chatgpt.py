"""ChatGPT data export (`conversations.json`): the current branch of each conversation.

The export is a JSON array of conversations. Each has a `mapping` of nodes (`id`,
`message`, `parent`, `children`) forming a tree, because every edit or regeneration
starts a branch; `current_node` is the leaf the user last saw. The transcript is the
path from the root to `current_node`, verbatim. Hidden system scaffolding
(`is_visually_hidden_from_conversation`, custom instructions) is counted, not shown.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from ..errors import UserError
from .harness import one_line
from .model import Conversation, Image, Message, Session, Stats, Text, Thinking, ToolCall, ToolResult
from .scrub import Scrubber


def _ts(v) -> datetime | None:
    if isinstance(v, (int, float)) and v > 0:
        return datetime.fromtimestamp(v, tz=timezone.utc)
    return None


def _parts(content: dict, scrub: Scrubber, where: str) -> list:
    ct = content.get("content_type")
    if ct in ("code", "execution_output") or "text" in content and "parts" not in content:
        return [Text(scrub(str(content.get("text", "")), where))]
    out: list = []
    for p in content.get("parts") or []:
        if isinstance(p, str):
            if p.strip():
                out.append(Text(scrub(p, where)))
        elif isinstance(p, dict):
            if str(p.get("content_type", "")).startswith("image") or "asset_pointer" in p:
                out.append(Image(media_type="image", data="", size=int(p.get("size_bytes") or 0)))
            elif isinstance(p.get("text"), str):
                out.append(Text(scrub(p["text"], where)))
    return out


def _branch(conv: dict) -> list[dict]:
    mapping = conv.get("mapping") or {}
    node_id = conv.get("current_node")
    if node_id not in mapping:  # no current node recorded: follow the last child down
        roots = [k for k, v in mapping.items() if not v.get("parent")]
        node_id = roots[0] if roots else None
        while node_id and mapping[node_id].get("children"):
            node_id = mapping[node_id]["children"][-1]
    path, seen = [], set()
    while node_id and node_id in mapping and node_id not in seen:
        seen.add(node_id)
        path.append(mapping[node_id])
        node_id = mapping[node_id].get("parent")
    return path[::-1]


def conversation(conv: dict, scrub: Scrubber) -> Session:
    stats = Stats()
    msgs: list[Message] = []
    last_call: ToolCall | None = None
    for node in _branch(conv):
        m = node.get("message")
        if not isinstance(m, dict):
            continue
        stats.records += 1
        role = (m.get("author") or {}).get("role")
        content = m.get("content") or {}
        meta = m.get("metadata") or {}
        ct = content.get("content_type")
        ts = _ts(m.get("create_time"))
        if meta.get("is_visually_hidden_from_conversation") or ct == "user_editable_context":
            stats.hide("hidden context")
            continue
        if role == "system":
            blocks = _parts(content, scrub, "system text")
            if blocks:
                msgs.append(Message("harness", blocks, ts, "System"))
            continue
        if role == "user":
            blocks = _parts(content, scrub, "user text")
            if blocks:
                msgs.append(Message("learner", blocks, ts, key=node.get("id", "")))
            continue
        if role == "tool":
            text = "\n".join(b.text for b in _parts(content, scrub, "tool result") if isinstance(b, Text))
            if last_call is not None and last_call.result is None:
                last_call.result = ToolResult(text)
            else:
                name = (m.get("author") or {}).get("name") or "tool"
                msgs.append(Message("harness", [Text(text)], ts, f"Tool output ({name})"))
            continue
        if role != "assistant":
            stats.skip(f"role:{role}")
            continue
        if ct == "thoughts":
            text = "\n\n".join(str(t.get("content", "")) for t in content.get("thoughts") or [] if isinstance(t, dict))
            blocks = [Thinking(scrub(text, "thinking"))]
        elif ct == "reasoning_recap":
            stats.hide("reasoning recap")
            continue
        elif m.get("recipient") not in (None, "all"):
            body = "\n".join(b.text for b in _parts(content, scrub, "tool input") if isinstance(b, Text))
            last_call = ToolCall(id=m.get("id", ""), name=str(m["recipient"]), input=body, summary=one_line(body, 120))
            blocks = [last_call]
        else:
            blocks = _parts(content, scrub, "assistant text")
        if blocks:
            msgs.append(Message("assistant", blocks, ts, model=str(meta.get("model_slug") or ""),
                                key=node.get("id", "")))
    times = [m.ts for m in msgs if m.ts]
    cid = str(conv.get("conversation_id") or conv.get("id") or "")
    return Session(id=cid or "conversation", source="chatgpt",
                   title=scrub(str(conv.get("title") or "Untitled conversation"), "title"),
                   conversation=Conversation(msgs), stats=stats,
                   started=min(times) if times else _ts(conv.get("create_time")),
                   ended=max(times) if times else _ts(conv.get("update_time")))


def raw(path: Path) -> list[dict]:
    """The conversations of an export, unparsed."""
    try:
        data = json.loads(Path(path).read_bytes())
    except ValueError as e:
        raise UserError(f"{path} is not valid JSON ({e}). Pass the conversations.json from an "
                        "unzipped ChatGPT data export.") from None
    if isinstance(data, dict) and "mapping" in data:
        data = [data]
    if not isinstance(data, list):
        raise UserError(f"{path} is not a ChatGPT export (expected a list of conversations).")
    return [c for c in data if isinstance(c, dict) and "mapping" in c]


def load(path: Path, scrub: Scrubber) -> list[Session]:
    return [conversation(c, scrub) for c in raw(path)]
