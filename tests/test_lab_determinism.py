"""Every experiment gives the same numbers for the same seed and thread count (tiny
parameters; timings, which no seed fixes, are left out by name)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from llmlab.lab import models  # noqa: E402
from llmlab.lab.catalog import NAMES  # noqa: E402
from llmlab.lab.runner import run_experiment  # noqa: E402

pytestmark = pytest.mark.model
MINI = Path(__file__).parent / "fixtures" / "concepts_mini"
# measured durations and machine load: what a seed cannot fix
TIMINGS = {"growth_exponent", "ms_per_token_cache", "ms_per_token_no_cache", "cache_speedup",
           "forward_ms_longest", "load_avg_before", "load_avg_after", "machine_busy",
           "forward_s"}
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
    keep = lambda m: {k: v for k, v in m.items() if k not in TIMINGS}  # noqa: E731
    assert keep(a["metrics"]) == keep(b["metrics"]) and keep(a["metrics"])
    if name != "cost":  # cost's tables are timings
        assert a["tables"] == b["tables"]
