"""The data behind every page: the derived state plus the site's aggregates of the log.

`collect(ws, now)` returns plain JSON-able dicts; the HTML pages and their JSON twins are
rendered from exactly these dicts, so the two never disagree. Nothing here reads the whole
log: the state comes from its snapshot and the per-concept evidence, activity and model
replay from `aggregate` (both fold only the lines added since the last build).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

from .. import api
from ..core import parse_ts
from ..lab import runs as runs_mod
from ..schema import dump
from ..workspace import Workspace
from . import aggregate
from .svg import level

FIGURE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,120}\.(png|svg|jpg|jpeg)$")
ACTIVITY_DAYS = 56
NOTES_SHOWN = 10  # the tutor's latest notes on the overview (the JSON twin has the same)
RESOLVED_KEEP = 50  # resolved misconceptions listed on the dashboard (all are counted)


def activity(per_day: dict[str, int], now: datetime, days: int = ACTIVITY_DAYS) -> list:
    start = now.date() - timedelta(days=days - 1)
    start -= timedelta(days=start.weekday())  # columns are weeks starting on Monday
    out, d = [], start
    while d <= now.date():
        key = d.isoformat()
        out.append((key, per_day.get(key, 0)))
        d += timedelta(days=1)
    return out


def _blank_run(rid: str, **over) -> dict:
    return {"run_id": rid, "experiment": "?", "question": "", "concepts": [], "params": {},
            "metrics": {}, "tables": {}, "summary": [], "conditions": {}, "figures": [],
            "_figure_src": [], "comparisons": [], "ts": "", "recorded": False} | over


def read_runs(ws: Workspace, state_runs: list[dict]) -> list[dict]:
    """Lab runs, newest first: result.json files merged with the run events of the log."""
    events = {r["run_id"]: r for r in state_runs}
    runs: dict[str, dict] = {}
    for rid, folder in runs_mod.iter_runs(ws):
        f = folder / runs_mod.RESULT
        try:
            r = json.loads(f.read_text(encoding="utf-8"))
            if not isinstance(r, dict):
                raise ValueError("not an object")
        except (OSError, ValueError) as e:
            runs[rid] = _blank_run(rid, error=f"result.json unreadable: {e}")
            continue
        figs = [str(x) for x in r.get("figures") or [] if FIGURE.match(str(x))
                and (f.parent / str(x)).is_file()]
        runs[rid] = {
            "run_id": rid, "experiment": r.get("experiment", "?"),
            "question": r.get("question", ""), "concepts": list(r.get("concepts") or []),
            "params": r.get("params") or {}, "metrics": r.get("metrics") or {},
            "tables": r.get("tables") or {}, "summary": list(r.get("summary") or []),
            "conditions": r.get("conditions") or {}, "comparisons": r.get("comparisons") or [],
            "figures": [f"lab/{rid}/{x}" for x in figs], "_figure_src": [
                str(f.parent / x) for x in figs],
            "ts": (r.get("conditions") or {}).get("started") or "", "recorded": False,
        }
        if (f.parent / "report.json").is_file():  # a concept_vectors quality report
            runs[rid]["report_page"] = f"lab/{rid}/report.html"
            runs[rid]["_report_src"] = str(f.parent / "report.json")
    for rid, ev in events.items():
        r = runs.setdefault(rid, _blank_run(rid, experiment=ev["experiment"],
                                            concepts=ev["concepts"], metrics=ev["metrics"]))
        r["recorded"], r["event"], r["ts"] = True, ev["id"], ev["ts"]
        if ev["comparisons"]:
            r["comparisons"] = ev["comparisons"]  # what the log counted is authoritative
    return sorted(runs.values(), key=lambda r: (r.get("ts") or "", r["run_id"]), reverse=True)


def _table_preview(tables: dict, rows: int = 12) -> list[dict]:
    out = []
    for name, t in tables.items():
        if isinstance(t, list) and t and all(isinstance(r, dict) for r in t):
            cols = list(dict.fromkeys(k for r in t[:rows] for k in r))
            out.append({"name": name, "columns": cols, "total": len(t),
                        "rows": [[r.get(c, "") for c in cols] for r in t[:rows]]})
    return out


def collect(ws: Workspace, now: datetime | None = None, force: bool = False) -> dict:
    """Everything the site shows: the state, and the aggregates of the same log lines
    (incremental unless `force`; "source" says how they were made)."""
    from ..events import now_utc

    now = now or now_utc()
    cur = ws.curriculum
    st = api.state(ws, now)
    params = ws.config.mastery
    agg, source = aggregate.current(ws, st["events"], force)
    cs = st["concepts"]
    preds = st["predictions"]["per_concept"]
    disagree = {d["concept"] for d in st["predictions"]["disagreements"]}
    titles = {cid: c.title for cid, c in cur.concepts.items()}
    module_titles = {m.id: m.title for m in cur.modules}
    module_order = {m.id: m.order for m in cur.modules}
    has_study = {m.id: bool(cur.study_page(m.id)) for m in cur.modules}

    def chip(cid: str) -> dict:
        c = cs[cid]
        return {"id": cid, "title": titles[cid], "mastery": c["mastery"],
                "mastered": c["mastered"], "stale": c["stale"],
                "level": level(c["mastery"], c["observed"], c["mastered"])}

    cards = {}
    for cid, c in cs.items():
        age, recall = c["days_since_seen"], c["recall"]
        cards[cid] = {**c, "title": titles[cid], "module_title": module_titles[c["module"]],
                      # as precise as the pages show them: a page (and its twin) then
                      # changes with the clock only when what it shows does
                      "days_since_seen": round(age) if age is not None else None,
                      "recall": round(recall, 2) if recall is not None else None,
                      "level": level(c["mastery"], c["observed"], c["mastered"]),
                      "spark": [h["mastery"] for h in c["history"]],
                      "gaps": [chip(g) for g in c["prereq_gaps"]],
                      "stale_days": round(age) if c["stale"] and age is not None else None,
                      "prediction": preds.get(cid), "disagrees": cid in disagree,
                      "summary": cur.concepts[cid].summary}
    modules = []
    for m, ms in zip(cur.modules, st["modules"]):
        modules.append({**ms, "summary": m.summary, "has_study": has_study[m.id],
                        "current": m.id == st["current_module"],
                        "concepts": [cards[cid] for cid in m.concepts]})
    exit_items = []
    for e in st["exit_items"].values():
        item = cur.exit_items[e["id"]]
        exit_items.append({**e, "prompt": item.prompt, "goal": item.goal, "measure": item.measure,
                           "requires": [chip(r["concept"]) for r in e["requires"]],
                           "mastered_count": sum(r["mastered"] for r in e["requires"])})
    mis = st["misconceptions"]

    catalog = {(cid, x.id): x for cid, c in cur.concepts.items() for x in c.misconceptions}

    def mis_row(m: dict) -> dict:
        cat = catalog.get((m["concept"], m["catalog"])) if m.get("catalog") else None
        return {**m, "concept_title": titles.get(m["concept"], m["concept"]),
                "correction": cat.correction if cat else ""}

    def note_row(n: dict) -> dict:
        return {**n, "concepts": [{"id": c, "title": titles.get(c, c)} for c in n["concepts"]]}

    runs = read_runs(ws, st["runs"])
    graph_nodes = [{"id": cid, "title": titles[cid], "module_title": cards[cid]["module_title"],
                    "module_order": module_order[cards[cid]["module"]],
                    "prerequisites": list(cur.concepts[cid].prerequisites),
                    "mastery": cards[cid]["mastery"], "level": cards[cid]["level"],
                    "mastered": cards[cid]["mastered"], "stale": cards[cid]["stale"],
                    "gap": bool(cards[cid]["prereq_gaps"]),
                    "current": cards[cid]["module"] == st["current_module"]}
                   for cid in cur.concepts]
    cm = st["current_module"]
    dashboard = {
        "generated_at": now.isoformat(), "course": {"id": cur.id, "title": cur.title},
        "learner": st["learner"], "events": st["events"], "last_event": st["last_event"],
        "overall": st["overall"],
        "current_module": {"id": cm, "title": module_titles[cm]} if cm else None,
        "exit_items": exit_items, "next": [
            {**p, "target_title": titles.get(p["target"], p["target"])} for p in st["next"]],
        "modules": modules,
        "misconceptions": {"open": [mis_row(m) for m in mis["open"]],
                           "resolved": [mis_row(m) for m in sorted(
                               mis["resolved"], key=lambda m: m["resolved_at"],
                               reverse=True)[:RESOLVED_KEEP]],
                           "resolved_count": mis["resolved_count"]},
        "notes": {"latest": [note_row(n) for n in st["notes"]["latest"][:NOTES_SHOWN]],
                  "count": st["notes"]["count"]},
        "predictions": st["predictions"],
        "runs": [_public_run(r) for r in runs],
        "timeline": st["recent"],
        "activity": activity(agg.per_day, now),
        "params": {"bar": params.bar, "min_observations": params.min_observations,
                   "interval": params.interval,
                   "min_days": params.min_days},
    }
    mis_by_concept: dict[str, list[dict]] = {}
    for m in mis["open"] + mis["resolved"]:
        mis_by_concept.setdefault(m["concept"], []).append(m)
    concepts = {}
    for cid, c in cur.concepts.items():
        ev = agg.rows[cid]
        concepts[cid] = {
            "concept": dump(c), "state": cards[cid],
            "prerequisites": [chip(p) for p in c.prerequisites],
            "dependants": [chip(d) for d in cur.dependants(cid)],
            "exit_items": [{"id": e["id"], "title": e["title"], "kind": e["kind"],
                            "ready": e["ready"], "passed": e["passed"]}
                           for e in exit_items if any(r["id"] == cid for r in e["requires"])],
            "misconceptions": [mis_row(m) for m in mis_by_concept.get(cid, ())],
            "prediction": preds.get(cid),
            "notes": [note_row(n) for n in cards[cid]["notes"]],
            "runs": [_public_run(r) for r in runs if cid in r.get("concepts", [])],
            "evidence": list(reversed(ev)),
            "evidence_total": agg.totals[cid],
        }
    ladder = [{"step": i, "id": e["id"], "title": e["title"], "prompt": e["prompt"],
               "goal": e["goal"], "measure": e["measure"], "requires": e["requires"],
               "ready": e["ready"], "passed": e["passed"], "attempts": e["attempts"],
               "mastered_count": e["mastered_count"]}
              for i, e in enumerate((e for e in exit_items if e["kind"] == "build"), 1)]
    return {"dashboard": dashboard, "concepts": concepts, "ladder": ladder,
            "graph": graph_nodes, "runs": runs, "now": now, "warnings": st["warnings"],
            "model": agg.replay.result(), "source": source,
            "modules": [{"id": m.id, "title": m.title, "order": m.order, "summary": m.summary,
                         "has_study": has_study[m.id]} for m in cur.modules]}


def _public_run(r: dict) -> dict:
    """A run as pages and JSON twins show it (no local file paths; tables previewed)."""
    out = {k: v for k, v in r.items() if not k.startswith("_") and k != "tables"}
    out["tables"] = _table_preview(r.get("tables") or {})
    return out


AUC_BUCKETS = (0.6, 0.7, 0.8, 0.9)  # heat classes h0 (< 0.6) .. h4 (>= 0.9) in site.css


def _bucket(x, edges) -> int:
    return sum(x >= e for e in edges) if isinstance(x, (int, float)) else 0


def concept_report(run: dict) -> dict:
    """The quality report of a concept_vectors run, shaped for its page: AUC by concept and
    layer (heat classes), aggregators compared, per-concept detail at the best layer, the
    cosine matrix; {"run", "error"} when report.json is unreadable or malformed."""
    try:
        rep = json.loads(Path(run["_report_src"]).read_text(encoding="utf-8"))
        concepts, layers = list(rep["concepts"]), [int(x) for x in rep["layers"]]
        per, saved = rep["per_concept"], rep["saved_aggregator"]
        best = int(rep["best_layer"]["_all"])
        grid = [{"concept": c, "best_layer": per[c]["best_layer"], "cells": [
            {"layer": l, "auc": per[c]["layers"][str(l)]["auc"][saved],
             "heat": _bucket(per[c]["layers"][str(l)]["auc"][saved], AUC_BUCKETS)}
            for l in layers]} for c in concepts]
        aggs = [{"name": g, "cells": [{"layer": l, "auc": rep["mean_auc"][g][str(l)]}
                                      for l in layers]} for g in rep["aggregators"]]
        if rep.get("control"):  # the saved aggregator on shuffled concept labels
            aggs.append({"name": f"{saved} on shuffled labels (control)", "cells": [
                {"layer": l, "auc": rep["control"][str(l)]} for l in layers]})
        for a in aggs:
            for cell in a["cells"]:
                cell["heat"] = _bucket(cell["auc"], AUC_BUCKETS)
        detail = []
        for c in concepts:
            e = per[c]["layers"][str(best)]
            detail.append({"concept": c, "positives": per[c]["positives"],
                           "negatives": per[c]["negatives"], "pairs": per[c]["pairs"],
                           "auc": e["auc"][saved], "pc1_ratio": e["pc1_ratio"],
                           "consistency": e["consistency"], "nearest": e["nearest"],
                           "ridge_r2": e["ridge_r2"], "ridge_top": e["ridge_top"],
                           "redundant": e["redundant"]})
        cos = rep["cosine"][str(best)]
        matrix = [{"concept": c, "cells": [{"value": v, "heat": _bucket(v, (-0.2, 0.2, 0.4, 0.6)),
                                            "self": i == j} for j, v in enumerate(cos[i])]}
                  for i, c in enumerate(concepts)]
    except (OSError, ValueError, KeyError, TypeError, IndexError, ZeroDivisionError) as e:
        return {"run": _public_run(run), "error": f"report.json of run {run['run_id']} is "
                f"unreadable: {type(e).__name__}: {e}"}
    return {"run": _public_run(run), "concepts": concepts, "layers": layers, "saved": saved,
            "best_layer": best, "grid": grid, "aggregators": aggs, "detail": detail,
            "matrix": matrix, "redundant": rep.get("redundant", []),
            "extraction": rep.get("extraction", {}), "corpus": rep.get("corpus", {}),
            "folds": rep.get("folds"), "raw": rep}


def days_ago(ts: str | None, now: datetime) -> str:
    if not ts:
        return "never"
    d = (now - parse_ts(ts)).total_seconds() / 86400
    if d < 1 / 24:
        return "just now"
    if d < 1:
        return f"{int(d * 24)} h ago"
    return f"{int(d)} d ago" if d < 60 else f"{int(d / 30)} months ago"


def figure_sources(runs: list[dict]) -> list[tuple[Path, str]]:
    """(source file, site-relative destination) of every run figure to copy."""
    return [(Path(src), dest) for r in runs
            for src, dest in zip(r.get("_figure_src", []), r.get("figures", []))]
