"""judge_calibration: SmolLM2 as an LLM judge, calibrated against human scores.

The judge reads each (question, answer) with a one-line rubric for the item's dimension
and is asked for a 1-5 score; its score is the expected digit under its next-token
distribution restricted to "1".."5" (the argmax is kept too). The human scores are the
project's labels in the shipped set (or your own JSONL with -p items=FILE).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ...errors import UserError
from .. import jsonl
from ..experiment import Outcome, Param, Quantity, Spec, common

RUBRICS = {
    "correctness": "5 = factually correct and complete, 3 = partly correct, 1 = wrong.",
    "relevance": "5 = directly answers the question asked, 3 = related but does not answer "
                 "it, 1 = off topic.",
}
PROMPT = ("You are grading an answer. Rate its {dimension} from 1 to 5.\n{rubric}\n\n"
          "Question: {question}\nAnswer: {answer}\n\nReply with one digit.")


def default_items() -> Path:
    return Path(str(resources.files("llmlab") / "lab" / "corpora" / "judge" / "items.jsonl"))


def load_items(path: str) -> list[dict]:
    p = Path(path).expanduser() if path else default_items()
    items = []
    for i, obj in jsonl.records(p, "items", "item, dimension, question, answer, human (a number)"):
        missing = [k for k in ("item", "question", "answer", "human")
                   if not isinstance(obj, dict) or k not in obj]
        if missing:
            raise UserError(f"{p.name} line {i} lacks {', '.join(missing)}. Each line needs "
                            "item, question, answer, human (and optionally dimension).")
        if isinstance(obj["human"], bool) or not isinstance(obj["human"], (int, float)):
            raise UserError(f"{p.name} line {i} (item {obj['item']}): the human score "
                            f"{obj['human']!r} is not a number.")
        items.append({**obj, "dimension": obj.get("dimension") or "correctness"})
    if len(items) < 3:
        raise UserError(f"{p.name} has {len(items)} item(s); calibration needs at least 3.")
    return items


def check(p: dict, ws) -> None:
    load_items(p["items"])


SPEC = Spec(
    name="judge_calibration",
    question="How far can you trust an LLM judge: how well do SmolLM2's scores agree with "
             "a human's on the same answers?",
    concepts=("llm_as_judge", "judge_calibration", "task_evals"),
    params=(
        Param("items", str, "", "JSONL of items with human scores; empty: the shipped 52"),
        Param("threshold", float, 3.0, "Pass threshold: a score >= this passes", low=-1e6,
              high=1e6),
        *common(),
    ),
    quantities=(
        Quantity("pearson_r", "r", "Pearson correlation of judge and human scores (all items)", concept="judge_calibration", depends_on=('items',)),
        Quantity("kappa", "kappa", "Cohen's kappa of pass/fail at the threshold", concept="judge_calibration", depends_on=('items', 'threshold')),
        Quantity("mae", "points", "Mean absolute error of the judge's score", concept="judge_calibration", depends_on=('items',)),
        Quantity("bias", "points", "Mean judge - human score (positive: lenient)", concept="llm_as_judge", depends_on=('items',)),
    ),
    seconds=40,
    check=check,
)


def judge_scores(ctx, items: list[dict]) -> list[dict]:
    import torch

    tok, model = ctx.model.tokenizer, ctx.model.model
    digits = [tok.encode(str(d), add_special_tokens=False)[0] for d in range(1, 6)]
    out = []
    for it in ctx.track(items, "judging"):
        rubric = RUBRICS.get(it["dimension"], "5 = excellent, 1 = poor.")
        msg = PROMPT.format(dimension=it["dimension"], rubric=rubric, question=it["question"],
                            answer=it["answer"])
        text = tok.apply_chat_template([{"role": "user", "content": msg}], tokenize=False,
                                       add_generation_prompt=True)
        enc = ctx.encode(text)
        with torch.no_grad():
            logits = model(**enc).logits[0, -1]  # (vocab,)
        p = torch.softmax(logits[digits].double(), dim=-1)  # (5,): over "1".."5" only
        mass = torch.softmax(logits.double(), dim=-1)[digits].sum().item()
        out.append({"item": it["item"], "dimension": it["dimension"], "human": float(it["human"]),
                    "judge": round(sum((d + 1) * p[d].item() for d in range(5)), 4),
                    "judge_argmax": int(p.argmax()) + 1, "digit_mass": round(mass, 4)})
    return out


def run(ctx, p: dict) -> Outcome:
    from .. import judge

    items = load_items(p["items"])
    rows = judge_scores(ctx, items)
    report = judge.calibrate(rows, p["threshold"], p["seed"])
    g = report["groups"][0]
    nan0 = lambda v: 0.0 if v != v else v  # noqa: E731 (an undefined r is reported as 0)
    metrics = {"pearson_r": nan0(g["pearson"]), "spearman_r": nan0(g["spearman"]),
               "kappa": nan0(g["kappa"]), "mae": g["mae"], "bias": g["bias"],
               "judge_higher_share": g["judge_higher"], "agreement": g["agreement"],
               "baseline_mae": g["baseline_mae"],
               "mean_digit_mass": sum(r["digit_mass"] for r in rows) / len(rows)}
    for grp in report["groups"][1:]:
        metrics[f"{grp['dimension']}_pearson_r"] = nan0(grp["pearson"])
        metrics[f"{grp['dimension']}_kappa"] = nan0(grp["kappa"])
    weak = g["kappa_hi"] < 0.6 or g["mae"] >= g["baseline_mae"]
    summary = judge.lines(report) + [
        f"The judge put {metrics['mean_digit_mass']:.0%} of its next-token probability on the "
        "digits 1-5 on average (the rest went to other tokens).",
        ("A 135M-parameter judge is weak: " if weak else "On this set the judge does fairly: ")
        + f"kappa {g['kappa']:.2f} (95% interval {g['kappa_lo']:.2f} to {g['kappa_hi']:.2f}) and "
        f"MAE {g['mae']:.2f} against {g['baseline_mae']:.2f} for always answering the median "
        "human score. Do not use its scores without this kind of check.",
    ]
    table = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in grp.items()}
             for grp in report["groups"]]
    return Outcome(metrics=metrics, tables={"agreement": table, "items": rows},
                   figures={"reliability": judge.figure(rows, report)}, summary=summary)
