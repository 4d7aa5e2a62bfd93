"""Predictions are scored only by a run under the conditions they were made for, and count
against the concept the quantity measures (no model needed: the api and the declarations)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab import api
from llmlab.errors import UserError
from llmlab.lab.catalog import specs

LLAMA = Path(__file__).parent / "fixtures" / "configs" / "llama-3.1-8b.json"
ANATOMY = {"q_per_kv": 4.0, "params_total": 8.0e9, "params_embedding": 5.0e8,
           "kv_bytes_per_token_fp16": 131072.0}


def _run(ws, run_id: str, params: dict, metrics: dict, experiment: str = "anatomy"):
    return api.record_experiment_run(ws, experiment, run_id, params, metrics, {}, [])[1]


def test_every_quantity_declares_the_concept_it_measures():
    for s in specs().values():
        for q in s.quantities:
            assert q.concept in s.concepts, (s.name, q.name, q.concept)
            for name in q.depends_on:
                assert name in {p.name for p in s.params}, (s.name, q.name, name)


def test_a_smollm2_prediction_stays_pending_after_a_config_only_llama_run(default_ws):
    ws = default_ws
    pred = api.predict(ws, "anatomy", "q_per_kv", 3)
    assert pred.data["conditions"] == {"model": "smollm2-135m-instruct"}
    comps = _run(ws, "run-llama", {"config": str(LLAMA)}, ANATOMY)
    assert comps == []  # Llama's ratio (4) never scores the SmolLM2 prediction
    st = api.state(ws)
    assert [p["id"] for p in st["predictions"]["pending"]] == [pred.id]
    comps = _run(ws, "run-smol", {}, {**ANATOMY, "q_per_kv": 3.0})
    assert [c["prediction"] for c in comps] == [pred.id] and comps[0]["within"]
    assert api.state(ws)["predictions"]["pending"] == []


def test_a_prediction_for_a_config_is_scored_only_by_that_config(default_ws, tmp_path):
    ws = default_ws
    pred = api.predict(ws, "anatomy", "q_per_kv", 4, params={"config": str(LLAMA)})
    assert set(pred.data["conditions"]) == {"config"}
    assert _run(ws, "run-smol", {}, {**ANATOMY, "q_per_kv": 3.0}) == []
    other = tmp_path / "other.json"
    cfg = json.loads(LLAMA.read_text())
    other.write_text(json.dumps({**cfg, "num_key_value_heads": 4}))
    assert _run(ws, "run-other", {"config": str(other)}, {**ANATOMY, "q_per_kv": 8.0}) == []
    copy = tmp_path / "copy.json"  # the same config under another path still matches
    copy.write_bytes(LLAMA.read_bytes())
    comps = _run(ws, "run-llama", {"config": str(copy)}, ANATOMY)
    assert [c["prediction"] for c in comps] == [pred.id]


def test_a_prediction_waits_for_the_parameters_its_quantity_depends_on(default_ws):
    ws = default_ws
    pred = api.predict(ws, "sampling", "top1_prob", 0.5)
    assert pred.data["conditions"]["prompt"] == "The capital of Australia is"
    assert _run(ws, "r1", {"prompt": "Hello"}, {"top1_prob": 0.5}, "sampling") == []
    assert _run(ws, "r2", {"draws": 10}, {"top1_prob": 0.5}, "sampling")[0]["prediction"] == pred.id


def test_a_prediction_without_concept_counts_against_the_quantitys_concept_only(default_ws):
    ws = default_ws
    pred = api.predict(ws, "anatomy", "q_per_kv", 3)
    assert pred.data["concept"] == "grouped_query_attention"
    comps = api.record_experiment_run(ws, "anatomy", "run-1", {}, {**ANATOMY, "q_per_kv": 3.0},
                                      {}, ["embeddings", "kv_cache", "grouped_query_attention"])[1]
    assert comps[0]["concept"] == "grouped_query_attention"
    per = api.state(ws)["predictions"]["per_concept"]
    assert set(per) == {"grouped_query_attention"} and per["grouped_query_attention"]["within"] == 1


def test_bad_prediction_conditions_are_user_errors_and_write_nothing(default_ws):
    before = default_ws.log_path.read_bytes()
    with pytest.raises(UserError, match="No config file"):
        api.predict(default_ws, "anatomy", "q_per_kv", 3, params={"config": "/nope.json"})
    with pytest.raises(UserError, match="Unknown parameter"):
        api.predict(default_ws, "anatomy", "q_per_kv", 3, params={"confg": "x"})
    assert default_ws.log_path.read_bytes() == before


def test_predict_cli_takes_the_conditions(default_ws, cli):
    r = cli("predict", "anatomy", "q_per_kv", "4", "-p", f"config={LLAMA}", "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(default_ws.log_path.read_text().splitlines()[-1])
    assert set(ev["data"]["conditions"]) == {"config"}
    assert ev["data"]["concept"] == "grouped_query_attention"
