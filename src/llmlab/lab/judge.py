"""Calibrating a judge: paired human and judge scores, and how far to trust the judge.

`read_scores(path)` validates a CSV (columns item, human, judge, optional dimension;
numeric scores) before anything else runs. `calibrate(rows, threshold)` reports, overall
and per dimension: Pearson and Spearman r, mean absolute error, bias (mean judge - human,
and the share of items the judge scores higher / lower), agreement at a pass threshold
(score >= threshold passes) with Cohen's kappa and the confusion matrix, each with a
95% bootstrap interval over items, and a constant baseline (always the median human
score) so a weak judge shows as weak.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from ..errors import UserError

REQUIRED = ("item", "human", "judge")


def _num(raw: str, where: str, col: str) -> float:
    try:
        x = float(raw)
    except (TypeError, ValueError):
        raise UserError(f"{where}: the {col} score {raw!r} is not a number. Scores must be "
                        "numbers (e.g. 1-5 ratings); fix or remove that row.") from None
    if not math.isfinite(x):
        raise UserError(f"{where}: the {col} score {raw!r} is not a finite number.")
    return x


def read_scores(path: Path | str) -> list[dict]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"No scores file at {p}. Give a CSV with columns item, human, judge "
                        "(and optionally dimension), one row per judged item.")
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        cols = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in cols]
        if missing:
            raise UserError(f"{p.name} lacks the column(s) {', '.join(missing)}; it has "
                            f"{', '.join(cols) or 'no header'}. The first line must name the "
                            "columns item, human, judge (optional: dimension).")
        rows = []
        for i, raw in enumerate(reader, start=2):
            raw = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
            where = f"{p.name} line {i} (item {raw.get('item') or '?'})"
            rows.append({"item": raw["item"], "dimension": raw.get("dimension") or "all",
                         "human": _num(raw["human"], where, "human"),
                         "judge": _num(raw["judge"], where, "judge")})
    if len(rows) < 3:
        raise UserError(f"{p.name} has {len(rows)} scored item(s); calibration needs at least "
                        "3 (50 or more for intervals worth reading).")
    return rows


def _pearson(h, j):
    from scipy.stats import pearsonr

    return float(pearsonr(h, j)[0]) if len(set(h)) > 1 and len(set(j)) > 1 else float("nan")


def _spearman(h, j):
    from scipy.stats import spearmanr

    return float(spearmanr(h, j)[0]) if len(set(h)) > 1 and len(set(j)) > 1 else float("nan")


def kappa(hp, jp) -> float:
    """Cohen's kappa of two pass/fail labelings: (p_o - p_e) / (1 - p_e)."""
    n = len(hp)
    po = sum(a == b for a, b in zip(hp, jp)) / n
    ph, pj = sum(hp) / n, sum(jp) / n
    pe = ph * pj + (1 - ph) * (1 - pj)
    return (po - pe) / (1 - pe) if pe < 1 else float("nan")


def _stats(h, j, threshold: float) -> dict:
    n = len(h)
    hp = [x >= threshold for x in h]
    jp = [x >= threshold for x in j]
    return {"n": n, "pearson": _pearson(h, j), "spearman": _spearman(h, j),
            "mae": sum(abs(a - b) for a, b in zip(h, j)) / n,
            "bias": sum(b - a for a, b in zip(h, j)) / n,
            "judge_higher": sum(b > a for a, b in zip(h, j)) / n,
            "judge_lower": sum(b < a for a, b in zip(h, j)) / n,
            "agreement": sum(a == b for a, b in zip(hp, jp)) / n,
            "human_pass": sum(hp) / n, "judge_pass": sum(jp) / n,
            "kappa": kappa(hp, jp),
            "tp": sum(a and b for a, b in zip(hp, jp)), "fn": sum(a and not b for a, b in zip(hp, jp)),
            "fp": sum(b and not a for a, b in zip(hp, jp)),
            "tn": sum(not a and not b for a, b in zip(hp, jp))}


def calibrate(rows: list[dict], threshold: float = 3.0, seed: int = 0) -> dict:
    """The report, overall and per dimension (see the module docstring)."""
    import statistics

    from .rag.metrics import bootstrap_stat

    groups = {"all": rows}
    for d in sorted({r["dimension"] for r in rows} - {"all"}):
        groups[d] = [r for r in rows if r["dimension"] == d]
    out = []
    for name, rs in groups.items():
        h = [r["human"] for r in rs]
        j = [r["judge"] for r in rs]
        s = _stats(h, j, threshold)
        for key in ("pearson", "spearman", "mae", "bias", "kappa"):
            lo, hi = bootstrap_stat([h, j], lambda a, b, k=key: _stats(list(a), list(b),
                                                                      threshold)[k], seed=seed,
                                    n=500)
            s[f"{key}_lo"], s[f"{key}_hi"] = lo, hi
        med = statistics.median(h)
        base = _stats(h, [med] * len(h), threshold)
        s["baseline_mae"] = base["mae"]
        s["baseline_agreement"] = base["agreement"]
        out.append({"dimension": name, **s})
    return {"threshold": threshold, "groups": out}


def plain(x):
    """The report for JSON: an undefined statistic (nan) becomes null."""
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return [plain(v) for v in x]
    return None if isinstance(x, float) and x != x else x


def lines(report: dict) -> list[str]:
    """Plain-language summary lines, one per group."""
    out = []
    for g in report["groups"]:
        def f(key, fmt="{:.2f}"):
            v = g[key]
            if v != v:
                return "undefined (a constant column)"
            return (fmt.format(v) + f" [{fmt.format(g[key + '_lo'])}, {fmt.format(g[key + '_hi'])}]"
                    if key + "_lo" in g else fmt.format(v))
        direction = "higher" if g["bias"] > 0 else "lower"
        out.append(
            f"{g['dimension']} (n={g['n']}): Pearson r {f('pearson')}, Spearman {f('spearman')}, "
            f"MAE {f('mae')} (constant median baseline {g['baseline_mae']:.2f}), bias "
            f"{f('bias', '{:+.2f}')} (judge {direction}; scores higher on {g['judge_higher']:.0%}, "
            f"lower on {g['judge_lower']:.0%}); at pass >= {report['threshold']:g} (human passes "
            f"{g['human_pass']:.0%}, judge {g['judge_pass']:.0%}): agreement {g['agreement']:.0%} (baseline {g['baseline_agreement']:.0%}), kappa {f('kappa')}.")
    return out


def figure(rows: list[dict], report: dict):
    """Reliability figure: mean human score per judge score bin, and the scatter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    h = np.array([r["human"] for r in rows])
    j = np.array([r["judge"] for r in rows])
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    rng = np.random.default_rng(0)
    for d in sorted({r["dimension"] for r in rows}):
        m = np.array([r["dimension"] == d for r in rows])
        a.scatter(j[m], h[m] + rng.uniform(-0.12, 0.12, m.sum()), s=14, alpha=0.7, label=d)
    lo, hi = float(min(h.min(), j.min())), float(max(h.max(), j.max()))
    a.plot([lo, hi], [lo, hi], "k--", lw=1, label="perfect")
    a.set_xlabel("judge score")
    a.set_ylabel("human score (jittered)")
    a.set_title("Judge vs human")
    a.legend(fontsize=7)
    edges = np.linspace(j.min(), j.max() + 1e-9, 6)
    mids, means, counts = [], [], []
    for e0, e1 in zip(edges, edges[1:]):
        m = (j >= e0) & (j < e1)
        if m.any():
            mids.append((e0 + e1) / 2)
            means.append(h[m].mean())
            counts.append(int(m.sum()))
    b.plot(mids, means, "o-", label="mean human score")
    for x, y, c in zip(mids, means, counts):
        b.annotate(str(c), (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    b.plot([lo, hi], [lo, hi], "k--", lw=1)
    b.axhline(report["threshold"], color="grey", lw=0.8)
    b.set_xlabel("judge score (bin; n per point)")
    b.set_ylabel("mean human score")
    b.set_title("Reliability")
    fig.tight_layout()
    return fig
