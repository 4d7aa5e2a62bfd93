"""Workspace configuration (`llmlab.toml`), as typed, validated records.

Every tunable of the derived state lives here with its default, so the fold is a pure
function of (curriculum, events, now, params).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from .errors import UserError, read_text
from .schema import Annotated, Invalid, Meta, Record, convert, dump


DEPTHS = ("overview", "working", "deep")


class Learner(Record, kw_only=True):
    """The learner profile the tutor instructions are written for (`llmlab profile`)."""

    name: str = "Learner"
    goal: str = "Understand how LLMs work well enough to build and debug LLM applications."
    background: Annotated[str, Meta(max_length=300)] = ""  # languages, domains, what they have built
    scope: Annotated[str, Meta(max_length=300)] = ""  # what they want covered first
    exclude: Annotated[str, Meta(max_length=300)] = ""  # what to leave out
    depth: Literal["overview", "working", "deep"] = "working"  # how far down to go


class MasteryParams(Record, kw_only=True):
    alpha: Annotated[float, Meta(gt=0, le=1)] = 0.6  # EWMA weight of the newest observation
    prior: Annotated[float, Meta(ge=0, le=1)] = 0.5  # m0 at the first observation
    bar: Annotated[float, Meta(ge=0, le=1)] = 0.8  # mastery threshold
    min_observations: Annotated[int, Meta(ge=1)] = 3  # gate: at least this many observations
    min_days: Annotated[int, Meta(ge=1)] = 2  # gate: on at least this many distinct UTC days
    built_up: Annotated[float, Meta(ge=0, le=1)] = 0.6  # a concept this strong can go stale
    retention: Literal["fsrs", "fixed"] = "fsrs"  # staleness model
    desired_retention: Annotated[float, Meta(gt=0, lt=1)] = 0.9  # fsrs: due when recall < this
    stale_days: Annotated[float, Meta(gt=0)] = 14  # fixed rule: stale after this many days
    prediction_tolerance: Annotated[float, Meta(ge=0)] = 0.1  # relative error counted as "within"
    disagreement: Annotated[float, Meta(ge=0, le=1)] = 0.4  # flag |mastery - prediction hit rate|
    # The skill estimate behind the mastered verdict (a Kalman filter, see `llmlab.skill`);
    # defaults chosen by `llmlab model-check --sweep` (see docs and BENCHMARKS.md).
    skill_prior_sd: Annotated[float, Meta(gt=0, le=1)] = 0.25  # uncertainty before any evidence
    tutor_sd: Annotated[float, Meta(gt=0, le=1)] = 0.15  # noise of one tutor-graded quality
    objective_sd: Annotated[float, Meta(gt=0, le=1)] = 0.3  # noise of one scored prediction
    drift_sd: Annotated[float, Meta(ge=0, le=1)] = 0.05  # skill drift (learning/forgetting) per sqrt(day)
    interval: Annotated[float, Meta(gt=0, lt=1)] = 0.8  # central credible interval; mastered: low >= bar


class Settings(Record, kw_only=True):
    curriculum: str = "default"  # "default" or a folder path (relative to the workspace)
    git_commit: bool = False  # commit each recorded event when the workspace is a git repo
    port: Annotated[int, Meta(ge=1, le=65535)] = 8765


class Plugin(Record, kw_only=True):
    """The Claude Code plugin's hooks (see `llmlab.plugin.settings`, which reads these fast)."""

    remind: bool = True  # stop hook: remind the tutor when an answered probe went unrecorded
    transcript: bool = False  # stop hook: refresh the session transcript page after each turn
    brief_probes: Annotated[int, Meta(ge=1, le=20)] = 5  # session start: next probes listed


class Config(Record, kw_only=True):
    learner: Learner = Learner()
    mastery: MasteryParams = MasteryParams()
    settings: Settings = Settings()
    plugin: Plugin = Plugin()

    def to_toml(self) -> str:
        import tomli_w  # only writes need it

        return tomli_w.dumps(dump(self))


def load(path: Path) -> Config:
    try:
        data = tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path} is not valid TOML ({e}). Fix the syntax near that line.") from None
    try:
        return convert(data, Config)
    except Invalid as e:
        raise UserError(f"{path} has invalid settings: {e}. Fix or remove those keys.") from None
