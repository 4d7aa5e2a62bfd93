"""Fine-tuning experiments (finetune, preference, optimizer_state, finetune_sweep).

Data validation runs without torch or the model. The model tests run the real
SmolLM2-135M-Instruct with tiny configurations (a few steps, short held-out sets).
"""

from __future__ import annotations

import json

import pytest

from llmlab.errors import UserError
from llmlab.lab.catalog import spec
from llmlab.lab.runner import run_experiment
from llmlab.lab.tuning_data import DATA, read_pairs, read_sft


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = '{"prompt": "What is 2 + 2?", "response": "{\\"answer\\": 4}"}'


@pytest.mark.parametrize("bad, fragment", [
    ('{"prompt": "x", "answer": "y"}', "line 2: wrong keys"),
    ('{"prompt": "", "response": "y"}', "line 2: 'prompt' is empty"),
    ('not json', "line 2: not valid JSON"),
    (GOOD, "line 2: duplicate of line 1"),
    ('{"prompt": "' + "x" * 2000 + '", "response": "y"}', "line 2: 2001 characters, too long"),
    ('{"messages": [{"role": "user", "content": "hi"}]}', "line 2: 'messages' must be a list"),
    ('{"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}',
     "line 2: the last message must be the assistant's"),
])
def test_bad_sft_files_name_the_line(tmp_path, bad, fragment):
    f = _write(tmp_path / "d.jsonl", [GOOD, bad])
    with pytest.raises(UserError, match=fragment.replace("(", r"\(")):
        read_sft(f, max_len=128)


def test_bad_encoding_and_bad_pairs_name_the_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_bytes(GOOD.encode() + b"\n" + b'{"prompt": "caf\xe9", "response": "x"}\n')
    with pytest.raises(UserError, match="line 2: not valid UTF-8"):
        read_sft(f, 128)
    p = _write(tmp_path / "p.jsonl", ['{"prompt": "q", "chosen": "a", "rejected": "b"}',
                                      '{"prompt": "q", "chosen": "a", "rejected": "a"}'])
    with pytest.raises(UserError, match="line 2: 'chosen' and 'rejected' are identical"):
        read_pairs(p, 128)


def test_shipped_sets_are_valid_and_large_enough():
    train = read_sft(DATA / "json_task_train.jsonl", 128)
    held = read_sft(DATA / "json_task_heldout.jsonl", 128)
    assert len(train) >= 150 and len(held) >= 30
    assert not {it.messages[0]["content"] for it in train} & {it.messages[0]["content"] for it in held}
    assert all(json.loads(it.response).keys() == {"answer"} for it in train + held)
    pairs = read_pairs(DATA / "preferences_train.jsonl", 160)
    held_pairs = read_pairs(DATA / "preferences_heldout.jsonl", 160)
    assert len(pairs) + len(held_pairs) >= 100
    assert not {x.prompt for x in pairs} & {x.prompt for x in held_pairs}
    assert all(len(x.chosen) < len(x.rejected) for x in pairs)  # concise vs rambling


def test_bad_data_fails_before_the_model_loads_through_the_cli(ws, cli, tmp_path):
    bad = _write(tmp_path / "bad.jsonl", [GOOD, GOOD.replace("2 + 2", "3 + 3"), '{"prompt": 1}'])
    log = ws.log_path.read_bytes()
    for exp in ("finetune", "optimizer_state", "finetune_sweep"):
        r = cli("lab", "run", exp, "-p", f"data={bad}")
        assert r.returncode == 1 and "Traceback" not in r.stderr
        assert f"{bad} line 3: wrong keys" in " ".join(r.stderr.split()), r.stderr
    r = cli("lab", "run", "preference", "-p", f"data={bad}")
    assert r.returncode == 1 and "line 1: wrong keys" in " ".join(r.stderr.split())
    assert ws.log_path.read_bytes() == log  # nothing recorded


def test_long_sweeps_are_opt_in_with_an_estimate():
    s = spec("finetune_sweep")
    with pytest.raises(UserError, match=r"about \d+ minutes .* -p long=true"):
        s.check(s.resolve({"steps": 200}), None)
    s.check(s.resolve({"steps": 200, "long": True}), None)  # opted in: no error
    s.check(s.resolve({}), None)  # the default fits in 5 minutes


# --- the real model --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smol():
    """The shipped model, on one thread: on a shared, loaded 2-core machine two torch
    threads spin-wait on each other (measured 3 s vs 60 s per training step)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from llmlab.lab import models

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield models.load()
    torch.set_num_threads(threads)


def _held(tmp_path, n, name="json_task_heldout.jsonl"):
    lines = (DATA / name).read_text().splitlines()[:n]
    return str(_write(tmp_path / f"held-{name}", lines))


def run(name, **params):
    return run_experiment(None, name, params, record=False, show_progress=False)


@pytest.mark.model
def test_zero_adapter_unchanged_and_parameter_count_is_the_formula(smol):
    import torch

    from llmlab.lab import tuning as T

    ids = smol.tokenizer("The capital of France is", return_tensors="pt").input_ids
    for rank, targets in ((8, ["q_proj", "v_proj"]), (4, ["k_proj", "o_proj", "down_proj"])):
        model = T.attach(smol.model, rank, 2 * rank, targets, seed=0)
        n, formula = T.lora_formula(smol.model.config, rank, targets)
        assert T.trainable(model) == n, formula
        with torch.no_grad():  # B = 0 at init: logits identical, bit for bit (tolerance 0)
            assert torch.equal(model(input_ids=ids).logits, smol.model(input_ids=ids).logits)
    assert T.lora_formula(smol.model.config, 8, ["q_proj", "v_proj"]) == (
        460_800, "30 layers x r=8 x ((576+576) + (576+192)) = 460,800")
    assert not any("lora" in n for n, _ in smol.model.named_parameters())  # shared model untouched


@pytest.mark.model
def test_same_seed_same_losses(smol):
    """Same seed, same threads: identical losses (tolerance 0). Across thread counts float
    reductions reorder, so compare with rel 1e-4 there."""
    from llmlab.lab import tuning as T
    from llmlab.lab.tuning_data import read_sft

    items = read_sft(DATA / "json_task_train.jsonl", 128)[:8]
    rows = T.encode_all(smol.tokenizer, items, 128, "")

    def losses(seed):
        m = T.attach(smol.model, 4, 8, ["q_proj", "v_proj"], seed)
        c = T.train(m, rows, 2, steps=3, batch=2, lr=1e-3, seed=seed)
        return [s["train_loss"] for s in c.steps]

    a, b, c = losses(0), losses(0), losses(1)
    assert a == b
    assert a != c


@pytest.mark.model
def test_finetune_learns_the_format_and_round_trips(smol, tmp_path, default_ws):
    from llmlab.site.build import build

    r = run_experiment(default_ws, "finetune", dict(
        steps=8, batch=4, lr=2e-3, eval_every=8, gen_items=3, max_new=10, probe_tokens=8,
        heldout=_held(tmp_path, 6)), show_progress=False)
    m = r["metrics"]
    assert m["train_loss_last"] < m["train_loss_first"]  # within 8 steps on the shipped set
    assert m["heldout_loss_after"] < m["heldout_loss_before"]
    assert m["trainable_params"] == m["formula_params"] == 460_800
    assert "30 layers x r=8 x ((576+576) + (576+192)) = 460,800" in r["tables"]["formula"][0]["formula"]
    assert m["zero_init_max_logit_diff"] == 0
    assert m["reload_max_logit_diff"] < 1e-5  # saved adapter loads back to the same model
    assert m["merge_max_logit_diff"] < 1e-3  # merged W + (alpha/r) BA: float32 rounding only
    mask = r["tables"]["masking"]
    first = next(i for i, t in enumerate(mask) if t["in_loss"])
    assert all(t["in_loss"] for t in mask[first:])  # one contiguous response span at the end
    assert "assistant" in "".join(t["token"] for t in mask[:first][-4:])  # masked up to the turn
    assert "".join(t["token"] for t in mask[first:]).startswith('{"answer"')
    assert len(r["tables"]["generations"]) == 3 and len(r["tables"]["probes"]) == 4
    assert 0 <= m["json_rate_before"] <= 1 and m["ppl_before"] > 1
    assert r["figures"] == ["loss_curves.png"]
    assert r["event"]  # recorded through the one write path
    build(default_ws)  # the dashboard shows the run with its loss curves
    site = default_ws.site_dir
    assert (site / "lab" / r["run_id"] / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    html = (site / "index.html").read_text()
    assert r["run_id"] in html and "loss_curves.png" in html
    assert r["run_id"] in (site / "concepts" / "lora.html").read_text()


@pytest.mark.model
def test_preference_accuracy_rises(smol, tmp_path):
    r = run("preference", steps=4, batch=2, lr=2e-3, eval_pairs=6, gen_items=1, max_new=8,
            heldout=_held(tmp_path, 6, "preferences_heldout.jsonl"))
    m = r["metrics"]
    assert m["reward_accuracy_before"] == 0 and m["mean_margin_before"] == 0  # policy = ref
    assert m["kl_per_token_before"] == pytest.approx(0, abs=1e-6)
    # held-out pairs the policy never trained on: the accuracy rises above its start
    assert m["reward_accuracy_after"] > m["reward_accuracy_before"]
    assert m["mean_margin_after"] > 0 and m["kl_per_token_after"] > 0
    assert m["per_token_preference_after"] >= m["per_token_preference_before"]
    assert m["loss_first"] == pytest.approx(0.6931, abs=1e-3)  # -log sigmoid(0)


@pytest.mark.model
def test_optimizer_state_first_step_is_lr_sized(smol):
    r = run("optimizer_state", steps=3, batch=2)
    m = r["metrics"]
    # Step 1: m_hat / sqrt(v_hat) = g / (|g| + eps) = +-1 wherever B's gradient is non-zero
    assert m["step1_update_over_lr"] == pytest.approx(1.0, abs=0.02)
    assert m["step1_grad_norm_A"] == 0 and m["step1_update_over_lr_A"] == 0  # B = 0: no grad
    layers = {(x["layer"], x["matrix"]) for x in r["tables"]["per_layer"] if x["step"] == 3}
    assert len(layers) == 60  # 30 layers x (A, B)


@pytest.mark.model
def test_finetune_sweep_tiny(smol, tmp_path):
    r = run("finetune_sweep", steps=2, batch=2, ranks="2,4", lrs="1e-3", eval_items=2,
            heldout=_held(tmp_path, 2))
    runs = r["tables"]["runs"]
    assert [x["sweep"] for x in runs] == ["rank", "rank", "lr", "batch", "batch", "batch"]
    assert all(x["trainable_params"] == x["formula_params"] for x in runs)
    assert runs[1]["trainable_params"] == 2 * runs[0]["trainable_params"]  # linear in rank
    b = [x for x in runs if x["sweep"] == "batch"]
    assert b[0]["batch"] * b[0]["steps"] == b[1]["batch"] * b[1]["steps"]  # same examples seen
    assert b[2]["lr"] == 2 * b[1]["lr"]
    assert sorted(r["figures"]) == ["lr_sweep.png", "rank_sweep.png"]


@pytest.mark.model
def test_dpo_log_probs_equal_one_row_at_a_time(smol):
    """The DPO passes pad each batch (chosen and rejected apart) and switch the adapter off
    for the reference: each response's log-probability must equal a hand computation on the
    row alone, unpadded, from the model's logits."""
    import torch

    from llmlab.lab import dpo
    from llmlab.lab import tuning as T
    from llmlab.lab.tuning_data import SHIPPED_PREF, files

    tok = smol.tokenizer
    pairs = read_pairs(files("concise", "", SHIPPED_PREF)[0], 160)[:3]
    rows = [dpo.encode_pair(tok, x, 160) for x in pairs]
    model = T.attach(smol.model, 4, 8.0, ("q_proj", "v_proj"), 0)
    with torch.no_grad():
        for p in model.parameters():  # a non-zero adapter, so policy != reference
            if p.requires_grad:
                p.add_(0.02 * torch.randn_like(p))

    def alone(ids, labels, adapter: bool):
        with torch.no_grad():
            if adapter:
                logits = model(input_ids=torch.tensor([ids])).logits[0]
            else:
                with model.disable_adapter():
                    logits = model(input_ids=torch.tensor([ids])).logits[0]
        lp = torch.log_softmax(logits.double(), -1)
        return sum(lp[t - 1, labels[t]].item() for t in range(1, len(ids)) if labels[t] != -100)

    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for side in (0, 1):  # chosen rows, then rejected rows
        batch = [r[side] for r in rows]
        pol, ref, n = dpo.policy_and_ref(model, batch, pad, grad=False)
        for i, (ids, labels) in enumerate(batch):
            assert int(n[i]) == sum(1 for x in labels[1:] if x != -100)
            assert pol[i].item() == pytest.approx(alone(ids, labels, True), abs=2e-3)
            assert ref[i].item() == pytest.approx(alone(ids, labels, False), abs=2e-3)
    ev = dpo.evaluate(model, rows, pad, beta=0.1, batch=2)
    pc, rc, _ = dpo.policy_and_ref(model, [r[0] for r in rows], pad, grad=False)
    pr, rr, _ = dpo.policy_and_ref(model, [r[1] for r in rows], pad, grad=False)
    margins = 0.1 * ((pc - rc) - (pr - rr))
    assert ev["mean_margin"] == pytest.approx(margins.mean().item(), abs=1e-4)
    assert ev["kl_per_token"] > 0
