"""Every experiment gives the same numbers for the same seed and thread count (tiny
parameters; timings, which no seed fixes, are left out by name)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from llmlab.lab import models  # noqa: E402
from llmlab.lab.catalog import NAMES  # noqa: E402
from llmlab.lab.runner import run_experiment  # noqa: E402

pytestmark = pytest.mark.model
MINI = Path(__file__).parent / "fixtures" / "concepts_mini"
TINY_FILES = Path(__file__).parent / "fixtures" / "lab_tiny"  # judge items, passages, SFT pairs
# measured durations and machine load: what a seed cannot fix
TIMINGS = {"growth_exponent", "ms_per_token_cache", "ms_per_token_no_cache", "cache_speedup",
           "forward_ms_longest", "load_avg_before", "load_avg_after", "machine_busy",
           "forward_s", "seconds", "seconds_per_step", "tokens_per_second"}
TINY = {
    "tokens": {"trials": 1},
    "sampling": {"draws": 200, "greedy_runs": 2, "greedy_tokens": 2},
    "attention": {"repeat_len": 12},
    "residual": {"prompt": "The capital of Italy is"},
    "anatomy": {"measure_tokens": 8},
    "cost": {"lengths": "8,16", "repeats": 1, "gen_tokens": 2, "gen_prompt": 8},
    "concept_vectors": {"corpus": str(MINI), "min_positives": 3, "layers": "5", "folds": 3,
                        "fold_seeds": 2},
    "concept_readout": {"concept": "calm"},
    "concept_steering": {"concept": "calm", "multipliers": "0,0.5", "samples": 1,
                         "max_new_tokens": 4},
    "embeddings": {},
    "retrieval": {"chunking": "headings", "retrievers": "dense,bm25,hybrid"},
    "rag_answer": {"questions": 1, "unanswerable": 1, "hyde_queries": 2, "max_new_tokens": 4},
    "judge_calibration": {"items": str(TINY_FILES / "judge_items.jsonl")},
    "contamination": {"passages": str(TINY_FILES / "passages.jsonl"), "completion_tokens": 2},
    "finetune": {"steps": 2, "batch": 2, "eval_every": 2, "gen_items": 1, "max_new": 2,
                 "heldout": str(TINY_FILES / "sft_heldout.jsonl"), "probe_tokens": 4},
    "finetune_sweep": {"steps": 1, "batch": 1, "ranks": "2,4", "lrs": "0.001",
                       "scaling": False, "eval_items": 2},
    "optimizer_state": {"steps": 2, "batch": 1},
    "preference": {"steps": 1, "batch": 1, "eval_pairs": 2, "gen_items": 1, "max_new": 2},
}


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    models.load()
    r = run_experiment(None, "concept_vectors", TINY["concept_vectors"], record=False,
                       out=tmp_path_factory.mktemp("cv"), show_progress=False)
    return r["dir"]


def test_every_experiment_is_covered():
    assert set(TINY) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_and_threads_give_the_same_numbers(name, vectors):
    params = {**TINY[name], "seed": 1, "threads": 1}
    if name in ("concept_readout", "concept_steering"):
        params["vectors"] = vectors
    a, b = (run_experiment(None, name, params, record=False, show_progress=False)
            for _ in range(2))
    assert a["conditions"]["threads"] == b["conditions"]["threads"] == 1
    assert same(a["metrics"], b["metrics"]) and a["metrics"]
    if name != "cost":  # cost's tables are timings
        assert same(a["tables"], b["tables"])


def untimed(x):
    """`x` without its timing fields, at any depth."""
    if isinstance(x, dict):
        return {k: untimed(v) for k, v in x.items() if k not in TIMINGS}
    if isinstance(x, list):
        return [untimed(v) for v in x]
    return x


def same(a, b) -> bool:
    """Equal apart from timings; NaN equals NaN (JSON writes both as NaN)."""
    dump = lambda x: json.dumps(untimed(x), sort_keys=True, default=str)  # noqa: E731
    return dump(a) == dump(b)
