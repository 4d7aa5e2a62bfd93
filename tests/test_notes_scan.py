"""`llmlab notes scan`: claims split from markdown, ranked against the catalog on the real
MiniLM; --log opens only what the learner confirms; the MCP tool returns the same."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from llmlab.lab.rag import notes

NOTES = resources.files("llmlab") / "lab" / "corpora" / "notes"
ONE = {"OMP_NUM_THREADS": "1"}  # one torch thread: two spin-waiting threads crawl on a busy 2-core box


def test_claims_from_bullets_tables_and_sentences():
    text = ("# Title\n\n- A token is basically a word.\n* short one\n1. Numbered claim with "
            "words.\n\n| idea | note |\n|---|---|\n| chunks | Bigger chunks are better always |\n\n"
            "First sentence of a paragraph here. Second sentence is here too!\n\n```\ncode "
            "is not a claim at all\n```\n")
    got = [(c["line"], c["text"]) for c in notes.claims(text)]
    assert got == [(3, "A token is basically a word."), (5, "Numbered claim with words."),
                   (9, "chunks — Bigger chunks are better always"),
                   (11, "First sentence of a paragraph here."),
                   (11, "Second sentence is here too!")]


def test_precision_recall_by_hand():
    ranked = [{"claim": "x wrong a", "misconception": "a"}, {"claim": "y fine", "misconception": "b"},
              {"claim": "z wrong c", "misconception": "d"}]
    labels = {"wrong a": "a", "wrong c": "c", "wrong e": "e"}
    assert notes.precision_recall_at(ranked, labels, 1) == (1.0, 1 / 3)
    assert notes.precision_recall_at(ranked, labels, 3) == (1 / 3, 1 / 3)  # right claim, wrong id




@pytest.mark.model
def test_scan_ranks_planted_misconceptions_first(cli, default_ws):
    pytest.importorskip("torch")
    labels = {json.loads(x)["claim"]: json.loads(x)["misconception"]
              for x in (NOTES / "labels.jsonl").read_text().splitlines()}
    path = default_ws.root / "notes" / "mine.md"
    path.parent.mkdir(exist_ok=True)
    path.write_text((NOTES / "notes.md").read_text())
    r = cli("notes", "scan", "mine.md", "--json", "--top", "10", env=ONE, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    cands = res["candidates"]
    assert len(cands) == 10 and res["claims"] >= 25
    assert [c["score"] for c in cands] == sorted((c["score"] for c in cands), reverse=True)
    p, rec = notes.precision_recall_at(cands, labels, 10)
    assert p >= 0.8  # measured 1.0 (BENCHMARKS.md)
    cur = default_ws.curriculum
    for c in cands:  # the catalog's own correction beside each candidate
        m = cur.misconception(c["concept"], c["misconception"])
        assert m.correction == c["correction"] and m.claim == c["misconception_claim"]
    log = default_ws.log_path.read_bytes()
    # --log: the learner confirms the first candidate only
    r = cli("notes", "scan", str(path), "--top", "3", "--log", input="y\nn\nn\n", env=ONE, timeout=300)
    assert r.returncode == 0, r.stderr
    events = [json.loads(x) for x in default_ws.log_path.read_bytes().splitlines()]
    new = events[len(log.splitlines()):]
    assert [e["type"] for e in new] == ["misconception_opened"]
    assert new[0]["actor"] == "learner" and new[0]["data"]["catalog"] == cands[0]["misconception"]
    assert new[0]["data"]["quote"] == cands[0]["claim"]
    r = cli("notes", "scan", str(default_ws.root / "nope.md"))
    assert r.returncode == 1 and "No notes file" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.model
def test_the_mcp_tool_returns_the_ranked_candidates(default_ws):
    pytest.importorskip("torch")
    from test_mcp import connect, data, run

    async def go():
        async with connect(default_ws.root, ONE) as c:
            return data(await c.call_tool("scan_notes", {
                "text": "- If GPT-4 says an answer is correct then it is correct.\n"
                        "- Cohen's kappa corrects agreement for chance.\n", "top": 2}))

    res = run(go())
    assert res["claims"] == 2 and res["candidates"][0]["misconception"] == "judge_is_ground_truth"
    assert "correction" in res["candidates"][0]
