"""Aggregators: how a concept's contrastive pairs become one direction.

Each is a small typed callable built by a factory: (pos, neg) aligned pairs, each (m, H),
-> a unit vector (H,). Importable without torch (the experiment's declaration lists the
names); torch and scikit-learn are imported when an aggregator runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

Aggregator = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm().clamp_min(1e-12)


def mean_aggregator() -> Aggregator:
    """Difference of means: the average of the pair differences."""
    return lambda pos, neg: _unit((pos - neg).mean(0))


def pca_aggregator() -> Aggregator:
    """First right singular vector of the (uncentred) differences, signed to agree with
    their mean."""
    def pca(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        import torch

        d = pos - neg  # (m, H)
        v = torch.linalg.svd(d, full_matrices=False).Vh[0]
        return -v if (d @ v).mean() < 0 else v
    return pca


def logistic_aggregator(l1: bool = False, c: float = 1.0) -> Aggregator:
    """Logistic-regression weights (no intercept, data centred on its mean); L1 makes them
    sparse."""
    def logreg(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        import torch
        from sklearn.linear_model import LogisticRegression

        x = torch.cat([pos, neg])  # (2m, H)
        x = (x - x.mean(0)).numpy()
        y = [1] * len(pos) + [0] * len(neg)
        clf = LogisticRegression(fit_intercept=False, max_iter=2000, C=c,
                                 **({"l1_ratio": 1.0, "solver": "liblinear", "random_state": 0}
                                    if l1 else {}))  # liblinear shuffles: fixed for same numbers
        return _unit(torch.from_numpy(clf.fit(x, y).coef_[0]).double())
    return logreg


FACTORIES: dict[str, Callable[[], Aggregator]] = {
    "mean": mean_aggregator, "pca": pca_aggregator, "logreg": logistic_aggregator,
    "logreg_l1": lambda: logistic_aggregator(l1=True)}
AGGREGATORS = tuple(FACTORIES)  # mean, pca, logreg, logreg_l1
