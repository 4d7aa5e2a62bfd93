"""The transcript model: what a session is once the harness noise is sorted out.

Parsers (Claude Code, ChatGPT) produce these records; scrubbing rewrites their text;
renderers (HTML, markdown) read them. Nothing here does IO.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Union


@dataclass
class Text:
    """Words a person or the model wrote, verbatim (markdown-ish, shown as text)."""
    text: str
    kind: Literal["text"] = "text"


@dataclass
class Thinking:
    """Model reasoning. `text` empty and `signed` True: reasoning happened, not stored."""
    text: str
    signed: bool = False
    kind: Literal["thinking"] = "thinking"


@dataclass
class Image:
    media_type: str
    data: str  # base64; "" when the source only referenced an image
    size: int = 0  # decoded bytes (approximate)
    kind: Literal["image"] = "image"


@dataclass
class ToolResult:
    text: str
    is_error: bool = False
    images: list[Image] = field(default_factory=list)


@dataclass
class ToolCall:
    id: str
    name: str
    input: str  # pretty JSON, already a string so it can be scrubbed and escaped
    summary: str  # one line: the command, the file, the pattern
    result: ToolResult | None = None
    subagent: "Conversation | None" = None
    kind: Literal["tool"] = "tool"


Block = Union[Text, Thinking, Image, ToolCall]

Role = Literal["learner", "assistant", "harness"]


@dataclass
class Message:
    """One turn's worth of content from one side.

    role `learner`: typed by the person. `assistant`: the model. `harness`: text the
    agent harness injected (commands, compaction summaries, notices), shown labelled.
    """
    role: Role
    blocks: list[Block]
    ts: datetime | None = None
    label: str = ""  # for harness notes: "Compaction summary", "Command", ...
    model: str = ""
    key: str = ""  # the first source record's id (render caches use it)


@dataclass
class Conversation:
    messages: list[Message] = field(default_factory=list)


@dataclass
class Stats:
    records: int = 0
    duplicates: int = 0
    torn: int = 0  # incomplete/undecodable lines skipped
    skipped: dict[str, int] = field(default_factory=dict)  # record type -> count
    hidden: dict[str, int] = field(default_factory=dict)  # harness noise removed, by kind
    subagents: int = 0

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1

    def hide(self, kind: str) -> None:
        self.hidden[kind] = self.hidden.get(kind, 0) + 1


@dataclass
class Session:
    id: str
    source: str  # "claude-code" | "chatgpt"
    title: str
    conversation: Conversation
    stats: Stats = field(default_factory=Stats)
    cwd: str = ""
    started: datetime | None = None
    ended: datetime | None = None
    files: list[str] = field(default_factory=list)  # source files read

    @property
    def messages(self) -> list[Message]:
        return self.conversation.messages

    def exchanges(self) -> int:
        return sum(1 for m in self.messages if m.role == "learner")
