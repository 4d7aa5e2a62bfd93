"""The experiments the lab offers, as declarations: importable without torch.

Every experiment module under `experiments/` declares a `SPEC` (name, question, concepts,
typed parameters, predictable quantities) and a `run(ctx, params)`. This catalog lists the
declarations; `llmlab.api` uses it to validate predictions, and `runner` runs them.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import unknown
from .experiment import Spec
from .experiments import (anatomy, attention, concept_readout, concept_steering,
                          concept_vectors, contamination, cost, embeddings, finetune,
                          finetune_sweep, judge_calibration, optimizer_state, preference,
                          rag_answer, residual, retrieval, sampling, tokens)

MODULES: dict[str, ModuleType] = {m.SPEC.name: m for m in (
    tokens, sampling, attention, residual, anatomy, cost,
    concept_vectors, concept_readout, concept_steering,
    embeddings, retrieval, rag_answer, judge_calibration, contamination,
    finetune, finetune_sweep, optimizer_state, preference)}
NAMES = tuple(MODULES)


def specs() -> dict[str, Spec]:
    return {n: m.SPEC for n, m in MODULES.items()}


def spec(name: str) -> Spec:
    if name not in MODULES:
        raise unknown("experiment", name, MODULES, f"Experiments: {', '.join(MODULES)} "
                      "(see {cmd:experiments}).")
    return MODULES[name].SPEC


def declarations() -> list[dict]:
    """Every experiment's declaration as plain data: `llmlab lab list --json`, the MCP
    `list_experiments` tool and the tutor instructions all show this."""
    return [s.to_dict() for s in specs().values()]


def quantities() -> dict[str, list[str]]:
    """Experiment name -> the quantities a learner can predict."""
    return {n: [q.name for q in s.quantities] for n, s in specs().items()}
