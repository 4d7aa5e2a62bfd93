"""retrieval: a RAG retriever built in plain view, measured on labelled queries.

Chunk the corpus two ways, retrieve with dense (MiniLM), BM25, hybrid (RRF) and
optionally dense + SmolLM2 rerank, and score hit@1, hit@k, MRR and nDCG@k with bootstrap
95% intervals over queries, per query type, plus a chunk-boundary diagnosis: a hit
whose chunks do not hold the whole evidence passage is "retrieved but incomplete".
"""

from __future__ import annotations

from ..experiment import Outcome, Param, Quantity, Spec, common

EMBEDDER = Param("embedder", str, "minilm-l6", "Embedding model (`llmlab lab models`)",
                 choices=("minilm-l6",))
RETRIEVERS = ("dense", "bm25", "hybrid", "rerank")


def check(p: dict, ws) -> None:
    from ..rag import sources

    sources.check(p)
    if "rerank" in p["retrievers"]:
        from .. import models

        models.resolve(p["model"])  # an unknown reranker model fails before anything loads


SPEC = Spec(
    name="retrieval",
    question="How often does retrieval put the right passage in front of the model, and "
             "what do chunking, BM25, hybrid fusion and reranking change?",
    concepts=("text_embeddings", "cosine_similarity", "chunking", "retrieval_evaluation", "rag"),
    params=(
        Param("corpus", str, "", "Folder of .md/.txt files; empty: the course's study pages"),
        Param("queries", str, "", "Labelled queries (JSONL: query, relevant, type, evidence); "
              "empty: the shipped set for the study pages"),
        Param("chunking", str, ("fixed", "headings"), "Chunking strategies to compare (the "
              "first one gives the predictable quantities)", many=True,
              choices=("fixed", "headings")),
        Param("chunk_tokens", int, 128, "Chunk size in MiniLM tokens", low=16, high=256),
        Param("overlap", int, 32, "Overlap between fixed-size chunks, in tokens", low=0, high=200),
        Param("retrievers", str, ("dense", "bm25", "hybrid"), "Retrievers to compare (the first "
              "gives the predictable quantities); rerank runs SmolLM2 on the dense top "
              "rerank_depth with the model parameter (slow: one SmolLM2 forward pass per candidate)", many=True,
              choices=RETRIEVERS),
        Param("k", int, 5, "Cut-off for hit@k, nDCG@k and the evidence check", low=1, high=50),
        Param("rerank_depth", int, 10, "Dense candidates the reranker re-orders", low=2, high=50),
        EMBEDDER,
        *common(),
    ),
    quantities=(
        Quantity("hit_at_1", "share", "Share of queries whose top chunk is relevant", concept="retrieval_evaluation", depends_on=('corpus', 'queries', 'chunking', 'chunk_tokens', 'overlap', 'retrievers')),
        Quantity("hit_at_k", "share", "Share of queries with a relevant chunk in the top k", concept="retrieval_evaluation", depends_on=('corpus', 'queries', 'chunking', 'chunk_tokens', 'overlap', 'retrievers', 'k')),
        Quantity("mrr", "score", "Mean reciprocal rank of the first relevant chunk (0 past k)", concept="retrieval_evaluation", depends_on=('corpus', 'queries', 'chunking', 'chunk_tokens', 'overlap', 'retrievers')),
        Quantity("ndcg_at_k", "score", "Mean nDCG@k (binary relevance, targets counted once)", concept="retrieval_evaluation", depends_on=('corpus', 'queries', 'chunking', 'chunk_tokens', 'overlap', 'retrievers', 'k')),
        Quantity("incomplete_share", "share", "Share of hits (with an evidence passage) whose "
                 "top-k chunks do not hold the whole passage", concept="chunking", depends_on=('corpus', 'queries', 'chunking', 'chunk_tokens', 'overlap', 'retrievers', 'k')),
    ),
    model=None,
    seconds=40,
    check=check,
)


def run(ctx, p: dict) -> Outcome:
    from .. import embedder
    from ..rag import evaluate as E
    from ..rag import sources

    if p["overlap"] >= p["chunk_tokens"]:
        from ...errors import UserError

        raise UserError(f"overlap ({p['overlap']}) must be smaller than chunk_tokens "
                        f"({p['chunk_tokens']}).")
    docs, queries = sources.check(p)
    emb = embedder.load(p["embedder"])
    ctx.conditions.update(embedder.conditions(emb))
    reranker = None
    if "rerank" in p["retrievers"]:
        from .. import models
        from ..rag.retrievers import Reranker

        lm = models.load(p["model"])
        reranker = Reranker(lm)
        ctx.conditions.update({"reranker_model": lm.name, "reranker_sha256": lm.sha256})
    qvecs = E.encode(ctx, emb, [q.query for q in queries], f"{len(queries)} queries")
    k, seed = p["k"], p["seed"]
    summary_rows, type_rows, query_rows, failures, chunk_rows, metrics = [], [], [], [], [], {}
    per_query: dict[tuple[str, str], list[dict]] = {}
    for strategy in p["chunking"]:
        index = E.build(ctx, emb, docs, strategy, p["chunk_tokens"], p["overlap"])
        sizes = [emb.count_tokens(c.text) for c in index.chunks]
        chunk_rows.append({"chunking": strategy, "chunks": len(index.chunks),
                           "mean_tokens": round(sum(sizes) / len(sizes), 1),
                           "max_tokens": max(sizes)})
        ranked = E.rankings(index, queries, qvecs, p["retrievers"], max(k, 10), reranker, ctx,
                            p["rerank_depth"])
        for r in p["retrievers"]:
            rows = E.score(index, queries, ranked[r], k)
            per_query[(strategy, r)] = rows
            s = E.summarise(rows, seed)
            summary_rows.append({"chunking": strategy, "retriever": r,
                                 **{key: round(v, 4) if isinstance(v, float) else v
                                    for key, v in s.items()}})
            for key in ("hit_at_1", "hit_at_k", "mrr", "ndcg_at_k", "incomplete_share"):
                metrics[f"{strategy}_{r}_{key}"] = s[key]
            type_rows += [{"chunking": strategy, "retriever": r, **t} for t in E.by_type(rows)]
            for q, row in zip(queries, rows):
                query_rows.append({"chunking": strategy, "retriever": r, **{
                    key: row[key] for key in ("query", "type", "first_rank", "hit_at_k",
                                              "ndcg_at_k")}, "complete": row.get("complete_at_k")})
                if not row["hit_at_k"]:
                    failures.append({"chunking": strategy, "retriever": r, "query": q.query,
                                     "type": q.type, "expected": ", ".join(q.relevant),
                                     "retrieved": row["top1"], "retrieved_text": row["top1_text"]})
    first = (p["chunking"][0], p["retrievers"][0])
    for key in ("hit_at_1", "hit_at_k", "mrr", "ndcg_at_k", "incomplete_share"):
        metrics[key] = metrics[f"{first[0]}_{first[1]}_{key}"]
    deltas = _deltas(per_query, p, seed)
    boundary = [{"chunking": s["chunking"], "retriever": s["retriever"],
                 "queries_with_evidence": s["with_evidence"],
                 "evidence_split_by_chunking": s["evidence_split"], "hits": s["evidence_hits"],
                 "complete": s["complete_hits"], "retrieved_but_incomplete": s["incomplete_hits"],
                 "of_which_split_by_boundary": s["incomplete_split"]} for s in summary_rows]
    sizes_text = ", ".join(f"{c['chunking']}: {c['chunks']}" for c in chunk_rows)
    best = max(summary_rows, key=lambda s: s["mrr"])
    summary = [
        f"{len(queries)} labelled queries over {len(docs)} documents; k = {k}; chunks of "
        f"{p['chunk_tokens']} tokens ({sizes_text}).",
        *[f"{s['chunking']} + {s['retriever']}: hit@1 {s['hit_at_1']:.2f}, hit@{k} "
          f"{s['hit_at_k']:.2f} [{s['hit_at_k_lo']:.2f}, {s['hit_at_k_hi']:.2f}], MRR "
          f"{s['mrr']:.3f} [{s['mrr_lo']:.3f}, {s['mrr_hi']:.3f}], nDCG@{k} {s['ndcg_at_k']:.3f}; "
          f"{s['incomplete_hits']} of {s['evidence_hits']} evidence hits incomplete"
          for s in summary_rows],
        f"Best MRR: {best['chunking']} + {best['retriever']} ({best['mrr']:.3f}).",
        *[f"MRR {d['comparison']}: {d['mrr_difference']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] "
          f"(paired bootstrap over queries; {'an interval that excludes 0' if d['lo'] > 0 or d['hi'] < 0 else 'not distinguishable from 0'})"
          for d in deltas],
        f"{len(failures)} query-retriever misses at k = {k} are listed in the failures table.",
    ]
    return Outcome(metrics=metrics,
                   tables={"retrievers": summary_rows, "by_type": type_rows,
                           "differences": deltas, "boundaries": boundary,
                           "chunks": chunk_rows, "failures": failures, "queries": query_rows},
                   figures={"retrieval": _figure(summary_rows, type_rows, k)}, summary=summary)


def _deltas(per_query, p, seed) -> list[dict]:
    """Paired MRR differences: each configuration against the first one, over queries."""
    from ..rag.metrics import bootstrap_ci

    base_key = (p["chunking"][0], p["retrievers"][0])
    base = per_query[base_key]
    out = []
    for key, rows in per_query.items():
        if key == base_key:
            continue
        diff = [a["rr"] - b["rr"] for a, b in zip(rows, base)]
        lo, hi = bootstrap_ci(diff, seed=seed)
        out.append({"comparison": f"{key[0]}+{key[1]} - {base_key[0]}+{base_key[1]}",
                    "mrr_difference": round(sum(diff) / len(diff), 4),
                    "lo": round(lo, 4), "hi": round(hi, 4)})
    return out


def _figure(rows, types, k):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    labels = [f"{r['chunking']}\n{r['retriever']}" for r in rows]
    x = range(len(rows))
    for off, key, name in ((-0.2, "mrr", "MRR"), (0.2, "hit_at_k", f"hit@{k}")):
        vals = [r[key] for r in rows]
        err = [[v - r[f"{key}_lo"] for v, r in zip(vals, rows)],
               [r[f"{key}_hi"] - v for v, r in zip(vals, rows)]]
        a.bar([i + off for i in x], vals, 0.4, yerr=err, capsize=3, label=name)
    a.set_xticks(list(x), labels, fontsize=7)
    a.set_ylim(0, 1.05)
    a.set_title("Retrieval quality (bars: 95% bootstrap intervals)")
    a.legend(fontsize=7)
    qtypes = sorted({t["type"] for t in types})
    configs = [(r["chunking"], r["retriever"]) for r in rows]
    grid = [[next((t["hit_at_k"] for t in types if (t["chunking"], t["retriever"]) == c
                   and t["type"] == qt), 0) for c in configs] for qt in qtypes]
    im = b.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    b.set_yticks(range(len(qtypes)), qtypes, fontsize=7)
    b.set_xticks(range(len(configs)), labels, fontsize=7)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            b.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                   color="white" if v < 0.6 else "black")
    b.set_title(f"hit@{k} by query type")
    fig.colorbar(im, ax=b, fraction=0.03)
    fig.tight_layout()
    return fig
