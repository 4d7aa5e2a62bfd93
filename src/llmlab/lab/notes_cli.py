"""`llmlab notes scan`: flag claims in your notes that sit close to known misconceptions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console

from ..shell import group
from rich.table import Table

app = group(help="Your own notes, read with the lab's retrieval machinery.")
console = Console()


@app.command("scan")
def scan_cmd(
    file: Path = typer.Argument(..., help="A markdown notes file (relative paths are also "
                                "looked up in the workspace's notes/)."),
    top: int = typer.Option(10, "--top", min=1, help="How many candidates to show."),
    log: bool = typer.Option(False, "--log", help="Ask about each candidate and open the "
                             "misconceptions you confirm (actor: learner)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
) -> None:
    """Split the notes into claims, embed them (MiniLM) and rank each against the course's
    catalogued misconceptions, with the concept it is about and the catalog's correction.
    It flags candidates; it does not decide truth: nothing is logged unless you confirm it."""
    from ..errors import UserError
    from ..workspace import Workspace
    from .rag.notes import scan_file

    try:
        ws = Workspace.find()
    except UserError:
        if log:
            raise
        ws = None
    res = scan_file(ws, str(file), top=top)
    if as_json and not log:
        res = {k: v for k, v in res.items() if k != "all"}
        sys.stdout.write(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
        return
    t = Table(title=f"{len(res['candidates'])} of {res['claims']} claims, closest to a known "
              "misconception first")
    for c in ("score", "line", "claim", "concept: misconception", "correction"):
        t.add_column(c)
    for r in res["candidates"]:
        t.add_row(f"{r['score']:.2f}", str(r["line"]), r["claim"],
                  f"{r['concept']}: {r['misconception']}", r["correction"])
    console.print(t)
    console.print("Candidates only: read each claim against the correction before acting.")
    if not log:
        return
    from .. import api

    opened = []
    for r in res["candidates"]:
        if typer.confirm(f"Line {r['line']}: \"{r['claim']}\" is the misconception "
                         f"{r['concept']}/{r['misconception']}?", default=False):
            ev = api.open_misconception(ws, r["concept"], catalog=r["misconception"],
                                        quote=r["claim"], actor="learner")
            opened.append(ev.id)
    console.print(f"Opened {len(opened)} misconception(s){': ' + ', '.join(opened) if opened else ''}.")
