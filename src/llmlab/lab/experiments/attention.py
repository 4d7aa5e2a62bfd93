"""attention: attention maps, attention sinks, head entropy and induction heads."""

from __future__ import annotations

import math

from ..spec import Outcome, Param, Quantity, Spec, common

SPEC = Spec(
    name="attention",
    question="Where does each head look? How much attention goes to the first token, and "
             "which heads copy a repeated pattern (induction heads)?",
    concepts=("self_attention", "multi_head_attention", "causal_mask", "attention_sinks",
              "induction_heads", "cross_entropy_perplexity"),
    params=(
        Param("text", str, "When Mary and John went to the store, John gave a drink to Mary.",
              "Text whose attention maps are drawn"),
        Param("repeat_len", int, 40, "Length of the random token sequence that is repeated"),
        Param("top_heads", int, 5, "How many top induction heads to name"),
        *common(),
    ),
    quantities=(
        Quantity("first_token_share", "fraction", "Mean attention on the first token (layers 2+, all heads, positions 2+)"),
        Quantity("loss_first_half", "nats/token", "Loss on the first copy of a random sequence"),
        Quantity("loss_second_half", "nats/token", "Loss on its repeat"),
        Quantity("top_prefix_matching", "fraction", "Prefix-matching score of the best induction head"),
    ),
    seconds=10,
)


def run(ctx, p: dict) -> Outcome:
    import torch

    tok, model = ctx.model.tokenizer, ctx.model.model
    cfg = model.config
    enc = tok(p["text"], return_tensors="pt", add_special_tokens=False).to(model.device)
    ctx.check_length(enc.input_ids.shape[1])
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
    return Outcome(metrics=metrics, tables=tables,
                   figures={"attention_maps": _maps(A, tokens),
                            "sinks_and_induction": _sinks(sink_layer, prefix, nll, L)},
                   summary=summary)


def _maps(A, tokens):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_layers, n_heads = A.shape[:2]
    layers = sorted({0, n_layers // 3, 2 * n_layers // 3, n_layers - 1})
    fig, axes = plt.subplots(len(layers), n_heads, figsize=(1.4 * n_heads, 1.5 * len(layers)))
    for r, l in enumerate(layers):
        for h in range(n_heads):
            ax = axes[r][h]
            ax.imshow(A[l, h].cpu().numpy(), cmap="viridis", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if h == 0:
                ax.set_ylabel(f"layer {l}", fontsize=7)
            if r == 0:
                ax.set_title(f"head {h}", fontsize=7)
    fig.suptitle("Attention maps (rows: query position, columns: key position)", fontsize=9)
    return fig


def _sinks(sink_layer, prefix, nll, L):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(12, 3.2))
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
    fig.tight_layout()
    return fig
