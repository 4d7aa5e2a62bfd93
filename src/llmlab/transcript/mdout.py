"""Markdown output: the same transcript as a `.md` file (GitHub-style, `<details>` for tools).

Text is kept verbatim except `<` and `&`, written as entities so that no viewer runs
HTML from a log; tool input and output go in code fences longer than any backtick run
inside them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import tzinfo

from .days import Day, DayMark, Exchange, Options, days
from .model import Image, Message, Session, Text, Thinking, ToolCall


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;")


def _fence(s: str, lang: str = "") -> str:
    longest = max((len(m) for m in re.findall(r"`+", s)), default=0)
    f = "`" * max(3, longest + 1)
    return f"{f}{lang}\n{s}\n{f}\n"


def _image(img: Image) -> str:
    return f"_[image: {img.media_type}, not embedded]_\n\n"


def _tool(c: ToolCall, opts: Options, tz: tzinfo, depth: int) -> str:
    out = [f"<details><summary>{_esc(c.name)}{': ' + _esc(c.summary) if c.summary else ''}"
           f"{' (error)' if c.result and c.result.is_error else ''}</summary>\n\n"]
    if c.input:
        out.append(_fence(c.input, "json" if c.input.startswith("{") else ""))
    if c.result:
        out.append("Result:\n\n" + _fence(c.result.text))
    if c.subagent:
        out.append("Sub-agent conversation:\n\n")
        for m in c.subagent.messages:
            out.append("".join(_message(m, opts, tz, depth + 1, "Prompt to the sub-agent", "Sub-agent")))
    out.append("</details>\n\n")
    return "".join(out)


def _message(m: Message, opts: Options, tz: tzinfo, depth: int = 0, me: str = "Learner",
             them: str = "Claude") -> Iterator[str]:
    h = "#" * min(6, 3 + depth)
    when = f" · {m.ts.astimezone(tz):%H:%M}" if m.ts else ""
    if m.role == "harness":
        yield f"> **{_esc(m.label or 'Harness')}:** "
        for b in m.blocks:
            if isinstance(b, Text):
                yield _esc(b.text).replace("\n", "\n> ") + "\n"
            elif isinstance(b, ToolCall):
                yield "\n" + _tool(b, opts, tz, depth)
        yield "\n"
        return
    yield f"{h} {me if m.role == 'learner' else them}{when}\n\n"
    for b in m.blocks:
        if isinstance(b, Text):
            yield _esc(b.text) + "\n\n"
        elif isinstance(b, Image):
            yield _image(b)
        elif isinstance(b, Thinking):
            if not b.text:
                yield "_Reasoning happened here, but Claude Code stored only its signature, not the text._\n\n"
            elif opts.thinking == "show":
                yield "<details><summary>Thinking</summary>\n\n" + _esc(b.text) + "\n\n</details>\n\n"
            else:
                yield f"_Thinking ({len(b.text)} characters) hidden by --thinking hide._\n\n"
        elif isinstance(b, ToolCall) and opts.tools == "full":
            yield _tool(b, opts, tz, depth)
    if opts.tools == "brief":
        names: dict[str, int] = {}
        for b in m.blocks:
            if isinstance(b, ToolCall):
                names[b.name] = names.get(b.name, 0) + 1
        if names:
            yield "_" + " · ".join(f"{k} ×{v}" for k, v in names.items()) + "_\n\n"


def head(s: Session, opts: Options, tz: tzinfo) -> str:
    src = "Claude Code" if s.source == "claude-code" else "ChatGPT"
    start = f" · {s.started.astimezone(tz):%Y-%m-%d %H:%M} ({opts.tz})" if s.started else ""
    cwd = f" · in `{s.cwd}`" if s.cwd else ""
    return (f"# {_esc(s.title)}\n\n"
            f"_{src} session{start} · {s.exchanges()} exchanges{cwd}. Verbatim; harness noise removed._\n\n")


def day(d: Day | DayMark) -> str:
    title = d.day.strftime("%A %-d %B %Y") if d.day else "Undated"
    return f"## {title} ({d.count} exchange{'s' if d.count != 1 else ''})\n\n"


def exchange(ex: Exchange, opts: Options, tz: tzinfo, them: str = "Claude") -> Iterator[str]:
    for m in ex.messages:
        yield from _message(m, opts, tz, them=them)
    yield "---\n\n"


def tail(afterthought: str) -> str:
    if not afterthought.strip():
        return ""
    return ("## Afterthought\n\n_Written afterwards by the learner, not part of the session._\n\n"
            + _esc(afterthought.strip()) + "\n")


def render(s: Session, opts: Options, tz: tzinfo, afterthought: str = "") -> Iterator[str]:
    them = "Claude" if s.source == "claude-code" else "ChatGPT"
    yield head(s, opts, tz)
    for d in days(s, tz):
        yield day(d)
        for ex in d.exchanges:
            yield from exchange(ex, opts, tz, them)
    yield tail(afterthought)
