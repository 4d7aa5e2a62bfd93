"""Retrieval machinery without a model: metrics on hand-made rankings, corpus and query
validation, chunk boundaries (the MiniLM tokenizer only; no weights are loaded)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from llmlab.errors import UserError
from llmlab.lab.rag import metrics as M
from llmlab.lab.rag import sources


def test_metrics_on_a_hand_made_ranking():
    # relevant targets {a, b}; the ranking covers x, a, a (again), b, y
    found = M.first_found([{"x"}, {"a"}, {"a"}, {"b"}, {"y"}], {"a", "b"})
    assert found == [0, 1, 0, 1, 0]  # a second chunk of an already-found target adds nothing
    assert M.hit_at(found, 1) == 0 and M.hit_at(found, 2) == 1
    assert M.reciprocal_rank(found) == 0.5
    assert M.recall_at(found, 2, 3) == 0.5 and M.recall_at(found, 2, 4) == 1.0
    # DCG@5 = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3)
    assert M.ndcg_at(found, 2, 5) == pytest.approx(
        (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))
    assert M.ndcg_at(found, 2, 5) == pytest.approx(0.650921, abs=1e-6)
    assert M.ndcg_at([1, 1], 2, 2) == 1.0 and M.ndcg_at([0, 0], 2, 2) == 0.0
    assert M.reciprocal_rank([0, 0, 1], k=2) == 0.0  # past the cut-off counts as a miss


def test_the_study_pages_worked_example():
    # first relevant chunk at ranks 1, 3, none, 2 and 7 (retrieval.md, worked example)
    rankings = [[1], [0, 0, 1], [0] * 10, [0, 1], [0] * 6 + [1]]
    assert sum(M.hit_at(f, 5) for f in rankings) / 5 == 0.6
    assert sum(M.hit_at(f, 1) for f in rankings) / 5 == 0.2
    mrr = sum(M.reciprocal_rank(f) for f in rankings) / 5
    assert mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 2 + 1 / 7) / 5) and round(mrr, 3) == 0.395


def test_reciprocal_rank_fusion_by_hand():
    # scores: 1 -> 1/61 + 1/62, 2 -> 1/62, 3 -> 1/63 + 1/61, 4 -> 1/63
    assert M.rrf([[1, 2, 3], [3, 1, 4]]) == [1, 3, 2, 4]
    assert M.rrf([[5, 6]], k=0) == [5, 6]


def test_bootstrap_intervals():
    assert M.bootstrap_ci([0.5] * 10) == (0.5, 0.5)
    vals = [0, 1] * 20
    lo, hi = M.bootstrap_ci(vals, seed=3)
    assert lo < 0.5 < hi and 0.3 < lo and hi < 0.7
    assert M.bootstrap_ci(vals, seed=3) == (lo, hi)  # seeded: reproducible
    # the interval of a mean of n Bernoulli(0.5) is about +-1.96 * sqrt(.25 / n)
    assert hi - lo == pytest.approx(2 * 1.96 * math.sqrt(0.25 / 40), rel=0.2)
    import numpy as np

    lo, hi = M.bootstrap_stat([[1, 2, 3, 4, 5] * 4, [2, 4, 6, 8, 10] * 4],
                              lambda x, y: float(np.corrcoef(x, y)[0, 1]))
    assert lo == pytest.approx(1.0) and hi == pytest.approx(1.0)


def _write(folder, files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def _queries(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_shipped_query_set_resolves():
    docs, queries = sources.check({})
    assert len(queries) >= 40
    types = {q.type for q in queries}
    assert types == {"direct", "paraphrase", "cross-document", "abstract"}
    assert all(sum(q.type == t for q in queries) >= 10 for t in types)
    assert all(q.evidence_span for q in queries if q.evidence)  # verbatim in its section
    assert {d.name for d in docs} >= {"retrieval.md", "evaluation.md"}


def test_bad_corpus_and_queries_are_named(tmp_path):
    with pytest.raises(UserError, match="no text files"):
        sources.load_corpus(_write(tmp_path / "empty", {"a.pdf": "x", "b.md": "  \n"}))
    with pytest.raises(UserError, match="does not exist"):
        sources.load_corpus(tmp_path / "missing")
    corpus = _write(tmp_path / "c", {"cats.md": "# Cats\n\n## Food\n\nCats eat fish.\n",
                                     "dogs.txt": "Dogs bark."})
    docs = sources.load_corpus(corpus)
    q = _queries(tmp_path / "q.jsonl", [{"query": "What do cats eat?", "relevant": ["cat.md"]}])
    with pytest.raises(UserError) as e:
        sources.load_queries(q, docs)
    assert "'cat.md'" in str(e.value) and "cats.md" in str(e.value) and "line 1" in str(e.value)
    q = _queries(tmp_path / "q.jsonl", [{"query": "x", "relevant": ["cats.md#Fod"]}])
    with pytest.raises(UserError, match="no heading 'Fod'.*Food"):
        sources.load_queries(q, docs)
    q = _queries(tmp_path / "q.jsonl", [{"query": "x", "relevant": ["cats.md#food"],
                                         "evidence": "Cats eat mice."}])
    with pytest.raises(UserError, match="evidence passage"):
        sources.load_queries(q, docs)
    q.write_text('{"query": "x", "relevant": "cats.md"}\n')
    with pytest.raises(UserError, match="non-empty list"):
        sources.load_queries(q, docs)
    q.write_text('{"query": "x", \n')
    with pytest.raises(UserError, match="line 1 is not valid JSON"):
        sources.load_queries(q, docs)
    with pytest.raises(UserError, match="needs its labelled queries"):
        sources.check({"corpus": str(corpus), "queries": ""})
    good = _queries(tmp_path / "q.jsonl", [{"query": "x", "relevant": ["cats.md#Food", "dogs.txt"],
                                            "evidence": "Cats  eat\nfish."}])
    (query,) = sources.load_queries(good, docs)
    name, s, e = query.evidence_span
    assert name == "cats.md" and docs[0].text[s:e] == "Cats eat fish."


def test_bad_corpus_fails_in_the_cli_before_any_model(cli, tmp_path, ws):
    log = (ws.root / "evidence.jsonl").read_bytes()
    empty = _write(tmp_path / "empty", {"notes.pdf": "x"})
    q = _queries(tmp_path / "q.jsonl", [{"query": "x", "relevant": ["a.md"]}])
    r = cli("lab", "run", "retrieval", "-p", f"corpus={empty}", "-p", f"queries={q}")
    assert r.returncode == 1 and "no text files" in r.stderr and "Traceback" not in r.stderr
    corpus = _write(tmp_path / "c", {"alpha.md": "# A\n\nText.\n", "beta.md": "# B\n\nMore.\n"})
    r = cli("lab", "run", "retrieval", "-p", f"corpus={corpus}", "-p", f"queries={q}")
    assert r.returncode == 1 and "unknown relevant target 'a.md'" in r.stderr
    assert "alpha.md" in r.stderr and "Traceback" not in r.stderr
    assert (ws.root / "evidence.jsonl").read_bytes() == log  # nothing recorded


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from llmlab.lab import models

    return AutoTokenizer.from_pretrained(models.locate(models.REGISTRY["minilm-l6"]).parent)


def test_chunks_cover_the_text_and_respect_headings(tokenizer):
    from llmlab.lab.rag import chunking as C

    docs, _ = sources.check({})
    fixed = C.fixed(docs, tokenizer, size=64, overlap=16)
    for d in docs:
        cs = [c for c in fixed if c.file == d.name]
        assert cs[0].start == 0 and cs[-1].end == len(d.text.rstrip())
        assert all(a.end > b.start for a, b in zip(cs, cs[1:]))  # consecutive chunks overlap
        assert all(len(tokenizer(c.text, add_special_tokens=False).input_ids) <= 66 for c in cs)
    heads = C.headings(docs, tokenizer, size=64, overlap=16)
    by = {d.name: d for d in docs}
    for c in heads:  # a heading-aware chunk stays inside one section
        secs = [s for s in by[c.file].sections if s.start <= c.start < s.end]
        assert secs and c.end <= secs[0].end and c.embed_text.endswith(c.text)
    none = C.fixed(docs, tokenizer, size=64, overlap=0)
    assert all(a.end <= b.start for a, b in zip(none, none[1:]) if a.file == b.file)
    c = heads[0]
    assert C.holds(c, (c.file, c.start, c.end)) and not C.holds(c, (c.file, c.start, c.end + 1))
    assert C.touches(c, (c.file, c.end - 1, c.end + 5))


def test_readme_rag_section_commands_are_valid(tmp_path, cli):
    """The section's `lab run` lines name real experiments and valid parameters (checked
    without a model, in the folder a user would run them from); `eval calibrate` runs."""
    import shlex

    from test_readme import commands

    from llmlab.lab.runner import check

    page = Path(__file__).parent.parent / "docs" / "retrieval-and-evaluation.md"
    cmds = commands(page.read_text())
    assert len(cmds) >= 7
    docs = _write(tmp_path / "docs", {"a.md": "# A\n\n## Intro\n\nSome text.\n"})
    _queries(tmp_path / "queries.jsonl", [{"query": "x", "relevant": ["a.md#Intro"]}])
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "week1.md").write_text("- A token is basically a word in English.\n")
    (tmp_path / "scores.csv").write_text("item,human,judge\na,1,2\nb,3,3\nc,5,4\nd,2,1\n")
    import os

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        for line in cmds:
            args = shlex.split(line)[1:]
            if args[:2] == ["lab", "run"]:
                params = dict(a.split("=", 1) for a in args[3:] if a != "-p")
                check(args[2], params)  # raises UserError on any bad name or value
            elif args[0] == "notes":
                assert args[:2] == ["notes", "scan"] and (tmp_path / args[2]).is_file()
            else:
                r = cli(*args, cwd=tmp_path)
                assert r.returncode == 0, f"`{line}` failed:\n{r.stderr}"
    finally:
        os.chdir(here)
    assert (tmp_path / "reliability.png").is_file() and docs.is_dir()
