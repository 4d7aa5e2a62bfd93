"""finetune_sweep: LoRA rank and learning-rate sweeps, and the linear scaling rule."""

from __future__ import annotations

from ...errors import UserError
from ..experiment import Outcome, Param, Quantity, Spec, common
from .finetune import data_params, load_data

SECONDS_PER_EXAMPLE = 0.3  # measured on an idle 2-core CPU at ~50 tokens (BENCHMARKS.md)
LIMIT_S = 300


def configs(p: dict) -> list[dict]:
    """Every training run of the sweep: rank sweep, lr sweep, batch-size pair."""
    out = [{"sweep": "rank", "rank": r, "lr": p["lr"], "batch": p["batch"], "steps": p["steps"]}
           for r in p["ranks"]]
    out += [{"sweep": "lr", "rank": p["rank"], "lr": lr, "batch": p["batch"], "steps": p["steps"]}
            for lr in p["lrs"]]
    if p["scaling"]:  # same examples seen: batch b for n steps vs batch 2b for n/2 steps
        b2, s2 = 2 * p["batch"], max(1, p["steps"] // 2)
        out += [{"sweep": "batch", "rank": p["rank"], "lr": p["lr"], "batch": p["batch"],
                 "steps": p["steps"]},
                {"sweep": "batch", "rank": p["rank"], "lr": p["lr"], "batch": b2, "steps": s2},
                {"sweep": "batch", "rank": p["rank"], "lr": 2 * p["lr"], "batch": b2, "steps": s2}]
    return out


def estimate_s(p: dict) -> float:
    return sum(c["steps"] * c["batch"] for c in configs(p)) * SECONDS_PER_EXAMPLE


def check(p: dict, ws) -> None:
    load_data(p)
    est = estimate_s(p)
    if est > LIMIT_S and not p["long"]:
        raise UserError(f"This sweep would take about {est / 60:.0f} minutes on a 2-core CPU "
                        f"({len(configs(p))} runs). Add {{param:long=true}} to run it anyway, or use "
                        "fewer steps, ranks or learning rates.")


SPEC = Spec(
    name="finetune_sweep",
    question="How do LoRA rank and learning rate change what a short fine-tune reaches, what "
             "it costs and what it forgets?",
    concepts=("lora", "supervised_fine_tuning", "cross_entropy_perplexity"),
    params=(
        *data_params(default_steps=16),
        Param("ranks", int, (4, 16), "LoRA ranks to compare (at lr)", many=True, low=1,
              high=256),
        Param("lrs", float, (1e-4, 1e-3, 5e-3), "Learning rates to compare (at rank)",
              many=True, low=1e-7, high=1.0),
        Param("scaling", bool, True, "Also test the linear scaling rule: batch b at lr vs "
              "batch 2b at lr and 2*lr, same examples seen"),
        Param("eval_items", int, 20, "Held-out items for the final loss", low=1, high=10000),
        Param("long", bool, False, "Allow a sweep estimated at over 5 minutes"),
        *common(),
    ),
    quantities=(
        Quantity("best_lr", "learning rate", "Learning rate with the lowest final held-out loss", concept="supervised_fine_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lrs', 'rank', 'targets', 'max_len')),
        Quantity("rank_loss_spread", "nats/token", "Max - min final held-out loss across ranks", concept="lora", depends_on=('data', 'heldout', 'steps', 'batch', 'ranks', 'lr', 'targets', 'max_len')),
    ),
    seconds=240,
    check=check,
)


def run(ctx, p: dict) -> Outcome:
    from .. import tuning as T
    from ..tuning_data import GENERAL_TEXT

    train_items, held_items, train_path, _ = load_data(p)
    tok, base = ctx.model.tokenizer, ctx.model.model
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    rows = T.encode_all(tok, train_items, p["max_len"], f"{train_path} ")
    held = T.encode_all(tok, held_items[:p["eval_items"]], p["max_len"], "held-out ")
    general = [x for x in GENERAL_TEXT.read_text().splitlines() if x.strip()]
    plan = configs(p)
    ctx.console.print(f"finetune_sweep: {len(plan)} runs, {sum(c['steps'] for c in plan)} "
                      f"steps, estimated {estimate_s(p) / 60:.1f} min on a 2-core CPU.")
    base_loss = T.eval_loss(base, held, pad)
    base_ppl = T.perplexity(base, tok, general)
    bar = T.progress(ctx, sum(c["steps"] for c in plan), "sweep")
    results, curves = [], []
    for c in plan:
        model = T.attach(base, c["rank"], p["alpha"], p["targets"], ctx.seed)
        curve = T.train(model, rows, pad, steps=c["steps"], batch=c["batch"], lr=c["lr"],
                        seed=ctx.seed, bar=bar)
        secs = sorted(s["seconds"] for s in curve.steps[1:]) or [curve.steps[0]["seconds"]]
        ppl = T.perplexity(model, tok, general)
        loss = T.eval_loss(model, held, pad)
        results.append({**c, "heldout_loss": loss, "trainable_params": T.trainable(model),
                        "formula_params": T.lora_formula(base.config, c["rank"],
                                                         p["targets"])[0],
                        "seconds_per_step": secs[len(secs) // 2], "ppl_after": ppl,
                        "ppl_change_pct": 100 * (ppl / base_ppl - 1),
                        "final_train_loss": curve.steps[-1]["train_loss"]})
        curves += [{"sweep": c["sweep"], "rank": c["rank"], "lr": c["lr"], "batch": c["batch"],
                    "step": s["step"], "train_loss": s["train_loss"]} for s in curve.steps]
        del model
    ranks = [r for r in results if r["sweep"] == "rank"]
    lrs = [r for r in results if r["sweep"] == "lr"]
    best = min(lrs, key=lambda r: r["heldout_loss"])
    m = {"baseline_heldout_loss": base_loss, "baseline_ppl": base_ppl, "best_lr": best["lr"],
         "best_lr_heldout_loss": best["heldout_loss"],
         "rank_loss_spread": max(r["heldout_loss"] for r in ranks) -
         min(r["heldout_loss"] for r in ranks)}
    summary = [
        f"Before tuning: held-out loss {base_loss:.3f}, general-text perplexity {base_ppl:.2f}.",
        "Rank sweep (lr " f"{p['lr']:g}): " + "; ".join(
            f"r={r['rank']}: loss {r['heldout_loss']:.3f}, {r['trainable_params']:,} params, "
            f"{r['seconds_per_step']:.2f} s/step, ppl {r['ppl_change_pct']:+.1f} %" for r in ranks),
        f"LR sweep (r={p['rank']}): " + "; ".join(
            f"lr {r['lr']:g}: loss {r['heldout_loss']:.3f}, ppl {r['ppl_change_pct']:+.1f} %"
            for r in lrs) + f". Best: {best['lr']:g}.",
        f"One seed ({ctx.seed}) and {p['steps']} steps per run: differences smaller than the "
        "run-to-run spread of other seeds are not evidence; rerun with -p seed=1 to see it.",
    ]
    if p["scaling"]:
        s = [r for r in results if r["sweep"] == "batch"]
        m["scaling_gap_same_lr"] = s[1]["heldout_loss"] - s[0]["heldout_loss"]
        m["scaling_gap_scaled_lr"] = s[2]["heldout_loss"] - s[0]["heldout_loss"]
        summary.append(
            f"Linear scaling rule, same {s[0]['batch'] * s[0]['steps']} examples seen: batch "
            f"{s[0]['batch']} at lr {s[0]['lr']:g}: {s[0]['heldout_loss']:.3f}; batch "
            f"{s[1]['batch']} at the same lr: {s[1]['heldout_loss']:.3f}; batch {s[2]['batch']} "
            f"at 2x lr: {s[2]['heldout_loss']:.3f}. The rule (double the batch, double the lr) "
            + ("held here: doubling the lr recovered the gap." if abs(m["scaling_gap_scaled_lr"])
               < abs(m["scaling_gap_same_lr"]) else "did not hold here: with Adam and few "
               "steps, the lr-for-batch trade is closer to square-root scaling or none at all."))
    return Outcome(metrics=m, summary=summary, tables={"runs": results, "curves": curves},
                   figures={"rank_sweep": _rank_fig(ranks, base_loss),
                            "lr_sweep": _lr_fig(lrs, curves)})


def _rank_fig(ranks, base_loss):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, a = plt.subplots(figsize=(5, 3.2))
    a.plot([r["rank"] for r in ranks], [r["heldout_loss"] for r in ranks], "o-")
    a.axhline(base_loss, ls=":", c="grey", label="before tuning")
    a.set_xscale("log", base=2)
    a.set_xlabel("LoRA rank r")
    a.set_ylabel("final held-out loss")
    for r in ranks:
        a.annotate(f"{r['trainable_params']:,} params", (r["rank"], r["heldout_loss"]),
                   fontsize=7)
    a.set_title("Rank sweep")
    a.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _lr_fig(lrs, curves):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, a = plt.subplots(figsize=(5, 3.2))
    for r in lrs:
        c = [x for x in curves if x["sweep"] == "lr" and x["lr"] == r["lr"]]
        a.plot([x["step"] for x in c], [x["train_loss"] for x in c],
               label=f"lr {r['lr']:g} (held-out {r['heldout_loss']:.2f})")
    a.set_xlabel("step")
    a.set_ylabel("training loss")
    a.set_yscale("log")
    a.set_title("Learning-rate sweep")
    a.legend(fontsize=7)
    fig.tight_layout()
    return fig
