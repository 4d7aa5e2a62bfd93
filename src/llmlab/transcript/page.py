"""HTML pages: one self-contained page per session (no network requests) and an index.

Jinja2 with autoescape renders every piece of text from a log as text. Assistant text is
rendered as markdown with raw HTML disabled (so it is escaped) and images disabled (so
nothing is fetched); a Content-Security-Policy that allows no scripts and no remote
loads backs that up. Each exchange is rendered once and cached by its content key, so a
watcher re-renders only what changed; every freshly rendered piece passes the scrubber's
final re-scan before it can be written.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import BinaryIO
from datetime import datetime, tzinfo
from functools import lru_cache

import jinja2
from markdown_it import MarkdownIt
from markupsafe import Markup

from .days import Day, DayMark, Exchange, Options, days, resolve_tz
from .model import Image, Session, Text, Thinking, ToolCall

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
_B64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).disable("image")


def markdown(text: str) -> Markup:
    # Plain prose (no markdown syntax) skips the parser: most of a long log.
    if not any(c in text for c in "*_`#[]<>&|\\!\n-+=~0123456789"):
        return Markup("<p>") + text + Markup("</p>")
    return Markup(_md().render(text))


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _data_uri(img: Image) -> str:
    """A data: URI for a known image type with base64 data, else "" (placeholder shown)."""
    if img.media_type not in IMAGE_TYPES or not img.data or not _B64.fullmatch(img.data):
        return ""
    return f"data:{img.media_type};base64,{img.data}"


def _brief(blocks) -> str:
    c = Counter(b.name for b in blocks if isinstance(b, ToolCall))
    return " · ".join(f"{name} ×{n}" for name, n in c.items())


@lru_cache(maxsize=1)
def env() -> jinja2.Environment:
    e = jinja2.Environment(loader=jinja2.PackageLoader("llmlab", "templates/transcript"),
                           autoescape=True, trim_blocks=True, lstrip_blocks=True,
                           undefined=jinja2.StrictUndefined)
    e.filters.update(markdown=markdown, size=_size, data_uri=_data_uri, brief=_brief)
    e.globals.update(Text=Text, Thinking=Thinking, ToolCall=ToolCall, Image=Image,
                     isinstance=isinstance)
    return e


def _key(ex: Exchange) -> tuple:
    """Changes whenever anything shown in the exchange changes."""
    parts = []
    for m in ex.messages:
        calls = [b for b in m.blocks if isinstance(b, ToolCall)]
        parts.append((m.key, len(m.blocks), sum(c.result is not None for c in calls),
                      tuple(len(c.subagent.messages) for c in calls if c.subagent)))
    return tuple(parts)


class PageRenderer:
    """Renders session pages, caching exchange HTML; `check` vets every fresh piece."""

    def __init__(self, opts: Options, check: Callable[[str, str], None], tz: tzinfo | None = None,
                 cache: bool = True):
        self.opts = opts
        self.caching = cache
        self.tz = tz or resolve_tz(opts.tz)
        self.check = check
        self.cache: dict[tuple, bytes] = {}
        e = env()
        self._page = e.get_template("session.html.j2")
        self._exchange = e.get_template("exchange.html.j2")

    def tz_label(self) -> str:
        if self.opts.tz in ("local", ""):
            return f"local time, {datetime.now(self.tz).strftime('%Z') or 'UTC' + datetime.now(self.tz).strftime('%z')}"
        return self.opts.tz

    def time(self, ts: datetime | None, fmt: str = "%H:%M") -> str:
        return ts.astimezone(self.tz).strftime(fmt) if ts else ""

    def exchange(self, ex: Exchange, what: str, them: str = "Claude") -> bytes:
        """One exchange as UTF-8 (cached encoded, so a rewrite only copies bytes)."""
        key = (them, _key(ex))
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        out = self._exchange.render(ex=ex, opts=self.opts, time=self.time, them=them)
        self.check(out, what)
        data = out.encode()
        if self.caching:
            self.cache[key] = data
        return data

    def head(self, s: Session, grouped, afterthought: str = "", scrub_total: int = 0,
             thinking_signed: int = 0) -> tuple[list[str], str]:
        """The page around its exchanges: [before the first day, each day's opening], footer."""
        head, foot = self._page.render(
            s=s, days=grouped, opts=self.opts, time=self.time, afterthought=markdown(afterthought)
            if afterthought.strip() else "", scrub_total=scrub_total, tzname=self.tz_label(),
            thinking_signed=thinking_signed,
        ).split("<!--EXCHANGES-->")
        self.check(head, f"the page for {s.id}")
        self.check(foot, f"the page for {s.id}")
        return head.split("<!--DAY-->"), foot

    def session(self, s: Session, afterthought: str = "", scrub_total: int = 0,
                grouped: list[Day] | None = None) -> Iterator[str | bytes]:
        """The page in pieces (header, one per exchange, footer) for streaming to disk."""
        grouped = days(s, self.tz) if grouped is None else grouped
        days_html, foot = self.head(s, grouped, afterthought, scrub_total,
                                    sum(1 for m in s.messages for b in m.blocks
                                        if isinstance(b, Thinking) and not b.text and b.signed))
        yield days_html[0]
        for i, day in enumerate(grouped):
            yield days_html[i + 1]
            for ex in day.exchanges:
                yield self.exchange(ex, f"the page for {s.id}", "Claude" if s.source == "claude-code" else "ChatGPT")
            yield "</div></details>\n"
        yield foot

    def spooled(self, s: Session, marks: list[DayMark], spool: BinaryIO, afterthought: str = "",
                scrub_total: int = 0, thinking_signed: int = 0) -> Iterator[str | bytes]:
        """The same page, its exchanges copied from `spool` (written day by day, see DayMark)."""
        days_html, foot = self.head(s, marks, afterthought, scrub_total, thinking_signed)
        yield days_html[0]
        for i, d in enumerate(marks):
            yield days_html[i + 1]
            yield from copy_range(spool, d.at["html"], marks[i + 1].at["html"] if i + 1 < len(marks) else None)
            yield "</div></details>\n"
        yield foot


def copy_range(f: BinaryIO, start: int, end: int | None, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Bytes start..end (None: to the end) of an open file, a chunk at a time."""
    f.seek(start)
    left = -1 if end is None else end - start
    while left:
        b = f.read(chunk if left < 0 else min(chunk, left))
        if not b:
            return
        left -= len(b) if left > 0 else 0
        yield b


def index(entries: list[dict], title: str, check: Callable[[str, str], None]) -> str:
    out = env().get_template("index.html.j2").render(entries=entries, title=title)
    check(out, "the transcript index")
    return out

