"""sampling: the next-token distribution, temperature, entropy, greedy and seeded draws."""

from __future__ import annotations

import math

from ...errors import UserError
from ..experiment import Outcome, Param, Quantity, Spec, common

SPEC = Spec(
    name="sampling",
    question="What does the model's next-token distribution look like, and what do "
             "temperature, greedy decoding and sampling do to it?",
    concepts=("logits", "softmax", "temperature", "sampling_strategies"),
    params=(
        Param("prompt", str, "The capital of Australia is", "Text whose next token is studied"),
        Param("top_k", int, 8, "How many top tokens to tabulate", low=1, high=100),
        Param("temperatures", float, (0.5, 1.0, 2.0), "Temperatures to compare (T -> 0 is "
              "greedy decoding)", many=True, low=0.01, high=100),
        Param("draws", int, 2000, "Seeded samples drawn at T=1 to compare with softmax",
              low=1, high=1_000_000),
        Param("greedy_runs", int, 3, "Repeated greedy generations to compare", low=2, high=20),
        Param("greedy_tokens", int, 12, "Tokens per greedy generation", low=1, high=256),
        Param("logits", float, (4.0, 1.0), "Calculator: logits to softmax at each temperature",
              many=True, low=-1e4, high=1e4),
        *common(),
    ),
    quantities=(
        Quantity("top1_prob", "probability", "Probability of the most likely next token at T=1", concept='softmax', depends_on=('prompt',)),
        Quantity("entropy_t1_bits", "bits", "Entropy of the next-token distribution at T=1", concept='softmax', depends_on=('prompt',)),
        Quantity("max_freq_error", "probability", "Largest |empirical frequency - softmax probability| over the top tokens", concept='sampling_strategies', depends_on=('prompt', 'draws')),
        Quantity("calc_top_prob_t1", "probability", "Calculator: probability of the largest logit at T=1", concept='temperature', depends_on=('logits',), on_model=False),
    ),
    seconds=5,
)


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

    temps, calc_logits = p["temperatures"], p["logits"]
    tok, model = ctx.model.tokenizer, ctx.model.model
    enc = ctx.encode(p["prompt"])
    with torch.no_grad():
        logits = model(**enc).logits[0, -1].double()  # (vocab,)
    k = min(p["top_k"], logits.numel())
    order = torch.argsort(logits, descending=True, stable=True)  # (vocab,)
    top_ids = order[:k].tolist()
    rows, entropies, rank_changes, sum_errors = [], [], 0, []
    for t in sorted(set(temps) | {1.0}):
        probs = torch.softmax(logits / t, dim=-1)  # (vocab,)
        sum_errors.append(abs(probs.sum().item() - 1))
        # The ranking of the whole vocabulary, read from log-probabilities (probabilities
        # underflow to 0 at low T and would tie): temperature rescales, it never re-ranks.
        logp = torch.log_softmax(logits / t, dim=-1)  # (vocab,)
        if not torch.equal(torch.argsort(logp, descending=True, stable=True), order):
            rank_changes += 1
        entropies.append({"temperature": t, "entropy_bits": entropy_bits(probs.tolist())})
        for r, i in enumerate(top_ids):
            rows.append({"temperature": t, "rank": r + 1, "token": tok.decode([i]), "id": i,
                         "logit": round(logits[i].item(), 4), "prob": probs[i].item()})
    p1 = torch.softmax(logits, dim=-1)
    gen = torch.Generator().manual_seed(ctx.seed)
    draws = torch.multinomial(p1.float().cpu(), p["draws"], replacement=True, generator=gen)
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
