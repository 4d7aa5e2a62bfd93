"""sampling: the next-token distribution, temperature, entropy, truncation, greedy and seeded
draws.

Truncation (top-k, top-p, min-p; `lab/samplers.py`) is applied to the distribution at T=1:
the run lists the tokens each keeps with their renormalised probabilities, and compares
the frequencies of seeded draws from each truncated distribution with that theory.
"""

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
        Param("rows", int, 8, "How many top tokens to tabulate per temperature", low=1,
              high=100),
        Param("temperatures", float, (0.5, 1.0, 2.0), "Temperatures to compare (T -> 0 is "
              "greedy decoding)", many=True, low=0.01, high=100),
        Param("draws", int, 2000, "Seeded samples drawn at T=1 to compare with softmax",
              low=1, high=1_000_000),
        Param("top_k", int, 50, "Top-k truncation: keep the k most likely tokens", low=1,
              high=1_000_000),
        Param("top_p", float, 0.9, "Top-p (nucleus) truncation: keep the fewest most likely "
              "tokens whose probabilities sum to at least p", low=0.0001, high=1),
        Param("min_p", float, 0.05, "Min-p truncation: keep tokens at least min_p times as "
              "likely as the top token", low=0, high=1),
        Param("greedy_runs", int, 3, "Repeated greedy generations to compare", low=2, high=20),
        Param("greedy_tokens", int, 12, "Tokens per greedy generation", low=1, high=256),
        Param("logits", float, (4.0, 1.0), "Calculator: logits to softmax at each temperature "
              "and to truncate at T=1",
              many=True, low=-1e4, high=1e4),
        *common(),
    ),
    quantities=(
        Quantity("top1_prob", "probability", "Probability of the most likely next token at T=1", concept='softmax', depends_on=('prompt',)),
        Quantity("entropy_t1_bits", "bits", "Entropy of the next-token distribution at T=1", concept='softmax', depends_on=('prompt',)),
        Quantity("max_freq_error", "probability", "Largest |empirical frequency - softmax probability| over the top tokens", concept='sampling_strategies', depends_on=('prompt', 'draws')),
        Quantity("calc_top_prob_t1", "probability", "Calculator: probability of the largest logit at T=1", concept='temperature', depends_on=('logits',), on_model=False),
        Quantity("top_p_kept", "tokens", "Tokens top-p keeps at T=1",
                 concept="sampling_strategies", depends_on=("prompt", "top_p")),
        Quantity("calc_top_p_kept", "tokens", "Calculator: tokens top-p keeps of the given "
                 "logits at T=1", concept="sampling_strategies", depends_on=("logits", "top_p"),
                 on_model=False),
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

    from .. import samplers

    temps, calc_logits = p["temperatures"], p["logits"]
    tok, model = ctx.model.tokenizer, ctx.model.model
    enc = ctx.encode(p["prompt"])
    with torch.no_grad():
        logits = model(**enc).logits[0, -1].double()  # (vocab,)
    k = min(p["rows"], logits.numel())
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
    calc_p = torch.tensor(calc_t1, dtype=torch.float64)
    calc_trunc = [{"strategy": name, "kept": [i for i, x in enumerate(f(calc_p).tolist()) if x],
                   "renormalised": [round(x, 4) for x in
                                    samplers.renormalise(calc_p, f(calc_p)).tolist()]}
                  for name, f in samplers.strategies(p["top_k"], p["top_p"], p["min_p"]).items()]
    trunc, kept_rows = _truncation(tok, p1, p, ctx.seed)
    metrics = {
        "top1_prob": p1[top_ids[0]].item(),
        "entropy_t1_bits": entropy_bits(p1.tolist()),
        "max_freq_error": max_err,
        "greedy_identical": float(len(set(outs)) == 1),
        "rank_changes": float(rank_changes),
        "max_prob_sum_error": max(sum_errors),
        "calc_top_prob_t1": max(calc_t1),
        "top_k_kept": trunc[0]["kept"], "top_p_kept": trunc[1]["kept"],
        "min_p_kept": trunc[2]["kept"],
        "truncated_max_freq_error": max(r["max_freq_error"] for r in trunc),
        "draws_outside_kept": sum(r["draws_outside_kept"] for r in trunc),
        "calc_top_p_kept": len(calc_trunc[1]["kept"]),
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
        "Truncation at T=1 (of {:,} tokens): ".format(logits.numel()) + "; ".join(
            f"{r['strategy']} keeps {r['kept']:,} ({r['kept_mass']:.1%} of the probability)"
            for r in trunc) + ". Each kept distribution is renormalised to sum to 1.",
        f"{p['draws']} seeded draws from each truncated distribution: largest gap between "
        f"frequency and renormalised probability {metrics['truncated_max_freq_error']:.4f} "
        f"(sampling noise allows about {max(r['noise_4se'] for r in trunc):.4f}: four standard "
        f"errors); {int(metrics['draws_outside_kept'])} draws fell outside the kept tokens.",
        "Calculator " + ", ".join(f"T={c['temperature']:g}: {c['probs']}" for c in calc)
        + "; at T=1 " + ", ".join(f"{c['strategy']} keeps {len(c['kept'])}" for c in calc_trunc)
        + ".",
    ]
    return Outcome(metrics=metrics,
                   tables={"top_tokens": rows, "entropy": entropies, "draws": freq,
                           "greedy": [{"run": i + 1, "text": o} for i, o in enumerate(outs)],
                           "calculator": calc, "calculator_truncation": calc_trunc,
                           "truncation": trunc, "kept": kept_rows},
                   figures={"temperature": _figure(rows, entropies, k)}, summary=summary)


def _truncation(tok, p1, p: dict, seed: int) -> tuple[list[dict], list[dict]]:
    """Each strategy at T=1: what it keeps, and seeded draws against the renormalised theory."""
    import torch

    from .. import samplers

    trunc, kept_rows = [], []
    for j, (name, f) in enumerate(samplers.strategies(p["top_k"], p["top_p"], p["min_p"]).items()):
        keep = f(p1)  # (vocab,) bool
        q = samplers.renormalise(p1, keep)  # (vocab,)
        counts = torch.bincount(samplers.draw(q, p["draws"], seed + j), minlength=p1.numel())
        freq = counts.double() / p["draws"]  # (vocab,)
        ids = torch.nonzero(keep).flatten()
        ids = ids[torch.argsort(p1[ids], descending=True, stable=True)]
        trunc.append({
            "strategy": name, "kept": int(keep.sum()), "kept_mass": p1[keep].sum().item(),
            "max_freq_error": (freq - q).abs().max().item(),
            "noise_4se": 4 * math.sqrt(q.max().item() * (1 - q.max().item()) / p["draws"]),
            "draws_outside_kept": int(counts[~keep].sum())})
        for r, i in enumerate(ids[:p["rows"]].tolist()):
            kept_rows.append({"strategy": name, "rank": r + 1, "token": tok.decode([i]), "id": i,
                              "prob": p1[i].item(), "renormalised": q[i].item(),
                              "empirical": freq[i].item()})
    return trunc, kept_rows


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
