"""The engine evaluates itself (`llmlab model-check`).

1. Prequential replay of the workspace's own log: before each observation, predict its
   quality from the state so far; score with log loss (quality as a soft label) and
   calibration (predicted vs observed, in bins), against two baselines: the running mean
   of all earlier qualities, and the concept's last quality.
2. Simulated learners with a known true skill per concept: how often does each rule call
   a concept mastered while the true skill is still below the bar (false mastery)?
   Rules compared: this engine's gated EWMA, "one reading at or above the bar", and
   "the plain mean of readings at or above the bar".
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

from .config import MasteryParams

EPS = 1e-4


def _ll(p: float, q: float) -> float:
    p = min(1 - EPS, max(EPS, p))
    return -(q * math.log(p) + (1 - q) * math.log(1 - p))


def prequential(observations: Iterable[tuple[str, float]], p: MasteryParams) -> dict:
    """observations: (concept, quality) in log order."""
    m: dict[str, float] = {}
    last: dict[str, float] = {}
    total = n = 0.0
    losses = {"engine": 0.0, "running_mean": 0.0, "last_quality": 0.0}
    bins = [[0.0, 0.0, 0] for _ in range(5)]  # sum predicted, sum observed, count
    for cid, q in observations:
        pred = m.get(cid, p.prior)
        mean = total / n if n else p.prior
        losses["engine"] += _ll(pred, q)
        losses["running_mean"] += _ll(mean, q)
        losses["last_quality"] += _ll(last.get(cid, p.prior), q)
        b = bins[min(4, int(pred * 5))]
        b[0] += pred
        b[1] += q
        b[2] += 1
        m[cid] = p.alpha * q + (1 - p.alpha) * pred
        last[cid] = q
        total += q
        n += 1
    count = int(n)
    return {
        "observations": count,
        "log_loss": {k: (v / count if count else None) for k, v in losses.items()},
        "calibration": [{"bin": f"{i / 5:.1f}-{(i + 1) / 5:.1f}", "n": c,
                         "predicted": s / c if c else None, "observed": o / c if c else None}
                        for i, (s, o, c) in enumerate(bins)],
    }


def simulate(p: MasteryParams, learners: int = 300, seed: int = 0, sessions: int = 8,
             per_session: int = 2) -> dict:
    """False-mastery rate of three mastery rules on simulated learners with known skill.

    Each simulated concept has a true skill that starts low and grows with practice at a
    learner-specific rate; an exchange's observed quality is the skill plus judge noise.
    Sessions fall on separate days. A rule's false mastery: it declares mastery while the
    true skill is below the bar. Its miss rate: the true skill reached the bar by the end,
    but the rule never declared mastery.
    """
    rng = random.Random(seed)
    rules = {"engine": [0, 0, 0], "single_reading": [0, 0, 0], "plain_mean": [0, 0, 0]}
    for _ in range(learners):
        skill = rng.uniform(0.1, 0.5)
        rate = rng.uniform(0.02, 0.12)
        noise = rng.uniform(0.05, 0.25)
        m, obs, days, qs = None, 0, set(), []
        declared = dict.fromkeys(rules, False)
        false = dict.fromkeys(rules, False)
        for day in range(sessions):
            for _ in range(per_session):
                q = min(1.0, max(0.0, rng.gauss(skill, noise)))
                m = p.alpha * q + (1 - p.alpha) * (p.prior if m is None else m)
                obs += 1
                days.add(day)
                qs.append(q)
                verdicts = {
                    "engine": m >= p.bar and obs >= p.min_observations and len(days) >= p.min_days,
                    "single_reading": q >= p.bar,
                    "plain_mean": sum(qs) / len(qs) >= p.bar,
                }
                for r, v in verdicts.items():
                    if v and not declared[r]:
                        declared[r] = True
                        false[r] = skill < p.bar
                skill = min(1.0, skill + rate * (1 - skill))
        for r in rules:
            rules[r][0] += declared[r]
            rules[r][1] += false[r]
            rules[r][2] += (not declared[r]) and skill >= p.bar
    return {"learners": learners, "rules": {
        r: {"declared": d, "false_mastery_rate": f / d if d else 0.0,
            "miss_rate": miss / learners} for r, (d, f, miss) in rules.items()}}
