"""sampling: the next-token distribution, temperature, entropy, greedy and seeded draws."""

from __future__ import annotations

import math

from ...errors import UserError
from ..spec import Outcome, Param, Quantity, Spec, common

SPEC = Spec(
    name="sampling",
    question="What does the model's next-token distribution look like, and what do "
             "temperature, greedy decoding and sampling do to it?",
    concepts=("logits", "softmax", "temperature", "sampling_strategies"),
    params=(
        Param("prompt", str, "The capital of Australia is", "Text whose next token is studied"),
        Param("top_k", int, 8, "How many top tokens to tabulate"),
        Param("temperatures", str, "0.5,1,2", "Comma-separated temperatures"),
        Param("draws", int, 2000, "Seeded samples drawn at T=1 to compare with softmax"),
        Param("greedy_runs", int, 3, "Repeated greedy generations to compare"),
        Param("greedy_tokens", int, 12, "Tokens per greedy generation"),
        Param("logits", str, "4,1", "Calculator: comma-separated logits to softmax at each temperature"),
        *common(),
    ),
    quantities=(
        Quantity("top1_prob", "probability", "Probability of the most likely next token at T=1"),
        Quantity("entropy_t1_bits", "bits", "Entropy of the next-token distribution at T=1"),
        Quantity("max_freq_error", "probability", "Largest |empirical frequency - softmax probability| over the top tokens"),
        Quantity("calc_top_prob_t1", "probability", "Calculator: probability of the largest logit at T=1"),
    ),
    seconds=10,
)


def _floats(s: str, name: str) -> list[float]:
    try:
        vals = [float(x) for x in s.split(",") if x.strip()]
    except ValueError:
        raise UserError(f"Parameter '{name}' must be comma-separated numbers, e.g. 4,1; got {s!r}.") from None
    if not vals:
        raise UserError(f"Parameter '{name}' needs at least one number, e.g. 4,1.")
    return vals


def softmax_list(logits: list[float], t: float) -> list[float]:
    """Softmax of plain numbers at temperature t (the calculator, no torch needed)."""
    if t <= 0:
        raise UserError("Temperatures must be positive (T -> 0 is greedy decoding).")
    m = max(logits)
    ex = [math.exp((z - m) / t) for z in logits]
    total = sum(ex)
    return [e / total for e in ex]


def entropy_bits(probs) -> float:
    return -sum(p * math.log2(p) for p in probs if p > 0)


def run(ctx, p: dict) -> Outcome:
    import torch

    temps = _floats(p["temperatures"], "temperatures")
    calc_logits = _floats(p["logits"], "logits")
    if any(t <= 0 for t in temps):
        raise UserError("Temperatures must be positive (T -> 0 is greedy decoding).")
    tok, model = ctx.model.tokenizer, ctx.model.model
    enc = tok(p["prompt"], return_tensors="pt", add_special_tokens=False).to(model.device)
    ctx.check_length(enc.input_ids.shape[1])
    with torch.no_grad():
        logits = model(**enc).logits[0, -1].double()  # (vocab,)
    k = max(1, min(p["top_k"], logits.numel()))
    order = torch.argsort(logits, descending=True)
    top_ids = order[:k].tolist()
    rows, entropies, rank_changes, sum_errors = [], [], 0, []
    base_rank = order.tolist()[:50]
    for t in sorted(set(temps) | {1.0}):
        probs = torch.softmax(logits / t, dim=-1)  # (vocab,)
        sum_errors.append(abs(probs.sum().item() - 1))
        if torch.argsort(probs, descending=True).tolist()[:50] != base_rank:
            rank_changes += 1
        entropies.append({"temperature": t, "entropy_bits": entropy_bits(probs.tolist())})
        for r, i in enumerate(top_ids):
            rows.append({"temperature": t, "rank": r + 1, "token": tok.decode([i]), "id": i,
                         "logit": round(logits[i].item(), 4), "prob": probs[i].item()})
    p1 = torch.softmax(logits, dim=-1)
    gen = torch.Generator().manual_seed(ctx.seed)
    draws = torch.multinomial(p1.float(), p["draws"], replacement=True, generator=gen)
    counts = torch.bincount(draws, minlength=logits.numel())
    freq = [{"token": tok.decode([i]), "softmax": p1[i].item(),
             "empirical": counts[i].item() / p["draws"]} for i in top_ids]
    max_err = max(abs(f["softmax"] - f["empirical"]) for f in freq)
    outs = []
    for _ in ctx.track(range(p["greedy_runs"]), "greedy runs"):
        with torch.no_grad():
            g = model.generate(**enc, max_new_tokens=p["greedy_tokens"], do_sample=False,
                               pad_token_id=tok.eos_token_id)
        outs.append(tok.decode(g[0, enc.input_ids.shape[1]:]))
    calc = []
    for t in temps:
        ps = softmax_list(calc_logits, t)
        calc.append({"temperature": t, "probs": [round(x, 4) for x in ps],
                     "entropy_bits": round(entropy_bits(ps), 4)})
    calc_t1 = softmax_list(calc_logits, 1.0)
    metrics = {
        "top1_prob": p1[top_ids[0]].item(),
        "entropy_t1_bits": entropy_bits(p1.tolist()),
        "max_freq_error": max_err,
        "greedy_identical": float(len(set(outs)) == 1),
        "rank_changes": float(rank_changes),
        "max_prob_sum_error": max(sum_errors),
        "calc_top_prob_t1": max(calc_t1),
    }
    top_tok = tok.decode([top_ids[0]])
    summary = [
        f"After {p['prompt']!r} the top token is {top_tok!r} with p = {metrics['top1_prob']:.3f} "
        f"at T=1; entropy {metrics['entropy_t1_bits']:.2f} bits.",
        "Temperature changed the ranking of the top 50 tokens in "
        f"{rank_changes} of {len(entropies)} settings (it rescales, never re-ranks).",
        f"{p['greedy_runs']} greedy runs {'were identical' if metrics['greedy_identical'] else 'DIFFERED'}: "
        f"{outs[0]!r}",
        f"{p['draws']} seeded draws: largest gap between frequency and softmax {max_err:.4f}.",
        "Calculator " + ", ".join(f"T={c['temperature']:g}: {c['probs']}" for c in calc),
    ]
    return Outcome(metrics=metrics,
                   tables={"top_k": rows, "entropy": entropies, "draws": freq,
                           "greedy": [{"run": i + 1, "text": o} for i, o in enumerate(outs)],
                           "calculator": calc},
                   figures={"temperature": _figure(rows, entropies, k)}, summary=summary)


def _figure(rows, entropies, k):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    temps = sorted({r["temperature"] for r in rows})
    width = 0.8 / len(temps)
    for j, t in enumerate(temps):
        rs = [r for r in rows if r["temperature"] == t]
        a.bar([r["rank"] + j * width for r in rs], [r["prob"] for r in rs], width, label=f"T={t:g}")
    labels = [r["token"] for r in rows if r["temperature"] == temps[0]]
    a.set_xticks([i + 1 + 0.4 - width / 2 for i in range(len(labels))], [repr(x) for x in labels],
                 rotation=45, fontsize=7)
    a.set_ylabel("probability")
    a.legend(fontsize=7)
    a.set_title("Top tokens across temperatures")
    b.plot([e["temperature"] for e in entropies], [e["entropy_bits"] for e in entropies], "o-")
    b.set_xlabel("temperature")
    b.set_ylabel("entropy (bits)")
    b.set_title("Entropy rises with temperature")
    fig.tight_layout()
    return fig
