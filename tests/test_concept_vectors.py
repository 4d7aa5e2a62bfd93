"""Concept vectors on the real shipped model: extraction on a small corpus, the saved files,
the quality report, readout, steering, and their exact invariants."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from llmlab.errors import UserError  # noqa: E402
from llmlab.lab import corpus as corpus_mod  # noqa: E402
from llmlab.lab import models  # noqa: E402
from llmlab.lab.runner import run_experiment  # noqa: E402
from llmlab.lab import readout as R  # noqa: E402
from llmlab.lab import vectors as V  # noqa: E402
from llmlab.lab.hooks import hook_count, steer  # noqa: E402

pytestmark = pytest.mark.model
MINI = Path(__file__).parent / "fixtures" / "concepts_mini"
PARAMS = {"corpus": str(MINI), "min_positives": 3, "layers": "5,0.5", "folds": 3}


@pytest.fixture(scope="module")
def smol():
    return models.load()


@pytest.fixture(scope="module")
def mini_run(smol, tmp_path_factory):
    """One concept_vectors run on the mini corpus, counting the model's forward calls."""
    calls = []
    handle = smol.model.register_forward_pre_hook(lambda mod, args: calls.append(1))
    try:
        r = run_experiment(None, "concept_vectors", PARAMS, record=False,
                           out=tmp_path_factory.mktemp("cv"), show_progress=False)
    finally:
        handle.remove()
    r["forward_calls"] = len(calls)
    return r


def test_each_unique_text_is_forwarded_once(mini_run):
    c = corpus_mod.load(MINI, min_positives=3)
    unique = len(c.unique_texts())
    assert mini_run["forward_calls"] == unique == mini_run["metrics"]["unique_texts"] == 15
    # every text is a positive of one concept and a negative of the others: 45 uses
    assert mini_run["metrics"]["forwards_saved"] == c.uses() - unique == 30


def test_saved_files_round_trip_with_unit_vectors(mini_run, tmp_path):
    folder = Path(mini_run["dir"])
    assert {"readout.safetensors", "readout.json", "report.json"} <= set(mini_run["files"])
    man = json.loads((folder / "readout.json").read_text())
    assert man["concepts"] == ["anxious", "calm", "curious"] and man["layers"] == [5, 14]
    assert man["hidden_size"] == 576 and man["dtype"] == "float32"
    r = R.load_readout(folder)
    for layer in r.layers:
        v = r.vectors[layer]
        assert v.shape == (3, 576) and v.dtype == torch.float32
        assert torch.allclose(v.norm(dim=1), torch.ones(3), atol=1e-5)
    R.save_readout(r, tmp_path)
    again = R.load_readout(tmp_path)
    assert again.manifest == r.manifest
    for layer in r.layers:
        for a, b in ((again.vectors, r.vectors), (again.center, r.center), (again.scale, r.scale)):
            assert torch.equal(a[layer], b[layer])


def test_a_damaged_readout_is_a_clear_error(mini_run, tmp_path):
    folder = Path(mini_run["dir"])
    with pytest.raises(UserError, match="readout.json is missing"):
        R.load_readout(tmp_path)
    shutil.copy(folder / "readout.json", tmp_path)
    (tmp_path / "readout.safetensors").write_bytes(b"not a tensor file")
    with pytest.raises(UserError, match="is unreadable .*extract it again"):
        R.load_readout(tmp_path)
    man = json.loads((folder / "readout.json").read_text())
    shutil.copy(folder / "readout.safetensors", tmp_path)
    (tmp_path / "readout.json").write_text(json.dumps(man | {"hidden_size": 512}))
    with pytest.raises(UserError, match=r"layer_5.vectors has shape \(3, 576\), but "
                                        r"readout.json says \(3, 512\)"):
        R.load_readout(tmp_path)
    (tmp_path / "readout.json").write_text(json.dumps(man | {"layers": [5, 7]}))
    with pytest.raises(UserError, match="unreadable"):
        R.load_readout(tmp_path)


def test_saved_vector_is_the_difference_of_means_of_the_pairs(mini_run, smol):
    """Recompute one vector from scratch: forward the pair texts, mean-pool, average the
    differences, normalise."""
    c = corpus_mod.load(MINI, min_positives=3)
    tok, model = smol.tokenizer, smol.model
    prefix = V.template_prefix(tok, True)
    pooled = {}
    for t in c.unique_texts():
        ids, start = V.encode(tok, t, prefix)
        with torch.no_grad():
            h = model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[15]
        pooled[t] = h[0, start:].mean(0).double()  # hidden_states[15] = output of layer 14
    pairs = c.pairs("curious", seed=0)
    d = torch.stack([pooled[p.text] - pooled[n.text] for p, n in pairs]).mean(0)
    saved = R.load_readout(mini_run["dir"]).vectors[14][2].double()
    assert torch.nn.functional.cosine_similarity(saved, d / d.norm(), dim=0) > 0.99999


def test_default_pooling_is_the_mean_over_the_texts_tokens_inside_the_chat_template(smol):
    """The defaults' positions, built without llmlab's template code: the tokenizer's own
    chat template (user turn + generation prompt) followed by the text, tokenized as one
    string; the mean of a plain forward's hidden states after the template's tokens equals
    the activation `extract` keeps."""
    tok, model = smol.tokenizer, smol.model
    head = tok.apply_chat_template([{"role": "user", "content": V.USER_TURN}],
                                   add_generation_prompt=True, tokenize=False)
    n_head = len(tok(head).input_ids)
    prefix = V.template_prefix(tok, True)
    texts = corpus_mod.load(MINI, min_positives=3).unique_texts()
    for text in texts:
        ids, start = V.encode(tok, text, prefix)
        assert (ids, start) == (tok(head + text).input_ids, n_head)
        assert tok.decode(ids[start:]) == text
    ids = tok(head + texts[0], return_tensors="pt").input_ids  # (1, seq)
    with torch.no_grad():
        h = model(input_ids=ids, output_hidden_states=True).hidden_states[15]  # layer 14's output
    got = V.extract(model, tok, texts[:1], [14], "mean", prefix).acts[14][0]  # (H,)
    assert torch.allclose(got, h[0, n_head:].mean(0).double(), atol=1e-4)
    assert not torch.allclose(got, h[0, n_head - 1:].mean(0).double(), atol=1e-4)


def test_quality_report_is_consistent(mini_run):
    rep = json.loads((Path(mini_run["dir"]) / "report.json").read_text())
    assert rep["extraction"]["unique_texts"] == 15 and rep["extraction"]["forwards_saved"] == 30
    for layer in ("5", "14"):
        cos = rep["cosine"][layer]
        assert all(abs(cos[i][i] - 1) < 1e-3 and cos[i][j] == cos[j][i]
                   for i in range(3) for j in range(3))
    for c, e in rep["per_concept"].items():
        assert e["positives"] == 4 and e["negatives"] == 11
        for layer, q in e["layers"].items():
            assert set(q["auc"]) == set(V.AGGREGATORS)
            assert all(0 <= a <= 1 for a in q["auc"].values() if a is not None)
            assert 0 < q["pc1_ratio"] <= 1 and -1 <= q["consistency"] <= 1
            assert c not in [n["concept"] for n in q["nearest"]] and len(q["nearest"]) == 2
            assert q["ridge_r2"] <= 1
        assert e["best_auc"] == e["layers"][str(e["best_layer"])]["auc"]["mean"]
    best = int(mini_run["metrics"]["best_layer"])
    rpt = rep["repeated"]["mean_auc"]
    assert rep["best_layer"]["_all"] == best == max((5, 14), key=lambda l: rpt[str(l)]["mean"])
    assert rep["best_layer_one_split"] == max((5, 14), key=lambda l: rep["mean_auc"]["mean"][str(l)])
    for c, e in rep["per_concept"].items():
        assert rep["best_layer"][c] == e["best_layer"]
        assert all(q["redundant"] == (q["ridge_r2"] > 0.9) for q in e["layers"].values())
    for g in V.AGGREGATORS:
        for layer in ("5", "14"):
            assert rep["mean_auc"][g][layer] == pytest.approx(
                sum(rep["per_concept"][c]["layers"][layer]["auc"][g] for c in rep["concepts"]) / 3)
    assert set(rep["control"]) == {"5", "14"} and all(0 <= a <= 1 for a in rep["control"].values())
    assert mini_run["metrics"]["control_auc"] == rep["control"][str(best)]
    aucs = [rep["repeated"]["per_concept"][c][str(best)]["mean"] for c in rep["concepts"]]
    assert mini_run["metrics"]["mean_auc"] == pytest.approx(sum(aucs) / 3, abs=1e-3)
    assert mini_run["metrics"]["min_auc"] == min(aucs)


def test_repeated_cross_validation_intervals_and_lexical_baseline(mini_run):
    rep = json.loads((Path(mini_run["dir"]) / "report.json").read_text())
    m, r = mini_run["metrics"], rep["repeated"]
    assert r["fold_seeds"] == [0, 1, 2, 3, 4] and m["fold_seeds"] == 5
    for layer in ("5", "14"):
        s = r["mean_auc"][layer]
        assert len(s["aucs"]) == 5 and s["low"] <= s["mean"] <= s["high"]
        assert s["mean"] == pytest.approx(sum(s["aucs"]) / 5, abs=1e-4)
        assert s["aucs"][0] == pytest.approx(rep["mean_auc"]["mean"][layer])  # seed 0: one split
        for c in rep["concepts"]:
            e = r["per_concept"][c][layer]
            assert e["aucs"][0] == rep["per_concept"][c]["layers"][layer]["auc"]["mean"]
    best = r["mean_auc"][str(int(m["best_layer"]))]
    assert (m["mean_auc_low"], m["mean_auc_high"]) == (best["low"], best["high"])
    lex = rep["lexical"]
    assert set(lex["per_concept"]) == set(rep["concepts"]) and lex["fold_seeds"] == r["fold_seeds"]
    assert m["lexical_auc"] == lex["mean"]["mean"] and 0 <= m["lexical_auc"] <= 1
    assert m["lexical_auc_low"] <= m["lexical_auc"] <= m["lexical_auc_high"]
    line = next(x for x in mini_run["summary"] if x.startswith("Lexical baseline"))
    assert f"{m['lexical_auc']:.3f}" in line
    one = run_experiment(None, "concept_vectors", {**PARAMS, "fold_seeds": 1, "layers": "5"},
                         record=False, show_progress=False)
    assert one["metrics"]["mean_auc"] == pytest.approx(rep["mean_auc"]["mean"]["5"], abs=1e-4)


def test_zero_multiplier_leaves_logits_unchanged_and_others_add_exactly(smol):
    model, tok = smol.model, smol.tokenizer
    x = tok("The weather today is", return_tensors="pt", add_special_tokens=False).input_ids
    v = torch.nn.functional.normalize(torch.randn(576), dim=0)
    with torch.no_grad():
        plain = model(x).logits
        with steer(model, 10, v, 0.0):
            zero = model(x).logits
        with steer(model, 10, v, 8.0):
            steered = model(x).logits
            after = V.hidden_states(model, x[0].tolist(), [10])[10]
        before = V.hidden_states(model, x[0].tolist(), [10])[10]
    assert torch.equal(zero, plain)
    assert not torch.allclose(steered, plain)
    assert torch.allclose(after - before, (8.0 * v).expand_as(after), atol=1e-4)
    assert hook_count(model) == 0


def test_steering_hooks_are_removed_after_use_and_on_error(smol):
    model = smol.model
    v = torch.zeros(576)
    with steer(model, 3, v, 1.0):
        assert hook_count(model) == 1
    assert hook_count(model) == 0
    with pytest.raises(RuntimeError, match="boom"):
        with steer(model, 3, v, 1.0):
            assert hook_count(model) == 1
            raise RuntimeError("boom")
    assert hook_count(model) == 0
    with pytest.raises(RuntimeError, match="size of tensor"):  # fails inside the forward pass
        with steer(model, 3, torch.zeros(7), 1.0):  # wrong size: fails in the hook
            model(torch.tensor([[1, 2, 3]]))
    assert hook_count(model) == 0


def test_readout_experiment_reads_every_token(mini_run, smol):
    text = "Jo read the message twice, heart pounding, and checked the lock again."
    r = run_experiment(None, "concept_readout", {"vectors": mini_run["dir"], "text": text,
                                                 "concept": "anxious", "layer": "14"},
                       record=False, show_progress=False)
    n_tokens = len(smol.tokenizer(text, add_special_tokens=False).input_ids)
    assert len(r["tables"]["tokens"]) == n_tokens
    scores = {row["concept"]: row["score"] for row in r["tables"]["concepts"]}
    assert list(scores) == sorted(scores, key=lambda c: -scores[c])  # ranked
    assert r["metrics"]["concept_score"] == pytest.approx(scores["anxious"], abs=1e-3)
    assert r["metrics"]["concept_rank"] == list(scores).index("anxious") + 1
    assert r["figures"] == ["readout.png"]
    # the whole-text score is the mean-pooled projection, z-scored by the corpus statistics
    ro = R.load_readout(mini_run["dir"])
    ids, start = V.encode(smol.tokenizer, text, V.template_prefix(smol.tokenizer, True))
    h = V.hidden_states(smol.model, ids, [14])[14][start:].mean(0)
    z = ((h - ro.center[14]) @ ro.vectors[14][0]) / ro.scale[14][0]
    assert r["metrics"]["concept_score"] == pytest.approx(z.item(), abs=1e-4)


def test_steering_sweep_measures_and_multiplier_zero_is_plain_generation(mini_run, smol):
    r = run_experiment(None, "concept_steering", {
        "vectors": mini_run["dir"], "concept": "calm", "multipliers": "0,0.5", "samples": 1,
        "max_new_tokens": 8, "layer": "5", "seed": 3}, record=False, show_progress=False)
    sweep = r["tables"]["sweep"]
    assert [row["multiplier"] for row in sweep] == [0.0, 0.5]
    assert r["metrics"]["score_gain"] == pytest.approx(sweep[1]["score"] - sweep[0]["score"])
    assert r["metrics"]["logprob_drop"] == pytest.approx(sweep[0]["logprob"] - sweep[1]["logprob"])
    tok, model = smol.tokenizer, smol.model
    prompt = tok.apply_chat_template([{"role": "user", "content": "Write two sentences about "
                                       "your afternoon."}], add_generation_prompt=True,
                                     return_tensors="pt", return_dict=True)["input_ids"]
    torch.manual_seed(3000)
    with torch.no_grad():
        out = model.generate(prompt, max_new_tokens=8, do_sample=True, temperature=0.7,
                             top_p=None, top_k=None, pad_token_id=tok.eos_token_id)
    plain = tok.decode(out[0, prompt.shape[1]:], skip_special_tokens=True).strip()
    texts = {s["multiplier"]: s["text"] for s in r["tables"]["samples"]}
    assert texts[0.0] == plain and texts[0.5] != plain
    assert hook_count(model) == 0


def test_steering_multipliers_are_relative_to_the_residual_norm(mini_run, smol, monkeypatch):
    from llmlab.lab import hooks

    seen, real = [], hooks.steer
    monkeypatch.setattr(hooks, "steer", lambda model, layer, vector, scale: (
        seen.append((layer, scale)), real(model, layer, vector, scale))[1])
    r = run_experiment(None, "concept_steering", {
        "vectors": mini_run["dir"], "concept": "calm", "multipliers": "0,0.25", "samples": 1,
        "max_new_tokens": 4, "layer": "5"}, record=False, show_progress=False)
    norm = r["metrics"]["resid_norm"]
    assert norm > 1 and sorted(s for _, s in seen) == [0.0, pytest.approx(0.25 * norm)]
    assert {layer for layer, _ in seen} == {5}
    assert r["tables"]["sweep"][1]["added_norm"] == pytest.approx(0.25 * norm, rel=1e-3)
    assert "relative to the residual norm" in " ".join(r["summary"])
    assert "top_share_at_max" in r["metrics"] and "top_share_max" not in r["metrics"]


def test_bad_input_fails_before_the_model_loads(monkeypatch, tmp_path):
    def no_model(*a, **k):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(models, "load", no_model)
    bad = tmp_path / "c"
    shutil.copytree(MINI, bad)
    (bad / "paired" / "bus_stop" / "baseline.txt").unlink()
    with pytest.raises(UserError, match="no baseline.txt"):
        run_experiment(None, "concept_vectors", {"corpus": str(bad), "min_positives": 3},
                       record=False, out=tmp_path / "out", show_progress=False)
    with pytest.raises(UserError, match="No recorded concept vectors"):
        run_experiment(None, "concept_readout", {}, record=False, show_progress=False)
    with pytest.raises(UserError, match="No readout '"):
        run_experiment(None, "concept_steering", {"vectors": str(tmp_path)}, record=False,
                       show_progress=False)
    assert not (tmp_path / "out").exists()


def test_unknown_concept_and_layer_in_a_readout(mini_run, monkeypatch):
    monkeypatch.setattr(models, "load", lambda *a, **k: pytest.fail("model loaded"))
    with pytest.raises(UserError, match="Did you mean 'calm'"):
        run_experiment(None, "concept_steering", {"vectors": mini_run["dir"], "concept": "clam"},
                       record=False, show_progress=False)
    with pytest.raises(UserError, match="Did you mean 'curious'"):
        run_experiment(None, "concept_readout", {"vectors": mini_run["dir"], "concept": "curios"},
                       record=False, show_progress=False)
    with pytest.raises(UserError, match="has layers 5, 14"):
        run_experiment(None, "concept_steering", {"vectors": mini_run["dir"], "concept": "calm",
                                                  "layer": "7"}, record=False, show_progress=False)


def test_layers_parse_by_index_and_relative_depth():
    assert V.parse_layers(["0.0", "0.5", "1.0", "-1", "3", "3"], 30) == [0, 3, 14, 29]
    for bad in ("30", "1.5", "x", "-31"):
        with pytest.raises(UserError, match="not a layer of this 30-layer model"):
            V.parse_layers([bad], 30)


def test_aggregators_recover_a_planted_direction():
    g = torch.Generator().manual_seed(0)
    u = torch.nn.functional.normalize(torch.randn(64, generator=g, dtype=torch.float64), dim=0)
    neg = torch.randn(200, 64, generator=g, dtype=torch.float64) * 0.3
    pos = neg[torch.randperm(200, generator=g)] + 2.0 * u + 0.1 * torch.randn(200, 64, generator=g, dtype=torch.float64)
    assert tuple(V.FACTORIES) == V.AGGREGATORS  # every declared choice has a factory
    for name in V.AGGREGATORS:
        v = V.FACTORIES[name]()(pos, neg)
        assert v.norm().item() == pytest.approx(1.0)
        assert torch.dot(v, u).item() > (0.9 if name != "logreg_l1" else 0.8), name
    # PCA's sign agrees with the mean difference even when the SVD returns the opposite one
    assert torch.dot(V.FACTORIES["pca"]()(neg, pos), u) < 0


def test_ridge_and_auc():
    x = torch.eye(4, dtype=torch.float64)[:3]  # three orthogonal unit vectors
    y = torch.tensor([0.6, 0.8, 0, 0], dtype=torch.float64)
    fit = V.ridge(y, x, alpha=1e-9)
    assert fit["r2"] == pytest.approx(1.0) and [j for j, _ in fit["top"][:2]] == [1, 0]
    assert V.ridge(torch.tensor([0, 0, 0, 1.0], dtype=torch.float64), x)["r2"] == pytest.approx(0)
    assert V._auc([3, 4], [1, 2]) == 1.0 and V._auc([1], [1]) == 0.5 and V._auc([], [1]) is None


def test_spread_of_differences():
    same = torch.tensor([[1.0, 2.0, 0.0]] * 4, dtype=torch.float64)
    assert V._spread(same) == {"pc1_ratio": 1.0, "consistency": 1.0}
    opposite = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.0, 0], [0, -1.0, 0]], dtype=torch.float64)
    s = V._spread(opposite)
    assert s["pc1_ratio"] == 0.5 and s["consistency"] == pytest.approx(-1 / 3, abs=1e-4)
