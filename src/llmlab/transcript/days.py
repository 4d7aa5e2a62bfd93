"""Exchanges grouped by day, in the reader's timezone, and the render options."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import UserError
from .model import Message, Session

ToolMode = Literal["full", "brief", "prompts"]
ThinkingPolicy = Literal["show", "hide"]


@dataclass(frozen=True)
class Options:
    tools: ToolMode = "full"  # full: every call collapsed; brief: "Bash ×5"; prompts: conversation only
    thinking: ThinkingPolicy = "show"  # stored reasoning text: shown collapsed, or hidden
    images: Literal["placeholder", "embed"] = "placeholder"
    tz: str = "local"


def resolve_tz(name: str) -> tzinfo:
    if name in ("local", ""):
        return datetime.now().astimezone().tzinfo or timezone.utc
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(f"Unknown timezone '{name}'. Use an IANA name such as Europe/Paris or "
                        "America/New_York, UTC, or local (the default).") from None


@dataclass
class Exchange:
    """A learner prompt and everything up to the next one (index 0 may have no prompt)."""
    messages: list[Message] = field(default_factory=list)
    prompt: bool = False  # holds a learner message

    @property
    def start(self) -> datetime | None:
        return next((m.ts for m in self.messages if m.ts is not None), None)

    def has_prompt(self) -> bool:
        return self.prompt


@dataclass
class Day:
    day: date | None
    exchanges: list[Exchange]

    @property
    def count(self) -> int:
        return sum(1 for e in self.exchanges if e.has_prompt())

    @property
    def anchor(self) -> str:
        return f"day-{self.day.isoformat()}" if self.day else "day-undated"


@dataclass
class DayMark:
    """A day of a streamed page: its date, its exchange count, and where its exchanges
    start in each spool file (by format)."""
    day: date | None
    count: int = 0
    at: dict[str, int] = field(default_factory=dict)

    anchor = Day.anchor


def exchanges(session: Session) -> list[Exchange]:
    out: list[Exchange] = []
    for m in session.messages:
        learner = m.role == "learner"
        if learner or not out:
            last = out[-1] if out else None
            if (last is not None and learner and not last.prompt
                    and all(x.role == "harness" for x in last.messages)):
                last.messages.append(m)  # harness preamble joins the first prompt
                last.prompt = True
                continue
            out.append(Exchange(prompt=learner))
        out[-1].messages.append(m)
    return out


def days(session: Session, tz: tzinfo) -> list[Day]:
    out: list[Day] = []
    for ex in exchanges(session):
        start = ex.start
        d = start.astimezone(tz).date() if start else (out[-1].day if out else None)
        if not out or out[-1].day != d:
            out.append(Day(d, []))
        out[-1].exchanges.append(ex)
    return out
