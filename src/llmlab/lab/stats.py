"""Intervals for lab numbers: a claim comes with the uncertainty a skeptic would ask for.

SciPy does the statistics; these wrappers fix the conventions (95 %, plain tuples).
"""

from __future__ import annotations

import math


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials; (0, 1) when n = 0."""
    if n == 0:
        return (0.0, 1.0)
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


def mean_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of the mean: (mean, low, high); one value: no width."""
    n = len(values)
    m = sum(values) / n
    if n < 2:
        return (m, m, m)
    from scipy.stats import t

    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = float(t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    return (m, m - half, m + half)
