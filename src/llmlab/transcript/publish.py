"""Publishing: sources in, scrubbed pages out, atomically, incrementally.

`Publisher.build()` renders every source whose files changed since the last run (a
manifest records sizes and mtimes by hashed path, never the paths themselves), then
rewrites the index over every session published in the folder. `Publisher.poll()` is the
watcher's step: read what was appended, re-render only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import UserError
from ..files import atomic_write
from . import chatgpt, mdout
from .claude import LogReader, build_session
from .days import DayMark, Exchange, Options, days, resolve_tz
from .discover import Source, find
from .model import Session
from .page import PageRenderer, copy_range, index
from .scrub import Known, Scrubber
from .stream import Summary, stream

MANIFEST = ".transcripts.json"
SCRUB_FILE = "transcript.toml"


def load_known(scrub_config: Path | None, workspace_root: Path | None) -> Known:
    """Known values: `transcript.toml` ([scrub] names, paths, values) plus the learner's
    name from the workspace, plus the home folder when it is not under /home or /Users."""
    known = Known()
    path = scrub_config or (workspace_root / SCRUB_FILE if workspace_root else None)
    if path is not None and path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8")).get("scrub", {})
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"{path} is not valid TOML ({e}). Fix it; the expected shape is "
                            '[scrub] names = ["..."], paths = ["..."], values = ["..."].') from None
        for key, target in (("names", known.names), ("paths", known.paths), ("values", known.other)):
            vals = data.get(key, [])
            if not isinstance(vals, list) or not all(isinstance(v, str) for v in vals):
                raise UserError(f"{path}: [scrub] {key} must be a list of strings.")
            target.extend(vals)
    elif scrub_config is not None:
        raise UserError(f"Scrub config {scrub_config} does not exist. Create it with "
                        '[scrub] names = ["..."], paths = ["..."], values = ["..."].')
    if workspace_root is not None:
        try:
            name = tomllib.loads((workspace_root / "llmlab.toml").read_text()).get("learner", {}).get("name", "")
        except (OSError, tomllib.TOMLDecodeError):
            name = ""
        if isinstance(name, str) and name and name != "Learner":
            known.names.append(name)
    home = str(Path.home())
    if home not in ("/", "") and not re.match(r"^(/home/|/Users/|[A-Za-z]:\\Users\\)", home):
        known.paths.append(home)
    return known


def _safe_name(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", s)[:80].strip(".-") or "session"


def _sig(paths: Iterable[Path]) -> list:
    out = []
    for p in sorted(paths):
        try:
            st = os.stat(p)
            out.append([hashlib.sha256(str(p).encode()).hexdigest()[:16], st.st_size, st.st_mtime_ns])
        except FileNotFoundError:
            pass
    return out


@dataclass
class Settings:
    out: Path
    formats: tuple[str, ...] = ("html",)
    opts: Options = Options()
    afterthought: Path | None = None  # one markdown file for every page of this run
    afterthoughts: Path | None = None  # a folder of <session-id>.md files (default: <workspace>/notes/afterthoughts)
    scrub: bool = True
    known: Known = field(default_factory=Known)
    in_workspace: bool = False
    force: bool = False
    title: str = "Transcripts"


class Publisher:
    def __init__(self, settings: Settings, keep: bool = False):
        self.s = settings
        self.keep = keep  # watch mode: keep readers and rendered exchanges in memory
        self.scrubber = Scrubber(settings.known, enabled=settings.scrub)
        self.tz = resolve_tz(settings.opts.tz)
        self.renderer = PageRenderer(settings.opts, self.scrubber.check, self.tz, cache=keep)
        self.readers: dict[Path, tuple[LogReader, dict[str, LogReader]]] = {}
        self.scrubbed: dict[Path, int] = {}  # replacements made in each source's records
        self.sources: list[Source] = []
        self.paths: list[Path] = []
        self.manifest = self._load_manifest()
        self._opts_key = hashlib.sha256(json.dumps(
            [asdict(settings.opts), list(settings.formats), settings.scrub, sorted(settings.known.names),
             sorted(settings.known.paths), sorted(settings.known.other),
             _sig([settings.afterthought]) if settings.afterthought else None,
             _sig(settings.afterthoughts.glob("*.md")) if settings.afterthoughts and settings.afterthoughts.is_dir()
             else None]).encode()).hexdigest()[:16]

    # ------------------------------------------------------------ manifest
    def _load_manifest(self) -> dict:
        try:
            m = json.loads((self.s.out / MANIFEST).read_text())
            return m if isinstance(m, dict) and isinstance(m.get("sources"), dict) else {"sources": {}}
        except (OSError, ValueError):
            return {"sources": {}}

    def _save_manifest(self) -> None:
        atomic_write(self.s.out / MANIFEST, [json.dumps(self.manifest, indent=1, sort_keys=True)])

    # ------------------------------------------------------------ sessions
    def _afterthought(self, session_id: str) -> str:
        p = self.s.afterthought
        if p is not None and not p.is_file():
            raise UserError(f"Afterthought file {p} does not exist. Write it in markdown, or drop --afterthought.")
        if p is None and self.s.afterthoughts is not None:
            p = self.s.afterthoughts / f"{_safe_name(session_id)}.md"
        if p is None or not p.is_file():
            return ""
        return self.scrubber(p.read_text(encoding="utf-8"), "afterthought")

    def _claude(self, src: Source) -> Session:
        if src.path in self.readers:
            main, agents = self.readers[src.path]
        else:
            main = LogReader(src.path, self.scrubber)
            agents = {}
            if self.keep:
                self.readers[src.path] = (main, agents)
        for aid, p in src.agents.items():
            if aid not in agents:
                agents[aid] = LogReader(p, self.scrubber)
        before = self.scrubber.total()
        for r in (main, *agents.values()):
            if r.changed():
                r.read()
        self.scrubbed[src.path] = self.scrubbed.get(src.path, 0) + self.scrubber.total() - before
        return build_session(main, agents)

    def _streamed(self, src: Source) -> list[dict]:
        """A one-shot build of a Claude Code session in bounded memory (see `stream`): each
        exchange is rendered to a spool file as soon as it is final, then the page is the
        header (known only at the end) followed by the spool, copied day by day."""
        self.s.out.mkdir(parents=True, exist_ok=True)
        spools = {f: tempfile.TemporaryFile(dir=self.s.out, prefix=".spool-")
                  for f in ("html", "md") if f in self.s.formats}
        marks: list[DayMark] = []
        sid = [""]

        def emit(ex: Exchange) -> None:
            start = ex.start
            d = start.astimezone(self.tz).date() if start else (marks[-1].day if marks else None)
            if not marks or marks[-1].day != d:
                marks.append(DayMark(d, 0, {f: sp.tell() for f, sp in spools.items()}))
            marks[-1].count += ex.has_prompt()
            if "html" in spools:
                spools["html"].write(self.renderer.exchange(ex, f"the page for {sid[0]}"))
            if "md" in spools:
                text = "".join(mdout.exchange(ex, self.s.opts, self.tz))
                self.scrubber.check(text, f"the markdown for {sid[0]}")
                spools["md"].write(text.encode())

        try:
            before = self.scrubber.total()
            summary = stream(src.path, src.agents, self.scrubber, emit, lambda s: sid.__setitem__(0, s))
            if not summary.any_message:  # a file of only summaries/snapshots is not a session to show
                return []
            return [self._write(summary, self.scrubber.total() - before, marks, spools)]
        finally:
            for sp in spools.values():
                sp.close()

    def _md_spooled(self, s: Summary, marks: list[DayMark], spool, after: str) -> Iterator[str | bytes]:
        head, heads, tail = mdout.head(s, self.s.opts, self.tz), [mdout.day(d) for d in marks], mdout.tail(after)
        self.scrubber.check(head + "".join(heads) + tail, f"the markdown for {s.id}")
        yield head
        for i, d in enumerate(marks):
            yield heads[i]
            yield from copy_range(spool, d.at["md"], marks[i + 1].at["md"] if i + 1 < len(marks) else None)
        yield tail

    def _write(self, session: Session, scrubbed: int, marks: list[DayMark] | None = None,
               spools: dict | None = None) -> dict:
        name = _safe_name(session.id)
        after = self._afterthought(session.id)
        ds = days(session, self.tz) if marks is None else marks
        written = []
        if "html" in self.s.formats:
            atomic_write(self.s.out / f"{name}.html",
                         self.renderer.session(session, after, scrubbed, ds) if spools is None else
                         self.renderer.spooled(session, marks, spools["html"], after, scrubbed,
                                               session.thinking_signed))
            written.append(f"{name}.html")
        if "md" in self.s.formats:
            if spools is None:
                text = "".join(mdout.render(session, self.s.opts, self.tz, after))
                self.scrubber.check(text, f"the markdown for {session.id}")
                atomic_write(self.s.out / f"{name}.md", [text])
            else:
                atomic_write(self.s.out / f"{name}.md", self._md_spooled(session, marks, spools["md"], after))
            written.append(f"{name}.md")
        return {"id": session.id, "title": session.title, "source": session.source,
                "file": written[0], "files": written, "exchanges": session.exchanges(),
                "days": len([d for d in ds if d.day]),
                "started": session.started.isoformat() if session.started else None,
                "started_local": session.started.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")
                if session.started else None,
                "stats": {"records": session.stats.records, "duplicates": session.stats.duplicates,
                          "torn_lines": session.stats.torn, "skipped": session.stats.skipped,
                          "hidden": session.stats.hidden, "subagents": session.stats.subagents}}

    def publish(self, src: Source) -> tuple[list[dict], bool]:
        """(index entries, rebuilt?) for one source; unchanged sources are skipped."""
        key = hashlib.sha256(str(src.path.resolve()).encode()).hexdigest()[:16]
        sig = _sig([src.path, *src.agents.values()])
        prev = self.manifest["sources"].get(key)
        if (prev and not self.s.force and prev.get("sig") == sig and prev.get("opts") == self._opts_key
                and all((self.s.out / f).is_file() for e in prev.get("sessions", []) for f in e.get("files", []))):
            return prev["sessions"], False
        entries = []
        if src.kind == "chatgpt":
            for conv in chatgpt.raw(src.path):
                before = self.scrubber.total()
                session = chatgpt.conversation(conv, self.scrubber)
                if session.messages:
                    entries.append(self._write(session, self.scrubber.total() - before))
        else:
            if not self.keep:  # one-shot: streamed, in bounded memory
                entries.extend(self._streamed(src))
            else:
                session = self._claude(src)
                if session.messages:  # a file of only summaries/snapshots is not a session to show
                    entries.append(self._write(session, self.scrubbed.get(src.path, 0)))
        self.manifest["sources"][key] = {"sig": sig, "opts": self._opts_key, "sessions": entries}
        return entries, True

    def write_index(self) -> Path:
        entries = [e for v in self.manifest["sources"].values() for e in v.get("sessions", [])
                   if (self.s.out / e["file"]).is_file()]
        entries.sort(key=lambda e: e.get("started") or "", reverse=True)
        for e in entries:
            e["dashboard"] = self.s.in_workspace
        path = self.s.out / "index.html"
        atomic_write(path, [index(entries, self.s.title, self.scrubber.check)])
        if "md" in self.s.formats:
            lines = [f"# {self.s.title}\n\n"] + [f"- {e.get('started_local') or ''} [{mdout._esc(e['title'])}]"
                                                  f"({e['files'][-1]}) ({e['exchanges']} exchanges)\n"
                                                  for e in entries]
            text = "".join(lines)
            self.scrubber.check(text, "the markdown index")
            atomic_write(self.s.out / "index.md", [text])
        return path

    def build(self, paths: list[Path], progress: Callable[[int, int], None] | None = None) -> dict:
        self.paths = list(paths)
        self.sources = find(paths)
        results = []
        for i, src in enumerate(self.sources):
            if progress:
                progress(i, len(self.sources))
            entries, rebuilt = self.publish(src)
            results.extend({**e, "rebuilt": rebuilt} for e in entries)
        idx = self.write_index()
        self._save_manifest()
        return {"out": str(self.s.out), "index": str(idx), "sessions": results,
                "scrub": self.scrubber.report()}

    def poll(self, rediscover: bool = True) -> list[dict]:
        """One watch step: re-publish sources whose files grew or changed. Returns entries.

        `rediscover` also looks for new sessions and new sub-agent logs (directory scans;
        do it less often)."""
        changed = []
        if rediscover:
            try:
                found = {s.path: s for s in find(self.paths)}
            except UserError:  # the folder emptied or vanished: keep what we have
                found = {}
            for src in self.sources:
                if src.path in found:
                    src.agents = found.pop(src.path).agents
            self.sources.extend(found.values())
        for src in list(self.sources):
            readers = self.readers.get(src.path)
            if readers is not None:
                main, agents = readers
                dirty = main.changed() or any(r.changed() for r in agents.values()) or \
                    set(agents) != set(src.agents)
            else:
                dirty = _sig([src.path, *src.agents.values()]) != \
                    self.manifest["sources"].get(hashlib.sha256(str(src.path.resolve()).encode())
                                                 .hexdigest()[:16], {}).get("sig")
            if dirty:
                entries, _ = self.publish(src)
                changed.extend(entries)
        if changed:
            self.write_index()
            self._save_manifest()
        return changed
