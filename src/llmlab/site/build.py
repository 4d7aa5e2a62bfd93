"""`llmlab site build`: render the whole site from derived state (never hand-edited).

Reads the state and the log once, groups evidence by concept in one pass, renders with
Jinja2 (autoescape on: every text from a log, learner or tutor is escaped), writes every
file atomically. Works opened as a file: no network, no inline script.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from importlib import resources
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markdown_it import MarkdownIt

from .. import api
from .. import log as log_mod
from ..events import now_utc
from ..snapshot import atomic_write
from ..workspace import Workspace
from . import svg

_env = Environment(loader=PackageLoader("llmlab", "templates/site"),
                   autoescape=select_autoescape(["html", "j2"]), trim_blocks=True,
                   lstrip_blocks=True)
_env.globals["sparkline"] = svg.sparkline
_env.globals["colour"] = svg.colour
# Curriculum markdown is authored course content (trusted); it may use <details> blocks.
_md = MarkdownIt("commonmark", {"html": True}).enable("table")


def _runs(ws: Workspace, site: Path) -> list[dict]:
    """Lab runs from result.json files, newest first; figures copied into the site."""
    out = []
    if not ws.runs_dir.is_dir():
        return out
    for f in sorted(ws.runs_dir.glob("*/result.json"), reverse=True):
        try:
            r = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        dest = site / "lab" / f.parent.name
        figs = []
        for name in r.get("figures", []):
            src = f.parent / name
            if src.is_file() and "/" not in name:
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest / name)
                figs.append(f"lab/{f.parent.name}/{name}")
        r["figure_paths"] = figs
        out.append(r)
    return out


def _write(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


def _dump(data) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def build(ws: Workspace, now: datetime | None = None) -> dict:
    """Render index, concept, study and ladder pages plus their JSON twins into site/."""
    now = now or now_utc()
    site = ws.site_dir
    site.mkdir(parents=True, exist_ok=True)
    cur = ws.curriculum
    state = api.state(ws, now)
    events = log_mod.read_events(ws.log_path)
    retracted = {e["data"]["target"]: e["id"] for e in events if e["type"] == "retraction"}
    by_concept: dict[str, list] = {cid: [] for cid in cur.concepts}
    for e in events:
        d = e["data"]
        for cid in {d.get("concept"), *d.get("concepts", ())}:
            if cid in by_concept:
                by_concept[cid].append({**e, "retracted": retracted.get(e["id"])})
    runs = _runs(ws, site)
    static = Path(str(resources.files("llmlab") / "static"))
    for name in ("site.css", "live.js"):
        atomic_write(site / name, (static / name).read_bytes())
    transcripts = (site / "transcripts" / "index.html").is_file()
    common = {"state": state, "cur": cur, "now": now, "learner": state["learner"],
              "transcripts": transcripts}
    written = []

    graph = svg.prereq_graph(cur, state["concepts"])
    _write(site / "index.html", _env.get_template("index.html").render(
        **common, root="", graph=graph, runs=runs[:20]))
    _write(site / "index.json", _dump({**state, "runs_detail": runs}))
    written += ["index.html", "index.json"]

    for cid, c in cur.concepts.items():
        doc = {
            "concept": c.model_dump(),
            "state": state["concepts"][cid],
            "prerequisites": [state["concepts"][p] for p in c.prerequisites],
            "dependants": [state["concepts"][d] for d in cur.dependants(cid)],
            "exit_items": [e for e in state["exit_items"].values()
                           if any(r["concept"] == cid for r in e["requires"])],
            "misconceptions": [m for m in state["misconceptions"]["open"]
                               + state["misconceptions"]["resolved"] if m["concept"] == cid],
            "evidence": list(reversed(by_concept[cid])),
            "runs": [r for r in runs if cid in r.get("concepts", [])],
        }
        _write(site / "concepts" / f"{cid}.html", _env.get_template("concept.html").render(
            **common, root="../", doc=doc, c=c))
        _write(site / "concepts" / f"{cid}.json", _dump(doc))
        written += [f"concepts/{cid}.html", f"concepts/{cid}.json"]

    for m in cur.modules:
        body = _md.render(cur.study_page(m.id) or f"# {m.title}\n\n{m.summary}\n")
        _write(site / "study" / f"{m.id}.html", _env.get_template("study.html").render(
            **common, root="../", module=m, body=body))
        written.append(f"study/{m.id}.html")

    ladder = [e for e in cur.exit_items.values() if e.kind == "build"]
    _write(site / "ladder.html", _env.get_template("ladder.html").render(
        **common, root="", ladder=ladder))
    written.append("ladder.html")
    return {"site": str(site), "files": len(written), "events": state["events"],
            "index": str(site / "index.html")}
