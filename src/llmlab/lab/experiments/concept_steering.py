"""concept_steering: add a concept vector to the residual stream while generating, over a
sweep of multipliers, and measure what changes (readout score, fluency)."""

from __future__ import annotations

from ..experiment import Outcome, Param, Quantity, Spec, common
from .concept_readout import VECTORS, check


SPEC = Spec(
    name="concept_steering",
    question="Adding a concept vector while the model writes: does the text move toward the "
             "concept, and how much fluency does a larger multiplier cost?",
    concepts=("steering_vectors", "residual_stream"),
    params=(
        Param("concept", str, "sad", "Concept to steer toward (one the readout has)"),
        Param("prompt", str, "Write two sentences about your afternoon.",
              "User turn the model answers (chat template applied)"),
        Param("multipliers", float, [0.0, 0.25, 0.5, 1.0], "Multipliers relative to the "
              "residual norm at the steering layer: m adds the unit vector times m x that norm "
              "(median over the prompt), so a multiplier acts alike at any layer", many=True,
              low=-10, high=10, min_items=2),
        Param("layer", str, "", "Layer to steer at (one the readout has); empty: the concept's "
              "best readout layer"),
        VECTORS,
        Param("samples", int, 3, "Generations per multiplier (the same random streams for "
              "every multiplier)", low=1, high=20),
        Param("max_new_tokens", int, 40, "Tokens generated per sample", low=4, high=256),
        Param("temperature", float, 0.7, "Sampling temperature (0 = greedy)", low=0, high=5),
        *common(),
    ),
    quantities=(
        Quantity("score_gain", "z", "Readout score of the generated text for the concept at the "
                 "largest multiplier minus at the smallest (unsteered model reads the text)", concept='steering_vectors', depends_on=('vectors', 'concept', 'prompt', 'multipliers', 'layer', 'samples', 'max_new_tokens', 'temperature')),
        Quantity("logprob_drop", "nats/token", "Mean log-probability per generated token under "
                 "the unsteered model, smallest multiplier minus largest (fluency lost)", concept='steering_vectors', depends_on=('vectors', 'concept', 'prompt', 'multipliers', 'layer', 'samples', 'max_new_tokens', 'temperature')),
    ),
    seconds=25,
    check=check,
)


def run(ctx, p: dict) -> Outcome:
    import torch

    from .. import readout as R
    from .. import vectors as V
    from .. import hooks

    _, r = R.open_readout(ctx, p["vectors"])
    tok, model = ctx.model.tokenizer, ctx.model.model
    ci = r.index(p["concept"])
    layer = r.layer(p["layer"], p["concept"])
    read_layer = r.layer("", p["concept"])
    vector = r.vectors[layer][ci]  # (H,), unit norm
    prefix = r.prefix(tok)
    prompt_ids = tok.apply_chat_template([{"role": "user", "content": p["prompt"]}],
                                         add_generation_prompt=True, tokenize=True,
                                         return_dict=True)["input_ids"]
    prompt = torch.tensor([prompt_ids], device=model.device)  # (1, prompt)
    h = V.hidden_states(model, prompt_ids, [layer])[layer]  # (prompt, H)
    resid_norm = h.norm(dim=-1).median().item()
    mults = sorted(p["multipliers"])
    rows, samples = [], []
    jobs = [(m, s) for m in mults for s in range(p["samples"])]
    gen: dict = {}
    for m, s in ctx.track(jobs, "Generating"):
        torch.manual_seed(p["seed"] * 1000 + s)  # sample s shares its random stream across multipliers
        with hooks.steer(model, layer, vector, m * resid_norm), torch.inference_mode():
            out = model.generate(prompt, max_new_tokens=p["max_new_tokens"],
                                 do_sample=p["temperature"] > 0,
                                 temperature=p["temperature"] or None, top_p=None, top_k=None,
                                 pad_token_id=tok.eos_token_id)
        new = out[0, prompt.shape[1]:].tolist()
        text = tok.decode(new, skip_special_tokens=True).strip()
        # read the text as a corpus text (unsteered), and its fluency given the prompt
        ids, start = V.encode(tok, text or ".", prefix)
        hs = V.hidden_states(model, ids, [read_layer])[read_layer]
        z = r.scores(V.pool(hs, start, r.pooling), read_layer)  # (C,)
        with torch.inference_mode():
            logits = model(out).logits[0, prompt.shape[1] - 1:-1].float()  # (new, vocab)
        lp = torch.log_softmax(logits, -1).gather(1, out[0, prompt.shape[1]:, None]).mean().item()
        rank = int((z > z[ci]).sum()) + 1
        gen.setdefault(m, []).append((z[ci].item(), rank, lp, len(set(new)) / max(1, len(new))))
        samples.append({"multiplier": m, "sample": s, "score": round(z[ci].item(), 3),
                        "rank": rank, "logprob": round(lp, 3), "text": text})
    for m in mults:
        g = gen[m]
        n = len(g)
        rows.append({"multiplier": m, "added_norm": round(m * resid_norm, 3),
                     "score": round(sum(x[0] for x in g) / n, 3),
                     "rank": round(sum(x[1] for x in g) / n, 2),
                     "top_share": round(sum(x[1] == 1 for x in g) / n, 3),
                     "logprob": round(sum(x[2] for x in g) / n, 3),
                     "distinct_tokens": round(sum(x[3] for x in g) / n, 3)})
    lo, hi = rows[0], rows[-1]
    metrics = {"score_gain": hi["score"] - lo["score"], "logprob_drop": lo["logprob"] - hi["logprob"],
               "top_share_at_max": hi["top_share"], "resid_norm": resid_norm, "layer": float(layer)}
    best = max(rows, key=lambda x: x["score"])
    summary = [
        f"Steering toward {p['concept']} at layer {layer}: multipliers are relative to the "
        f"residual norm there (median {resid_norm:.0f} over the prompt), so multiplier 1 adds "
        f"a vector as long as the residual itself; read at layer {read_layer} by the "
        "unsteered model.",
        "Readout score by multiplier: " + ", ".join(f"{x['multiplier']:g} -> {x['score']:+.2f}"
                                                    for x in rows) + " (sd).",
        "Log-prob per token: " + ", ".join(f"{x['multiplier']:g} -> {x['logprob']:.2f}"
                                           for x in rows) + "; lower means less fluent.",
        f"Highest score at multiplier {best['multiplier']:g}: "
        f"{next(s['text'] for s in samples if s['multiplier'] == best['multiplier'])[:160]!r}",
    ]
    return Outcome(metrics=metrics, tables={"sweep": rows, "samples": samples},
                   figures={"steering": _figure(rows, p["concept"], layer)}, summary=summary)


def _figure(rows, concept, layer):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [r["multiplier"] for r in rows]
    fig, a = plt.subplots(figsize=(5.5, 3.2))
    a.plot(x, [r["score"] for r in rows], "o-", color="tab:red", label=f"{concept} score (sd)")
    a.set_xlabel(f"multiplier (x residual norm, added at layer {layer})")
    a.set_ylabel(f"{concept} readout score (sd)", color="tab:red")
    b = a.twinx()
    b.plot(x, [r["logprob"] for r in rows], "s--", color="tab:blue", label="log-prob / token")
    b.set_ylabel("log-prob per token", color="tab:blue")
    a.set_title("Steering sweep")
    fig.tight_layout()
    return fig
