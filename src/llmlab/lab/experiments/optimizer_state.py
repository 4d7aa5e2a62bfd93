"""optimizer_state: Adam's first and second moments during a short LoRA run."""

from __future__ import annotations

import math
import re

from ..experiment import Outcome, Quantity, Spec, common
from .finetune import check, data_params, load_data

SPEC = Spec(
    name="optimizer_state",
    question="What do Adam's moments (m, the mean gradient, and v, its mean square) look like "
             "during training, and how big is the step Adam actually takes?",
    concepts=("lora", "supervised_fine_tuning", "pretraining_objective"),
    params=(*data_params(default_steps=30), *common()),
    quantities=(
        Quantity("step1_update_over_lr", "ratio", "RMS of Adam's update on the B matrices at "
                 "step 1, divided by the learning rate", concept="supervised_fine_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'rank', 'alpha', 'targets', 'max_len')),
        Quantity("last_update_over_lr", "ratio", "The same at the last step", concept="supervised_fine_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'rank', 'alpha', 'targets', 'max_len')),
        Quantity("loss_last", "nats/token", "Training loss at the last step (batch)", concept="supervised_fine_tuning", depends_on=('data', 'heldout', 'steps', 'batch', 'lr', 'rank', 'alpha', 'targets', 'max_len')),
    ),
    seconds=60,
    check=check,
)

LAYER = re.compile(r"layers\.(\d+)\.")


def run(ctx, p: dict) -> Outcome:
    from .. import tuning as T

    train_items, _, train_path, _ = load_data(p)
    tok, base = ctx.model.tokenizer, ctx.model.model
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    rows = T.encode_all(tok, train_items, p["max_len"], f"{train_path} ")
    model = T.attach(base, p["rank"], p["alpha"], p["targets"], ctx.seed)
    named = [(n, x) for n, x in model.named_parameters() if x.requires_grad]
    records: list[dict] = []

    def on_step(step, model, opt, loss):
        # After opt.step(): m = exp_avg, v = exp_avg_sq; Adam's update is
        # lr * m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).
        (b1, b2), eps, lr = opt.param_groups[0]["betas"], opt.param_groups[0]["eps"], p["lr"]
        per: dict[tuple[int, str], list] = {}
        for name, x in named:
            st = opt.state[x]
            m_hat = st["exp_avg"] / (1 - b1 ** step)
            v_hat = st["exp_avg_sq"] / (1 - b2 ** step)
            upd = lr * m_hat / (v_hat.sqrt() + eps)
            kind = "A" if "lora_A" in name else "B"
            layer = int(LAYER.search(name).group(1))
            acc = per.setdefault((layer, kind), [0.0, 0.0, 0.0, 0.0, 0])
            acc[0] += st["exp_avg"].pow(2).sum().item()
            acc[1] += st["exp_avg_sq"].sum().item()  # ||sqrt(v)||^2 = sum(v)
            acc[2] += upd.pow(2).sum().item()
            acc[3] += x.grad.pow(2).sum().item()
            acc[4] += x.numel()
        for (layer, kind), (m2, v1, u2, g2, n) in sorted(per.items()):
            records.append({"step": step, "loss": loss, "layer": layer, "matrix": kind,
                            "m_norm": math.sqrt(m2), "sqrt_v_norm": math.sqrt(v1),
                            "grad_norm": math.sqrt(g2),
                            "update_rms_over_lr": math.sqrt(u2 / n) / lr})

    bar = T.progress(ctx, p["steps"], "training")
    curve = T.train(model, rows, pad, steps=p["steps"], batch=p["batch"], lr=p["lr"],
                    seed=ctx.seed, bar=bar, on_step=on_step)

    def mean(step, kind, key):
        xs = [r[key] for r in records if r["step"] == step and r["matrix"] == kind]
        return sum(xs) / len(xs)

    last = p["steps"]
    per_step = [{"step": s["step"], "loss": s["train_loss"],
                 "update_over_lr_B": mean(s["step"], "B", "update_rms_over_lr"),
                 "update_over_lr_A": mean(s["step"], "A", "update_rms_over_lr"),
                 "m_norm_B": mean(s["step"], "B", "m_norm"),
                 "sqrt_v_norm_B": mean(s["step"], "B", "sqrt_v_norm")} for s in curve.steps]
    losses = [s["train_loss"] for s in curve.steps]
    drops = [a - b for a, b in zip(losses, losses[1:])]
    sizes = [r["update_over_lr_B"] for r in per_step[1:]]
    corr = _pearson(sizes, drops) if len(drops) > 2 else float("nan")
    m = {"step1_update_over_lr": mean(1, "B", "update_rms_over_lr"),
         "step1_update_over_lr_A": mean(1, "A", "update_rms_over_lr"),
         "step1_grad_norm_A": mean(1, "A", "grad_norm"),
         "last_update_over_lr": mean(last, "B", "update_rms_over_lr"),
         "loss_first": losses[0], "loss_last": losses[-1],
         "update_vs_loss_drop_corr": corr}
    by_layer = {}
    for r in records:
        if r["step"] == last and r["matrix"] == "B":
            by_layer[r["layer"]] = r
    top = max(by_layer.values(), key=lambda r: r["m_norm"])
    summary = [
        f"Step 1: Adam's update on the B matrices is {m['step1_update_over_lr']:.3f} x lr per "
        "element (m_hat / sqrt(v_hat) = g / |g| = +-1 on the first step, whatever the gradient's "
        f"size); on A it is {m['step1_update_over_lr_A']:.3f} x lr, because B = 0 at init gives "
        f"A no gradient (|grad A| = {m['step1_grad_norm_A']:.1e}).",
        f"Step {last}: the update on B is {m['last_update_over_lr']:.3f} x lr: where gradients "
        "disagree from step to step, m (their running mean) shrinks relative to sqrt(v) (their "
        "running size), and Adam takes smaller steps there.",
        f"Loss {m['loss_first']:.3f} -> {m['loss_last']:.3f}; correlation between the step size "
        f"and the next loss drop across steps: {corr:.2f} (batch losses are noisy: a weak "
        "correlation is expected).",
        f"Largest |m| at the last step: layer {top['layer']} (B); see the per-layer table.",
    ]
    return Outcome(metrics=m, summary=summary,
                   tables={"per_step": per_step, "per_layer": records},
                   figures={"adam_state": _figure(per_step, records, last)})


def _pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sx = math.sqrt(sum((a - mx) ** 2 for a in x))
    sy = math.sqrt(sum((b - my) ** 2 for b in y))
    return sum((a - mx) * (b - my) for a, b in zip(x, y)) / (sx * sy) if sx and sy else 0.0


def _figure(per_step, records, last):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(12, 3.2))
    s = [r["step"] for r in per_step]
    ax[0].plot(s, [r["loss"] for r in per_step], c="k", label="loss")
    ax[0].set_xlabel("step")
    ax[0].set_ylabel("training loss")
    t = ax[0].twinx()
    t.plot(s, [r["update_over_lr_B"] for r in per_step], c="tab:red", label="update / lr (B)")
    t.plot(s, [r["update_over_lr_A"] for r in per_step], c="tab:orange", label="update / lr (A)")
    t.set_ylabel("RMS update / lr")
    t.legend(fontsize=7)
    ax[0].set_title("Loss and Adam's effective step")
    bl = sorted((r for r in records if r["step"] == last and r["matrix"] == "B"),
                key=lambda r: r["layer"])
    ax[1].plot([r["layer"] for r in bl], [r["m_norm"] for r in bl], "o-", label="||m||")
    ax[1].plot([r["layer"] for r in bl], [r["sqrt_v_norm"] for r in bl], "s-", label="||sqrt(v)||")
    ax[1].set_xlabel("layer")
    ax[1].set_yscale("log")
    ax[1].set_title(f"B moments per layer at step {last}")
    ax[1].legend(fontsize=7)
    ax[2].plot(s, [r["m_norm_B"] for r in per_step], label="mean ||m|| (B)")
    ax[2].plot(s, [r["sqrt_v_norm_B"] for r in per_step], label="mean ||sqrt(v)|| (B)")
    ax[2].set_yscale("log")
    ax[2].set_xlabel("step")
    ax[2].set_title("Moments over training")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    return fig
