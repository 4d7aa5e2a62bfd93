"""contamination: does SmolLM2 find texts it probably saw more likely than paraphrases?

A model that saw a text verbatim assigns it a higher likelihood than a paraphrase of the
same meaning. For each passage: mean log-probability per token (nats) of the original
and of a hand-written paraphrase, and the delta (original - paraphrase). Two groups:
"famous" public-domain texts copied all over the web (surely in the training data: the
positive control) and passages of the course's own study pages (written after the model
was trained: the negative control, which measures how much a paraphrase costs by itself).
The contamination signal is the gap between the groups' deltas. A second test gives the
model the first half of each original and checks whether greedy decoding continues it
verbatim.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ...errors import UserError
from .. import jsonl
from ..experiment import Outcome, Param, Quantity, Spec, common


def default_passages() -> Path:
    return Path(str(resources.files("llmlab") / "lab" / "corpora" / "contamination"
                    / "passages.jsonl"))


def load_passages(path: str) -> list[dict]:
    p = Path(path).expanduser() if path else default_passages()
    out = []
    for i, obj in jsonl.records(p, "passages", "id, group, original, paraphrase"):
        missing = [k for k in ("id", "group", "original", "paraphrase")
                   if not isinstance(obj, dict) or not str(obj.get(k) or "").strip()]
        if missing:
            raise UserError(f"{p.name} line {i} lacks {', '.join(missing)}.")
        out.append(obj)
    groups = {o["group"] for o in out}
    if len(groups) < 2:
        raise UserError(f"{p.name} needs passages in at least two groups (e.g. 'famous' and "
                        f"'study') to compare; it has {sorted(groups)}.")
    return out


SPEC = Spec(
    name="contamination",
    question="Can a model's likelihoods reveal which texts it was trained on: does it prefer "
             "an original to a paraphrase more for famous texts than for unseen ones?",
    concepts=("contamination", "pretraining_objective", "task_evals"),
    params=(
        Param("passages", str, "", "JSONL of id, group, original, paraphrase; empty: the "
              "shipped set (famous texts vs the study pages)"),
        Param("completion_tokens", int, 12, "Tokens generated to test verbatim completion",
              low=1, high=64),
        *common(),
    ),
    quantities=(
        Quantity("famous_delta", "nats/token", "Mean log-prob per token of the famous originals "
                 "minus their paraphrases", concept="contamination", depends_on=('passages',)),
        Quantity("study_delta", "nats/token", "The same on the study-page passages (unseen)", concept="contamination", depends_on=('passages',)),
        Quantity("delta_gap", "nats/token", "famous_delta - study_delta: the contamination signal", concept="contamination", depends_on=('passages',)),
        Quantity("famous_completion_match", "share", "Share of greedy continuation tokens that "
                 "match the famous originals verbatim", concept="contamination", depends_on=('passages', 'completion_tokens')),
    ),
    seconds=40,
    check=lambda p, ws: load_passages(p["passages"]),
)


def mean_logprob(model, tok, text: str) -> tuple[float, int]:
    """Mean log p(token | previous tokens) over the text's tokens after the first."""
    import torch

    ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids.to(model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].double()  # (seq-1, vocab)
    logp = torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None])[:, 0]  # (seq-1,)
    return logp.mean().item(), ids.shape[1]


def completion_match(model, tok, text: str, n: int) -> float:
    import torch

    ids = tok(text, add_special_tokens=False).input_ids
    half = len(ids) // 2
    truth = ids[half:half + n]
    prompt = torch.tensor([ids[:half]], device=model.device)
    with torch.no_grad():
        g = model.generate(prompt, max_new_tokens=len(truth), do_sample=False,
                           pad_token_id=tok.eos_token_id)[0, half:].tolist()
    return sum(a == b for a, b in zip(g, truth)) / len(truth) if truth else 0.0


def run(ctx, p: dict) -> Outcome:
    from ..rag.metrics import bootstrap_ci

    passages = load_passages(p["passages"])
    tok, model = ctx.model.tokenizer, ctx.model.model
    rows = []
    for ps in ctx.track(passages, "scoring passages"):
        lo, n_o = mean_logprob(model, tok, ps["original"])
        lp, n_p = mean_logprob(model, tok, ps["paraphrase"])
        rows.append({"id": ps["id"], "group": ps["group"], "original_logprob": round(lo, 4),
                     "paraphrase_logprob": round(lp, 4), "delta": round(lo - lp, 4),
                     "original_tokens": n_o, "paraphrase_tokens": n_p,
                     "completion_match": round(completion_match(
                         model, tok, ps["original"], p["completion_tokens"]), 4)})
    groups = []
    for g in sorted({r["group"] for r in rows}):
        rs = [r for r in rows if r["group"] == g]
        d = [r["delta"] for r in rs]
        lo, hi = bootstrap_ci(d, seed=p["seed"])
        groups.append({"group": g, "passages": len(rs), "mean_delta": round(sum(d) / len(d), 4),
                       "lo": round(lo, 4), "hi": round(hi, 4), "min": min(d), "max": max(d),
                       "positive": sum(x > 0 for x in d),
                       "completion_match": round(sum(r["completion_match"] for r in rs) / len(rs), 4)})
    by = {g["group"]: g for g in groups}
    famous = by.get("famous", groups[0])
    study = by.get("study", groups[-1])
    gap_lo, gap_hi = _gap_ci([r["delta"] for r in rows if r["group"] == famous["group"]],
                             [r["delta"] for r in rows if r["group"] == study["group"]], p["seed"])
    metrics = {"famous_delta": famous["mean_delta"], "study_delta": study["mean_delta"],
               "delta_gap": famous["mean_delta"] - study["mean_delta"],
               "delta_gap_lo": gap_lo, "delta_gap_hi": gap_hi,
               "famous_completion_match": famous["completion_match"],
               "study_completion_match": study["completion_match"]}
    verdict = ("an interval above 0: the model prefers the famous originals far more than an "
               "unseen text's, the signature of having seen them" if gap_lo > 0 else
               "an interval that includes 0: no contamination signal at this sample size")
    summary = [
        *[f"{g['group']} ({g['passages']} passages): original - paraphrase = {g['mean_delta']:+.3f} "
          f"nats/token [{g['lo']:+.3f}, {g['hi']:+.3f}], positive for {g['positive']} of "
          f"{g['passages']}; greedy continuation matches {g['completion_match']:.0%} of tokens."
          for g in groups],
        f"Gap {metrics['delta_gap']:+.3f} nats/token [{gap_lo:+.3f}, {gap_hi:+.3f}]: {verdict}.",
        "The paraphrases are written by the project; the unseen group measures what "
        "rewording costs on its own, so only the gap is evidence of memorisation.",
    ]
    return Outcome(metrics=metrics, tables={"groups": groups, "passages": rows},
                   figures={"contamination": _figure(rows)}, summary=summary)


def _gap_ci(a: list[float], b: list[float], seed: int) -> tuple[float, float]:
    """Bootstrap interval of mean(a) - mean(b), resampling each group."""
    import numpy as np

    rng = np.random.default_rng(seed)
    x, y = np.asarray(a), np.asarray(b)
    d = [x[rng.integers(0, len(x), len(x))].mean() - y[rng.integers(0, len(y), len(y))].mean()
         for _ in range(2000)]
    return float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))


def _figure(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.4))
    groups = sorted({r["group"] for r in rows})
    for i, g in enumerate(groups):
        rs = [r for r in rows if r["group"] == g]
        ax.scatter([r["paraphrase_logprob"] for r in rs], [r["original_logprob"] for r in rs],
                   label=g, s=20)
    lo = min(min(r["paraphrase_logprob"], r["original_logprob"]) for r in rows)
    hi = max(max(r["paraphrase_logprob"], r["original_logprob"]) for r in rows)
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel("paraphrase: mean log-prob per token")
    ax.set_ylabel("original: mean log-prob per token")
    ax.set_title("Above the line: the model prefers the original")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
