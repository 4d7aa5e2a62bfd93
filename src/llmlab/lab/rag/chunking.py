"""Two chunking strategies, so their cost can be measured side by side.

  fixed     windows of `size` tokens (the embedding model's tokenizer) stepping by
            size - overlap, cut wherever the count falls: across sentences, across headings
  headings  one section at a time, its paragraphs packed up to `size` tokens; a chunk
            never crosses a heading, and its embedded text starts with "Title > Heading"

A chunk knows its character span, so which labelled targets it covers (a file, a
file#heading section) and whether it holds a whole evidence passage are exact.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from .sources import Doc, norm_heading

MIN_OVERLAP = 40  # characters of a section's body a chunk must hold to count as covering it


@dataclass(frozen=True)
class Chunk:
    id: int
    file: str
    start: int
    end: int
    text: str  # the document's characters start..end
    embed_text: str  # what is embedded and indexed (the text, or a header plus the text)
    heading: str  # the section the chunk starts in

    @property
    def label(self) -> str:
        return f"{self.file}#{self.heading}" if self.heading else self.file


def _offsets(tokenizer, text: str) -> list[tuple[int, int]]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    return [tuple(o) for o in enc["offset_mapping"]]


def _heading_at(doc: Doc, pos: int) -> str:
    h = ""
    for s in doc.sections:
        if s.start <= pos:
            h = s.heading
    return h


def _windows(offsets, size: int, step: int) -> list[tuple[int, int]]:
    spans, i = [], 0
    while i < len(offsets):
        j = min(i + size, len(offsets))
        spans.append((offsets[i][0], offsets[j - 1][1]))
        if j == len(offsets):
            break
        i += step
    return spans


def fixed(docs: list[Doc], tokenizer, size: int = 128, overlap: int = 32) -> list[Chunk]:
    out: list[Chunk] = []
    for d in docs:
        for s, e in _windows(_offsets(tokenizer, d.text), size, max(1, size - overlap)):
            text = d.text[s:e]
            out.append(Chunk(len(out), d.name, s, e, text, text, _heading_at(d, s)))
    return out


def headings(docs: list[Doc], tokenizer, size: int = 128, overlap: int = 32) -> list[Chunk]:
    out: list[Chunk] = []
    for d in docs:
        for sec in d.sections:
            header = f"{d.title} > {sec.heading}" if sec.heading else d.title
            paras = [(m.start() + sec.body_start, m.end() + sec.body_start)
                     for m in re.finditer(r"\S(?:.*?\S)?(?=\n\s*\n|\s*\Z)",
                                          d.text[sec.body_start:sec.end], re.S)]
            spans: list[tuple[int, int]] = []
            cur: tuple[int, int] | None = None
            cur_n = 0
            for ps, pe in paras:
                n = len(_offsets(tokenizer, d.text[ps:pe]))
                if n > size:  # a paragraph too long for one chunk: fixed windows inside it
                    if cur:
                        spans.append(cur)
                        cur, cur_n = None, 0
                    offs = [(a + ps, b + ps) for a, b in _offsets(tokenizer, d.text[ps:pe])]
                    spans += _windows(offs, size, max(1, size - overlap))
                elif cur and cur_n + n <= size:
                    cur, cur_n = (cur[0], pe), cur_n + n
                else:
                    if cur:
                        spans.append(cur)
                    cur, cur_n = (ps, pe), n
            if cur:
                spans.append(cur)
            for s, e in spans:
                text = d.text[s:e]
                out.append(Chunk(len(out), d.name, s, e, text, f"{header}\n{text}", sec.heading))
    return out


STRATEGIES: dict[str, Callable[..., list[Chunk]]] = {"fixed": fixed, "headings": headings}


def covers(chunk: Chunk, docs_by_name: dict[str, Doc]) -> set[str]:
    """The targets a chunk covers: its file, and each section whose body it overlaps by
    at least MIN_OVERLAP characters (or all of a shorter body)."""
    d = docs_by_name[chunk.file]
    out = {d.name}
    for s in d.sections:
        body = s.end - s.body_start
        ov = min(chunk.end, s.end) - max(chunk.start, s.body_start)
        if body > 0 and ov >= min(MIN_OVERLAP, body):
            out.add(f"{d.name}#{norm_heading(s.heading)}" if s.heading else d.name)
    return out


def norm_target(t: str) -> str:
    name, _, heading = t.partition("#")
    return f"{name}#{norm_heading(heading)}" if heading else name


def holds(chunk: Chunk, span: tuple[str, int, int]) -> bool:
    return chunk.file == span[0] and chunk.start <= span[1] and span[2] <= chunk.end


def touches(chunk: Chunk, span: tuple[str, int, int]) -> bool:
    return chunk.file == span[0] and chunk.start < span[2] and span[1] < chunk.end
