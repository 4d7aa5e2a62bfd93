"""attention: attention maps, attention sinks, head entropy and induction heads."""

from __future__ import annotations

import math

from ..experiment import Outcome, Param, Quantity, Spec, common

SPEC = Spec(
    name="attention",
    question="Where does each head look? How much attention goes to the first token, and "
             "which heads copy a repeated pattern (induction heads)?",
    concepts=("self_attention", "multi_head_attention", "causal_mask", "attention_sinks",
              "induction_heads", "cross_entropy_perplexity"),
    params=(
        Param("text", str, "When Mary and John went to the store, John gave a drink to Mary.",
              "Text whose attention maps are drawn"),
        Param("repeat_len", int, 40, "Length of the random token sequence that is repeated",
              low=4, high=4096),
        Param("top_heads", int, 5, "How many top induction heads to name", low=1, high=1000),
        *common(),
    ),
    quantities=(
        Quantity("first_token_share", "fraction", "Mean attention on the first token (layers 2+, all heads, positions 2+)", concept='attention_sinks', depends_on=('text',)),
        Quantity("loss_first_half", "nats/token", "Loss on the first copy of a random sequence", concept='induction_heads', depends_on=('repeat_len',)),
        Quantity("loss_second_half", "nats/token", "Loss on its repeat", concept='induction_heads', depends_on=('repeat_len',)),
        Quantity("top_prefix_matching", "fraction", "Prefix-matching score of the best induction head", concept='induction_heads', depends_on=('repeat_len',)),
    ),
    seconds=3,
)


def run(ctx, p: dict) -> Outcome:
    import torch

    tok, model = ctx.model.tokenizer, ctx.model.model
    cfg = model.config
    enc = ctx.encode(p["text"])
    if enc.input_ids.shape[1] < 2:
        from ...errors import UserError

        raise UserError("The text must be at least 2 tokens long to show where attention goes.")
    with torch.no_grad():
        att = model(**enc, output_attentions=True).attentions  # layers x (1, heads, q, k)
    A = torch.stack([a[0] for a in att])  # (layers, heads, seq, seq)
    n_layers, n_heads, seq, _ = A.shape
    # attention sinks: share of each row's attention on position 0, rows 1.. (row 0 is trivially 1)
    sink = A[:, :, 1:, 0].mean(dim=-1)  # (layers, heads)
    sink_layer = sink.mean(dim=-1)  # (layers,)
    ent = -(A.clamp_min(1e-12).log2() * A).sum(-1)[:, :, 1:].mean(-1)  # (layers, heads) bits
    # induction: [x; x] with x random tokens; loss per half and prefix-matching per head
    L = p["repeat_len"]
    ctx.check_length(2 * L)
    gen = torch.Generator().manual_seed(ctx.seed)
    x = torch.randint(1000, cfg.vocab_size - 1000, (L,), generator=gen)
    ids = torch.cat([x, x]).unsqueeze(0).to(model.device)  # (1, 2L)
    with torch.no_grad():
        out = model(ids, output_attentions=True)
    logp = torch.log_softmax(out.logits[0, :-1].double(), dim=-1)  # (2L-1, vocab)
    nll = -logp.gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1)  # (2L-1,)
    loss_first, loss_second = nll[: L - 1].mean().item(), nll[L:].mean().item()
    IA = torch.stack([a[0] for a in out.attentions])  # (layers, heads, 2L, 2L)
    q = torch.arange(L, 2 * L)  # second-copy positions
    prefix = IA[:, :, q, q - L + 1].mean(-1)  # attention to the token after the earlier copy
    flat = [(prefix[l, h].item(), l, h) for l in range(n_layers) for h in range(n_heads)]
    flat.sort(reverse=True)
    top = [{"head": f"L{l}H{h}", "layer": l, "head_index": h, "prefix_matching": round(s, 4)}
           for s, l, h in flat[: p["top_heads"]]]
    metrics = {
        "first_token_share": sink_layer[2:].mean().item() if n_layers > 2 else sink_layer.mean().item(),
        "loss_first_half": loss_first,
        "loss_second_half": loss_second,
        "loss_ratio": loss_second / loss_first,
        "top_prefix_matching": top[0]["prefix_matching"],
        "mean_head_entropy_bits": ent.mean().item(),
        "uniform_entropy_bits": sum(math.log2(i + 1) for i in range(1, seq)) / (seq - 1),
        "row_sum_error": (A.sum(-1) - 1).abs().max().item(),
        "future_attention": max(torch.triu(A[..., :, :], diagonal=1).abs().max().item(), 0.0),
    }
    tokens = [tok.decode([i]) for i in enc.input_ids[0].tolist()]
    summary = [
        f"Attention on the first token (layers 2-{n_layers - 1}): {metrics['first_token_share']:.1%} "
        "of each row on average: an attention sink.",
        f"Random sequence of {L} tokens: loss {loss_first:.2f} nats on the first copy, "
        f"{loss_second:.2f} on the repeat ({metrics['loss_ratio']:.2f}x).",
        "Top induction heads: " + ", ".join(f"{t['head']} ({t['prefix_matching']:.2f})" for t in top),
        f"Causal mask: largest attention to a future position {metrics['future_attention']:.1e}.",
    ]
    tables = {
        "sink_by_layer": [{"layer": l, "first_token_share": round(sink_layer[l].item(), 4)}
                          for l in range(n_layers)],
        "head_entropy_bits": [{"layer": l, **{f"h{h}": round(ent[l, h].item(), 3)
                                              for h in range(n_heads)}} for l in range(n_layers)],
        "induction_heads": top,
        "tokens": [{"position": i, "token": t} for i, t in enumerate(tokens)],
    }
    best = IA[top[0]["layer"], top[0]["head_index"]]  # (2L, 2L)
    return Outcome(metrics=metrics, tables=tables,
                   figures={"attention_maps": _maps(A), "top_heads": _zoom(A, top[:4], tokens),
                            "sinks_and_induction": _sinks(sink_layer, prefix, nll, L, best,
                                                          top[0]["head"])},
                   summary=summary)


def _zoom(A, heads, tokens):
    """The top induction heads' maps on the text, large, with the tokens on both axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seq = len(tokens)
    n = len(heads)
    size = min(max(3.0, 0.22 * seq + 1.5), 9.0)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size), squeeze=False)
    labels = [repr(t)[1:-1] for t in tokens]
    font = max(4, min(8, int(220 / max(seq, 1))))
    for ax, h in zip(axes[0], heads):
        ax.imshow(A[h["layer"], h["head_index"]].cpu().numpy(), cmap="viridis", vmin=0, vmax=1,
                  interpolation="nearest")
        ax.set_xticks(range(seq), labels, rotation=90, fontsize=font)
        ax.set_yticks(range(seq), labels, fontsize=font)
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query")
        ax.set_title(f"{h['head']} (prefix matching {h['prefix_matching']:.2f})", fontsize=9)
    fig.suptitle("Top induction heads on the text", fontsize=10)
    fig.tight_layout()
    return fig


def _maps(A):
    """Every layer's and head's attention map in one mosaic (one imshow: fast to draw)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    n_layers, n_heads, seq, _ = A.shape
    gap = max(1, seq // 8)
    cell = seq + gap
    mosaic = np.full((n_layers * cell - gap, n_heads * cell - gap), np.nan)
    for l in range(n_layers):
        for h in range(n_heads):
            mosaic[l * cell:l * cell + seq, h * cell:h * cell + seq] = A[l, h].cpu().numpy()
    fig, ax = plt.subplots(figsize=(0.9 * n_heads + 1, 0.9 * n_layers * 0.6 + 1))
    ax.imshow(mosaic, cmap="viridis", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.set_xticks([h * cell + seq / 2 for h in range(n_heads)], [f"head {h}" for h in range(n_heads)],
                  fontsize=7)
    ax.set_yticks([l * cell + seq / 2 for l in range(n_layers)], [f"layer {l}" for l in range(n_layers)],
                  fontsize=6)
    ax.tick_params(length=0)
    ax.set_title(f"Attention maps, all {n_layers} layers x {n_heads} heads\n(each cell: rows = "
                 f"query position, columns = key position, {seq} tokens)", fontsize=9)
    return fig


def _sinks(sink_layer, prefix, nll, L, best, best_name):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c, d) = plt.subplots(1, 4, figsize=(16, 3.4))
    a.plot(sink_layer.cpu().numpy(), "o-")
    a.set_xlabel("layer")
    a.set_ylabel("attention on first token")
    a.set_title("Attention sinks")
    im = b.imshow(prefix.cpu().numpy(), aspect="auto", cmap="magma")
    b.set_xlabel("head")
    b.set_ylabel("layer")
    b.set_title("Prefix-matching score")
    fig.colorbar(im, ax=b)
    c.plot(range(1, 2 * L), nll.cpu().numpy())
    c.axvline(L, color="grey", ls="--")
    c.set_xlabel("position")
    c.set_ylabel("loss (nats)")
    c.set_title("Repeated random tokens")
    d.imshow(best.cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
    d.set_xlabel("key position")
    d.set_ylabel("query position")
    d.set_title(f"Top induction head {best_name}: the off-diagonal stripe", fontsize=9)
    fig.tight_layout()
    return fig
