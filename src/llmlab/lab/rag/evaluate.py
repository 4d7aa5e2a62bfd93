"""Run retrievers over chunked corpora and score them against labelled queries.

`evaluate(...)` returns plain rows; the `retrieval` experiment turns them into tables,
metrics and a figure. Per query and retriever it records the rank of the first relevant
target, hit@1, hit@k, reciprocal rank, nDCG@k and whether a top-k chunk holds the
query's whole evidence passage (a hit that cannot answer is reported as incomplete).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from . import chunking as C
from . import metrics as M
from .retrievers import BM25, dense_rank, hybrid_rank


@dataclass
class Index:
    strategy: str
    chunks: list[C.Chunk]
    covers: list[set[str]]  # per chunk, the normalised targets it covers
    vectors: object  # (chunks, 384) unit vectors
    bm25: BM25


def encode(ctx, emb, texts: list[str], what: str, batch: int = 32):
    import numpy as np

    parts = [emb.encode(texts[i:i + batch]) for i in
             ctx.track(range(0, len(texts), batch), f"embedding {what}")]
    return np.concatenate(parts) if parts else np.zeros((0, emb.dim), np.float32)


def build(ctx, emb, docs, strategy: str, size: int, overlap: int) -> Index:
    chunks = C.STRATEGIES[strategy](docs, emb.tokenizer, size, overlap)
    by_name = {d.name: d for d in docs}
    texts = [c.embed_text for c in chunks]
    return Index(strategy, chunks, [C.covers(c, by_name) for c in chunks],
                 encode(ctx, emb, texts, f"{len(chunks)} {strategy} chunks"), BM25(texts))


def rankings(index: Index, queries, qvecs, retrievers: list[str], depth: int,
             reranker=None, ctx=None, rerank_depth: int = 10) -> dict[str, list[list[int]]]:
    texts = [q.query for q in queries]
    out: dict[str, list[list[int]]] = {}
    deep = max(depth, rerank_depth)
    dense = dense_rank(qvecs, index.vectors, max(deep, 1000))
    lexical = index.bm25.rank(texts, max(deep, 1000))
    for r in retrievers:
        if r == "dense":
            out[r] = [d[:depth] for d in dense]
        elif r == "bm25":
            out[r] = [b[:depth] for b in lexical]
        elif r == "hybrid":
            out[r] = hybrid_rank(dense, lexical, depth)
        elif r == "rerank":
            tops = reranker.rerank(
                texts, [d[:rerank_depth] for d in dense], [c.text for c in index.chunks],
                lambda b: ctx.track(b, f"reranking {len(queries)} x {rerank_depth} "
                                       f"({index.strategy}; batches)"))
            out[r] = [(top + [x for x in d if x not in top])[:depth] for top, d in zip(tops, dense)]
    return out


def score(index: Index, queries, ranked: list[list[int]], k: int) -> list[dict]:
    """One row per query: its ranks and metrics under this ranking."""
    rows = []
    for q, order in zip(queries, ranked):
        relevant = {C.norm_target(t) for t in q.relevant}
        found = M.first_found([index.covers[c] for c in order], relevant)
        first = next((r for r, g in enumerate(found, 1) if g), None)
        row = {"query": q.query, "type": q.type, "first_rank": first,
               "hit_at_1": M.hit_at(found, 1), "hit_at_k": M.hit_at(found, k),
               "rr": M.reciprocal_rank(found, k), "ndcg_at_k": M.ndcg_at(found, len(relevant), k),
               "recall_at_k": M.recall_at(found, len(relevant), k),
               "top1": index.chunks[order[0]].label if order else "",
               "top1_text": index.chunks[order[0]].text[:160] if order else ""}
        if q.evidence_span:
            span = q.evidence_span
            row["evidence_split"] = not any(C.holds(c, span) for c in index.chunks)
            row["complete_at_k"] = float(any(C.holds(index.chunks[c], span) for c in order[:k]))
        rows.append(row)
    return rows


def summarise(rows: list[dict], seed: int) -> dict:
    out = {}
    for m in ("hit_at_1", "hit_at_k", "rr", "ndcg_at_k", "recall_at_k"):
        vals = [r[m] for r in rows]
        lo, hi = M.bootstrap_ci(vals, seed=seed)
        name = "mrr" if m == "rr" else m
        out[name] = sum(vals) / len(vals)
        out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    ev = [r for r in rows if "complete_at_k" in r]
    hits = [r for r in ev if r["hit_at_k"]]
    incomplete = [r for r in hits if not r["complete_at_k"]]
    out.update({
        "with_evidence": len(ev), "evidence_hits": len(hits),
        "evidence_split": sum(1 for r in ev if r["evidence_split"]),
        "complete_hits": len(hits) - len(incomplete), "incomplete_hits": len(incomplete),
        "incomplete_split": sum(1 for r in incomplete if r["evidence_split"]),
        "incomplete_share": len(incomplete) / len(hits) if hits else 0.0,
        "complete_at_k": sum(r["complete_at_k"] for r in ev) / len(ev) if ev else 0.0,
    })
    return out


def by_type(rows: list[dict]) -> list[dict]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r["type"]].append(r)
    return [{"type": t, "n": len(g), "hit_at_1": sum(r["hit_at_1"] for r in g) / len(g),
             "hit_at_k": sum(r["hit_at_k"] for r in g) / len(g),
             "mrr": sum(r["rr"] for r in g) / len(g)} for t, g in sorted(groups.items())]
