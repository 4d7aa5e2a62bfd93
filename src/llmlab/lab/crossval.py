"""Uncertainty and a baseline for concept-vector AUCs.

One grouped fold split is one draw: another fold seed moves the held-out AUC and even the
best layer. `repeated` reruns the grouped cross-validation over several fold seeds and
reports the mean and a 95 % interval (Student t over seeds) per concept and layer.
`lexical` scores a word-counting classifier (TF-IDF + logistic regression, scikit-learn) on
the same grouped folds: how far the words alone get, beside the residual stream.
"""

from __future__ import annotations

from .corpus import Corpus
from .stats import mean_interval
from .vectors import Activations, _auc, folds_of, train


def _summary(values: list[float | None]) -> dict:
    xs = [v for v in values if v is not None]
    if not xs:
        return {"mean": None, "low": None, "high": None, "aucs": values}
    m, lo, hi = mean_interval(xs)
    return {"mean": round(m, 4), "low": round(lo, 4), "high": round(hi, 4), "aucs": values}


def repeated(corpus: Corpus, acts: Activations, saved: str, folds: int,
             seeds: list[int], first=None) -> dict:
    """Held-out AUC of `saved` vectors over fold seeds: per concept and layer, and the mean
    over concepts per layer. `first`: the report already trained with seeds[0]."""
    reports = [first if (i == 0 and first is not None) else
               train(corpus, acts, aggregators=(saved,), saved=saved, folds=folds,
                     seed=s).report for i, s in enumerate(seeds)]
    per = {c: {str(l): _summary([r["per_concept"][c]["layers"][str(l)]["auc"][saved]
                                 for r in reports]) for l in acts.layers}
           for c in corpus.concepts}
    mean = {str(l): _summary([r["mean_auc"][saved][str(l)] for r in reports])
            for l in acts.layers}
    return {"fold_seeds": seeds, "per_concept": per, "mean_auc": mean}


def lexical(corpus: Corpus, folds: int, seeds: list[int]) -> dict:
    """TF-IDF + logistic regression per concept (positives vs its negatives), trained and
    scored on the same grouped folds as the vectors; held-out AUC per concept and mean."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    per_seed: dict[str, list] = {c: [] for c in corpus.concepts}
    for s in seeds:
        fold = folds_of(corpus, folds, s)
        for c in corpus.concepts:
            pos, neg = corpus.positives[c], corpus.negatives(c)
            sp, sn = [], []
            for f in range(folds):
                tr = [(t.text, 1) for t in pos if fold[t.group] != f] + \
                     [(t.text, 0) for t in neg if fold[t.group] != f]
                hp = [t.text for t in pos if fold[t.group] == f]
                hn = [t.text for t in neg if fold[t.group] == f]
                if len({y for _, y in tr}) < 2 or not (hp or hn):
                    continue
                vec = TfidfVectorizer(sublinear_tf=True)
                x = vec.fit_transform([t for t, _ in tr])
                clf = LogisticRegression(max_iter=2000, class_weight="balanced")
                clf.fit(x, [y for _, y in tr])
                if hp:
                    sp += clf.decision_function(vec.transform(hp)).tolist()
                if hn:
                    sn += clf.decision_function(vec.transform(hn)).tolist()
            per_seed[c].append(_auc(sp, sn))
    per = {c: _summary(v) for c, v in per_seed.items()}
    means = []
    for i in range(len(seeds)):
        xs = [per_seed[c][i] for c in corpus.concepts if per_seed[c][i] is not None]
        means.append(sum(xs) / len(xs) if xs else None)
    return {"method": "TF-IDF (sublinear tf) + logistic regression, balanced classes",
            "fold_seeds": seeds, "per_concept": per, "mean": _summary(means)}
