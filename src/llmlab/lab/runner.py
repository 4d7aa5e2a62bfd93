"""Running an experiment: resolve params, load the model, measure, write, record.

A run writes `<run dir>/result.json` (schema stable; the dashboard and the MCP server
read it) and its PNG figures next to it. The run dir is `lab/runs/<run-id>/` in a
workspace, else `--out DIR/<run-id>/` or a temporary folder:

    run_id       "20261123-004512-sampling-1a2b" (UTC time, experiment, random suffix)
    experiment   the experiment's name;  question: what it answers
    concepts     course concept ids it exercises
    params       every parameter, resolved (defaults filled in): the full config
    metrics      {name: float}; includes every predictable quantity of the experiment
    tables       {name: [row dicts]}: the detailed measurements
    figures      [file names of PNGs in the run dir]
    files        [other files the experiment wrote there, e.g. readout.safetensors]
    conditions   {model, model_sha256, model_source, device, dtype, seed, duration_s,
                  model_load_s, started, threads, cpu_count, load_avg: [1-min load at start,
                  at end], machine, packages: {name: version}}
    comparisons  [{prediction, quantity, predicted, measured, abs_error, rel_error,
                  tolerance, within, concept}]: the learner's pending predictions vs metrics
    event        id of the `experiment_run` event, or null when not recorded
    summary      [human-readable lines]

Inside a workspace the run is recorded through `api.record_experiment_run` (the one write
path), which compares pending predictions and appends the `experiment_run` event.
"""
from __future__ import annotations

import os
import platform
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .. import api
from ..errors import UserError
from ..workspace import Workspace
from . import catalog, runs
from .experiment import Spec

PACKAGES = ("llmlab", "torch", "transformers", "gguf", "numpy", "matplotlib", "peft")


@dataclass
class Context:
    """What an experiment's `run` gets: the loaded model (or None), the seed, progress."""

    spec: Spec
    model: Any
    seed: int
    console: Console
    progress: Progress | None = None
    notes: list[str] = field(default_factory=list)
    ws: Workspace | None = None  # the workspace the run belongs to, if any
    out_dir: Path | None = None  # the run folder: an experiment may write files into it
    conditions: dict = field(default_factory=dict)  # extra conditions (e.g. an embedding model)

    def track(self, items, description: str):
        items = list(items)
        if self.progress is None:
            yield from items
            return
        task = self.progress.add_task(description, total=len(items))
        for it in items:
            yield it
            self.progress.advance(task)
        self.progress.remove_task(task)

    def check_length(self, n_tokens: int) -> None:
        """Refuse a prompt longer than the model's context window."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and n_tokens > limit:
            raise UserError(f"The prompt is {n_tokens} tokens, longer than the model's context "
                            f"window of {limit} tokens. Shorten it or lower the length parameter.")

    def encode(self, text: str):
        """Tokenize a prompt (no special tokens) onto the model's device, checking its length."""
        tok, model = self.model.tokenizer, self.model.model
        enc = tok(text, return_tensors="pt", add_special_tokens=False).to(model.device)
        n = enc.input_ids.shape[1]  # (1, seq)
        if n == 0:
            raise UserError("The prompt is empty (0 tokens). Give some text, e.g. "
                            "{param:prompt=The capital of France is}.")
        self.check_length(n)
        return enc


@contextmanager
def _nothing():
    yield


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def execute(spec: Spec, run_fn, params: dict, out_dir: Path, console: Console,
            show_progress: bool = True, ws: Workspace | None = None) -> dict:
    """Run one experiment into `out_dir` and return the result document (not recorded)."""
    import torch

    from . import models

    seed = int(params.get("seed", 0))
    torch.manual_seed(seed)
    threads_before = torch.get_num_threads()
    # An explicit thread count for every run (the common `threads` parameter; 0: the cores
    # not busy now): oversubscribed torch threads on a busy machine stall each other 10-20x,
    # and the thread count can change the last bits of a float reduction.
    from .experiments.cost import free_threads

    torch.set_num_threads(int(params.get("threads") or 0) or free_threads())
    load_start = os.getloadavg()[0]
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    needs_model = spec.model and not params.get("config")  # anatomy's config-only mode
    loaded = None
    if needs_model:
        with console.status(f"Loading {params.get('model', models.DEFAULT)}...",
                            spinner="dots") if show_progress else _nothing():
            loaded = models.load(params.get("model", models.DEFAULT))
    load_s = time.perf_counter() - t0
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, transient=True,
                        disable=not show_progress)
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(spec=spec, model=loaded, seed=seed, console=console, progress=progress,
                  ws=ws, out_dir=out_dir)
    try:
        with progress:
            outcome = run_fn(ctx, params)
    except BaseException:
        import shutil

        shutil.rmtree(out_dir, ignore_errors=True)  # a failed run leaves no half-written folder
        raise
    finally:
        threads = torch.get_num_threads()
        torch.set_num_threads(threads_before)
    duration = time.perf_counter() - t0
    missing = [q.name for q in spec.quantities if q.name not in outcome.metrics]
    if missing:  # a programming error: every predictable quantity must be measured
        raise RuntimeError(f"experiment {spec.name} did not report {missing}")
    figures = []
    for fname, fig in outcome.figures.items():
        path = out_dir / f"{fname}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        figures.append(path.name)
    conditions = {
        "model": loaded.name if loaded else None,
        "model_sha256": loaded.sha256 if loaded else None,
        "model_source": loaded.source if loaded else None,
        "device": str(next(loaded.model.parameters()).device) if loaded else "cpu",
        "dtype": str(next(loaded.model.parameters()).dtype).replace("torch.", "") if loaded else None,
        "seed": seed, "duration_s": round(duration, 3), "model_load_s": round(load_s, 3),
        "started": started.isoformat(),
        "threads": threads, "cpu_count": os.cpu_count(),
        "load_avg": [round(load_start, 2), round(os.getloadavg()[0], 2)],  # 1-min, start/end
        "machine": platform.machine(),
        "packages": _versions(),
        **ctx.conditions,
    }
    return {
        "run_id": out_dir.name, "experiment": spec.name, "question": spec.question,
        "concepts": list(spec.concepts), "params": params,
        "metrics": {k: float(v) for k, v in outcome.metrics.items()},
        "tables": outcome.tables, "figures": figures, "conditions": conditions,
        "comparisons": [], "summary": outcome.summary + ctx.notes,
        "files": sorted(p.name for p in out_dir.iterdir()
                        if p.is_file() and p.name not in figures and p.name != "result.json"),
    }


def _conditions_text(c: dict | None) -> str:
    if not c:
        return "the defaults"
    return ", ".join(f"{k}={v}" for k, v in c.items())


def require_torch() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise UserError("The lab needs the machine-learning extra. Install it with "
                        "`pip install -e '.[lab]'` (or `make setup`).") from None


def check(name: str, params: dict | None, ws: Workspace | None = None) -> tuple[Spec, dict]:
    """The experiment's spec and resolved parameters, with every check that needs no model
    (names, types, ranges, an unknown model, a corpus or readout folder): bad input fails
    here, in milliseconds, before anything is loaded."""
    s = catalog.spec(name)
    resolved = s.resolve(params)
    if s.model and "model" in resolved and not resolved.get("config"):
        from . import models

        models.resolve(resolved["model"])  # unknown model: fail now, listing the valid ones
    if s.check:
        s.check(resolved, ws)
    return s, resolved


def run_experiment(ws: Workspace | None, name: str, params: dict | None = None,
                   record: bool = True, out: Path | None = None,
                   console: Console | None = None, show_progress: bool = True) -> dict:
    """Run experiment `name`: measure, write result.json and figures, and (in a workspace,
    unless `record=False` or `out` is given) record the run through the one write path,
    comparing the learner's pending predictions. Returns the result document."""
    spec, params = check(name, params, ws)
    from . import models

    models.offline()
    require_torch()
    console = console or Console(stderr=True)
    run_id = runs.new_id(spec.name)
    out_dir = runs.folder(ws, out, run_id)
    result = execute(spec, catalog.MODULES[name].run, params, out_dir, console, show_progress, ws)
    if ws is not None and record and out is None:  # a run outside lab/runs is never recorded
        ev, comparisons = api.record_experiment_run(
            ws, experiment=spec.name, run_id=run_id, params=params, metrics=result["metrics"],
            conditions=result["conditions"], concepts=list(spec.concepts))
        result["comparisons"] = comparisons
        result["event"] = ev.id
        left = api.scorable(ws, spec.name, params, result["metrics"])[1]
        if left:
            result["summary"].append(
                f"{len(left)} prediction(s) for {spec.name} stay pending: made for other "
                "conditions than this run's (" + "; ".join(
                    f"{p['quantity']} for {_conditions_text(p.get('conditions'))}"
                    for p in left[:3]) + ").")
    else:
        result["event"] = None
        why = ("no workspace found (`llmlab init DIR` makes one; LLMLAB_HOME points to it)"
               if ws is None else "written outside the workspace" if out is not None
               else "recording was turned off")
        result["summary"].append(f"Not recorded: {why}; no prediction was compared.")
    runs.write_result(out_dir, result)
    result["dir"] = str(out_dir)
    return result
