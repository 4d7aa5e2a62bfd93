"""Scan a learner's notes for claims close to the course's catalogued misconceptions.

The notes are split into claims (bullets, table rows, sentences of paragraphs), embedded
with MiniLM, and compared with every concept (title and summary) and every catalogued
misconception (its wrong claim and its correction). A claim's score is its cosine with
the closest catalogued wrong claim; `contrast` (that minus the cosine with the
correction) is reported beside it (on the shipped labelled notes it ranked no better:
BENCHMARKS.md). Claims are ranked by score. This flags candidates; it does not
decide truth: a person (the learner or the tutor) confirms each before it is logged.
"""

from __future__ import annotations

import re
from pathlib import Path

from ...errors import UserError

_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")


def read(path: Path | str) -> str:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"No notes file at {p}. Give the path of a markdown file, e.g. "
                        "notes/week1.md in your workspace.")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UserError(f"{p} is not UTF-8 text. Save it as UTF-8 markdown.") from None
    return text


def claims(text: str, min_words: int = 4) -> list[dict]:
    """Claims with their line numbers: bullets, table rows (cells joined), sentences."""
    out: list[dict] = []
    para: list[tuple[int, str]] = []
    fenced = False

    def flush():
        if para:
            joined = " ".join(t for _, t in para)
            for s in _SENTENCE.split(joined):
                out.append({"line": para[0][0], "text": s.strip()})
            para.clear()

    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("```"):
            fenced = not fenced
            flush()
            continue
        if fenced or not line or line.startswith("#"):
            flush()
            continue
        if line.startswith("|"):
            flush()
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells if c):
                if out and out[-1]["line"] == i - 1:
                    out.pop()  # the row above a separator is the table's header
                continue
            out.append({"line": i, "text": " — ".join(c for c in cells if c)})
            continue
        m = _BULLET.match(raw)
        if m:
            flush()
            out.append({"line": i, "text": m.group(1).strip()})
            continue
        para.append((i, line))
    flush()
    return [c for c in out if len(c["text"].split()) >= min_words]


def scan(cur, text: str, emb, top: int = 10) -> dict:
    """Ranked misconception candidates for the claims in `text` (see the module doc)."""
    import numpy as np

    cl = claims(text)
    if not cl:
        raise UserError("The notes have no claims to scan (bullets, table rows or sentences "
                        "of at least 4 words).")
    concepts = list(cur.concepts.values())
    mis = [(c, m) for c in concepts for m in c.misconceptions]
    v_claim = emb.encode([c["text"] for c in cl])  # (claims, 384)
    v_concept = emb.encode([f"{c.title}. {c.summary}" for c in concepts])  # (concepts, 384)
    v_wrong = emb.encode([m.claim for _, m in mis])  # (misconceptions, 384)
    v_fix = emb.encode([m.correction for _, m in mis])
    sim_wrong = v_claim @ v_wrong.T  # (claims, misconceptions)
    contrast = sim_wrong - v_claim @ v_fix.T
    sim_concept = v_claim @ v_concept.T  # (claims, concepts)
    rows = []
    for i, c in enumerate(cl):
        j = int(np.argmax(sim_wrong[i]))
        concept, m = mis[j]
        near = np.argsort(-sim_concept[i])[:3]
        rows.append({"line": c["line"], "claim": c["text"], "score": round(float(sim_wrong[i, j]), 4),
                     "contrast": round(float(contrast[i].max()), 4),
                     "concept": concept.id, "misconception": m.id,
                     "misconception_claim": m.claim, "correction": m.correction,
                     "about": [{"concept": concepts[k].id,
                                "similarity": round(float(sim_concept[i, k]), 4)} for k in near]})
    rows.sort(key=lambda r: -r["score"])
    return {"claims": len(cl), "candidates": rows[:top], "all": rows}


def precision_recall_at(ranked: list[dict], labels: dict[str, str], k: int) -> tuple[float, float]:
    """Of the top k candidates, the share that are planted errors flagged with the right
    misconception id (precision); of the planted errors, the share found so (recall)."""
    def truth(claim: str) -> str | None:
        return next((mid for key, mid in labels.items() if key in claim), None)

    hits = sum(1 for r in ranked[:k] if truth(r["claim"]) == r["misconception"])
    return hits / k, hits / len(labels)


def scan_file(ws, path: str | None = None, text: str | None = None, top: int = 10) -> dict:
    """`scan` on a notes file (relative paths are tried under the workspace's notes/) or
    on text, against the workspace's curriculum (the default course without one)."""
    if text is None:
        if not path:
            raise UserError("Give a notes file (e.g. notes/week1.md) or the text to scan.")
        p = Path(path).expanduser()
        if not p.is_absolute() and not p.is_file() and ws is not None:
            for base in (ws.root, ws.root / "notes"):
                if (base / p).is_file():
                    p = base / p
                    break
        text = read(p)
    from ... import curriculum
    from .. import embedder

    cur = ws.curriculum if ws is not None else curriculum.load(curriculum.default_path())
    return scan(cur, text, embedder.load(), top)
