"""Learner state as a pure fold over the evidence log.

    derive(curriculum, events, params) = fold(apply, initial(curriculum), counted(events))

`apply` handles one event; it touches no files and no clock. Retractions are resolved
first (`counted` drops retracted events), so a retracted event is as if it never
happened. The folded `State` is what the snapshot cache stores; time-dependent views
(staleness, readiness, next probes) are computed from it in `view.py` with an explicit
`now`.

Events are plain dicts here (the parsed JSON lines): the fold must run at well over
100,000 events per second.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from .config import MasteryParams
from .curriculum import Curriculum
from .retention import DailyReviews, close_days
from .skill import day_number, prediction_score, step, z_score

HISTORY_KEEP = 40  # mastery points kept per concept for charts
RECENT_KEEP = 30  # events kept for the timeline
RUNS_KEEP = 100
CLOSE_BATCH = 4096  # concept-days reviewed at once (bounds the fold's memory)
NOTES_KEEP = 20  # the tutor's latest notes kept in the state
CONCEPT_NOTES_KEEP = 5  # ...and per concept


@dataclass
class ConceptState:
    mastery: float | None = None  # EWMA of qualities; None until first observation
    observations: int = 0
    days: int = 0  # distinct UTC days with an observation (the log is in time order)
    last_day: str | None = None
    first_seen: str | None = None
    last_seen: str | None = None
    # [ts, quality, mastery, event id, skill, skill variance] (the interval is drawn in `view`)
    history: list[list] = field(default_factory=list)
    open_misconceptions: list[str] = field(default_factory=list)  # event ids
    relapses: int = 0  # misconceptions reopened after being resolved
    mastered: bool = False
    # the skill estimate (`llmlab.skill`): mean and variance, None until the first evidence
    skill: float | None = None
    skill_var: float = 0.0
    skill_day: float | None = None  # event time (days) of the last evidence
    objective: int = 0  # scored predictions folded into the estimate
    info_objective: float = 0.0  # information (sum of 1/noise variance) by source
    info_tutor: float = 0.0
    reviews: DailyReviews = field(default_factory=DailyReviews)


_CONCEPT_FIELDS = [f for f in fields(ConceptState) if f.name != "reviews"]


@dataclass
class State:
    concepts: dict[str, ConceptState]
    module_ids: list[str]
    module_concepts: dict[str, list[str]]
    misconceptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    exit_attempts: dict[str, dict[str, Any]] = field(default_factory=dict)
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)
    recent: list[dict[str, Any]] = field(default_factory=list)  # last events that count
    retracted: dict[str, str] = field(default_factory=dict)  # target id -> retraction id
    # the tutor's notes about the learner (never evidence: no progress number reads them)
    notes: list[dict[str, Any]] = field(default_factory=list)  # latest NOTES_KEEP
    concept_notes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    note_count: int = 0
    module_floor: int = 0  # index of the furthest module reached; never decreases
    events: int = 0  # lines folded (including retractions and retracted events)
    last_id: str | None = None
    last_ts: str | None = None

    def copy(self) -> State:
        return copy.deepcopy(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view (shares lists with the state: serialize it, don't mutate it)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "concepts"}
        d["concepts"] = {cid: {**{f.name: getattr(c, f.name) for f in _CONCEPT_FIELDS},
                               "reviews": c.reviews.to_dict()}
                         for cid, c in self.concepts.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> State:
        d = dict(d)
        concepts = {}
        for cid, c in d.pop("concepts").items():
            c = dict(c)
            c["reviews"] = DailyReviews.from_dict(c["reviews"])
            concepts[cid] = ConceptState(**c)
        return cls(concepts=concepts, **d)


Handler = Callable[[State, dict, MasteryParams], None]


def initial(cur: Curriculum) -> State:
    return State(
        concepts={cid: ConceptState() for cid in cur.concepts},
        module_ids=[m.id for m in cur.modules],
        module_concepts={m.id: list(m.concepts) for m in cur.modules},
    )


def is_mastered(c: ConceptState, p: MasteryParams) -> bool:
    """The lower end of the skill's credible interval clears the bar, and the gates hold.
    (`x if x > 0.0 else 0.0` is `max(0.0, x)`, NaN included, without the call.)"""
    if (c.skill is None or c.observations < p.min_observations or c.days < p.min_days
            or c.open_misconceptions):
        return False
    low = c.skill - z_score(p.interval) * math.sqrt(c.skill_var)
    return (low if low > 0.0 else 0.0) >= p.bar


def _measure(c: ConceptState, ts: str, z: float, noise_sd: float, p: MasteryParams) -> None:
    day = day_number(ts)
    c.skill, c.skill_var = step(c.skill, c.skill_var, c.skill_day, day, z, noise_sd, p)
    c.skill_day = day


def first_unmastered_module(s: State) -> int:
    for i, mid in enumerate(s.module_ids):
        if any(not s.concepts[c].mastered for c in s.module_concepts[mid]):
            return i
    return len(s.module_ids)


def _refresh_mastered(s: State, cid: str, p: MasteryParams) -> None:
    c = s.concepts[cid]
    was, c.mastered = c.mastered, is_mastered(c, p)
    if c.mastered and not was:
        s.module_floor = max(s.module_floor, first_unmastered_module(s))


def _observer(s: State, p: MasteryParams, closed: list) -> Handler:
    """The observation handler of one fold (the most common event, once per event of a
    rebuild): `_measure`, `step` and `is_mastered` inlined, with the parameters' constants
    computed once, as those functions compute them (the same float operations in the same
    order, so the results are bit-identical). A concept-day that ends is appended to
    `closed` as (reviews, day, mean quality), for `retention.close_days` to fold into the
    card in a batch: nothing in the fold reads the card (`DailyReviews.add`, batched)."""
    concepts = s.concepts
    alpha, keep, prior = p.alpha, 1 - p.alpha, p.prior
    prior_var, drift_var = p.skill_prior_sd ** 2, p.drift_sd ** 2
    noise_var, info = p.tutor_sd ** 2, 1 / p.tutor_sd ** 2
    z, sqrt, bar = z_score(p.interval), math.sqrt, p.bar
    min_obs, min_days = p.min_observations, p.min_days
    fromiso = datetime.fromisoformat
    history_keep, batch = HISTORY_KEEP, CLOSE_BATCH

    def observation(s: State, ev: dict, p: MasteryParams) -> None:
        d = ev["data"]
        cid, q, ts = d["concept"], d["quality"], ev["ts"]
        c = concepts.get(cid)
        if c is None:  # concept removed from the curriculum since: the event no longer counts
            return
        mastery = c.mastery
        c.mastery = mastery = alpha * q + keep * (prior if mastery is None else mastery)
        c.observations = n = c.observations + 1
        day = ts[:10]
        days = c.days
        if day != c.last_day:
            c.days = days = days + 1
            c.last_day = day
        if not c.first_seen:
            c.first_seen = ts
        c.last_seen = ts
        t = fromiso(ts).timestamp() / 86400  # skill.day_number
        mean, var, last = c.skill, c.skill_var, c.skill_day  # skill.step:
        if mean is None:
            mean, var = prior, prior_var
        elif last is not None and t > last:
            var += drift_var * (t - last)
        k = var / (var + noise_var)
        c.skill = mean = mean + k * (q - mean)
        c.skill_var = var = (1 - k) * var
        c.skill_day = t
        c.info_tutor += info
        history = c.history
        history.append([ts, q, mastery, ev["id"], mean, var])
        if len(history) > history_keep:
            del history[0]
        rv = c.reviews  # DailyReviews.add, the review itself batched
        open_day = rv.day
        if open_day is None or day > open_day:
            if open_day is not None:
                closed.append((rv, open_day, rv.total / rv.count))
                if len(closed) >= batch:
                    close_days(closed)
            rv.day, rv.total, rv.count = day, 0.0 + q, 1
        else:
            rv.total += q
            rv.count += 1
        if n < min_obs or days < min_days or c.open_misconceptions:  # is_mastered
            if c.mastered:
                c.mastered = False
        else:
            low = mean - z * sqrt(var)
            if (low if low > 0.0 else 0.0) >= bar:
                if not c.mastered:
                    c.mastered = True
                    s.module_floor = max(s.module_floor, first_unmastered_module(s))
            elif c.mastered:
                c.mastered = False

    return observation


def _misconception_opened(s: State, ev: dict, p: MasteryParams) -> None:
    d = ev["data"]
    cid = d["concept"]
    reopens = d.get("reopens")
    s.misconceptions[ev["id"]] = {
        "id": ev["id"], "concept": cid, "catalog": d.get("catalog"), "claim": d["claim"],
        "quote": d.get("quote", ""), "opened_at": ev["ts"], "resolved_at": None,
        "resolved_by": None, "reopens": reopens, "reopened_by": None,
    }
    if reopens in s.misconceptions:
        s.misconceptions[reopens]["reopened_by"] = ev["id"]
    if cid in s.concepts:
        s.concepts[cid].open_misconceptions.append(ev["id"])
        s.concepts[cid].relapses += reopens is not None
        _refresh_mastered(s, cid, p)


def _misconception_resolved(s: State, ev: dict, p: MasteryParams) -> None:
    target = ev["data"]["target"]
    m = s.misconceptions.get(target)
    if m is None or m["resolved_at"] is not None:
        return
    m["resolved_at"], m["resolved_by"] = ev["ts"], ev["id"]
    c = s.concepts.get(m["concept"])
    if c is not None and target in c.open_misconceptions:
        c.open_misconceptions.remove(target)
        _refresh_mastered(s, m["concept"], p)


def _exit_attempt(s: State, ev: dict, p: MasteryParams) -> None:
    d = ev["data"]
    a = s.exit_attempts.setdefault(d["item"], {"attempts": 0, "passed": False, "passed_at": None,
                                               "last": None})
    a["attempts"] += 1
    a["last"] = {"id": ev["id"], "ts": ev["ts"], "passed": d["passed"], "notes": d.get("notes", "")}
    if d["passed"] and not a["passed"]:
        a["passed"], a["passed_at"] = True, ev["ts"]


def _prediction(s: State, ev: dict, p: MasteryParams) -> None:
    d = ev["data"]
    s.predictions[ev["id"]] = {"id": ev["id"], "ts": ev["ts"], **d, "status": "pending",
                               "comparison": None, "run_id": None}


def _experiment_run(s: State, ev: dict, p: MasteryParams) -> None:
    d = ev["data"]
    for comp in d.get("comparisons", []):
        pred = s.predictions.get(comp["prediction"])
        if pred is not None and pred["status"] == "pending":
            pred["status"], pred["comparison"], pred["run_id"] = "compared", comp, d["run_id"]
            _objective(s, ev, comp, pred, d.get("concepts", []), p)
    s.runs.append({"id": ev["id"], "ts": ev["ts"], "experiment": d["experiment"],
                   "run_id": d["run_id"], "metrics": d.get("metrics", {}),
                   "concepts": d.get("concepts", []), "comparisons": d.get("comparisons", [])})
    if len(s.runs) > RUNS_KEEP:
        del s.runs[0]


def _objective(s: State, ev: dict, comp: dict, pred: dict, run_concepts: list[str],
               p: MasteryParams) -> None:
    """A scored prediction is objective evidence on the concept the quantity measures: the
    comparison's concept, else the prediction's, else the run's when it names just one."""
    cid = comp.get("concept") or pred.get("concept") or (
        run_concepts[0] if len(run_concepts) == 1 else None)
    c = s.concepts.get(cid) if cid else None
    if c is None:
        return
    _measure(c, ev["ts"], prediction_score(comp), p.objective_sd, p)
    c.objective += 1
    c.info_objective += 1 / p.objective_sd ** 2
    _refresh_mastered(s, cid, p)


def _note(s: State, ev: dict, p: MasteryParams) -> None:
    """Kept for the tutor and the dashboard; touches no mastery, skill or progress field."""
    d = ev["data"]
    n = {"id": ev["id"], "ts": ev["ts"], "actor": ev["actor"], "text": d["text"],
         "concepts": list(d.get("concepts", [])), "tags": list(d.get("tags", []))}
    s.note_count += 1
    s.notes.append(n)
    if len(s.notes) > NOTES_KEEP:
        del s.notes[0]
    for cid in n["concepts"]:
        if cid in s.concepts:
            kept = s.concept_notes.setdefault(cid, [])
            kept.append(n)
            if len(kept) > CONCEPT_NOTES_KEEP:
                del kept[0]


def _retraction(s: State, ev: dict, p: MasteryParams) -> None:
    """Handled before the fold (`retractions`): the target never counts."""


APPLY: dict[str, Handler] = {  # and "observation": built per fold, `_observer`
    "misconception_opened": _misconception_opened,
    "misconception_resolved": _misconception_resolved,
    "exit_attempt": _exit_attempt,
    "prediction": _prediction,
    "experiment_run": _experiment_run,
    "retraction": _retraction,
    "note": _note,
}


def apply(s: State, ev: dict, p: MasteryParams) -> None:
    """Fold one counted event into `s` (in place; `derive` owns the state it folds)."""
    fold(s, (ev,), p)


def retractions(events: Iterable[dict]) -> dict[str, str]:
    """target id -> retraction id, for every retraction in `events`."""
    return {ev["data"]["target"]: ev["id"] for ev in events if ev["type"] == "retraction"}


def fold(s: State, events: Iterable[dict], p: MasteryParams) -> State:
    """`apply` each event in turn: count it, then (unless retracted) its type's handler,
    and keep it among the recent ones. (The loop runs once per event of a rebuild: what it
    reads is bound to locals.) The concept-days that end are reviewed in batches
    (`retention.close_days`), the last batch before the fold returns or raises: a folded
    state is the same as one folded by `DailyReviews.add` event by event."""
    closed: list = []
    handlers = {**APPLY, "observation": _observer(s, p, closed)}
    retracted = s.retracted
    recent = deque(s.recent, maxlen=RECENT_KEEP)  # the raw events; `view` words them
    n, ev = s.events, None
    try:
        for ev in events:
            n += 1
            if retracted and ev["id"] in retracted:
                continue
            handlers[ev["type"]](s, ev, p)
            recent.append(ev)
    finally:  # also when an event fails: it counted, as `apply` counted it before its handler
        close_days(closed)
        s.recent[:] = recent
        if ev is not None:
            s.events, s.last_id, s.last_ts = n, ev["id"], ev["ts"]
    return s


def derive(cur: Curriculum, events: Iterable[dict], p: MasteryParams,
           retracted: dict[str, str] | None = None) -> State:
    """The learner state from scratch: pure, no IO, no clock.

    `retracted` (target -> retraction id) may be given when the caller has it from a
    cheap first pass; then `events` is consumed once, as a stream.
    """
    s = initial(cur)
    if retracted is None:
        events = list(events)
        retracted = retractions(events)
    s.retracted = dict(retracted)
    return fold(s, events, p)


def extend(s: State, cur: Curriculum, rederive, new_events: list[dict],
           p: MasteryParams) -> State:
    """Incremental fold of `new_events` onto `s` (the caller hands over ownership of `s`).

    A new retraction changes the past, so it falls back to `derive` over the whole log
    (`rederive()`); everything else folds forward.
    """
    if any(ev["type"] == "retraction" for ev in new_events):
        return rederive()
    return fold(s, new_events, p)
