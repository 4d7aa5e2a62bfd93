"""concept_readout: project a text's hidden states, token by token, on every concept vector."""

from __future__ import annotations

from ..experiment import Outcome, Param, Quantity, Spec, common


def check(p: dict, ws) -> None:
    """The readout exists and has the concept (if one is named) and layer asked for."""
    from ..readout import find_readout, load_readout

    r = load_readout(find_readout(ws, p["vectors"]))
    if p["concept"]:
        r.index(p["concept"])
    r.layer(p["layer"], p["concept"] or None)


VECTORS = Param("vectors", str, "", "Readout folder or run id of a concept_vectors run; empty: "
                "the newest one in the workspace")

SPEC = Spec(
    name="concept_readout",
    question="Reading a new text through the concept vectors: which concept lights up, and on "
             "which tokens?",
    concepts=("steering_vectors", "probing", "residual_stream"),
    params=(
        Param("text", str, "The bus had been cancelled again. Nadia read the notice twice, "
              "crumpled her ticket and kicked the bench hard enough to hurt her toe.",
              "The text to read"),
        VECTORS,
        Param("layer", str, "", "Layer to read (one the readout has); empty: the best layer"),
        Param("concept", str, "", "Concept whose score and rank are reported; empty: the "
              "top-scoring one"),
        *common(),
    ),
    quantities=(
        Quantity("concept_score", "z", "The concept's score for the whole text, in standard "
                 "deviations of its corpus scores (pooled like the corpus)", concept='probing', depends_on=('vectors', 'text', 'layer', 'concept')),
        Quantity("concept_rank", "rank", "Its rank among the concepts by that score (1 = top)", concept='probing', depends_on=('vectors', 'text', 'layer', 'concept')),
    ),
    seconds=3,
    check=check,
)


def run(ctx, p: dict) -> Outcome:
    import torch

    from .. import readout as R
    from .. import vectors as V

    folder, r = R.open_readout(ctx, p["vectors"])
    tok, model = ctx.model.tokenizer, ctx.model.model
    layer = r.layer(p["layer"], p["concept"] or None)
    ids, start = V.encode(tok, p["text"], r.prefix(tok))
    if len(ids) == start:
        from ...errors import UserError

        raise UserError("The text is empty; give one with {param:text=...}.")
    ctx.check_length(len(ids))
    h = V.hidden_states(model, ids, [layer])[layer]  # (seq, H)
    per_token = r.scores(h[start:], layer)  # (text tokens, C)
    whole = r.scores(V.pool(h, start, r.pooling), layer)  # (C,)
    order = torch.argsort(whole, descending=True).tolist()
    target = r.index(p["concept"]) if p["concept"] else order[0]
    tokens = [tok.decode([i]) for i in ids[start:]]
    name = r.concepts[target]
    metrics = {"concept_score": whole[target].item(),
               "concept_rank": float(order.index(target) + 1),
               "top_score": whole[order[0]].item(), "layer": float(layer)}
    table = [{"concept": r.concepts[i], "score": round(whole[i].item(), 3),
              "max_token_score": round(per_token[:, i].max().item(), 3),
              "peak_token": tokens[int(per_token[:, i].argmax())]} for i in order]
    token_rows = [{"position": j, "token": t,
                   "top": r.concepts[int(per_token[j].argmax())],
                   **{c: round(per_token[j, i].item(), 2) for i, c in enumerate(r.concepts)}}
                  for j, t in enumerate(tokens)]
    summary = [
        f"Layer {layer}: top concept {r.concepts[order[0]]} ({whole[order[0]]:+.2f} sd), then "
        + ", ".join(f"{r.concepts[i]} ({whole[i]:+.2f})" for i in order[1:4]) + ".",
        f"{name}: score {metrics['concept_score']:+.2f} sd, rank {int(metrics['concept_rank'])} "
        f"of {len(r.concepts)}; strongest on token {table[order.index(target)]['peak_token']!r}.",
        f"Vectors from {folder}.",
    ]
    return Outcome(metrics=metrics, tables={"concepts": table, "tokens": token_rows},
                   figures={"readout": _figure(tokens, per_token, r.concepts, layer)},
                   summary=summary)


def _figure(tokens, scores, concepts, layer):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = scores.T.numpy()  # (C, tokens)
    lim = max(1.0, float(abs(s).max()))
    fig, ax = plt.subplots(figsize=(min(18, 2 + 0.32 * len(tokens)), 1 + 0.35 * len(concepts)))
    im = ax.imshow(s, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_yticks(range(len(concepts)), concepts)
    ax.set_xticks(range(len(tokens)), [t.replace("\n", "\\n") for t in tokens], rotation=75,
                  fontsize=7)
    ax.set_title(f"Per-token concept scores (sd), layer {layer}")
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    return fig
