"""Each experiment, run on the real shipped model (SmolLM2-135M-Instruct), with invariants.

Small parameters keep this quick; the model loads once per process (models.load is
memoised) from the dequantized cache.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")

from llmlab.errors import UserError  # noqa: E402
from llmlab.lab import models  # noqa: E402
from llmlab.lab.runner import run_experiment  # noqa: E402
from llmlab.lab.hooks import hook_count  # noqa: E402

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def smol():
    return models.load()


def run(name, **params):
    return run_experiment(None, name, params, record=False, show_progress=False)


def test_tokens_pieces_join_back_and_costs(smol):
    from llmlab.lab.experiments.tokens import SAMPLES, split

    for text in [*SAMPLES.values(), "Hello wörld, 今日は 🍓 strawberry", " ", "\n\n\tx"]:
        s = split(smol.tokenizer, text)
        assert b"".join(s["bytes"]) == text.encode("utf-8")  # pieces join back to the text
        assert smol.tokenizer.decode(s["ids"]) == text
    r = run("tokens", trials=3, text="unbelievably tokenized")
    m = r["metrics"]
    langs = {row["language"]: row for row in r["tables"]["languages"]}
    assert len(langs) >= 6 and "Python" in langs  # >= 5 natural languages and source code
    assert m["tokens_per_word_english"] == langs["English"]["tokens"] / 17
    assert m["hindi_vs_english_cost"] == pytest.approx(langs["Hindi"]["tokens"] / langs["English"]["tokens"], abs=1e-3)
    assert m["hindi_vs_english_cost"] > 1.5  # measured 3.44 with this tokenizer
    for row in r["tables"]["languages"]:
        assert row["tokens_per_char"] == pytest.approx(row["tokens"] / row["characters"], abs=1e-3)
    shown = {x["text"]: x for x in r["tables"]["pieces"]}
    assert "".join(shown["unbelievably tokenized"]["pieces"]) == "unbelievably tokenized"
    assert m["strawberry_tokens"] == shown[" strawberry"]["n_tokens"]


def test_letter_counting_shows_raw_answers_verifies_spelling_and_gives_intervals(smol):
    from llmlab.lab.experiments.tokens import parse_count, spelled_word
    from llmlab.lab.stats import wilson

    r = run("tokens", trials=3)
    m, counting = r["metrics"], r["tables"]["counting"]
    assert len(counting) == 3 == m["counting_trials"]
    assert all(c["truth"] == c["word"].count(c["letter"]) for c in counting)
    for c in counting:  # the raw answers are kept whole, and the numbers come from them
        assert c["plain"] == parse_count(c["plain_answer"])
        assert c["given"] == parse_count(c["given_answer"])
        assert c["spelled_ok"] == (spelled_word(c["spelling"]) == c["word"])
        assert c["spelled"] == (parse_count(c["spelled_answer"]) if c["spelled_ok"] else None)
        for key in ("plain_answer", "given_answer"):  # not cut off mid-number
            assert not c[key][-1:].isdigit() or len(c[key]) < 40
    spelled = [c for c in counting if c["spelled_ok"]]
    assert m["spelled_trials"] == len(spelled)
    if spelled:
        assert m["spelled_accuracy"] == sum(c["spelled"] == c["truth"] for c in spelled) / len(spelled)
    acc = {a["condition"]: a for a in r["tables"]["accuracy"]}
    for key, metric in (("plain", "plain_accuracy"), ("given", "given_spelling_accuracy")):
        k = sum(c[key] == c["truth"] for c in counting)
        assert m[metric] == k / 3 and (acc[key]["ci_low"], acc[key]["ci_high"]) == wilson(k, 3)
    text = " ".join(r["summary"])
    assert "95% CI" in text and f"correctly in {len(spelled)} of 3" in text


def test_sampling_invariants_and_determinism(smol):
    r = run("sampling", draws=3000, greedy_runs=2, greedy_tokens=4, temperatures="0.05,0.5,1,2,10")
    m = r["metrics"]
    assert m["max_prob_sum_error"] < 1e-9  # probabilities sum to 1 at every temperature
    assert m["rank_changes"] == 0  # temperature never re-ranks (whole vocabulary, even T=0.05)
    assert m["greedy_identical"] == 1
    assert m["max_freq_error"] < 0.03  # seeded draws follow the softmax
    top = [x for x in r["tables"]["top_tokens"] if x["temperature"] == 1.0]
    assert top[0]["prob"] == pytest.approx(m["top1_prob"]) and top[0]["token"] == " Sydney"
    assert [x["prob"] for x in top] == sorted((x["prob"] for x in top), reverse=True)
    calc = {c["temperature"]: c["probs"] for c in r["tables"]["calculator"]}
    assert calc[1.0] == [pytest.approx(0.9526, abs=1e-4), pytest.approx(0.0474, abs=1e-4)]
    assert calc[0.5][0] == pytest.approx(0.9975, abs=1e-4)
    assert calc[2.0][0] == pytest.approx(0.8176, abs=1e-4)
    ent = [e["entropy_bits"] for e in r["tables"]["entropy"]]
    assert ent == sorted(ent) and ent[-1] > ent[0]  # entropy rises with temperature
    again = run("sampling", draws=3000, greedy_runs=2, greedy_tokens=4, temperatures="0.05,0.5,1,2,10")
    assert again["metrics"] == m and again["tables"]["draws"] == r["tables"]["draws"]  # same seed
    other = run("sampling", draws=3000, greedy_runs=2, greedy_tokens=4, seed=1)
    assert other["tables"]["draws"] != r["tables"]["draws"]  # a different seed draws differently


def test_sampling_truncates_with_top_k_top_p_and_min_p(smol):
    r = run("sampling", draws=4000, greedy_runs=2, greedy_tokens=2, top_k=5, top_p=0.6,
            min_p=0.1, rows=100, logits="4,1,0.5")
    m, trunc = r["metrics"], {t["strategy"]: t for t in r["tables"]["truncation"]}
    assert list(trunc) == ["top-k 5", "top-p 0.6", "min-p 0.1"]
    kept = {name: [x for x in r["tables"]["kept"] if x["strategy"] == name] for name in trunc}
    assert m["top_k_kept"] == trunc["top-k 5"]["kept"] == len(kept["top-k 5"]) == 5
    probs = [x["prob"] for x in kept["top-p 0.6"]]  # the fewest top tokens reaching 0.6
    assert m["top_p_kept"] == len(probs) and sum(probs) >= 0.6 > sum(probs[:-1])
    top = kept["min-p 0.1"][0]["prob"]
    assert all(x["prob"] >= 0.1 * top for x in kept["min-p 0.1"])
    assert m["min_p_kept"] == len(kept["min-p 0.1"])
    for name, rows in kept.items():  # renormalised: kept probabilities scaled to sum to 1
        assert sum(x["renormalised"] for x in rows) == pytest.approx(1, abs=1e-9)
        assert rows[0]["renormalised"] == pytest.approx(rows[0]["prob"] / trunc[name]["kept_mass"])
    assert m["draws_outside_kept"] == 0  # a removed token is never drawn
    assert m["truncated_max_freq_error"] <= max(t["noise_4se"] for t in trunc.values())
    assert m["calc_top_p_kept"] == 1  # top-p 0.6 of [4, 1, 0.5]: 0.926 alone suffices
    assert any("top-p 0.6 keeps" in line for line in r["summary"])
    r9 = run("sampling", draws=10, greedy_runs=2, greedy_tokens=1, logits="4,1,0.5")
    assert r9["metrics"]["calc_top_p_kept"] == 1  # the default top-p 0.9 keeps one token too


def test_attention_sinks_causality_induction_and_seed(smol):
    r = run("attention", repeat_len=30)
    m = r["metrics"]
    assert m["row_sum_error"] < 1e-5 and m["future_attention"] == 0.0  # softmax rows, causal
    assert 0 < m["first_token_share"] < 1
    assert m["loss_second_half"] < 0.5 * m["loss_first_half"]  # the repeat is predictable
    heads = r["tables"]["induction_heads"]
    assert len(heads) == 5 and heads[0]["prefix_matching"] >= heads[-1]["prefix_matching"]
    assert heads[0]["prefix_matching"] == m["top_prefix_matching"] > 0.3
    assert len(r["tables"]["sink_by_layer"]) == 30 and len(r["tables"]["head_entropy_bits"]) == 30
    assert m["mean_head_entropy_bits"] <= m["uniform_entropy_bits"]
    assert r["figures"] == ["attention_maps.png", "top_heads.png", "sinks_and_induction.png"]
    again = run("attention", repeat_len=30)
    assert again["metrics"] == m  # same seed, same numbers
    other = run("attention", repeat_len=30, seed=7)
    assert other["metrics"]["loss_first_half"] != m["loss_first_half"]  # another random sequence


def test_residual_logit_lens_norms_and_outliers(smol):
    assert hook_count(smol.model) == 0
    r = run("residual")
    assert hook_count(smol.model) == 0  # every capture hook was removed
    m = r["metrics"]
    lens = r["tables"]["logit_lens"]
    assert len(lens) == 30 and lens[-1]["answer_rank"] == 0 and lens[-1]["top"][0] == " Paris"
    first = int(m["answer_first_layer"])
    assert all(x["answer_rank"] == 0 for x in lens[first:])
    assert first == 0 or lens[first - 1]["answer_rank"] > 0
    assert 0 < m["mlp_share"] < 1 and 0 < m["final_answer_prob"] <= 1
    norms = r["tables"]["norms"]
    assert m["residual_norm_growth"] == pytest.approx(norms[-1]["residual_norm"] / norms[0]["residual_norm"], rel=1e-3)
    out = r["tables"]["outliers"]
    assert out[0]["abs"] == m["max_abs_activation"] and len({o["dim"] for o in out}) == 5


def test_residual_direct_logit_attribution_adds_up_to_the_answer_logit(smol):
    r = run("residual", prompt="The capital of Italy is")
    m, dla = r["metrics"], r["tables"]["logit_attribution"]
    assert [x["layer"] for x in dla] == list(range(30))
    total = m["embed_logit"] + sum(x["attn_logit"] + x["mlp_logit"] for x in dla)
    assert total == pytest.approx(m["answer_logit"], abs=1e-3)  # the decomposition adds up
    assert m["mlp_logit"] == pytest.approx(sum(x["mlp_logit"] for x in dla), abs=1e-4)
    assert m["attn_logit"] == pytest.approx(sum(x["attn_logit"] for x in dla), abs=1e-4)
    assert m["dla_error"] < 1e-3
    top = max(dla, key=lambda x: max(x["attn_logit"], x["mlp_logit"]))
    line = next(x for x in r["summary"] if x.startswith("Direct logit attribution"))
    assert f"layer {top['layer']}" in line  # the headline names the biggest writer
    assert "norm view" in " ".join(r["summary"]).lower()  # the update-norm share is labelled as such


def test_anatomy_counts_equal_the_tensors_and_kv_formula(smol, tmp_path):
    r = run("anatomy", measure_tokens=16)
    m = r["metrics"]
    unique = {id(p): p.numel() for p in smol.model.parameters()}
    assert m["params_total"] == sum(unique.values()) == 134_515_008
    assert m["params_embedding"] == 49152 * 576
    assert m["params_non_embedding"] == m["params_total"] - m["params_embedding"]
    assert r["tables"]["counts"][0]["tied"] is True
    assert m["kv_bytes_per_token_fp16"] == 2 * 30 * 3 * 64 * 2
    assert m["kv_bytes_per_token_measured"] == 2 * 30 * 3 * 64 * 4  # float32 cache, measured
    assert m["kv_formula_error"] == 0 and m["q_per_kv"] == 3
    shapes = {s["name"]: s["shape"] for s in r["tables"]["shapes"]}
    assert shapes["model.layers.0.self_attn.k_proj.weight"] == [192, 576]  # 3 KV heads x 64
    assert shapes["model.layers.0.self_attn.q_proj.weight"] == [576, 576]  # 9 query heads x 64
    cfg = tmp_path / "config.json"
    cfg.write_text(smol.model.config.to_json_string())
    c = run("anatomy", config=str(cfg))
    assert c["conditions"]["model"] is None
    assert c["metrics"]["params_total"] == m["params_total"]
    rows = [x for x in c["tables"]["kv_cache"] if x["dtype"] == "float16" and x["batch"] == 1]
    assert rows[0]["multi_head_mb"] == pytest.approx(3 * rows[0]["kv_cache_mb"], rel=1e-3)
    assert rows[0]["kv_cache_mb"] == pytest.approx(23040 * 1024 / 1e6, abs=0.01)


def test_anatomy_config_only_counts_a_model_it_never_loads(smol, tmp_path):
    """A Llama-style config with untied embeddings and no GQA: the count matches the formula."""
    import json

    h, i, layers, vocab, heads = 256, 688, 4, 1000, 8
    cfg = {"model_type": "llama", "hidden_size": h, "intermediate_size": i,
           "num_hidden_layers": layers, "num_attention_heads": heads,
           "num_key_value_heads": heads, "vocab_size": vocab, "tie_word_embeddings": False,
           "max_position_embeddings": 2048}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = run("anatomy", config=str(path), contexts="2048", batches="1,4", dtypes="bfloat16")
    per_layer = 4 * h * h + 3 * h * i + 2 * h  # q,k,v,o; gate,up,down; two RMSNorm weights
    assert r["metrics"]["params_total"] == 2 * vocab * h + layers * per_layer + h
    assert r["metrics"]["q_per_kv"] == 1
    assert r["metrics"]["kv_bytes_per_token_fp16"] == 2 * layers * heads * (h // heads) * 2
    assert [x["kv_cache_mb"] for x in r["tables"]["kv_cache"]] == [
        round(2 * layers * h * 2 * 2048 * b / 1e6, 2) for b in (1, 4)]
    with pytest.raises(UserError, match="No config file"):
        run("anatomy", config=str(tmp_path / "nope.json"))


def test_cost_growth_and_cache(smol):
    """Timing on a shared CPU is noisy: assert what holds under any load, not a speed."""
    r = run("cost", lengths="16,256", repeats=2, gen_tokens=6, gen_prompt=192)
    m = r["metrics"]
    fwd = r["tables"]["forward"]
    assert [x["tokens"] for x in fwd] == [16, 256]
    assert all(math.isfinite(x["seconds"]) and x["seconds"] > 0 for x in fwd)
    # no ordering of the two timings is asserted: one stall on a shared CPU can invert them
    assert m["growth_exponent"] == pytest.approx(
        math.log(fwd[1]["seconds"] / fwd[0]["seconds"]) / math.log(16))
    # without the cache every new token recomputes the 192-token prefix; with it, one token
    assert m["cache_speedup"] > 1
    assert m["cache_speedup"] == pytest.approx(m["ms_per_token_no_cache"] / m["ms_per_token_cache"])


def test_cost_sets_threads_records_load_and_repeats_interleaved(smol):
    import torch

    before = torch.get_num_threads()
    r = run("cost", lengths="8,16", repeats=3, gen_tokens=2, gen_prompt=8, threads=1)
    c, m = r["conditions"], r["metrics"]
    assert c["threads"] == 1 == m["threads"] and torch.get_num_threads() == before  # restored
    assert len(c["load_avg"]) == 2 and c["cpu_count"] >= 1
    for g in r["tables"]["generation"]:  # every case timed once per round
        assert len(g["all_ms_per_token"]) == 3 and g["ms_per_token"] == min(g["all_ms_per_token"])
    busy = any("machine was busy" in line for line in r["summary"])
    assert busy == bool(m["machine_busy"])
    assert any("1 CPU thread(s)" in line and "load average" in line for line in r["summary"])


def test_every_run_reports_its_quantities_and_conditions(smol):
    from llmlab.lab.catalog import spec

    r = run("residual", top_k=2)
    assert set(q.name for q in spec("residual").quantities) <= set(r["metrics"])
    c = r["conditions"]
    assert c["model"] == "smollm2-135m-instruct" and c["device"] == "cpu"
    assert c["dtype"] == "float32" and c["seed"] == 0 and c["duration_s"] > 0
    assert c["model_sha256"] == models.REGISTRY["smollm2-135m-instruct"].sha256
    assert {"torch", "transformers", "python"} <= set(c["packages"])


def test_prompt_longer_than_the_context_is_refused(smol):
    with pytest.raises(UserError, match="longer than the model's context window of 8192"):
        run("sampling", prompt="word " * 9000)
    with pytest.raises(UserError, match="prompt is empty"):
        run("residual", prompt="")
    with pytest.raises(UserError, match="longer than the model's context window"):
        run("cost", lengths="64,9000", repeats=1)
