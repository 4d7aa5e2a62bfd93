"""residual: logit lens, direct logit attribution to each layer's attention and MLP,
residual norms, outlier activations."""

from __future__ import annotations

from ..hooks import capture_residual, decoder_layers, hooked
from ..experiment import Outcome, Param, Quantity, Spec, common

SPEC = Spec(
    name="residual",
    question="What does the residual stream hold layer by layer: when does the answer appear, "
             "which layers' attention and MLPs write it, and where are the outliers?",
    concepts=("residual_stream", "logit_lens", "mlp_blocks", "normalization", "logits"),
    params=(
        Param("prompt", str, "The Eiffel Tower is located in the city of",
              "Prompt whose last position is read at every layer"),
        Param("top_k", int, 5, "Top tokens shown per layer", low=1, high=50),
        *common(),
    ),
    quantities=(
        Quantity("answer_first_layer", "layer", "First layer from which on the final answer stays "
                 "the logit-lens top token (layers count from 0)", concept='logit_lens', depends_on=('prompt',)),
        Quantity("final_answer_prob", "probability", "Probability of the final answer at the output", concept='logits', depends_on=('prompt',)),
        Quantity("residual_norm_growth", "ratio", "Residual norm after the last layer / after "
                 "layer 0 (last position, before the final norm)", concept='residual_stream', depends_on=('prompt',)),
        Quantity("mlp_logit", "logit", "Direct logit attribution: the part of the answer's logit "
                 "written by all MLPs (last position, final norm's scale frozen)",
                 concept='mlp_blocks', depends_on=('prompt',)),
        Quantity("attn_logit", "logit", "Direct logit attribution: the part written by all "
                 "attention layers", concept='residual_stream', depends_on=('prompt',)),
        Quantity("mlp_share", "fraction", "Norm view, not attribution: MLP share of the summed "
                 "update norms (last position; the updates largely cancel)",
                 concept='mlp_blocks', depends_on=('prompt',)),
    ),
    seconds=2,
)


def run(ctx, p: dict) -> Outcome:
    import torch

    tok, model = ctx.model.tokenizer, ctx.model.model
    enc = ctx.encode(p["prompt"])
    layers = decoder_layers(model)
    writes: dict[str, list] = {"attn": [None] * len(layers), "mlp": [None] * len(layers)}

    def keep(kind):
        def hook(i, mod, inp, out):
            out = out[0] if isinstance(out, tuple) else out
            writes[kind][i] = out[0, -1].detach().clone()  # (hidden,) the update, last position
        return hook

    with hooked([l.self_attn for l in layers], keep("attn")), \
            hooked([l.mlp for l in layers], keep("mlp")), \
            capture_residual(model) as resid, torch.no_grad():
        out = model(**enc)
    # resid[l]: the residual stream after layer l, (1, seq, hidden), before the final norm
    # (transformers' hidden_states[-1] has the final norm applied; these never do).
    final = out.logits[0, -1]  # (vocab,)
    answer = int(final.argmax())
    probs = torch.softmax(final.double(), -1)
    lens = []
    with torch.no_grad():
        for l, h in enumerate(resid):
            lg = model.lm_head(model.model.norm(h[0, -1]))  # logit lens: (vocab,)
            rank = int((lg > lg[answer]).sum())
            top = torch.topk(lg, p["top_k"]).indices.tolist()
            lens.append({"layer": l, "answer_rank": rank,
                         "top": [tok.decode([i]) for i in top]})
    dla, dla_parts = _attribution(model, enc, resid, writes, answer, final)
    writes = {k: [v.norm().item() for v in vs] for k, vs in writes.items()}  # the norm view
    first_layer = len(lens) - 1  # the last layer's top token is the answer by definition
    while first_layer > 0 and lens[first_layer - 1]["answer_rank"] == 0:
        first_layer -= 1
    norms = [h[0, -1].norm().item() for h in resid]  # (layers,) at the last position
    # Largest activations: for each hidden dimension its largest |value| over all layers and
    # positions; the top dimensions, where they peak, and how they compare with a typical one.
    stack = torch.stack(resid)[:, 0]  # (layers, seq, hidden)
    n_seq, n_hid = stack.shape[1], stack.shape[2]
    per_dim = stack.abs().permute(2, 0, 1).reshape(n_hid, -1)  # (hidden, layers*seq)
    peak, where = per_dim.max(dim=1)  # (hidden,)
    typical = stack.abs().median().item()
    tokens = [tok.decode([i]) for i in enc.input_ids[0].tolist()]
    outliers = []
    for dim in torch.topk(peak, 5).indices.tolist():
        l, pos = divmod(int(where[dim]), n_seq)
        outliers.append({"dim": dim, "layer": l, "position": pos, "token": tokens[pos],
                         "value": round(stack[l, pos, dim].item(), 2),
                         "abs": round(peak[dim].item(), 2),
                         "x_median": round(peak[dim].item() / typical, 1),
                         "layers_in_top5": int((stack[:, :, dim].abs().amax(1) >=
                                                stack.abs().flatten(1).topk(5, 1).values[:, -1]
                                                ).sum())})
    attn_total, mlp_total = sum(writes["attn"]), sum(writes["mlp"])
    metrics = {
        "answer_first_layer": float(first_layer),
        "final_answer_prob": probs[answer].item(),
        "residual_norm_growth": norms[-1] / norms[0],
        "mlp_share": mlp_total / (attn_total + mlp_total),
        "answer_logit": final[answer].item(), **dla_parts,
        "max_abs_activation": outliers[0]["abs"],
        "max_activation_x_median": outliers[0]["x_median"],
    }
    summary = [
        f"Final answer {tok.decode([answer])!r} (p = {metrics['final_answer_prob']:.3f}); the logit "
        f"lens ranks it first from layer {int(metrics['answer_first_layer'])} on.",
        f"Residual norm at the last position grows {metrics['residual_norm_growth']:.1f}x from "
        "layer 0 to the last layer.",
        _dla_headline(dla, dla_parts, tok.decode([answer])),
        f"Norm view (not attribution): MLP updates are {metrics['mlp_share']:.0%} of the summed "
        f"update norms at the last position; the updates largely cancel (their norms sum to "
        f"{attn_total + mlp_total:,.0f}, the final residual norm is {norms[-1]:,.0f}).",
        f"Largest activation: {outliers[0]['value']} in dimension {outliers[0]['dim']} at layer "
        f"{outliers[0]['layer']} on token {outliers[0]['token']!r} (position "
        f"{outliers[0]['position']}), {outliers[0]['x_median']:.0f}x the median |activation|; "
        "top dimensions: " + ", ".join(f"{o['dim']} ({o['token']!r})" for o in outliers) + ".",
    ]
    tables = {
        "logit_lens": lens,
        "norms": [{"layer": l, "residual_norm": round(norms[l], 3),
                   "attn_write": round(writes["attn"][l], 3),
                   "mlp_write": round(writes["mlp"][l], 3)} for l in range(len(norms))],
        "outliers": outliers,
        "logit_attribution": dla,
    }
    return Outcome(metrics=metrics, tables=tables,
                   figures={"residual": _figure(lens, norms, writes, dla)}, summary=summary)


def _attribution(model, enc, resid, writes, answer: int, final) -> tuple[list[dict], dict]:
    """Direct logit attribution of the answer token at the last position.

    The final residual is the embedding plus every attention and MLP update. Freezing the
    final RMSNorm's scale at its value for that residual makes the logit linear in it, so
    each component's share is exact: (W_U[answer] * norm.weight) . component / rms(final).
    """
    import torch

    norm = model.model.norm
    x = resid[-1][0, -1]  # (hidden,) the final residual, before the final norm
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", 1e-6))
    scale = torch.rsqrt(x.pow(2).mean() + eps)
    direction = model.lm_head.weight[answer] * norm.weight * scale  # (hidden,)
    with torch.no_grad():
        embed = model.model.embed_tokens(enc.input_ids)[0, -1]  # (hidden,)
        rows = [{"layer": l, "attn_logit": (direction @ writes["attn"][l]).item(),
                 "mlp_logit": (direction @ writes["mlp"][l]).item()}
                for l in range(len(writes["attn"]))]
        parts = {"embed_logit": (direction @ embed).item(),
                 "attn_logit": sum(r["attn_logit"] for r in rows),
                 "mlp_logit": sum(r["mlp_logit"] for r in rows)}
    total = parts["embed_logit"] + parts["attn_logit"] + parts["mlp_logit"]
    parts["dla_error"] = abs(total - final[answer].item())
    return rows, parts


def _dla_headline(rows: list[dict], parts: dict, answer: str) -> str:
    comps = [(r["attn_logit"], f"attention in layer {r['layer']}") for r in rows] + \
            [(r["mlp_logit"], f"the MLP in layer {r['layer']}") for r in rows]
    comps.sort(reverse=True)
    best = ", ".join(f"{name} ({v:+.2f})" for v, name in comps[:3])
    total = parts["embed_logit"] + parts["attn_logit"] + parts["mlp_logit"]
    return (f"Direct logit attribution of {answer!r} (logit {total:.2f}): MLPs write "
            f"{parts['mlp_logit']:+.2f}, attention {parts['attn_logit']:+.2f}, the embedding "
            f"{parts['embed_logit']:+.2f}; the largest direct writers are {best} "
            f"(the parts add up to the logit within {parts['dla_error']:.1e}).")


def _figure(lens, norms, writes, dla):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, d, b) = plt.subplots(1, 3, figsize=(14, 3.2))
    xs = [r["layer"] for r in dla]
    d.bar([x - 0.2 for x in xs], [r["attn_logit"] for r in dla], 0.4, label="attention")
    d.bar([x + 0.2 for x in xs], [r["mlp_logit"] for r in dla], 0.4, label="MLP")
    d.axhline(0, color="grey", lw=0.6)
    d.set_xlabel("layer")
    d.set_ylabel("logit of the answer")
    d.legend(fontsize=7)
    d.set_title("Direct logit attribution")
    a.semilogy([r["layer"] for r in lens], [r["answer_rank"] + 1 for r in lens], "o-")
    a.set_xlabel("layer")
    a.set_ylabel("rank of final answer + 1")
    a.set_title("Logit lens")
    x = range(len(writes["attn"]))
    b.plot(x, writes["attn"], label="attention write")
    b.plot(x, writes["mlp"], label="MLP write")
    b.plot(x, norms, label="residual norm")
    b.set_yscale("log")
    b.set_xlabel("layer")
    b.legend(fontsize=7)
    b.set_title("Norm view (updates cancel)")
    fig.tight_layout()
    return fig
