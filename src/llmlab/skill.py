"""The learner's skill on a concept, with its uncertainty: a one-dimensional Kalman filter.

The model (one per concept):

    skill_t = skill_{t-1} + w,   w ~ N(0, drift_sd² · days since the last evidence)
    z       = skill_t + v,       v ~ N(0, R)

- The state is the belief about the skill: a mean and a variance. Before any evidence it
  is N(prior, skill_prior_sd²).
- *Drift* (process noise) is the learning and forgetting between pieces of evidence: the
  longer since the last one, the less sure we are that the skill is still where it was.
  It grows with elapsed days (event time, never the clock), so evidence on one day is
  read as several looks at the same skill.
- *Measurement noise* R: a tutor-graded observation has `tutor_sd`; a scored prediction
  (objective evidence, the measurement graded it, not the tutor) has `objective_sd`.
- Update: gain k = P / (P + R); mean += k (z − mean); P = (1 − k) P. The mean stays in
  [0, 1] because every z does.

The interval is the central `interval` credible interval of N(mean, P), clipped to [0, 1];
the mastered verdict needs its lower end at or above the bar. All of it is a few float
operations per event, so the fold stays fast.
"""

from __future__ import annotations

import math
from datetime import datetime
from functools import lru_cache
from statistics import NormalDist

from .config import MasteryParams


@lru_cache(maxsize=64)
def z_score(interval: float) -> float:
    """The half-width of the central `interval` of a standard normal, in sds."""
    return NormalDist().inv_cdf(0.5 + interval / 2)


def day_number(ts: str) -> float:
    """Event time in days (fractional) since the epoch: drift grows with it."""
    return datetime.fromisoformat(ts).timestamp() / 86400


def step(mean: float | None, var: float, last_day: float | None, day: float, z: float,
         noise_sd: float, p: MasteryParams) -> tuple[float, float]:
    """Fold one measurement z (0..1) taken at `day` into the belief (mean, var).

    `mean` None: no evidence yet, start from the prior.
    """
    if mean is None:
        mean, var = p.prior, p.skill_prior_sd ** 2
    elif last_day is not None and day > last_day:
        var += p.drift_sd ** 2 * (day - last_day)
    r = noise_sd ** 2
    k = var / (var + r)
    return mean + k * (z - mean), (1 - k) * var


def bounds(mean: float, var: float, p: MasteryParams) -> tuple[float, float]:
    half = z_score(p.interval) * math.sqrt(var)
    return max(0.0, mean - half), min(1.0, mean + half)


def prediction_score(comp: dict) -> float:
    """A scored prediction as a measurement of skill, 0..1: 1 within tolerance, else
    tolerance / relative error (twice the tolerance off scores 0.5)."""
    if comp["within"]:
        return 1.0
    rel, tol = comp["rel_error"], comp["tolerance"]
    return 0.0 if rel <= 0 else max(0.0, min(1.0, tol / rel))
