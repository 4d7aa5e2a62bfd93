"""The retrieval experiments on the real shipped models (MiniLM; SmolLM2 for reranking),
checked against independent computations. Small corpora and few queries keep them quick."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("torch")

from llmlab.lab.runner import run_experiment  # noqa: E402

pytestmark = pytest.mark.model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning threads per process
    make every forward pass several times slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def run(name, **params):
    return run_experiment(None, name, params, record=False, show_progress=False)


@pytest.fixture(scope="module")
def emb():
    from llmlab.lab import embedder

    return embedder.load()


def test_embedder_matches_sentence_transformers(emb):
    st = pytest.importorskip("sentence_transformers")
    import numpy as np

    texts = ["How do I reset my password?", "Steps to recover access to your login",
             "The office is closed on public holidays"]
    ours = emb.encode(texts)
    ref = st.SentenceTransformer(emb.path, device="cpu").encode(texts, normalize_embeddings=True)
    assert np.allclose(ours, ref, atol=1e-5)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1, atol=1e-6)
    cos = float(ours[0] @ ours[1])
    assert cos == pytest.approx(float(ref[0] @ ref[1]), abs=1e-5)
    assert cos > float(ours[0] @ ours[2])  # the paraphrase beats the unrelated text


def test_embeddings_experiment(emb):
    import numpy as np

    from llmlab.lab.experiments.embeddings import PARAPHRASE

    r = run("embeddings")
    m = r["metrics"]
    vecs = emb.encode([a for a, _ in PARAPHRASE] + [b for _, b in PARAPHRASE])
    n = len(PARAPHRASE)
    assert m["paraphrase_cosine"] == pytest.approx(
        float(np.mean([vecs[i] @ vecs[n + i] for i in range(n)])), abs=1e-5)
    assert m["unit_identity_max_error"] < 1e-5  # |a-b|^2 = 2 - 2cos on unit vectors
    rows = r["tables"]["pairs"]
    assert all(x["dot_unit"] == pytest.approx(x["cosine"], abs=1e-6) for x in rows)
    assert m["separation_ratio"] == pytest.approx(
        np.mean([x["cosine"] for x in rows if x["kind"] in ("paraphrase", "same_topic")])
        / m["unrelated_cosine"])
    assert m["paraphrase_cosine"] > m["unrelated_cosine"]
    assert r["conditions"]["embedding_sha256"].startswith("53aa5117")


@pytest.fixture
def small(tmp_path):
    """A three-document corpus and four labelled queries."""
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "pets.md").write_text(
        "# Pets\n\n## Cats\n\nCats sleep for sixteen hours a day and hunt at dawn.\n\n"
        "## Dogs\n\nDogs need a walk twice a day and love to fetch sticks.\n")
    (corpus / "space.md").write_text(
        "# Space\n\n## Mars\n\nMars is red because its dust holds iron oxide.\n\n"
        "## Moon\n\nThe Moon keeps one face toward Earth: tidal locking.\n")
    (corpus / "code.txt").write_text("Error E-4012 means the license key has expired. Renew it "
                                     "in the admin console.")
    rows = [{"query": "Why is the red planet red?", "relevant": ["space.md#Mars"],
             "type": "paraphrase", "evidence": "its dust holds iron oxide"},
            {"query": "How long do cats sleep?", "relevant": ["pets.md#Cats"], "type": "direct"},
            {"query": "What does E-4012 mean?", "relevant": ["code.txt"], "type": "direct"},
            {"query": "Which animals need exercise?", "relevant": ["pets.md#Dogs"],
             "type": "abstract"}]
    rows[1]["answer"] = "sixteen, 16"
    q = tmp_path / "q.jsonl"
    q.write_text("".join(json.dumps(x) + "\n" for x in rows))
    return corpus, q


def test_retrieval_on_a_small_corpus(small):
    corpus, q = small
    r = run("retrieval", corpus=str(corpus), queries=str(q), chunk_tokens=16, overlap=4, k=2,
            retrievers="dense,bm25,hybrid,rerank", rerank_depth=2)
    m = r["metrics"]
    t = r["tables"]
    assert {(x["chunking"], x["retriever"]) for x in t["retrievers"]} == {
        (c, x) for c in ("fixed", "headings") for x in ("dense", "bm25", "hybrid", "rerank")}
    for s in t["retrievers"]:  # every summary equals a recomputation from the query table
        qs = [x for x in t["queries"] if (x["chunking"], x["retriever"]) == (s["chunking"], s["retriever"])]
        assert len(qs) == 4
        rr = [1 / x["first_rank"] if x["first_rank"] and x["first_rank"] <= 2 else 0 for x in qs]
        assert s["mrr"] == pytest.approx(sum(rr) / 4, abs=1e-4)
        assert s["hit_at_k"] == pytest.approx(sum(x["hit_at_k"] for x in qs) / 4, abs=1e-4)
        assert s["mrr_lo"] <= s["mrr"] <= s["mrr_hi"]
        assert s["hit_at_1"] <= s["hit_at_k"]
        fails = [f for f in t["failures"] if (f["chunking"], f["retriever"]) == (s["chunking"], s["retriever"])]
        assert len(fails) == sum(1 for x in qs if not x["hit_at_k"])
    assert m["mrr"] == m["fixed_dense_mrr"]
    dense = {x["query"]: x for x in t["queries"] if x["retriever"] == "dense" and x["chunking"] == "headings"}
    assert dense["How long do cats sleep?"]["first_rank"] == 1
    bm25 = {x["query"]: x for x in t["queries"] if x["retriever"] == "bm25" and x["chunking"] == "fixed"}
    assert bm25["What does E-4012 mean?"]["first_rank"] == 1  # the exact identifier
    # 16-token fixed chunks with 4 of overlap; the evidence sentence fits one heading chunk
    b = {(x["chunking"], x["retriever"]): x for x in t["boundaries"]}
    assert b[("headings", "dense")]["evidence_split_by_chunking"] == 0
    assert r["conditions"]["reranker_model"] == "smollm2-135m-instruct"


def test_judge_calibration_on_four_items(tmp_path):
    import numpy as np

    items = [{"item": "a", "dimension": "correctness", "question": "What is 2 + 2?",
              "answer": "4.", "human": 5},
             {"item": "b", "dimension": "correctness", "question": "What is 2 + 2?",
              "answer": "22.", "human": 1},
             {"item": "c", "dimension": "relevance", "question": "When do you open?",
              "answer": "We open at 9 am.", "human": 5},
             {"item": "d", "dimension": "relevance", "question": "When do you open?",
              "answer": "Bananas are yellow.", "human": 1}]
    f = tmp_path / "items.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in items))
    r = run("judge_calibration", items=str(f))
    m, t = r["metrics"], r["tables"]["items"]
    assert [x["item"] for x in t] == ["a", "b", "c", "d"]
    assert all(1 <= x["judge"] <= 5 and 0 < x["digit_mass"] <= 1 for x in t)
    h = np.array([x["human"] for x in t])
    j = np.array([x["judge"] for x in t])
    assert m["mae"] == pytest.approx(float(np.abs(j - h).mean()), abs=1e-6)
    assert m["bias"] == pytest.approx(float((j - h).mean()), abs=1e-6)
    assert m["pearson_r"] == pytest.approx(float(np.corrcoef(h, j)[0, 1]), abs=1e-6)
    dims = [g["dimension"] for g in r["tables"]["agreement"]]
    assert dims == ["all", "correctness", "relevance"]
    assert any("135M" in s or "fairly" in s for s in r["summary"])


def test_contamination_log_probabilities(tmp_path):
    import torch

    from llmlab.lab import models

    rows = [{"id": "ham", "group": "famous", "original": "To be, or not to be, that is the "
             "question.", "paraphrase": "Whether to live or to die is what I must decide."},
            {"id": "gen", "group": "famous", "original": "In the beginning God created the "
             "heaven and the earth.", "paraphrase": "At the start God made the sky and the land."},
            {"id": "x", "group": "study", "original": "The lookup ignores context.",
             "paraphrase": "The lookup does not look at context."},
            {"id": "y", "group": "study", "original": "Probes are simple classifiers.",
             "paraphrase": "Probes are plain classifiers."}]
    f = tmp_path / "p.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in rows))
    r = run("contamination", passages=str(f), completion_tokens=4)
    t = {x["id"]: x for x in r["tables"]["passages"]}
    lm = models.load()
    ids = lm.tokenizer(rows[0]["original"], return_tensors="pt", add_special_tokens=False).input_ids
    with torch.no_grad():
        loss = lm.model(input_ids=ids, labels=ids).loss.item()  # mean NLL of tokens 2..n
    assert t["ham"]["original_logprob"] == pytest.approx(-loss, abs=1e-3)
    assert all(x["delta"] == pytest.approx(x["original_logprob"] - x["paraphrase_logprob"],
                                           abs=2e-4) for x in t.values())
    m = r["metrics"]
    assert m["famous_delta"] == pytest.approx((t["ham"]["delta"] + t["gen"]["delta"]) / 2, abs=1e-4)
    assert m["delta_gap"] == pytest.approx(m["famous_delta"] - m["study_delta"])
    assert m["delta_gap_lo"] <= m["delta_gap"] <= m["delta_gap_hi"]


def test_rag_answer_on_a_small_corpus(small):
    corpus, q = small
    r = run("rag_answer", corpus=str(corpus), queries=str(q), questions=1, unanswerable=1,
            hyde_queries=2, k=2, max_new_tokens=12)
    m, answers = r["metrics"], r["tables"]["answers"]
    assert [a["answerable"] for a in answers] == [True, False]
    cats = answers[0]
    assert cats["question"] == "How long do cats sleep?" and cats["retrieval_hit"]
    assert m["grounded_accuracy"] == float(any(w in cats["grounded"].lower()
                                               for w in ("sixteen", "16")))
    assert m["refusal_rate"] == float(bool(re.search("don'?t know", answers[1]["grounded"], re.I))
                                      or "no information" in answers[1]["grounded"].lower()
                                      or "not in the" in answers[1]["grounded"].lower()
                                      or "cannot answer" in answers[1]["grounded"].lower()
                                      or "do not know" in answers[1]["grounded"].lower())
    hyde = r["tables"]["hyde"]
    assert len(hyde) == 2 and all(h["hypothetical_answer"] for h in hyde)
    rr = lambda rank: 1 / rank if rank else 0  # noqa: E731
    assert m["hyde_mrr_gain"] == pytest.approx(
        sum(rr(h["hyde_rank"]) - rr(h["plain_rank"]) for h in hyde) / 2)


def test_a_recorded_run_is_on_the_dashboard(default_ws):
    from llmlab.site import build

    r = run_experiment(default_ws, "embeddings", {}, show_progress=False)
    assert r["event"]
    build(default_ws)  # the record usually renders it already; build to be sure
    page = (default_ws.root / "site" / "concepts" / "text_embeddings.html").read_text()
    assert r["run_id"] in page and "similarity.png" in page
    assert "paraphrase_cosine" in page and "same_words" in page  # metrics and tables


def test_batched_generation_gives_the_answers_one_at_a_time_would():
    """rag_answer generates 8 prompts at a time, left-padded: the greedy answers must be the
    ones a prompt alone gets (padding is masked and positions follow the mask)."""
    from types import SimpleNamespace

    from llmlab.lab import models
    from llmlab.lab.experiments import rag_answer as R

    ctx = SimpleNamespace(model=models.load(), track=lambda items, what: items)
    prompts = [R.CLOSED.format(question="What is a token?"),
               R.HYDE.format(question="Why does attention scale by the square root of d?")]
    together = R.generate(ctx, prompts, 10, "test")
    alone = [R.generate(ctx, [p], 10, "test")[0] for p in prompts]
    assert together == alone and all(together)


def test_reranker_batches_by_length_without_changing_scores():
    """The reranker scores (question, passage) pairs sorted by length, 16 at a time: each
    pair's yes/no log-odds must be what it gets alone, and rerank sorts by them."""
    from llmlab.lab import models
    from llmlab.lab.rag.retrievers import Reranker

    rr = Reranker(models.load())
    passages = ["Cats sleep about sixteen hours a day.", "The E-4012 error means the disk is "
                "full; free some space and retry the upload before the deadline passes.", "Hi."]
    pairs = [("How long do cats sleep?", p) for p in passages]
    together = rr.scores(pairs, batch=16)
    alone = [rr.scores([x], batch=1)[0] for x in pairs]
    assert together == pytest.approx(alone, abs=1e-3)
    order = rr.rerank(["How long do cats sleep?"], [[0, 1, 2]], passages)[0]
    assert order == sorted([0, 1, 2], key=lambda i: -together[i])
