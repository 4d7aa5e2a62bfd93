"""Predict, run, compare, as a learner does it: the CLI in-process (conftest
`invoke`, through the real root command), the files it wrote."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from llmlab import api  # noqa: E402
from llmlab.lab import models  # noqa: E402

pytestmark = pytest.mark.model


def test_predict_run_compare_through_the_cli(ws, invoke):
    r = invoke("predict", "sampling", "top1_prob", "0.3", "--concept", "softmax",
               "--tolerance", "0.5")
    assert r.returncode == 0, r.stderr
    bad = invoke("predict", "sampling", "top1", "0.3")
    assert bad.returncode == 1 and "top1_prob" in bad.stderr
    r = invoke("lab", "run", "sampling", "-p", "draws=500", "-p", "greedy_runs=2", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    run_dir = ws.runs_dir / res["run_id"]
    saved = json.loads((run_dir / "result.json").read_text())
    assert set(saved) >= {"run_id", "experiment", "question", "concepts", "params", "metrics",
                          "tables", "figures", "conditions", "comparisons", "summary", "event"}
    assert saved["params"]["draws"] == 500 and saved["params"]["temperatures"] == [0.5, 1.0, 2.0]
    assert saved["metrics"]["top1_prob"] == pytest.approx(res["metrics"]["top1_prob"])
    assert saved["conditions"]["model_sha256"] == models.REGISTRY["smollm2-135m-instruct"].sha256
    assert {"torch", "transformers"} <= set(saved["conditions"]["packages"])
    for f in saved["figures"]:
        assert (run_dir / f).read_bytes()[:4] == b"\x89PNG"
    comp = saved["comparisons"][0]
    assert comp["quantity"] == "top1_prob" and comp["predicted"] == 0.3
    assert comp["measured"] == pytest.approx(saved["metrics"]["top1_prob"])
    assert comp["within"] == (abs(comp["measured"] - 0.3) / comp["measured"] <= 0.5)
    events = [json.loads(x) for x in ws.log_path.read_text().splitlines()]
    assert events[-1]["type"] == "experiment_run" and events[-1]["actor"] == "lab"
    assert events[-1]["data"]["run_id"] == res["run_id"] == saved["run_id"]
    assert events[-1]["id"] == saved["event"]
    assert events[-1]["data"]["comparisons"][0]["prediction"] == comp["prediction"]
    st = api.state(ws)
    assert st["predictions"]["compared"] == 1 and st["predictions"]["pending"] == []
    shown = invoke("lab", "show", res["run_id"])
    assert shown.returncode == 0 and "top1_prob" in shown.stdout and "0.3" in shown.stdout
    shown = invoke("lab", "show", res["run_id"], "--json")
    assert json.loads(shown.stdout)["run_id"] == res["run_id"]
    missing = invoke("lab", "show", "nope")
    assert missing.returncode == 1 and res["run_id"] in missing.stderr  # lists the real runs


def test_a_run_outside_a_workspace_is_written_but_not_recorded(tmp_path, invoke):
    out = tmp_path / "runs"
    r = invoke("lab", "run", "residual", "--out", str(out), "-p", "prompt=The capital of Italy is")
    assert r.returncode == 0, r.stderr
    assert "Not recorded" in r.stdout and "Rome" in r.stdout
    (run_dir,) = out.iterdir()
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["event"] is None and saved["comparisons"] == []
    assert saved["params"]["prompt"] == "The capital of Italy is"
    shown = invoke("lab", "show", str(run_dir), "--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["run_id"] == run_dir.name


def test_a_prompt_longer_than_the_context_exits_1(ws, invoke):
    r = invoke("lab", "run", "residual", "-p", "prompt=" + "word " * 8300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "longer than the model's context window of 8192 tokens" in r.stderr
    assert not any(ws.runs_dir.glob("*/result.json"))  # nothing written, nothing recorded
    assert "experiment_run" not in ws.log_path.read_text()


def test_the_lab_never_asks_a_model_hub():
    """Loading a model switches the hub client offline, whatever was imported before."""
    import os

    import huggingface_hub.constants

    models.load()
    assert os.environ["HF_HUB_OFFLINE"] == "1" and huggingface_hub.constants.HF_HUB_OFFLINE
