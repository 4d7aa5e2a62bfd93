"""Workspace configuration (`llmlab.toml`), as typed, validated records.

Every tunable of the derived state lives here with its default, so the fold is a pure
function of (curriculum, events, now, params).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError, read_text


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


DEPTHS = ("overview", "working", "deep")


class Learner(_Model):
    """The learner profile the tutor instructions are written for (`llmlab profile`)."""

    name: str = "Learner"
    goal: str = "Understand how LLMs work well enough to build and debug LLM applications."
    background: str = Field("", max_length=300)  # languages, domains, what they have built
    scope: str = Field("", max_length=300)  # what they want covered first
    exclude: str = Field("", max_length=300)  # what to leave out
    depth: Literal["overview", "working", "deep"] = "working"  # how far down to go


class MasteryParams(_Model):
    alpha: float = Field(0.6, gt=0, le=1)  # EWMA weight of the newest observation
    prior: float = Field(0.5, ge=0, le=1)  # m0 at the first observation
    bar: float = Field(0.8, ge=0, le=1)  # mastery threshold
    min_observations: int = Field(3, ge=1)  # gate: at least this many observations
    min_days: int = Field(2, ge=1)  # gate: on at least this many distinct UTC days
    built_up: float = Field(0.6, ge=0, le=1)  # a concept this strong can go stale
    retention: Literal["fsrs", "fixed"] = "fsrs"  # staleness model
    desired_retention: float = Field(0.9, gt=0, lt=1)  # fsrs: due when recall < this
    stale_days: float = Field(14, gt=0)  # fixed rule: stale after this many days
    prediction_tolerance: float = Field(0.1, ge=0)  # relative error counted as "within"
    disagreement: float = Field(0.4, ge=0, le=1)  # flag |mastery - prediction hit rate|
    # The skill estimate behind the mastered verdict (a Kalman filter, see `llmlab.skill`);
    # defaults chosen by `llmlab model-check --sweep` (see docs and BENCHMARKS.md).
    skill_prior_sd: float = Field(0.25, gt=0, le=1)  # uncertainty before any evidence
    tutor_sd: float = Field(0.15, gt=0, le=1)  # noise of one tutor-graded quality
    objective_sd: float = Field(0.3, gt=0, le=1)  # noise of one scored prediction
    drift_sd: float = Field(0.05, ge=0, le=1)  # skill drift (learning/forgetting) per sqrt(day)
    interval: float = Field(0.8, gt=0, lt=1)  # central credible interval; mastered: low >= bar


class Settings(_Model):
    curriculum: str = "default"  # "default" or a folder path (relative to the workspace)
    git_commit: bool = False  # commit each recorded event when the workspace is a git repo
    port: int = Field(8765, ge=1, le=65535)


class Plugin(_Model):
    """The Claude Code plugin's hooks (see `llmlab.plugin.settings`, which reads these fast)."""

    remind: bool = True  # stop hook: remind the tutor when an answered probe went unrecorded
    transcript: bool = False  # stop hook: refresh the session transcript page after each turn
    brief_probes: int = Field(5, ge=1, le=20)  # session start: next probes listed


class Config(_Model):
    learner: Learner = Learner()
    mastery: MasteryParams = MasteryParams()
    settings: Settings = Settings()
    plugin: Plugin = Plugin()

    def to_toml(self) -> str:
        import tomli_w  # only writes need it

        return tomli_w.dumps(self.model_dump())


def load(path: Path) -> Config:
    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML ({e}). Fix the syntax near that line.") from None
    try:
        return Config(**data)
    except ValidationError as e:
        probs = "; ".join(
            f"{'.'.join(str(x) for x in err['loc'])}: {err['msg']}" for err in e.errors()
        )
        raise UserError(f"{path} has invalid settings: {probs}. Fix or remove those keys.") from None
