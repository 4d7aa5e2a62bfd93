"""The lab: experiments on a real language model that make each mechanism visible.

Declarations (names, questions, parameters, predictable quantities) import without
torch; running an experiment needs the `lab` extra (`pip install -e '.[lab]'`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from rich.console import Console

from ..errors import UserError, unknown
from ..workspace import Workspace
from .experiment import Spec

NAMES = ("tokens", "sampling", "attention", "residual", "anatomy", "cost",
         "finetune", "finetune_sweep", "optimizer_state", "preference",
         "concept_vectors", "concept_readout", "concept_steering")


def _module(name: str):
    return importlib.import_module(f"{__name__}.experiments.{name}")


def specs() -> dict[str, Spec]:
    return {n: _module(n).SPEC for n in NAMES}


def declarations() -> list[dict]:
    """Every experiment's declaration as plain data (`llmlab lab list --json`, MCP)."""
    return [s.to_dict() for s in specs().values()]


def spec(name: str) -> Spec:
    all_ = specs()
    if name not in all_:
        raise unknown("experiment", name, all_, f"Experiments: {', '.join(all_)} "
                      "(see `llmlab lab list`).")
    return all_[name]


def catalog() -> dict[str, list[str]]:
    """Experiment name -> the quantities a learner can predict (used to validate predictions)."""
    return {n: [q.name for q in s.quantities] for n, s in specs().items()}


def require_torch() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        raise UserError("The lab needs the machine-learning extra. Install it with "
                        "`pip install -e '.[lab]'` (or `make setup`).") from None


def run_experiment(ws: Workspace | None, name: str, params: dict | None = None,
                   record: bool = True, out: Path | None = None,
                   console: Console | None = None, show_progress: bool = True) -> dict:
    """Run experiment `name`: measure, write result.json and figures, record the event."""
    s = spec(name)
    resolved = s.resolve(params)  # fail on bad parameters before loading anything
    if s.model and "model" in resolved and not resolved.get("config"):
        from . import models

        models.resolve(resolved["model"])  # unknown model: fail now, listing the valid ones
    if s.check:
        s.check(resolved, ws)  # e.g. a corpus or readout folder: fail before loading the model
    require_torch()
    from . import runner

    return runner.run(s, _module(name).run, ws, params, record, out,
                      console or Console(stderr=True), show_progress)
