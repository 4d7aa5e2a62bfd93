"""embeddings: sentence similarity from first principles on all-MiniLM-L6-v2.

Pairs of four kinds, each a claim a skeptic can check: paraphrases (different words,
same meaning), same-topic pairs (related, different claim), same-words pairs (the same
words, a different or opposite meaning: the adversarial case) and unrelated pairs
(every paraphrase's first side against the other pairs' second sides). Cosine, dot and
Euclidean distance on raw and unit-normalised vectors are compared.
"""

from __future__ import annotations

from ..experiment import Outcome, Param, Quantity, Spec, common

PARAPHRASE = [  # different words, same meaning
    ("How do I reset my password?", "Steps to recover access to your login"),
    ("The film was fantastic.", "I really enjoyed that movie."),
    ("The meeting has been postponed.", "We moved the gathering to a later date."),
    ("Where can I buy a train ticket?", "Which counter sells rail passes?"),
    ("The patient's fever went down overnight.", "By morning her temperature was back to normal."),
    ("Our servers are overloaded.", "The machines cannot keep up with the traffic."),
    ("He quit his job last week.", "Seven days ago he resigned from his position."),
    ("The soup is too salty.", "There is far too much sodium in this broth."),
]
WITHIN_TOPIC = [  # same topic, a different claim
    ("How do I reset my password?", "Our password policy requires 12 characters."),
    ("The film was fantastic.", "The film runs for two hours and ten minutes."),
    ("Where can I buy a train ticket?", "The train to Lyon leaves from platform 4."),
    ("Our servers are overloaded.", "The servers were bought in 2019."),
    ("The soup is too salty.", "The soup is made with carrots and lentils."),
    ("He quit his job last week.", "His job involves a lot of travel."),
]
SAME_WORDS = [  # the same (or nearly the same) words, a different or opposite meaning
    ("The dog bit the man.", "The man bit the dog."),
    ("This item is refundable.", "This item is not refundable."),
    ("I passed the exam.", "I did not pass the exam."),
    ("The bank raised interest rates.", "We sat on the river bank."),
    ("She gave him a book, not a pen.", "She gave him a pen, not a book."),
    ("Always restart the server before deploying.", "Never restart the server before deploying."),
]

SPEC = Spec(
    name="embeddings",
    question="What does cosine similarity between sentence embeddings measure: meaning, "
             "topic or shared words? And does the choice of cosine, dot or distance matter?",
    concepts=("text_embeddings", "cosine_similarity"),
    params=(Param("model", str, "minilm-l6", "Embedding model (`llmlab lab models`)",
                  choices=("minilm-l6",)),
            *common(model=False)),
    quantities=(
        Quantity("paraphrase_cosine", "cosine", "Mean cosine of paraphrase pairs (different "
                 "words, same meaning)", concept="cosine_similarity"),
        Quantity("unrelated_cosine", "cosine", "Mean cosine of unrelated pairs", concept="cosine_similarity"),
        Quantity("separation_ratio", "ratio", "Mean related cosine (paraphrase and same-topic) "
                 "/ mean unrelated cosine", concept="text_embeddings"),
        Quantity("same_words_cosine", "cosine", "Mean cosine of same-words, different-meaning "
                 "pairs (negations, swapped roles)", concept="text_embeddings"),
    ),
    model=None,
    seconds=5,
)


def pairs() -> list[tuple[str, str, str]]:
    out = [("paraphrase", a, b) for a, b in PARAPHRASE]
    out += [("same_topic", a, b) for a, b in WITHIN_TOPIC]
    out += [("same_words", a, b) for a, b in SAME_WORDS]
    out += [("unrelated", a, PARAPHRASE[j][1]) for i, (a, _) in enumerate(PARAPHRASE)
            for j in range(len(PARAPHRASE)) if j != i]
    return out


def run(ctx, p: dict) -> Outcome:
    import numpy as np
    from scipy.stats import spearmanr

    from .. import embedder
    from ..rag.metrics import bootstrap_ci

    emb = embedder.load(p["model"])
    ctx.conditions.update(embedder.conditions(emb))
    ps = pairs()
    texts = sorted({t for _, a, b in ps for t in (a, b)})
    raw = emb.encode(texts, normalize=False)  # (texts, 384): mean-pooled, not normalised
    unit = raw / np.linalg.norm(raw, axis=1, keepdims=True)  # (texts, 384)
    at = {t: i for i, t in enumerate(texts)}
    rows = []
    for kind, a, b in ps:
        i, j = at[a], at[b]
        rows.append({"kind": kind, "a": a, "b": b,
                     "cosine": float(unit[i] @ unit[j]),
                     "dot_raw": float(raw[i] @ raw[j]),
                     "euclid_raw": float(np.linalg.norm(raw[i] - raw[j])),
                     "dot_unit": float(unit[i] @ unit[j]),
                     "euclid_unit": float(np.linalg.norm(unit[i] - unit[j]))})
    by = {k: [r["cosine"] for r in rows if r["kind"] == k]
          for k in ("paraphrase", "same_topic", "same_words", "unrelated")}
    mean = {k: float(np.mean(v)) for k, v in by.items()}
    related = by["paraphrase"] + by["same_topic"]
    cos = [r["cosine"] for r in rows]
    # on unit vectors |a - b|^2 = 2 - 2 cos: distance and cosine give the same ranking
    identity_err = max(abs(r["euclid_unit"] ** 2 - (2 - 2 * r["cosine"])) for r in rows)
    ordered = sum(x > y for x in related for y in by["unrelated"]) / (
        len(related) * len(by["unrelated"]))
    norms = np.linalg.norm(raw, axis=1)
    metrics = {
        "paraphrase_cosine": mean["paraphrase"], "same_topic_cosine": mean["same_topic"],
        "same_words_cosine": mean["same_words"], "unrelated_cosine": mean["unrelated"],
        "separation_ratio": float(np.mean(related)) / mean["unrelated"],
        "separation_gap": float(np.mean(related)) - mean["unrelated"],
        "related_above_unrelated": ordered,
        "raw_dot_vs_cosine_spearman": float(spearmanr(cos, [r["dot_raw"] for r in rows])[0]),
        "raw_euclid_vs_cosine_spearman": float(-spearmanr(cos, [r["euclid_raw"] for r in rows])[0]),
        "unit_identity_max_error": identity_err,
        "norm_min": float(norms.min()), "norm_max": float(norms.max()),
    }
    kinds = []
    for k, v in by.items():
        lo, hi = bootstrap_ci(v, seed=p["seed"])
        kinds.append({"kind": k, "pairs": len(v), "mean_cosine": round(mean[k], 4),
                      "lo": round(lo, 4), "hi": round(hi, 4), "min": round(min(v), 4),
                      "max": round(max(v), 4)})
    flips = sum(1 for (_, a, b), r in zip(ps, rows) if r["kind"] == "same_words"
                and r["cosine"] > mean["paraphrase"])
    summary = [
        f"Paraphrases (different words, same meaning): mean cosine {mean['paraphrase']:.3f}; "
        f"same topic {mean['same_topic']:.3f}; unrelated {mean['unrelated']:.3f}. Separation "
        f"ratio {metrics['separation_ratio']:.1f} (gap {metrics['separation_gap']:.3f}); a "
        f"related pair beats an unrelated one in {ordered:.0%} of comparisons.",
        f"Same words, different meaning: mean cosine {mean['same_words']:.3f}; {flips} of "
        f"{len(by['same_words'])} score above the mean paraphrase. Cosine measures topic and "
        "wording, not logic: negation and swapped roles barely move it.",
        f"On unit vectors dot = cosine and |a-b|^2 = 2 - 2 cos (largest error "
        f"{identity_err:.1e}), so all three rank alike. On raw vectors (norms "
        f"{norms.min():.2f}..{norms.max():.2f}) the dot product's ranking agrees with cosine "
        f"at Spearman {metrics['raw_dot_vs_cosine_spearman']:.3f} and raw Euclidean distance's "
        f"at {metrics['raw_euclid_vs_cosine_spearman']:.3f} (1 = the same order); only "
        "normalised vectors make all three identical.",
    ]
    return Outcome(metrics=metrics, tables={"kinds": kinds, "pairs": rows},
                   figures={"similarity": _figure(rows)}, summary=summary)


def _figure(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = ["paraphrase", "same_topic", "same_words", "unrelated"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.4))
    for i, k in enumerate(kinds):
        ys = [r["cosine"] for r in rows if r["kind"] == k]
        a.scatter([i + (j % 7 - 3) * 0.04 for j in range(len(ys))], ys, s=14, alpha=0.7)
        a.hlines(sum(ys) / len(ys), i - 0.3, i + 0.3, color="k")
    a.set_xticks(range(len(kinds)), kinds, fontsize=8)
    a.set_ylabel("cosine")
    a.set_title("Cosine by pair kind (line: mean)")
    for k in kinds:
        rs = [r for r in rows if r["kind"] == k]
        b.scatter([r["cosine"] for r in rs], [r["dot_raw"] for r in rs], s=12, label=k)
    b.set_xlabel("cosine (unit vectors)")
    b.set_ylabel("dot product (raw vectors)")
    b.set_title("Raw dot product vs cosine")
    b.legend(fontsize=7)
    fig.tight_layout()
    return fig
