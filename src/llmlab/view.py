"""What the learner and the tutor see: the folded state read at a moment `now`.

Pure functions of (curriculum, state, params, now): staleness, exit readiness,
prerequisite gaps, the honest headline numbers, the prediction record and the ordered
next probes with reason codes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .config import MasteryParams
from .curriculum import Curriculum
from .core import parse_ts
from .skill import bounds
from .state import ConceptState, State


def _days_since(ts: str | None, now: datetime) -> float | None:
    if ts is None:
        return None
    return (now - parse_ts(ts)).total_seconds() / 86400


def staleness(c: ConceptState, p: MasteryParams, now: datetime) -> tuple[bool, float | None]:
    """(stale, predicted recall or None). Only a built-up concept can go stale."""
    if c.mastery is None:
        return False, None
    recall = c.reviews.recall(now, p.desired_retention) if p.retention == "fsrs" else None
    if c.mastery < p.built_up:
        return False, recall
    if p.retention == "fsrs":
        return recall is not None and recall < p.desired_retention, recall
    age = _days_since(c.last_seen, now) or 0.0
    return age >= p.stale_days, recall


def concept_view(cur: Curriculum, s: State, cid: str, p: MasteryParams, now: datetime) -> dict:
    c = s.concepts[cid]
    stale, recall = staleness(c, p, now)
    gaps = [q for q in cur.concepts[cid].prerequisites if not s.concepts[q].mastered] \
        if c.observations else []
    age = _days_since(c.last_seen, now)
    low, high = bounds(c.skill, c.skill_var, p) if c.skill is not None else (None, None)
    info = c.info_tutor + c.info_objective
    return {
        "id": cid,
        "title": cur.concepts[cid].title,
        "module": cur.concepts[cid].module,
        "mastery": round(c.mastery, 4) if c.mastery is not None else 0.0,
        "observed": c.mastery is not None,
        "mastered": c.mastered,
        "skill": _r(c.skill),
        "skill_low": _r(low),
        "skill_high": _r(high),
        "objective": c.objective,
        "objective_share": round(c.info_objective / info, 4) if info else 0.0,
        "relapses": c.relapses,
        "observations": c.observations,
        "days": c.days,
        "first_seen": c.first_seen,
        "last_seen": c.last_seen,
        "days_since_seen": round(age, 2) if age is not None else None,
        "stale": stale,
        "recall": round(recall, 4) if recall is not None else None,
        "open_misconceptions": [
            {"id": mid, "claim": s.misconceptions[mid]["claim"],
             "catalog": s.misconceptions[mid]["catalog"]} for mid in c.open_misconceptions
        ],
        "prereq_gaps": gaps,
        "notes": list(reversed(s.concept_notes.get(cid, []))),  # the tutor's, newest first
        "history": [_history_point(h, p) for h in c.history],
    }


def _history_point(h: list, p: MasteryParams) -> dict:
    low, high = bounds(h[4], h[5], p)
    return {"ts": h[0], "quality": h[1], "mastery": round(h[2], 6), "event": h[3],
            "skill": _r(h[4]), "skill_low": _r(low), "skill_high": _r(high)}


def _r(x: float | None) -> float | None:
    return round(x, 4) if x is not None else None


def describe(ev: dict, s: State) -> dict:
    """One timeline entry: who did what, in words."""
    d, t = ev["data"], ev["type"]
    concept = d.get("concept")
    if t == "observation":
        text = f"{concept}: quality {d['quality']:g} — {d['evidence']}"
    elif t == "misconception_opened":
        text = f"misconception on {concept}: {d['claim']}"
    elif t == "misconception_resolved":
        m = s.misconceptions.get(d["target"], {})
        concept = m.get("concept")
        text = f"resolved misconception on {concept}: {m.get('claim', d['target'])}"
    elif t == "exit_attempt":
        text = f"exit item {d['item']}: {'passed' if d['passed'] else 'not passed'}"
    elif t == "prediction":
        text = f"predicted {d['experiment']}.{d['quantity']} = {d['value']:g}"
    elif t == "experiment_run":
        text = f"lab run {d['experiment']} ({d['run_id']})"
    elif t == "note":
        concept = (d.get("concepts") or [None])[0]
        tags = f"[{', '.join(d['tags'])}] " if d.get("tags") else ""
        text = f"note: {tags}{d['text']}"
    else:
        text = f"retracted {d['target']}: {d['reason']}"
    return {"id": ev["id"], "ts": ev["ts"], "type": t, "actor": ev["actor"], "concept": concept,
            "summary": text[:300]}


def _quantity_concept(pred: dict) -> str | None:
    """The concept the predicted quantity measures (for predictions recorded without one)."""
    try:
        from .lab.catalog import specs
    except ImportError:
        return None
    spec = specs().get(pred["experiment"])
    q = spec.quantity(pred["quantity"]) if spec else None
    return q.concept if q else None


def prediction_record(s: State, p: MasteryParams, concepts: dict[str, dict]) -> dict:
    """How predictions compared with measurements, overall and per concept."""
    per: dict[str, dict[str, Any]] = {}
    total = within = 0
    pending = []
    for pred in s.predictions.values():
        if pred["status"] != "compared":
            pending.append({k: pred[k] for k in ("id", "experiment", "quantity", "value", "ts")})
            continue
        comp = pred["comparison"]
        total += 1
        within += comp["within"]
        cid = pred.get("concept") or comp.get("concept") or _quantity_concept(pred)
        cids = [cid] if cid else []  # never every concept of the experiment
        for cid in cids:
            if cid not in concepts:
                continue
            r = per.setdefault(cid, {"compared": 0, "within": 0, "errors": []})
            r["compared"] += 1
            r["within"] += comp["within"]
            r["errors"].append(comp["rel_error"])
    flags = []
    for cid, r in per.items():
        r["hit_rate"] = r["within"] / r["compared"]
        r["mean_rel_error"] = sum(r.pop("errors")) / r["compared"]
        m = concepts[cid]["mastery"]
        r["disagrees"] = r["compared"] >= 2 and abs(m - r["hit_rate"]) > p.disagreement
        if r["disagrees"]:
            flags.append({"concept": cid, "mastery": m, "hit_rate": round(r["hit_rate"], 3)})
    return {"compared": total, "within": within,
            "hit_rate": within / total if total else None,
            "pending": pending, "per_concept": per, "disagreements": flags}


def summarize(cur: Curriculum, s: State, p: MasteryParams, now: datetime) -> dict:
    """The full learner state as plain JSON-able data (what `llmlab state --json` prints)."""
    concepts = {cid: concept_view(cur, s, cid, p, now) for cid in cur.concepts}
    total = len(concepts)
    mastered = sum(c["mastered"] for c in concepts.values())
    idx = max(s.module_floor, _first_unmastered(cur, concepts))
    current = cur.modules[idx].id if idx < len(cur.modules) else None
    exit_items = {}
    for item in cur.exit_items.values():
        chips = [{"concept": r, "mastery": concepts[r]["mastery"],
                  "mastered": concepts[r]["mastered"], "stale": concepts[r]["stale"]}
                 for r in item.requires]
        attempt = s.exit_attempts.get(item.id, {})
        exit_items[item.id] = {
            "id": item.id, "kind": item.kind, "title": item.title,
            "ready": all(c["mastered"] and not c["stale"] for c in chips),
            "passed": bool(attempt.get("passed")), "attempts": attempt.get("attempts", 0),
            "requires": chips,
        }
    open_m = [m for m in s.misconceptions.values() if m["resolved_at"] is None]
    resolved = [m for m in s.misconceptions.values() if m["resolved_at"] is not None]
    modules = []
    for m in cur.modules:
        cs = [concepts[c] for c in m.concepts]
        modules.append({"id": m.id, "title": m.title, "order": m.order,
                        "mastery": sum(c["mastery"] for c in cs) / len(cs),
                        "mastered": sum(c["mastered"] for c in cs), "total": len(cs)})
    return {
        "now": now.isoformat(),
        "events": s.events,
        "last_event": s.last_id,
        "overall": {
            "mastery": round(sum(c["mastery"] for c in concepts.values()) / total, 4) if total else 0.0,
            "mastered": mastered, "total": total,
            "touched": sum(c["observed"] for c in concepts.values()),
            "exit_passed": sum(e["passed"] for e in exit_items.values()),
            "exit_total": len(exit_items),
        },
        "current_module": current,
        "modules": modules,
        "concepts": concepts,
        "exit_items": exit_items,
        "misconceptions": {"open": open_m, "resolved": resolved,
                           "resolved_count": len(resolved)},
        "predictions": prediction_record(s, p, concepts),
        "runs": s.runs,
        # the tutor's running picture of the learner, newest first (never a progress number)
        "notes": {"latest": list(reversed(s.notes)), "count": s.note_count},
        "recent": [describe(ev, s) for ev in reversed(s.recent)],
    }


def _first_unmastered(cur: Curriculum, concepts: dict[str, dict]) -> int:
    for i, m in enumerate(cur.modules):
        if any(not concepts[c]["mastered"] for c in m.concepts):
            return i
    return len(cur.modules)


def next_probes(cur: Curriculum, summary: dict, limit: int = 10) -> list[dict]:
    """What the tutor should do next, most urgent first, each with a reason code."""
    concepts = summary["concepts"]
    out: list[dict] = []
    seen: set[tuple[str, str]] = set()

    def add(reason: str, target: str, why: str, **extra) -> None:
        if (reason, target) not in seen:
            seen.add((reason, target))
            out.append({"reason": reason, "target": target, "why": why, **extra})

    for m in summary["misconceptions"]["open"]:
        add("resolve_misconception", m["concept"],
            f"Open misconception: \"{m['claim']}\". Probe until the learner corrects it, then "
            f"record the resolution of {m['id']}.", misconception=m["id"])
    in_progress = [c for c in concepts.values() if c["observed"] and not c["mastered"]]
    for c in in_progress:
        for q in cur.concepts[c["id"]].prerequisites:
            pc = concepts[q]
            if not pc["mastered"] or pc["stale"]:
                state = "stale" if pc["mastered"] else f"mastery {pc['mastery']:.2f}"
                add("shore_up_prerequisite", q,
                    f"Prerequisite of {c['id']} (in progress) is not solid ({state}).",
                    for_concept=c["id"])
    for c in concepts.values():
        if c["stale"]:
            add("reprobe_due", c["id"],
                f"Built up (mastery {c['mastery']:.2f}) but not seen for "
                f"{c['days_since_seen']:.0f} days; predicted recall "
                f"{c['recall'] if c['recall'] is not None else 'low'}.")
    cm = summary["current_module"]
    if cm is not None:
        for cid in cur.module(cm).concepts:
            c = concepts[cid]
            if not c["mastered"] and all(concepts[q]["mastered"] for q in cur.concepts[cid].prerequisites):
                so_far = (f"mastery {c['mastery']:.2f} after {c['observations']} observation(s)"
                          if c["observations"] else "not yet probed")
                why = f"In the current module ({cm}), prerequisites mastered; {so_far}."
                add("frontier", cid, why)
    for e in summary["exit_items"].values():
        if e["ready"] and not e["passed"]:
            add("exit_ready", e["id"], f"All required concepts mastered and fresh: attempt the "
                f"{e['kind']} exit item \"{e['title']}\".")
    return out[:limit]
