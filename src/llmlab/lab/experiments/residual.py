"""residual: logit lens, attention vs MLP writes, residual norms, outlier activations."""

from __future__ import annotations

from ..hooks import hooked
from ..spec import Outcome, Param, Quantity, Spec, common

SPEC = Spec(
    name="residual",
    question="What does the residual stream hold layer by layer: when does the answer appear, "
             "who writes more (attention or MLP), and where are the outliers?",
    concepts=("residual_stream", "logit_lens", "mlp_blocks", "normalization", "logits"),
    params=(
        Param("prompt", str, "The Eiffel Tower is located in the city of",
              "Prompt whose last position is read at every layer"),
        Param("top_k", int, 5, "Top tokens shown per layer"),
        *common(),
    ),
    quantities=(
        Quantity("answer_first_layer", "layer", "First layer at which the final answer is the logit-lens top token"),
        Quantity("final_answer_prob", "probability", "Probability of the final answer at the output"),
        Quantity("residual_norm_growth", "ratio", "Residual norm at the last layer / after layer 0 (last position)"),
        Quantity("mlp_share", "fraction", "Share of the total update norm written by MLPs (last position)"),
    ),
    seconds=5,
)


def run(ctx, p: dict) -> Outcome:
    import torch

    tok, model = ctx.model.tokenizer, ctx.model.model
    enc = tok(p["prompt"], return_tensors="pt", add_special_tokens=False).to(model.device)
    ctx.check_length(enc.input_ids.shape[1])
    layers = model.model.layers
    writes: dict[str, list] = {"attn": [None] * len(layers), "mlp": [None] * len(layers)}

    def keep(kind):
        def hook(i, mod, inp, out):
            out = out[0] if isinstance(out, tuple) else out
            writes[kind][i] = out[0, -1].norm().item()  # norm of the update at the last position
        return hook

    with hooked([l.self_attn for l in layers], keep("attn")), \
            hooked([l.mlp for l in layers], keep("mlp")), torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    hs = out.hidden_states  # embeddings + one per layer, each (1, seq, hidden)
    final = out.logits[0, -1]  # (vocab,)
    answer = int(final.argmax())
    probs = torch.softmax(final.double(), -1)
    lens, first_layer = [], None
    with torch.no_grad():
        for l in range(1, len(hs)):
            h = hs[l][0, -1]  # (hidden,)
            if l < len(hs) - 1:  # hidden_states[-1] already has the final norm applied
                h = model.model.norm(h)
            lg = model.lm_head(h)  # (vocab,)
            rank = int((lg > lg[answer]).sum())
            top = torch.topk(lg, p["top_k"]).indices.tolist()
            if rank == 0 and first_layer is None:
                first_layer = l - 1
            lens.append({"layer": l - 1, "answer_rank": rank,
                         "top": [tok.decode([i]) for i in top]})
    norms = [hs[l][0, -1].norm().item() for l in range(len(hs))]
    # largest activations across all layers and positions
    stack = torch.stack(hs[1:-1])[:, 0]  # (layers-1, seq, hidden), pre-final-norm states
    flat = stack.abs().flatten()
    top_vals = torch.topk(flat, 5)
    n_seq, n_hid = stack.shape[1], stack.shape[2]
    tokens = [tok.decode([i]) for i in enc.input_ids[0].tolist()]
    outliers = []
    for v, idx in zip(top_vals.values.tolist(), top_vals.indices.tolist()):
        l, rem = divmod(idx, n_seq * n_hid)
        pos, dim = divmod(rem, n_hid)
        outliers.append({"layer": l, "position": pos, "token": tokens[pos], "dim": dim,
                         "value": round(stack[l, pos, dim].item(), 2), "abs": round(v, 2)})
    attn_total, mlp_total = sum(writes["attn"]), sum(writes["mlp"])
    metrics = {
        "answer_first_layer": float(first_layer if first_layer is not None else len(layers)),
        "final_answer_prob": probs[answer].item(),
        "residual_norm_growth": norms[-2] / norms[1],
        "mlp_share": mlp_total / (attn_total + mlp_total),
        "max_abs_activation": outliers[0]["abs"],
    }
    summary = [
        f"Final answer {tok.decode([answer])!r} (p = {metrics['final_answer_prob']:.3f}); the logit "
        f"lens ranks it first from layer {int(metrics['answer_first_layer'])} on.",
        f"Residual norm at the last position grows {metrics['residual_norm_growth']:.1f}x from "
        "layer 0 to the last layer.",
        f"MLPs write {metrics['mlp_share']:.0%} of the total update norm at the last position.",
        f"Largest activation: {outliers[0]['value']} in dimension {outliers[0]['dim']} at layer "
        f"{outliers[0]['layer']} on token {outliers[0]['token']!r}.",
    ]
    tables = {
        "logit_lens": lens,
        "norms": [{"layer": l - 1, "residual_norm": round(norms[l], 3),
                   "attn_write": round(writes["attn"][l - 1], 3),
                   "mlp_write": round(writes["mlp"][l - 1], 3)} for l in range(1, len(hs))],
        "outliers": outliers,
    }
    return Outcome(metrics=metrics, tables=tables,
                   figures={"residual": _figure(lens, norms, writes)}, summary=summary)


def _figure(lens, norms, writes):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.2))
    a.semilogy([r["layer"] for r in lens], [r["answer_rank"] + 1 for r in lens], "o-")
    a.set_xlabel("layer")
    a.set_ylabel("rank of final answer + 1")
    a.set_title("Logit lens")
    x = range(len(writes["attn"]))
    b.plot(x, writes["attn"], label="attention write")
    b.plot(x, writes["mlp"], label="MLP write")
    b.plot(x, norms[1:], label="residual norm")
    b.set_yscale("log")
    b.set_xlabel("layer")
    b.legend(fontsize=7)
    b.set_title("Norms at the last position")
    fig.tight_layout()
    return fig
