"""Ranking metrics and bootstrap intervals, computed by hand on plain lists.

A ranking is judged target by target: `found[i]` is how many relevant targets the item
at rank i+1 covers for the first time (a later chunk of an already-found section adds
nothing), and `n_relevant` is how many targets the query has.

  hit@k   1 if any relevant target is in the top k, else 0
  RR      1 / rank of the first relevant item (0 if none in the ranking)
  nDCG@k  DCG@k / ideal DCG@k, DCG = sum over ranks r of gain_r / log2(r + 1), binary gain
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def hit_at(found: Sequence[int], k: int) -> float:
    return float(any(found[:k]))


def reciprocal_rank(found: Sequence[int], k: int | None = None) -> float:
    for r, g in enumerate(found[:k] if k else found, start=1):
        if g:
            return 1.0 / r
    return 0.0


def ndcg_at(found: Sequence[int], n_relevant: int, k: int) -> float:
    dcg = sum(min(g, 1) / math.log2(r + 1) for r, g in enumerate(found[:k], start=1))
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(n_relevant, k) + 1))
    return dcg / ideal if ideal else 0.0


def recall_at(found: Sequence[int], n_relevant: int, k: int) -> float:
    return min(sum(found[:k]), n_relevant) / n_relevant if n_relevant else 0.0


def first_found(ranked_targets: Sequence[set[str]], relevant: set[str]) -> list[int]:
    """`found` for a ranking: per rank, the number of relevant targets newly covered."""
    seen: set[str] = set()
    out = []
    for targets in ranked_targets:
        new = (set(targets) & relevant) - seen
        seen |= new
        out.append(len(new))
    return out


def rrf(rankings: Sequence[Sequence[int]], k: int = 60) -> list[int]:
    """Reciprocal rank fusion (Cormack et al. 2009): score(d) = sum 1 / (k + rank_d)."""
    score: dict[int, float] = {}
    for ranking in rankings:
        for r, d in enumerate(ranking, start=1):
            score[d] = score.get(d, 0.0) + 1.0 / (k + r)
    return sorted(score, key=lambda d: (-score[d], d))


def bootstrap_ci(values: Sequence[float], seed: int = 0, n: int = 2000,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over items (queries, judged pairs)."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, len(x), size=(n, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    return (float(np.quantile(means, a)), float(np.quantile(means, 1 - a)))


def bootstrap_stat(columns: Sequence[Sequence[float]], stat, seed: int = 0, n: int = 1000,
                   level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of `stat(*columns)` resampling rows together
    (for paired statistics: correlations, kappa). Resamples where `stat` is undefined
    (nan, e.g. a constant column) are skipped."""
    import numpy as np

    cols = [np.asarray(c, dtype=float) for c in columns]
    m = len(cols[0])
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n):
        idx = rng.integers(0, m, size=m)
        v = stat(*(c[idx] for c in cols))
        if v == v:
            vals.append(v)
    if not vals:
        return (float("nan"), float("nan"))
    a = (1 - level) / 2
    return (float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a)))
