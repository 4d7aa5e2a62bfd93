"""The engine evaluates itself (`llmlab model-check`).

1. Prequential replay of the workspace's own log: before each observation, predict its
   quality from the state so far; score with log loss (quality as a soft label) and
   calibration (predicted vs observed, in bins), against two baselines: the running mean
   of all earlier qualities, and the concept's last quality.
   The skill estimate's mean (`llmlab.skill`) is scored the same way.
2. Simulated learners with a known true skill (`llmlab.simulate`): false mastery, skill
   at declaration, miss rate and observations to declaration of each mastery rule, on
   the default world and with an optimistic tutor; `sweep` there scans the parameters of
   the skill verdict and prints the frontier.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from . import simulate as simulate_mod
from .config import MasteryParams
from .skill import day_number, step

EPS = 1e-4


def _ll(p: float, q: float) -> float:
    p = min(1 - EPS, max(EPS, p))
    return -(q * math.log(p) + (1 - q) * math.log(1 - p))


def _bins() -> list[list]:
    return [[0.0, 0.0, 0] for _ in range(5)]  # sum predicted, sum observed, count


def _add(bins: list[list], pred: float, q: float) -> None:
    b = bins[min(4, int(pred * 5))]
    b[0] += pred
    b[1] += q
    b[2] += 1


def _table(bins: list[list]) -> list[dict]:
    return [{"bin": f"{i / 5:.1f}-{(i + 1) / 5:.1f}", "n": c,
             "predicted": s / c if c else None, "observed": o / c if c else None}
            for i, (s, o, c) in enumerate(bins)]


def prequential(observations: Iterable[tuple[str, float, str]], p: MasteryParams) -> dict:
    """observations: (concept, quality, ts) in log order.

    `calibration` is the EWMA's (the engine's displayed mastery as a prediction),
    `calibration_skill` the skill estimate's mean."""
    m: dict[str, float] = {}
    sk: dict[str, tuple[float, float, float]] = {}  # concept -> (mean, var, day)
    last: dict[str, float] = {}
    total = n = 0.0
    losses = {"engine": 0.0, "skill": 0.0, "running_mean": 0.0, "last_quality": 0.0}
    bins, bins_skill = _bins(), _bins()
    for cid, q, ts in observations:
        pred = m.get(cid, p.prior)
        mean = total / n if n else p.prior
        prev = sk.get(cid)
        pred_skill = prev[0] if prev else p.prior
        losses["engine"] += _ll(pred, q)
        losses["skill"] += _ll(pred_skill, q)
        losses["running_mean"] += _ll(mean, q)
        losses["last_quality"] += _ll(last.get(cid, p.prior), q)
        _add(bins, pred, q)
        _add(bins_skill, pred_skill, q)
        day = day_number(ts)
        sk[cid] = (*step(prev[0] if prev else None, prev[1] if prev else 0.0,
                         prev[2] if prev else None, day, q, p.tutor_sd, p), day)
        m[cid] = p.alpha * q + (1 - p.alpha) * pred
        last[cid] = q
        total += q
        n += 1
    count = int(n)
    return {
        "observations": count,
        "log_loss": {k: (v / count if count else None) for k, v in losses.items()},
        "calibration": _table(bins),
        "calibration_skill": _table(bins_skill),
    }


def simulate(p: MasteryParams, learners: int = 1000, seed: int = 0, bias: float = 0.1) -> dict:
    """The mastery rules scored on simulated learners (`llmlab.simulate`): the default
    world, and the same learners graded by an optimistic tutor (+`bias`)."""
    return {"learners": learners, "seed": seed,
            "default": simulate_mod.compare(p, learners, seed),
            "optimistic": simulate_mod.compare(p, learners, seed, simulate_mod.World(bias=bias))}
