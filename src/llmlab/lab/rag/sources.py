"""A retrieval corpus (a folder of .md/.txt files) and its labelled queries, validated.

Everything here runs before any model is loaded, so a bad corpus or queries file fails
in milliseconds with a message that says what to fix.

Queries file (JSONL, one object per line):
  query      the question (required)
  relevant   list of targets: "file" or "file#heading" (required, non-empty)
  type       a label used to break metrics down (optional; default "unlabelled")
  evidence   a verbatim passage of a relevant target that answers the query (optional;
             used to tell a complete retrieval from one cut by a chunk boundary)
  answer     key words of a correct answer, comma-separated (optional; rag_answer)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ...errors import UserError, closest

SUFFIXES = (".md", ".txt")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)


def default_corpus() -> Path:
    """The course's own study pages (shipped, so the experiment needs nothing)."""
    return Path(str(resources.files("llmlab") / "curriculum" / "default" / "study"))


def default_queries() -> Path:
    return Path(str(resources.files("llmlab") / "lab" / "corpora" / "rag" / "queries.jsonl"))


def norm_heading(h: str) -> str:
    return " ".join(h.strip().lower().split())


@dataclass
class Section:
    heading: str  # "" for text before the first heading
    start: int  # character span of the section, heading line included
    end: int
    body_start: int  # first character after the heading line


@dataclass
class Doc:
    name: str  # path relative to the corpus folder, with "/" separators
    text: str
    title: str
    sections: list[Section] = field(default_factory=list)

    def section(self, heading: str) -> list[Section]:
        key = norm_heading(heading)
        return [s for s in self.sections if norm_heading(s.heading) == key]


def _sections(text: str, markdown: bool) -> list[Section]:
    marks = list(_HEADING.finditer(text)) if markdown else []
    out = []
    if not marks or marks[0].start() > 0:
        end = marks[0].start() if marks else len(text)
        out.append(Section("", 0, end, 0))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out.append(Section(m.group(2), m.start(), end, min(m.end() + 1, end)))
    return out


def load_corpus(folder: Path | str | None) -> list[Doc]:
    """The .md and .txt files under `folder` (recursively), sorted by name."""
    root = Path(folder).expanduser() if folder else default_corpus()
    if not root.is_dir():
        raise UserError(f"The corpus folder {root} does not exist or is not a folder. Give a "
                        "folder of .md or .txt files with -p corpus=DIR (or leave corpus empty "
                        "for the course's study pages).")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    docs = []
    for p in files:
        try:
            text = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as e:
            raise UserError(f"Cannot read {p} as UTF-8 text ({e}). Convert it to UTF-8 or "
                            "move it out of the corpus folder.") from None
        if not text.strip():
            continue
        md = p.suffix.lower() == ".md"
        m = _HEADING.search(text) if md else None
        title = m.group(2) if m and m.group(1) == "#" else p.stem
        docs.append(Doc(p.relative_to(root).as_posix(), text, title, _sections(text, md)))
    if not docs:
        raise UserError(f"The corpus folder {root} has no text files (.md or .txt with some "
                        "text in them). Put your documents there, or leave -p corpus empty to "
                        "use the course's study pages.")
    return docs


@dataclass
class Query:
    line: int
    query: str
    relevant: list[str]  # targets as given
    type: str = "unlabelled"
    evidence: str = ""
    answer: str = ""
    evidence_span: tuple[str, int, int] | None = None  # (file, start, end) in the corpus


def _target_error(where: str, target: str, docs: list[Doc]) -> UserError:
    name, _, heading = target.partition("#")
    by_name = {d.name: d for d in docs}
    if name not in by_name:
        near = closest(name, by_name) or [d.name for d in docs][:3]
        return UserError(f"{where}: unknown relevant target '{target}': no file '{name}' in the "
                         f"corpus. Nearest file names: {', '.join(near)}. Targets are 'file' or "
                         "'file#heading', with the file's path relative to the corpus folder.")
    heads = [s.heading for s in by_name[name].sections if s.heading]
    near = closest(heading, heads) or heads[:5]
    return UserError(f"{where}: unknown relevant target '{target}': '{name}' has no heading "
                     f"'{heading}'. Its headings include: {'; '.join(near) or '(none)'}.")


def find_span(text: str, passage: str) -> tuple[int, int] | None:
    """Where `passage` occurs in `text`, any run of whitespace matching any other."""
    words = passage.split()
    if not words:
        return None
    m = re.search(r"\s+".join(re.escape(w) for w in words), text)
    return (m.start(), m.end()) if m else None


def target_spans(target: str, docs: list[Doc]) -> list[tuple[str, int, int]]:
    name, _, heading = target.partition("#")
    d = next((d for d in docs if d.name == name), None)
    if d is None:
        return []
    if not heading:
        return [(d.name, 0, len(d.text))]
    return [(d.name, s.start, s.end) for s in d.section(heading)]


def load_queries(path: Path | str | None, docs: list[Doc]) -> list[Query]:
    """Parse and validate a queries file against the corpus (every target must resolve)."""
    p = Path(path).expanduser() if path else default_queries()
    if not p.is_file():
        raise UserError(f"The queries file {p} does not exist. Give a JSONL file with one "
                        "object per line: {\"query\": ..., \"relevant\": [\"file#heading\"]}.")
    out = []
    for i, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{p.name} line {i}"
        try:
            obj = json.loads(raw)
        except ValueError as e:
            raise UserError(f"{where} is not valid JSON ({e}). Each line must be one object: "
                            "{\"query\": ..., \"relevant\": [\"file#heading\"]}.") from None
        if not isinstance(obj, dict) or not str(obj.get("query") or "").strip():
            raise UserError(f"{where} has no \"query\" (a non-empty string).")
        rel = obj.get("relevant")
        if not isinstance(rel, list) or not rel or not all(isinstance(t, str) for t in rel):
            raise UserError(f"{where}: \"relevant\" must be a non-empty list of 'file' or "
                            f"'file#heading' strings; got {rel!r}.")
        for t in rel:
            if not target_spans(t, docs):
                raise _target_error(where, t, docs)
        q = Query(i, obj["query"].strip(), rel, str(obj.get("type") or "unlabelled"),
                  str(obj.get("evidence") or ""), str(obj.get("answer") or ""))
        if q.evidence:
            q.evidence_span = _evidence(where, q, docs)
        out.append(q)
    if not out:
        raise UserError(f"The queries file {p} has no queries. Give one JSON object per line.")
    return out


def _evidence(where: str, q: Query, docs: list[Doc]) -> tuple[str, int, int]:
    by_name = {d.name: d for d in docs}
    for t in q.relevant:
        for name, s, e in target_spans(t, docs):
            hit = find_span(by_name[name].text[s:e], q.evidence)
            if hit:
                return (name, s + hit[0], s + hit[1])
    raise UserError(f"{where}: the evidence passage {q.evidence[:60]!r}... is not in any of its "
                    f"relevant targets ({', '.join(q.relevant)}). Copy it verbatim from the "
                    "document (whitespace may differ), or drop the \"evidence\" field.")


def check(p: dict) -> tuple[list[Doc], list[Query]]:
    """Validate the corpus and queries parameters (before any model loads)."""
    if p.get("corpus") and not p.get("queries"):
        raise UserError("A custom corpus needs its labelled queries: give -p queries=FILE.jsonl "
                        "(one object per line: {\"query\": ..., \"relevant\": [\"file#heading\"], "
                        "\"type\": ...}).")
    docs = load_corpus(p.get("corpus") or None)
    return docs, load_queries(p.get("queries") or None, docs)
