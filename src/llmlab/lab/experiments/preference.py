"""preference: DPO with a frozen reference on concise-vs-rambling pairs."""

from __future__ import annotations

from ...errors import UserError
from ..experiment import Outcome, Param, Quantity, Spec, common
from ..tuning import TARGETS
from ..tuning_data import SHIPPED_PREF, files, read_pairs, split


def load_pairs(p: dict):
    train_path, held_path = files(p["data"], p["heldout"], SHIPPED_PREF)
    pairs = read_pairs(train_path, p["max_len"])
    held = read_pairs(held_path, p["max_len"]) if held_path else None
    train, held = split(pairs, held)
    if len(train) < p["batch"]:
        raise UserError(f"{train_path} has {len(train)} training pairs, fewer than batch="
                        f"{p['batch']}. Add pairs or lower {{param:batch}}.")
    return train, held, train_path


SPEC = Spec(
    name="preference",
    question="What does DPO change when it learns from chosen/rejected pairs, and how far "
             "does the policy move from its reference?",
    concepts=("preference_tuning", "supervised_fine_tuning", "lora"),
    params=(
        Param("data", str, "concise", "Preference pairs: 'concise' (shipped: 96 concise vs "
              "rambling answers) or a JSONL file of {prompt, chosen, rejected}"),
        Param("heldout", str, "", "Held-out pairs file (default: the shipped 32, or the last "
              "20 % of your file)"),
        Param("steps", int, 20, "Optimizer steps", low=1, high=5000),
        Param("batch", int, 4, "Pairs per step", low=1, high=64),
        Param("lr", float, 2e-4, "AdamW learning rate", low=1e-7, high=1.0),
        Param("beta", float, 0.1, "DPO beta: how strongly the policy is held to the reference",
              low=1e-4, high=100),
        Param("rank", int, 8, "LoRA rank r", low=1, high=256),
        Param("targets", str, ("q_proj", "v_proj"), "Projections that get an adapter",
              many=True, choices=TARGETS),
        Param("max_len", int, 160, "Longest prompt+response in tokens, template included",
              low=16, high=2048),
        Param("eval_pairs", int, 32, "Held-out pairs evaluated before and after", low=1,
              high=10000),
        Param("gen_items", int, 6, "Held-out prompts generated before and after", low=1,
              high=1000),
        Param("max_new", int, 48, "Tokens generated per answer", low=1, high=512),
        *common(),
    ),
    quantities=(
        Quantity("reward_accuracy_after", "fraction", "Held-out preference accuracy: pairs "
                 "with a positive DPO reward margin after training", concept="preference_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'beta', 'rank', 'targets', 'max_len')),
        Quantity("mean_margin_after", "reward", "Mean held-out reward margin after training", concept="preference_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'beta', 'rank', 'targets', 'max_len')),
        Quantity("kl_per_token_after", "nats/token", "KL(policy || reference) per response "
                 "token on held-out pairs", concept="preference_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'beta', 'rank', 'targets', 'max_len')),
        Quantity("words_after", "words", "Mean words in the tuned model's answers", concept="preference_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'beta', 'rank', 'targets', 'max_len')),
    ),
    seconds=180,
    check=lambda p, ws: load_pairs(p),
)


def run(ctx, p: dict) -> Outcome:
    import torch

    from .. import dpo
    from .. import tuning as T

    train, held, train_path = load_pairs(p)
    held = held[:p["eval_pairs"]]
    tok, base = ctx.model.tokenizer, ctx.model.model
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    rows = [dpo.encode_pair(tok, x, p["max_len"], f"{train_path} ") for x in train]
    held_rows = [dpo.encode_pair(tok, x, p["max_len"], "held-out ") for x in held]
    model = T.attach(base, p["rank"], 2.0 * p["rank"], p["targets"], ctx.seed)
    prompts = [({"role": "user", "content": x.prompt},) for x in held[:p["gen_items"]]]
    before = T.generate(model, tok, prompts, p["max_new"])
    ev0 = dpo.evaluate(model, held_rows, pad, p["beta"])

    params = [x for x in model.parameters() if x.requires_grad]
    opt = torch.optim.AdamW(params, lr=p["lr"], weight_decay=0.0)
    bar = T.progress(ctx, p["steps"], "DPO")
    curve = []
    model.train()
    for step, idx in enumerate(T.batches(len(rows), p["batch"], p["steps"], ctx.seed), start=1):
        loss, r_c, r_r = dpo.step_loss(model, [rows[i] for i in idx], pad, p["beta"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        curve.append({"step": step, "loss": loss.item(), "reward_chosen": r_c.mean().item(),
                      "reward_rejected": r_r.mean().item(),
                      "margin": (r_c - r_r).mean().item(),
                      "accuracy": (r_c > r_r).float().mean().item()})
        bar(f"DPO, loss {loss.item():.3f}")
    model.eval()
    ev1 = dpo.evaluate(model, held_rows, pad, p["beta"])
    after = T.generate(model, tok, prompts, p["max_new"])

    def words(xs):
        return sum(len(x.split()) for x in xs) / len(xs)

    m = {"loss_first": curve[0]["loss"], "loss_last": curve[-1]["loss"],
         **{f"{k}_before": v for k, v in ev0.items()}, **{f"{k}_after": v for k, v in ev1.items()},
         "words_before": words(before), "words_after": words(after),
         "chosen_words": sum(len(x.chosen.split()) for x in held) / len(held),
         "rejected_words": sum(len(x.rejected.split()) for x in held) / len(held)}
    n = len(held)
    summary = [
        f"DPO, beta {p['beta']:g}, {p['steps']} steps of {p['batch']} pairs: loss "
        f"{m['loss_first']:.3f} -> {m['loss_last']:.3f} (log 2 = 0.693 at the start, where "
        "policy = reference).",
        f"Held-out preference accuracy ({n} pairs; a pair counts when its reward margin "
        f"beta*[(log pi - log ref)(chosen) - (log pi - log ref)(rejected)] is positive, as in "
        f"the DPO paper): {ev0['reward_accuracy']:.2f} -> {ev1['reward_accuracy']:.2f} (0 "
        f"before by construction: policy = reference, every margin is 0); mean margin "
        f"{ev0['mean_margin']:.3f} -> {ev1['mean_margin']:.3f}.",
        f"Control, the raw model's own preference: it gives the chosen answer a higher mean "
        f"log-prob per token in {ev0['per_token_preference']:.2f} -> "
        f"{ev1['per_token_preference']:.2f} of held-out pairs"
        + (" (already preferred before: this instruct model was itself DPO-tuned, so here DPO "
           "sharpens a preference it has rather than creating one)."
           if ev0["per_token_preference"] >= 0.9 else "."),
        f"KL(policy || reference) per response token: {ev0['kl_per_token']:.4f} -> "
        f"{ev1['kl_per_token']:.4f} nats.",
        f"Answers to {len(prompts)} held-out prompts: {m['words_before']:.1f} -> "
        f"{m['words_after']:.1f} words on average (chosen answers average "
        f"{m['chosen_words']:.1f}, rejected {m['rejected_words']:.1f}).",
    ]
    gens = [{"prompt": x.prompt, "chosen": x.chosen, "before": b, "after": a}
            for x, b, a in zip(held, before, after)]
    return Outcome(metrics=m, summary=summary,
                   tables={"curve": curve, "generations": gens,
                           "heldout": [{"when": "before", **ev0}, {"when": "after", **ev1}]},
                   figures={"dpo": _figure(curve, ev0, ev1)})


def _figure(curve, ev0, ev1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    s = [c["step"] for c in curve]
    a.plot(s, [c["loss"] for c in curve], label="DPO loss")
    a.plot(s, [c["reward_chosen"] for c in curve], label="reward chosen")
    a.plot(s, [c["reward_rejected"] for c in curve], label="reward rejected")
    a.axhline(0.693, ls=":", c="grey")
    a.set_xlabel("step")
    a.set_title("DPO training (batch means)")
    a.legend(fontsize=7)
    keys = ["per_token_preference", "reward_accuracy"]
    x = range(len(keys))
    b.bar([i - 0.2 for i in x], [ev0[k] for k in keys], 0.4, label="before")
    b.bar([i + 0.2 for i in x], [ev1[k] for k in keys], 0.4, label="after")
    b.set_xticks(list(x), ["prefers chosen\n(per token)", "reward margin > 0"], fontsize=7)
    b.set_ylim(0, 1)
    b.set_title(f"held-out; KL {ev1['kl_per_token']:.3f} nats/token", fontsize=9)
    b.legend(fontsize=7)
    fig.tight_layout()
    return fig
