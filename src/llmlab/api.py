"""The library API: the one write path and the reads. CLI, MCP server and lab call this.

Write path: validate the payload (schema) -> lock -> catch up on the log and validate
against the current state -> append one line -> fsync -> unlock -> fold the new event
into the snapshot cache. A rejected event raises `UserError` and changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from . import integrity, snapshot, view
from . import log as log_mod
from . import compact
from .core import LOG_FILE, parse_ts
from .errors import UserError, unknown
from .events import (ACTORS, EVENT_ID, Event, check_not_future, format_ts, line_hash, now_utc,
                     validate_payload)
from .schema import dump
from .state import State
from .workspace import Workspace

CONCEPT_HINT = "See {cmd:curriculum} for the concept ids."


# ---------------------------------------------------------------- reads

def load_state(ws: Workspace, use_cache: bool = True) -> tuple[State, log_mod.Tip]:
    """The state of the log's complete prefix; `tip.warnings` says what is wrong after it
    or at the tail anchor (readers show them once; the write path refuses)."""
    try:
        s, tip = snapshot.current(ws.log_path, ws.state_dir / "snapshot.json", ws.curriculum,
                                  ws.config.mastery, use_cache=use_cache)
    except OSError as e:
        raise UserError(log_mod.os_message(e, ws.log_path, "read the evidence log")) from None
    problem = integrity.check_anchor(ws.log_path, ws.state_dir, tip)
    if problem:
        tip.damage = tip.damage or problem
        tip.warnings.append(f"The evidence log may have lost or changed events: {problem}")
    return s, tip


def state(ws: Workspace, now: datetime | None = None) -> dict:
    """The learner state (see `view.summarize`), with the next probes."""
    s, tip = load_state(ws)
    summary = view.summarize(ws.curriculum, s, ws.config.mastery, now or now_utc())
    summary["learner"] = dump(ws.config.learner)
    summary["next"] = view.next_probes(ws.curriculum, summary)
    summary["warnings"] = tip.warnings
    return summary


def next_probes(ws: Workspace, now: datetime | None = None, limit: int = 10) -> list[dict]:
    s, _ = load_state(ws)
    summary = view.summarize(ws.curriculum, s, ws.config.mastery, now or now_utc())
    return view.next_probes(ws.curriculum, summary, limit)


# The site build's caches under state/ (site.aggregate.CACHE, site.pages.CACHE; named here
# because the site imports this module, and a test checks the names agree).
SITE_CACHES = ("site.json", "site-pages.json")


def rebuild(ws: Workspace) -> dict:
    """Recompute the state from scratch (ignoring and replacing the cache), and drop the
    site build's caches: the next `site build` folds the whole log and renders every page."""
    s, tip = load_state(ws, use_cache=False)
    for name in SITE_CACHES:
        (ws.state_dir / name).unlink(missing_ok=True)
    return {"events": s.events, "last_event": s.last_id, "warnings": tip.warnings}


def concept(ws: Workspace, concept_id: str, now: datetime | None = None,
            limit: int | None = None, cursor: str | None = None) -> dict:
    """Everything known about one concept: curriculum entry, state, evidence.

    `evidence` is in time order. With `limit`, it is one page: the latest `limit` events
    before `cursor` (an event id; none: the newest), and `page.older` is the cursor for the
    page before it (None when there is none). Without `limit`, every event.
    """
    cur = ws.curriculum
    _check_concept(cur, concept_id)
    if cursor is not None and not EVENT_ID.match(cursor):
        raise UserError(f"'{cursor}' is not an event id; the cursor is the `older` value of a "
                        "previous page, e.g. evt_000120. Leave {opt:cursor} out for the newest "
                        "events.")
    if limit is not None and limit < 1:
        raise UserError(f"{{opt:limit}} must be at least 1, not {limit}.")
    c = cur.concepts[concept_id]
    summary = state(ws, now)
    events, retracted = [], set()
    for e in log_mod.read_events(ws.log_path):
        if e["type"] == "retraction":
            retracted.add(e["data"]["target"])
        if e["data"].get("concept") == concept_id or concept_id in (e["data"].get("concepts") or ()):
            events.append(e)
    total = len(events)
    if cursor is not None:
        events = [e for e in events if e["id"] < cursor]
    older = None
    if limit is not None and len(events) > limit:
        events = events[-limit:]
        older = events[0]["id"]
    return {
        "concept": dump(c),
        "state": summary["concepts"][concept_id],
        "prerequisites": [summary["concepts"][p] | {"title": cur.concepts[p].title}
                          for p in c.prerequisites],
        "dependants": cur.dependants(concept_id),
        "exit_items": [e for e in summary["exit_items"].values()
                       if any(r["concept"] == concept_id for r in e["requires"])],
        "misconceptions": [m for m in summary["misconceptions"]["open"]
                           + summary["misconceptions"]["resolved"] if m["concept"] == concept_id],
        "evidence": [e | {"retracted": e["id"] in retracted} for e in events],
        "warnings": summary["warnings"],
        "page": {"total": total, "shown": len(events), "older": older},
    }


def state_compact(ws: Workspace, now: datetime | None = None) -> dict:
    """The learner state within a tutor's context budget (see `compact.state`)."""
    return compact.state(state(ws, now))


def concept_compact(ws: Workspace, concept_id: str, limit: int = compact.EVENTS_SHOWN,
                    cursor: str | None = None, now: datetime | None = None) -> dict:
    """One concept within a tutor's context budget: entry, state, one page of events."""
    return compact.concept(concept(ws, concept_id, now, min(limit, compact.MAX_EVENTS_PAGE),
                                   cursor))


def next_compact(ws: Workspace, limit: int = compact.NEXT_SHOWN,
                 now: datetime | None = None) -> list[dict]:
    """The next probes within a tutor's context budget."""
    return compact.probes(next_probes(ws, now, limit), limit)


def model_check(ws: Workspace, learners: int = 1000, seed: int = 0, bias: float = 0.1,
                sweep: bool = False) -> dict:
    """Evaluate the mastery model on this log (prequential) and on simulated learners;
    `sweep`: also scan the skill verdict's parameters (see `llmlab.simulate.sweep`)."""
    from . import modelcheck, simulate

    if learners < 1:
        raise UserError(f"{{opt:learners}} must be at least 1 (got {learners}).")
    events = log_mod.read_events(ws.log_path)  # the complete prefix, every event checked
    retracted = {e["data"]["target"] for e in events if e["type"] == "retraction"}
    obs = [(e["data"]["concept"], e["data"]["quality"], e["ts"]) for e in events
           if e["type"] == "observation" and e["id"] not in retracted]
    p = ws.config.mastery
    out = {"params": dump(p), "replay": modelcheck.prequential(obs, p),
           "simulation": modelcheck.simulate(p, learners=learners, seed=seed, bias=bias)}
    if sweep:
        out["sweep"] = simulate.sweep(p, learners, seed, bias)
    return out


# ---------------------------------------------------------------- validation

def _check_concept(cur, cid: str) -> None:
    if cid not in cur.concepts:
        raise unknown("concept", cid, cur.concepts, CONCEPT_HINT)


def _catalog_entry(cur, concept: str, catalog: str):
    """The curriculum's misconception `catalog` of `concept`, or a user error listing them."""
    m = cur.misconception(concept, catalog)
    if m is None:
        ids = [x.id for x in cur.concepts[concept].misconceptions]
        raise unknown("misconception catalog id", catalog, ids,
                      f"Catalog ids of '{concept}': {', '.join(ids) or 'none'}; or leave out "
                      "{opt:catalog} and give the claim with {opt:claim}.")
    return m


def experiment_catalog() -> dict[str, list[str]]:
    """Experiment name -> predictable quantities (the lab's declarations need no torch)."""
    from .lab import catalog

    return catalog.quantities()


def _check_semantics(ws: Workspace, s: State, tip: log_mod.Tip, type_: str, d: dict) -> dict:
    cur = ws.curriculum
    if type_ == "observation":
        _check_concept(cur, d["concept"])
    elif type_ == "misconception_opened":
        _check_concept(cur, d["concept"])
        if d.get("catalog"):
            _catalog_entry(cur, d["concept"], d["catalog"])
        d = _check_reopen(s, d)
    elif type_ == "misconception_resolved":
        t = d["target"]
        m = s.misconceptions.get(t)
        open_ids = [k for k, v in s.misconceptions.items() if v["resolved_at"] is None]
        hint = (f"Open misconceptions: {', '.join(open_ids)}." if open_ids
                else "There are no open misconceptions.")
        if m is None:
            raise UserError(f"{t} is not an open misconception (no misconception_opened event "
                            f"with that id counts). {hint} See {{cmd:state}}.")
        if m["resolved_at"] is not None:
            raise UserError(f"Misconception {t} is already resolved (by {m['resolved_by']}). "
                            f"{hint}")
        if not d.get("evidence", "").strip():
            raise UserError(f"Resolving {t} needs evidence: say how the learner, later and "
                            "unprompted, applied the correct model to a new case "
                            "({opt:evidence=TEXT}).")
    elif type_ == "exit_attempt":
        if d["item"] not in cur.exit_items:
            raise unknown("exit item", d["item"], cur.exit_items,
                          "See {cmd:curriculum} for the exit items.")
    elif type_ == "prediction":
        if d.get("concept"):
            _check_concept(cur, d["concept"])
        cat = experiment_catalog()
        if d["experiment"] not in cat:
            raise unknown("experiment", d["experiment"], cat, "See {cmd:experiments}.")
        qs = cat[d["experiment"]]
        if d["quantity"] not in qs:
            raise unknown("quantity", d["quantity"], qs,
                          f"Predictable quantities of {d['experiment']}: {', '.join(qs)}.")
    elif type_ in ("experiment_run", "note"):
        for c in d.get("concepts", []):
            _check_concept(cur, c)
    elif type_ == "retraction":
        t = d["target"]
        if not EVENT_ID.match(t) or int(t.split("_")[1]) > tip.count or int(t.split("_")[1]) < 1:
            raise UserError(f"There is no event {t} to retract (the log has {tip.count} events, "
                            f"evt_000001..{tip.last_id or 'none'}). Check the id with "
                            "{cmd:state} or the dashboard timeline.")
        if t in s.retracted:
            raise UserError(f"Event {t} is already retracted (by {s.retracted[t]}). Nothing to do.")
        target = event_type(ws, t)
        if target == "retraction":
            raise UserError(f"{t} is itself a retraction; a retraction cannot be retracted. "
                            "Record the event again instead.")
    return d


def _check_reopen(s: State, d: dict) -> dict:
    """One open instance per catalog misconception; a relapse references the resolved one.

    Opening a catalog misconception whose last instance on the concept was resolved links
    the new event to it (`reopens`) without being asked.
    """
    same = [m for m in s.misconceptions.values()
            if d.get("catalog") and m["concept"] == d["concept"] and m["catalog"] == d["catalog"]]
    for m in same:
        if m["resolved_at"] is None:
            raise UserError(f"Misconception '{d['catalog']}' on {d['concept']} is already open "
                            f"({m['id']}, opened {m['opened_at']}). Record the exchange as an "
                            f"observation; resolve {m['id']} when the learner gets it.")
    target = d.get("reopens")
    if target is None:
        if same and same[-1]["reopened_by"] is None:
            return {**d, "reopens": same[-1]["id"]}
        return d
    m = s.misconceptions.get(target)
    if m is None or m["resolved_at"] is None:
        state = "is still open" if m is not None else "is not a misconception_opened event"
        raise UserError(f"{target} {state}; only a resolved misconception can be reopened. "
                        "See the resolved ones with {cmd:state}.")
    if m["concept"] != d["concept"]:
        raise UserError(f"{target} is a misconception on {m['concept']}, not {d['concept']}; "
                        f"reopen it on {m['concept']}.")
    if m["reopened_by"] is not None:
        raise UserError(f"{target} was already reopened by {m['reopened_by']}; reopen the "
                        "latest instance instead (or resolve it if it is open).")
    return d


def event_type(ws: Workspace, event_id: str) -> str | None:
    for e in log_mod.read_events(ws.log_path):
        if e["id"] == event_id:
            return e["type"]
    return None


# ---------------------------------------------------------------- the write path

def record(ws: Workspace, type_: str, data: dict[str, Any], actor: str = "tutor",
           at: datetime | str | None = None) -> Event:
    """Validate and append one event. The only function that writes the evidence log."""
    if actor not in ACTORS:
        raise UserError(f"Unknown actor '{actor}'. Use one of: {', '.join(ACTORS)}.")
    data = validate_payload(type_, data)
    when = parse_ts(at) if isinstance(at, str) else at
    if when is not None:
        check_not_future(when)
    with log_mod.lock_for(ws.log_path):
        s, tip = load_state(ws)
        if tip.damage:
            raise log_mod.LogWriteError(log_mod.damaged_message(ws.log_path, tip))
        data = _check_semantics(ws, s, tip, type_, data)
        ts_dt = when or now_utc()
        if tip.last_ts and ts_dt < parse_ts(tip.last_ts):
            if when is not None:
                raise UserError(f"Timestamp {format_ts(ts_dt)} precedes the last event "
                                f"({tip.last_ts}); the log is in time order. Use a later time.")
            ts_dt = parse_ts(tip.last_ts)  # clock went backwards: keep the log ordered
        ev = Event(id=f"evt_{tip.count + 1:06d}", ts=format_ts(ts_dt), type=type_, actor=actor,
                   prev=tip.last_hash, data=data)
        line = ev.to_line()
        log_mod.append_line(ws.log_path, line, expected_size=tip.offset)
        integrity.write_anchor(ws.state_dir, tip.count + 1, line_hash(line))
    # derive: fold the new line into the cache (outside the lock; the cache is checked on read)
    try:
        snapshot.advance(ws.log_path, ws.state_dir / "snapshot.json", ws.curriculum,
                         ws.config.mastery, s, tip, line)
    except OSError as e:  # the record is safe on disk; a cache problem must not fail it
        import logging

        logging.getLogger("llmlab").warning(
            "Recorded %s, but the state cache was not updated (%s); the next read rebuilds it.",
            ev.id, e)
    _git_commit(ws, ev)
    return ev


def _git_commit(ws: Workspace, ev: Event) -> None:
    """Best effort, in the background: never blocks, never fails the record."""
    if not ws.config.settings.git_commit or not (ws.root / ".git").exists():
        return
    import subprocess

    try:
        subprocess.Popen(
            ["sh", "-c", f'git add {LOG_FILE} && git commit -q -m "llmlab: {ev.id} {ev.type}" '
                         f"-- {LOG_FILE}"],
            cwd=ws.root, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
    except OSError:
        pass


# ---------------------------------------------------------------- typed helpers

def observe(ws: Workspace, concept: str, quality: float, evidence: str, probe: str = "",
            actor: str = "tutor", at=None) -> Event:
    return record(ws, "observation", {"concept": concept, "quality": quality,
                                      "evidence": evidence, "probe": probe}, actor, at)


def open_misconception(ws: Workspace, concept: str, claim: str | None = None,
                       catalog: str | None = None, quote: str = "", actor: str = "tutor",
                       at=None, reopens: str | None = None) -> Event:
    """Open a misconception; `reopens`: the resolved one that came back (a catalog
    misconception is linked to its last resolved instance automatically)."""
    cur = ws.curriculum
    _check_concept(cur, concept)
    if reopens and not claim and not catalog:
        s, _ = load_state(ws)
        old = s.misconceptions.get(reopens)
        if old is not None:
            claim, catalog = old["claim"], old["catalog"]
    if catalog:
        claim = claim or _catalog_entry(cur, concept, catalog).claim
    if not claim:
        raise UserError("A misconception needs the wrong claim ({opt:claim=TEXT}), or a "
                        "{opt:catalog} id of the concept's known misconceptions. "
                        + CONCEPT_HINT)
    data = {"concept": concept, "claim": claim, "catalog": catalog, "quote": quote}
    if reopens:
        data["reopens"] = reopens
    return record(ws, "misconception_opened", data, actor, at)


def resolve_misconception(ws: Workspace, target: str, evidence: str = "", actor: str = "tutor",
                          at=None) -> Event:
    return record(ws, "misconception_resolved", {"target": target, "evidence": evidence},
                  actor, at)


def exit_attempt(ws: Workspace, item: str, passed: bool, notes: str = "", actor: str = "tutor",
                 at=None) -> Event:
    return record(ws, "exit_attempt", {"item": item, "passed": passed, "notes": notes}, actor, at)


def note(ws: Workspace, text: str, concepts: list[str] | None = None,
         tags: list[str] | None = None, actor: str = "tutor", at=None) -> Event:
    """The tutor's note about the learner (background, a reflex seen, what lands): kept in
    the state and shown to the tutor and on the dashboard, never counted as evidence."""
    return record(ws, "note", {"text": text, "concepts": list(concepts or []),
                               "tags": list(tags or [])}, actor, at)


def _lab_spec(experiment: str):
    """The experiment's declaration, or None (unknown experiment, or no lab installed)."""
    try:
        from .lab.catalog import specs
    except ImportError:
        return None
    return specs().get(experiment)


def predict(ws: Workspace, experiment: str, quantity: str, value: float,
            concept: str | None = None, tolerance: float | None = None, note: str = "",
            actor: str = "learner", at=None, params: dict | None = None) -> Event:
    """Record a prediction for the run conditions `params` describe (default: the defaults).

    The prediction stores the conditions its quantity depends on (the model, or a config's
    content, and the quantity's parameters): only a run under the same conditions scores
    it. Without `concept` it counts against the concept the quantity measures.
    """
    data: dict[str, Any] = {"experiment": experiment, "quantity": quantity, "value": value,
                            "concept": concept, "tolerance": tolerance, "note": note}
    spec = _lab_spec(experiment)
    q = spec.quantity(quantity) if spec else None
    if q is not None:  # an unknown experiment or quantity fails in record, naming the valid ones
        data["conditions"] = spec.conditions_for(quantity, spec.resolve(params))
        if concept is None and q.concept in ws.curriculum.concepts:
            data["concept"] = q.concept
    return record(ws, "prediction", data, actor, at)


def retract(ws: Workspace, target: str, reason: str, actor: str = "tutor", at=None) -> Event:
    return record(ws, "retraction", {"target": target, "reason": reason}, actor, at)


def pending_predictions(ws: Workspace, experiment: str) -> list[dict]:
    s, _ = load_state(ws)
    return [p for p in s.predictions.values()
            if p["experiment"] == experiment and p["status"] == "pending"]


def compare(pred: dict, measured: float, default_tolerance: float,
            concept: str | None = None) -> dict:
    """Predicted vs measured: absolute and relative error, and whether within tolerance.

    `concept`: the quantity's concept, used when the prediction names none."""
    tol = pred.get("tolerance")
    tol = default_tolerance if tol is None else tol
    predicted = float(pred["value"])
    abs_err = abs(measured - predicted)
    scale = max(abs(measured), 1e-12)
    rel = abs_err / scale
    return {"prediction": pred["id"], "quantity": pred["quantity"], "predicted": predicted,
            "measured": float(measured), "abs_error": abs_err, "rel_error": rel,
            "tolerance": tol, "within": rel <= tol,
            "concept": pred.get("concept") or concept}


def scorable(ws: Workspace, experiment: str, params: dict,
             metrics: dict[str, float]) -> tuple[list[dict], list[dict]]:
    """Pending predictions for `experiment` split into (scored by this run, left pending).

    A prediction is scored only when the run's conditions for its quantity (model or
    config, and the parameters the quantity depends on) equal those it was made for; one
    recorded without conditions was made for the experiment's defaults.
    """
    spec = _lab_spec(experiment)
    match, other = [], []
    for p in pending_predictions(ws, experiment):
        if p["quantity"] not in metrics:
            continue
        if spec is not None and spec.quantity(p["quantity"]) is not None:
            want = p.get("conditions")
            if want is None:
                want = spec.conditions_for(p["quantity"], {})
            try:
                got = spec.conditions_for(p["quantity"], params)
            except UserError:  # e.g. the run's config file is gone: nothing to match
                got = None
            if json.dumps(want, sort_keys=True, default=str) != \
                    json.dumps(got, sort_keys=True, default=str):
                other.append(p)
                continue
        match.append(p)
    return match, other


def record_experiment_run(ws: Workspace, experiment: str, run_id: str, params: dict,
                          metrics: dict[str, float], conditions: dict,
                          concepts: list[str]) -> tuple[Event, list[dict]]:
    """Compare the pending predictions made for this run's conditions with `metrics`
    (`scorable`); append the run event. Other predictions stay pending."""
    tol = ws.config.mastery.prediction_tolerance
    spec = _lab_spec(experiment)

    def concept_of(q: str) -> str | None:
        c = spec.quantity(q).concept if spec and spec.quantity(q) else None
        return c if c in ws.curriculum.concepts else None

    comparisons = [compare(p, metrics[p["quantity"]], tol, concept_of(p["quantity"]))
                   for p in scorable(ws, experiment, params, metrics)[0]]
    ev = record(ws, "experiment_run", {
        "experiment": experiment, "run_id": run_id, "params": params,
        "metrics": {k: float(v) for k, v in metrics.items()}, "conditions": conditions,
        "concepts": [c for c in concepts if c in ws.curriculum.concepts],
        "comparisons": comparisons}, actor="lab")
    return ev, comparisons
