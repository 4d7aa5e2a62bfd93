"""finetune: LoRA SFT teaching a fixed JSON answer format, with forgetting and merge checks."""

from __future__ import annotations

import copy
import math
import warnings

from ...errors import UserError
from ..experiment import Outcome, Param, Quantity, Spec, common
from ..tuning import TARGETS
from ..tuning_data import GENERAL_TEXT, SHIPPED_SFT, files, read_sft, split

PROBES = ("Write one sentence about the sea.", "Name three fruits.",
          "Explain what a verb is in one sentence.", "Give me a tip for sleeping well.")


def data_params(default_steps: int = 40) -> tuple[Param, ...]:
    """The data and LoRA parameters shared by finetune, finetune_sweep and optimizer_state."""
    return (
        Param("data", str, "json_task", "Training data: 'json_task' (shipped: 160 questions "
              "answered as {\"answer\": ...}) or a JSONL file of {prompt, response} or "
              "{messages} items"),
        Param("heldout", str, "", "Held-out JSONL file (default: the shipped split, or the "
              "last 20 % of your data file)"),
        Param("steps", int, default_steps, "Optimizer steps", low=1, high=5000),
        Param("batch", int, 4, "Examples per step", low=1, high=64),
        Param("lr", float, 1e-3, "AdamW learning rate", low=1e-7, high=1.0),
        Param("rank", int, 8, "LoRA rank r", low=1, high=256),
        Param("alpha", float, 16.0, "LoRA alpha (the update is scaled by alpha / r)",
              low=0.01, high=4096),
        Param("targets", str, ("q_proj", "v_proj"), "Projections that get an adapter",
              many=True, choices=TARGETS),
        Param("max_len", int, 128, "Longest item in tokens, chat template included",
              low=16, high=2048),
    )


def check(p: dict, ws) -> None:
    """Read and validate the data files before the model loads (names the bad line)."""
    load_data(p)


def load_data(p: dict):
    train_path, held_path = files(p["data"], p["heldout"], SHIPPED_SFT)
    items = read_sft(train_path, p["max_len"])
    held = read_sft(held_path, p["max_len"]) if held_path else None
    train, held = split(items, held)
    if len(train) < p["batch"]:
        raise UserError(f"{train_path} has {len(train)} training items, fewer than batch="
                        f"{p['batch']}. Add items or lower {{param:batch}}.")
    return train, held, train_path, held_path


SPEC = Spec(
    name="finetune",
    question="What does a small LoRA fine-tune teach the model, what does it cost, and what "
             "does it break?",
    concepts=("supervised_fine_tuning", "lora", "cross_entropy_perplexity", "chat_templates"),
    params=(
        *data_params(),
        Param("eval_every", int, 10, "Held-out loss every N steps", low=1, high=10000),
        Param("gen_items", int, 16, "Held-out prompts generated before and after", low=1,
              high=1000),
        Param("max_new", int, 24, "Tokens generated per answer", low=1, high=512),
        Param("probe_tokens", int, 40, "Tokens generated per general behaviour probe (the "
              "forgetting check), before and after", low=1, high=512),
        *common(),
    ),
    quantities=(
        Quantity("json_rate_after", "fraction", "Held-out answers that are exactly "
                 "{\"answer\": ...} after training", concept="supervised_fine_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'rank', 'alpha', 'targets', 'max_len', 'gen_items', 'max_new')),
        Quantity("heldout_loss_after", "nats/token", "Held-out response loss after training", concept="cross_entropy_perplexity", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'rank', 'alpha', 'targets', 'max_len')),
        Quantity("trainable_params", "parameters", "Trainable LoRA parameters", concept="lora", depends_on=('rank', 'targets')),
        Quantity("ppl_change_pct", "%", "Change in perplexity on general text (forgetting)", concept="supervised_fine_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'rank', 'alpha', 'targets', 'max_len')),
    ),
    seconds=150,
    check=check,
)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson interval for a rate of k successes in n."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def _score(outs, items):
    from ..tuning import answer_of

    rows = []
    for text, it in zip(outs, items):
        got = answer_of(text)
        gold = answer_of(it.response)
        rows.append({"valid": got is not None,
                     "correct": got is not None and gold is not None and
                     str(got["answer"]).strip().lower() == str(gold["answer"]).strip().lower()})
    return rows


def run(ctx, p: dict) -> Outcome:
    import torch
    from peft import PeftModel

    from .. import tuning as T
    from ..tuning_data import masking_table

    train_items, held_items, train_path, _ = load_data(p)
    tok, base = ctx.model.tokenizer, ctx.model.model
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    rows = T.encode_all(tok, train_items, p["max_len"], f"{train_path} ")
    held = T.encode_all(tok, held_items, p["max_len"], "held-out ")
    gen_items = held_items[:p["gen_items"]]
    general = [x for x in GENERAL_TEXT.read_text().splitlines() if x.strip()]

    model = T.attach(base, p["rank"], p["alpha"], p["targets"], ctx.seed)
    formula_n, formula = T.lora_formula(base.config, p["rank"], p["targets"])
    probe_ids = torch.tensor([held[0][0]])  # (1, seq)
    zero_diff = T.max_logit_diff(base, model, probe_ids)  # B = 0: must be exactly 0

    before = T.generate(model, tok, [it.prompt for it in gen_items], p["max_new"])
    probes_before = T.generate(model, tok, [({"role": "user", "content": q},) for q in PROBES],
                               p["probe_tokens"])
    ppl_before = T.perplexity(model, tok, general)
    bar = T.progress(ctx, p["steps"], "training")
    curve = T.train(model, rows, pad, steps=p["steps"], batch=p["batch"], lr=p["lr"],
                    seed=ctx.seed, heldout=held, eval_every=p["eval_every"], bar=bar)
    after = T.generate(model, tok, [it.prompt for it in gen_items], p["max_new"])
    probes_after = T.generate(model, tok, [({"role": "user", "content": q},) for q in PROBES],
                               p["probe_tokens"])
    ppl_after = T.perplexity(model, tok, general)

    adapter_dir = ctx.out_dir / "adapter"
    model.save_pretrained(adapter_dir)
    with warnings.catch_warnings():  # peft 0.21 calls a transformers method deprecated in 5.x
        warnings.filterwarnings("ignore", category=FutureWarning)
        reloaded = PeftModel.from_pretrained(copy.deepcopy(base), adapter_dir)
    reload_diff = T.max_logit_diff(model, reloaded, probe_ids)
    merged = reloaded.merge_and_unload()
    merge_diff = T.max_logit_diff(model, merged, probe_ids)
    adapter_mb = sum(f.stat().st_size for f in adapter_dir.iterdir()) / 1e6
    del reloaded, merged

    sb, sa = _score(before, gen_items), _score(after, gen_items)
    n = len(gen_items)
    k_b, k_a = sum(r["valid"] for r in sb), sum(r["valid"] for r in sa)
    steps = curve.steps
    trained = [s for s in steps if s["train_loss"] is not None]
    held_curve = [s for s in steps if "heldout_loss" in s]
    k = max(1, min(5, len(trained) // 4))
    secs = [s["seconds"] for s in trained[1:]] or [trained[0]["seconds"]]  # step 1 warms up
    sec_step = sorted(secs)[len(secs) // 2]
    plan = T.batches(len(rows), p["batch"], p["steps"], ctx.seed)
    tokens = sum(len(rows[i][0]) for b in plan[1:] or plan for i in b)  # real, not padding
    m = {
        "trainable_params": T.trainable(model), "formula_params": formula_n,
        "zero_init_max_logit_diff": zero_diff,
        "train_loss_first": sum(s["train_loss"] for s in trained[:k]) / k,
        "train_loss_last": sum(s["train_loss"] for s in trained[-k:]) / k,
        "heldout_loss_before": held_curve[0]["heldout_loss"],
        "heldout_loss_after": held_curve[-1]["heldout_loss"],
        "json_rate_before": k_b / n, "json_rate_after": k_a / n,
        "accuracy_before": sum(r["correct"] for r in sb) / n,
        "accuracy_after": sum(r["correct"] for r in sa) / n,
        "ppl_before": ppl_before, "ppl_after": ppl_after,
        "ppl_change_pct": 100 * (ppl_after / ppl_before - 1),
        "probe_json_before": sum(map(T.is_json, probes_before)) / len(PROBES),
        "probe_json_after": sum(map(T.is_json, probes_after)) / len(PROBES),
        "reload_max_logit_diff": reload_diff, "merge_max_logit_diff": merge_diff,
        "adapter_mb": adapter_mb, "seconds_per_step": sec_step,
        "tokens_per_second": tokens / sum(secs),
    }
    ex_ids, ex_labels = rows[0]
    lo_b, hi_b = wilson(k_b, n)
    lo_a, hi_a = wilson(k_a, n)
    summary = [
        f"Trainable parameters {m['trainable_params']:,} (formula: {formula}); "
        f"{100 * m['trainable_params'] / sum(x.numel() for x in base.parameters()):.2f} % "
        f"of the model; the adapter ({adapter_mb:.2f} MB) is saved in the run folder's "
        "adapter/ (peft.PeftModel.from_pretrained loads it).",
        f"Training loss {m['train_loss_first']:.3f} -> {m['train_loss_last']:.3f} (mean of the "
        f"first and last {k} steps); held-out loss {m['heldout_loss_before']:.3f} -> "
        f"{m['heldout_loss_after']:.3f} over {len(held)} held-out items.",
        f"Valid {{\"answer\": ...}} JSON on {n} held-out prompts: {k_b}/{n} before "
        f"(95 % CI {lo_b:.2f}-{hi_b:.2f}) -> {k_a}/{n} after (95 % CI {lo_a:.2f}-{hi_a:.2f}); "
        f"correct answers {m['accuracy_before']:.2f} -> {m['accuracy_after']:.2f}.",
        f"Forgetting: perplexity on {len(general)} lines of general text {ppl_before:.2f} -> "
        f"{ppl_after:.2f} ({m['ppl_change_pct']:+.1f} %); general probes answered in JSON "
        f"{m['probe_json_before']:.2f} -> {m['probe_json_after']:.2f}.",
        f"Loss masking: {sum(1 for y in ex_labels if y != -100)} of {len(ex_ids)} tokens of the "
        "first example are in the loss (the response and its end-of-turn token); the system "
        "prompt, the question and the template markup are masked.",
        f"Checks: a fresh adapter (B = 0) changed logits by {zero_diff:.1e}; the reloaded "
        f"adapter by {reload_diff:.1e}; the merged model by {merge_diff:.1e} "
        "(float32 rounding; tolerance 1e-3).",
        f"Median {sec_step:.2f} s/step, {m['tokens_per_second']:.0f} tokens/s at batch "
        f"{p['batch']} on {torch.get_num_threads()} threads (step 1, the warm-up, excluded).",
    ]
    gens = [{"prompt": it.prompt[-1]["content"], "gold": it.response, "before": b, "after": a,
             "valid_before": x["valid"], "valid_after": y["valid"]}
            for it, b, a, x, y in zip(gen_items, before, after, sb, sa)]
    probes = [{"prompt": q, "before": b, "after": a} for q, b, a in
              zip(PROBES, probes_before, probes_after)]
    return Outcome(metrics=m, summary=summary,
                   tables={"curve": steps, "generations": gens, "probes": probes,
                           "masking": masking_table(tok, ex_ids, ex_labels),
                           "formula": [{"targets": ",".join(p["targets"]), "rank": p["rank"],
                                        "formula": formula, "formula_params": formula_n,
                                        "peft_trainable": m["trainable_params"]}]},
                   figures={"loss_curves": loss_figure(steps, m)})


def loss_figure(steps, m):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2), gridspec_kw={"width_ratios": [2, 1]})
    tr = [s for s in steps if s["train_loss"] is not None]
    he = [s for s in steps if "heldout_loss" in s]
    a.plot([s["step"] for s in tr], [s["train_loss"] for s in tr], lw=1, label="train (batch)")
    a.plot([s["step"] for s in he], [s["heldout_loss"] for s in he], "o-", label="held-out")
    a.set_xlabel("step")
    a.set_ylabel("response loss (nats/token)")
    a.set_title("LoRA fine-tune: loss curves")
    a.legend(fontsize=7)
    names = ["valid JSON", "correct", "probe JSON"]
    bv = [m["json_rate_before"], m["accuracy_before"], m["probe_json_before"]]
    av = [m["json_rate_after"], m["accuracy_after"], m["probe_json_after"]]
    x = range(len(names))
    b.bar([i - 0.2 for i in x], bv, 0.4, label="before")
    b.bar([i + 0.2 for i in x], av, 0.4, label="after")
    b.set_xticks(list(x), names, fontsize=7)
    b.set_ylim(0, 1)
    b.set_title(f"ppl {m['ppl_before']:.1f} -> {m['ppl_after']:.1f}", fontsize=9)
    b.legend(fontsize=7)
    fig.tight_layout()
    return fig
