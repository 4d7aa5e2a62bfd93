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


class Replay:
    """The prequential replay as a fold: `feed` one observation (concept, quality, ts) in
    log order, `result()` at any point. Its state is plain JSON (`to_dict`/`from_dict`, floats
    round-trip exactly), so the site can carry it over from one build to the next and feed
    only the new observations: the sums are the same, in the same order, as a full replay.

    `calibration` is the EWMA's (the engine's displayed mastery as a prediction),
    `calibration_skill` the skill estimate's mean."""

    def __init__(self, p: MasteryParams, d: dict | None = None):
        self.p = p
        d = d or {}
        self.m: dict[str, float] = d.get("m", {})
        self.sk: dict[str, list[float]] = d.get("sk", {})  # concept -> [mean, var, day]
        self.last: dict[str, float] = d.get("last", {})
        self.total: float = d.get("total", 0.0)
        self.n: float = d.get("n", 0.0)
        self.losses: dict[str, float] = d.get("losses", {
            "engine": 0.0, "skill": 0.0, "running_mean": 0.0, "last_quality": 0.0})
        self.bins: list[list] = d.get("bins", _bins())
        self.bins_skill: list[list] = d.get("bins_skill", _bins())

    def to_dict(self) -> dict:
        return {"m": self.m, "sk": self.sk, "last": self.last, "total": self.total, "n": self.n,
                "losses": self.losses, "bins": self.bins, "bins_skill": self.bins_skill}

    def feed(self, cid: str, q: float, ts: str) -> None:
        p, losses = self.p, self.losses
        pred = self.m.get(cid, p.prior)
        mean = self.total / self.n if self.n else p.prior
        prev = self.sk.get(cid)
        pred_skill = prev[0] if prev else p.prior
        losses["engine"] += _ll(pred, q)
        losses["skill"] += _ll(pred_skill, q)
        losses["running_mean"] += _ll(mean, q)
        losses["last_quality"] += _ll(self.last.get(cid, p.prior), q)
        _add(self.bins, pred, q)
        _add(self.bins_skill, pred_skill, q)
        day = day_number(ts)
        self.sk[cid] = [*step(prev[0] if prev else None, prev[1] if prev else 0.0,
                              prev[2] if prev else None, day, q, p.tutor_sd, p), day]
        self.m[cid] = p.alpha * q + (1 - p.alpha) * pred
        self.last[cid] = q
        self.total += q
        self.n += 1

    def result(self) -> dict:
        count = int(self.n)
        return {
            "observations": count,
            "log_loss": {k: (v / count if count else None) for k, v in self.losses.items()},
            "calibration": _table(self.bins),
            "calibration_skill": _table(self.bins_skill),
        }


def prequential(observations: Iterable[tuple[str, float, str]], p: MasteryParams) -> dict:
    """observations: (concept, quality, ts) in log order (see `Replay`)."""
    r = Replay(p)
    for cid, q, ts in observations:
        r.feed(cid, q, ts)
    return r.result()


def simulate(p: MasteryParams, learners: int = 1000, seed: int = 0, bias: float = 0.1) -> dict:
    """The mastery rules scored on simulated learners (`llmlab.simulate`): the default
    world, and the same learners graded by an optimistic tutor (+`bias`)."""
    return {"learners": learners, "seed": seed,
            "default": simulate_mod.compare(p, learners, seed),
            "optimistic": simulate_mod.compare(p, learners, seed, simulate_mod.World(bias=bias))}
