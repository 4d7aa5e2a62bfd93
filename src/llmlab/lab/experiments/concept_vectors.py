"""concept_vectors: extract concept directions from a story corpus, measure how well each
reads out on held-out texts, and save them for readout and steering."""

from __future__ import annotations

import json

from ..aggregators import AGGREGATORS
from ..experiment import Outcome, Param, Quantity, Spec, common



def _concepts(p: dict) -> list[str] | None:
    names = [c.strip() for c in p["concepts"].split(",") if c.strip()]
    return names or None


def _corpus(p: dict):
    from .. import corpus

    return corpus.load(p["corpus"], p["min_positives"], _concepts(p))


def check(p: dict, ws) -> None:
    _corpus(p)  # every corpus mistake is reported before the model loads


CV = ("corpus", "concepts", "layers", "pooling", "chat_template", "aggregator", "folds",
      "fold_seeds", "seed")  # what the cross-validated numbers depend on

SPEC = Spec(
    name="concept_vectors",
    question="Is an emotion a direction in the residual stream: at which layer does a "
             "difference of means read it out on texts it never saw, and which emotions share "
             "a direction?",
    concepts=("steering_vectors", "probing", "residual_stream", "superposition"),
    params=(
        Param("corpus", str, "", "Corpus folder (stories/, paired/, direct/); empty: the shipped "
              "starter corpus (8 emotions)"),
        Param("concepts", str, "", "Comma-separated concepts to make vectors for; empty: all "
              "(the others' texts stay negatives)"),
        Param("layers", str, ["0.2", "0.35", "0.5", "0.65", "0.8"], "Layers to read: indices "
              "(12, -1) or relative depths with a point (0.5)", many=True),
        Param("pooling", str, "mean", "Read the mean over the text's tokens or its last token",
              choices=("mean", "last")),
        Param("chat_template", bool, True, "Wrap every text as the assistant's reply to the "
              "same fixed user turn"),
        Param("aggregator", str, "mean", "Which vectors to save: difference of means, PCA of "
              "paired differences, logistic regression (L2 or L1)", choices=AGGREGATORS),
        Param("folds", int, 4, "Cross-validation folds for held-out AUC (a paired scenario is "
              "held out whole)", low=2, high=10),
        Param("fold_seeds", int, 5, "Fold splits to repeat the grouped cross-validation over "
              "(seeds seed, seed+1, ...): mean and 95% interval per concept and layer; the "
              "lexical baseline uses the same folds", low=1, high=50),
        Param("min_positives", int, 6, "Fewest positive texts a concept may have", low=2),
        *common(),
    ),
    quantities=(
        Quantity("lexical_auc", "AUC", "Held-out AUC of a word-counting classifier (TF-IDF + "
                 "logistic regression) on the same grouped folds, averaged over concepts and "
                 "fold seeds", concept='probing', on_model=False,
                 depends_on=('corpus', 'concepts', 'folds', 'fold_seeds', 'seed')),
        Quantity("mean_auc", "AUC", "Held-out AUC of the saved vectors, averaged over concepts "
                 "and fold seeds, at the best layer (0.5 = chance, 1 = perfect)", concept='probing', depends_on=CV),
        Quantity("min_auc", "AUC", "Held-out AUC of the hardest concept at that layer (mean over fold seeds)", concept='probing', depends_on=CV),
        Quantity("best_layer", "layer", "Layer with the highest mean held-out AUC (over concepts and fold seeds)", concept='residual_stream', depends_on=CV),
        Quantity("max_cosine", "cosine", "Largest cosine between two different concepts' "
                 "vectors at the best layer", concept='superposition', depends_on=CV),
    ),
    seconds=38,
    check=check,
)


def run(ctx, p: dict) -> Outcome:
    from .. import crossval as CV_
    from .. import readout as R
    from .. import vectors as V

    corpus = _corpus(p)
    tok, model = ctx.model.tokenizer, ctx.model.model
    layers = V.parse_layers(p["layers"], model.config.num_hidden_layers)
    prefix = V.template_prefix(tok, p["chat_template"])
    texts = corpus.unique_texts()
    acts = V.extract(model, tok, texts, layers, p["pooling"], prefix, ctx.track,
                     getattr(model.config, "max_position_embeddings", None))
    trained = V.train(corpus, acts, saved=p["aggregator"], folds=p["folds"], seed=p["seed"],
                      track=ctx.track)
    rep = trained.report
    # control: the same texts with shuffled concept labels; held-out AUC should be ~0.5
    control = V.train(corpus.shuffled(p["seed"]), acts, aggregators=(p["aggregator"],),
                      saved=p["aggregator"], folds=p["folds"], seed=p["seed"])
    rep["control"] = control.report["mean_auc"][p["aggregator"]]
    seeds = [p["seed"] + i for i in range(p["fold_seeds"])]
    rep["repeated"] = CV_.repeated(corpus, acts, p["aggregator"], p["folds"], seeds, rep)
    rep["lexical"] = CV_.lexical(corpus, p["folds"], seeds)
    rep["best_layer_one_split"] = rep["best_layer"]["_all"]
    rep["best_layer"]["_all"] = max(layers, key=lambda l: rep["repeated"]["mean_auc"][str(l)]["mean"] or 0)
    summary_c = corpus.summary()
    rep["corpus"] = summary_c
    rep["extraction"] = {"unique_texts": acts.forwards, "text_uses": summary_c["text_uses"],
                         "forwards_saved": summary_c["text_uses"] - acts.forwards,
                         "forward_s": round(acts.seconds, 2), "pooling": p["pooling"],
                         "chat_template": p["chat_template"],
                         "user_turn": V.USER_TURN if p["chat_template"] else None}
    readout = R.build_readout(corpus, acts, trained, {
        "model": ctx.model.name, "model_sha256": ctx.model.sha256, "pooling": p["pooling"],
        "chat_template": p["chat_template"], "user_turn": V.USER_TURN, "corpus": str(corpus.root)})
    R.save_readout(readout, ctx.out_dir)
    (ctx.out_dir / "report.json").write_text(json.dumps(rep, indent=2))

    saved, per = p["aggregator"], rep["per_concept"]
    best = rep["best_layer"]["_all"]
    rpt, lex = rep["repeated"], rep["lexical"]
    aucs = {c: rpt["per_concept"][c][str(best)]["mean"] or 0.0 for c in corpus.concepts}
    at_best = rpt["mean_auc"][str(best)]
    cos = rep["cosine"][str(best)]
    n = len(corpus.concepts)
    pair = max(((i, j) for i in range(n) for j in range(i + 1, n)), key=lambda ij: cos[ij[0]][ij[1]])
    hardest = min(aucs, key=aucs.get)
    metrics = {
        "mean_auc": at_best["mean"], "mean_auc_low": at_best["low"],
        "mean_auc_high": at_best["high"], "min_auc": aucs[hardest], "best_layer": float(best),
        "lexical_auc": lex["mean"]["mean"], "lexical_auc_low": lex["mean"]["low"],
        "lexical_auc_high": lex["mean"]["high"], "fold_seeds": float(len(seeds)),
        "max_cosine": cos[pair[0]][pair[1]], "unique_texts": float(acts.forwards),
        "forwards_saved": float(summary_c["text_uses"] - acts.forwards),
        "forward_s": acts.seconds, "redundant": float(len(rep["redundant"])),
        "control_auc": rep["control"][str(best)],
    }
    quality = []
    for c in corpus.concepts:
        for l in layers:
            e = per[c]["layers"][str(l)]
            quality.append({"concept": c, "layer": l,
                            **{f"auc_{g}": e["auc"][g] for g in V.AGGREGATORS},
                            "pc1_ratio": e["pc1_ratio"], "consistency": e["consistency"],
                            "nearest": ", ".join(f"{x['concept']} {x['cosine']:.2f}"
                                                 for x in e["nearest"]),
                            "ridge_r2": e["ridge_r2"],
                            "ridge_top": ", ".join(f"{x['concept']} {x['weight']:+.2f}"
                                                   for x in e["ridge_top"])})
    per_concept = [{"concept": c, "positives": per[c]["positives"],
                    "negatives": per[c]["negatives"], "pairs": per[c]["pairs"],
                    "best_layer": per[c]["best_layer"], "best_auc": per[c]["best_auc"],
                    f"auc_at_layer_{best}": aucs[c],
                    "auc_low": rpt["per_concept"][c][str(best)]["low"],
                    "auc_high": rpt["per_concept"][c][str(best)]["high"],
                    "lexical_auc": lex["per_concept"][c]["mean"],
                    "lexical_low": lex["per_concept"][c]["low"],
                    "lexical_high": lex["per_concept"][c]["high"]} for c in corpus.concepts]
    layer_rows = [{"layer": l, **{k: rpt["mean_auc"][str(l)][k] for k in ("mean", "low", "high")},
                   "one_split": rep["mean_auc"][saved][str(l)]} for l in layers]
    summary = [
        f"{n} concepts, {acts.forwards} unique texts forwarded once each in {acts.seconds:.1f} s; "
        f"without de-duplication {summary_c['text_uses']} forwards ({metrics['forwards_saved']:.0f} "
        "saved).",
        f"Best layer {best}: held-out AUC {metrics['mean_auc']:.3f} averaged over concepts and "
        f"{len(seeds)} fold splits (95% interval {_iv(at_best)}; {saved} vectors); hardest: "
        f"{hardest} ({aucs[hardest]:.3f}). One split alone picked layer "
        f"{rep['best_layer_one_split']}. Control with shuffled concept labels: "
        f"{metrics['control_auc']:.3f} (chance is 0.5).",
        _lexical_line(metrics, lex, at_best),
        f"Most similar pair at layer {best}: {corpus.concepts[pair[0]]} and "
        f"{corpus.concepts[pair[1]]} (cosine {metrics['max_cosine']:.2f}).",
        f"Redundant (R^2 > {V.REDUNDANT_R2} from the other vectors): "
        + (", ".join(f"{r['concept']}@{r['layer']}" for r in rep["redundant"]) or "none") + ".",
        f"Saved readout.safetensors + readout.json ({n} x {readout.hidden_size} per layer, "
        f"layers {', '.join(map(str, layers))}) and report.json. Read a text: llmlab lab run "
        "concept_readout; steer: llmlab lab run concept_steering -p concept=NAME.",
    ]
    return Outcome(metrics=metrics, tables={"per_concept": per_concept, "layers": layer_rows,
                                            "quality": quality},
                   figures={"auc_by_layer": _auc_figure(corpus.concepts, layers, per, saved),
                            "cosine": _cos_figure(corpus.concepts, cos, best)},
                   summary=summary)


def _iv(s: dict) -> str:
    return "n/a" if s["low"] is None else f"{s['low']:.3f}-{s['high']:.3f}"


def _lexical_line(m: dict, lex: dict, at_best: dict) -> str:
    """What the residual-stream AUC means beside a classifier that only counts words."""
    head = (f"Lexical baseline (TF-IDF + logistic regression, same grouped folds): AUC "
            f"{m['lexical_auc']:.3f} (95% interval {_iv(lex['mean'])}). ")
    if at_best["low"] is not None and lex["mean"]["high"] is not None and \
            at_best["low"] > lex["mean"]["high"]:
        return head + ("The residual-stream vectors beat counting words: they read something "
                       "beyond the surface vocabulary of these texts.")
    if at_best["high"] is not None and lex["mean"]["low"] is not None and \
            at_best["high"] < lex["mean"]["low"]:
        return head + ("Counting words beats the vectors: on this corpus the concepts are "
                       "given away by their vocabulary, so a high AUC alone does not show a "
                       "concept direction beyond the words.")
    return head + ("The intervals overlap: the vectors do no better than counting words on "
                   "this corpus, so the AUC alone does not show more than vocabulary.")


def _auc_figure(concepts, layers, per, saved):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = [[per[c]["layers"][str(l)]["auc"][saved] or 0.5 for l in layers] for c in concepts]
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(layers), 0.9 + 0.38 * len(concepts)))
    im = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(layers)), [str(l) for l in layers])
    ax.set_yticks(range(len(concepts)), concepts)
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v < 0.8 else "black")
    ax.set_xlabel("layer")
    ax.set_title(f"Held-out AUC ({saved} vectors)")
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    return fig


def _cos_figure(concepts, cos, layer):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(concepts)
    fig, ax = plt.subplots(figsize=(1.5 + 0.45 * n, 1.2 + 0.45 * n))
    im = ax.imshow(cos, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), concepts, rotation=60, ha="right")
    ax.set_yticks(range(n), concepts)
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{cos[i][j]:.2f}", ha="center", va="center", fontsize=6)
    ax.set_title(f"Cosine between concept vectors, layer {layer}")
    fig.colorbar(im, ax=ax, fraction=0.05)
    fig.tight_layout()
    return fig
