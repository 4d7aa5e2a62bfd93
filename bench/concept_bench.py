"""Benchmark concept vectors (issue 7). Prints a markdown section for BENCHMARKS.md.

1. Agreement and speed against the public `steering-vectors` library, on the same model
   object, the same contrastive pairs (llmlab's `Corpus.pairs` of the starter corpus), the
   same layers and the same read position (last token, no chat template): cosine between
   the two libraries' difference-of-means and PCA vectors for every concept and layer, and
   the wall time of training (extracting activations + aggregating) for all concepts.
   llmlab forwards each unique text once; steering-vectors forwards both texts of every pair.
2. The full starter corpus through `concept_vectors` with its defaults (and, with
   --variants, last-token pooling and no chat template): wall time, forwards saved by
   de-duplication, held-out AUC per concept and per aggregator.
3. Without the chat template, the first position (the attention sink) in mean pooling.
4. Steering: `concept_steering` toward "sad" with its defaults, on the vectors of a default
   `concept_vectors` run: the readout score, rank and fluency per multiplier.

    .venv/bin/pip install --no-deps steering-vectors==0.12.2   # (it pins an older transformers)
    .venv/bin/python bench/concept_bench.py [--concepts 8] [--variants] [--threads N]
                                             [--only agreement,corpus,sink,steering]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from _summary import row


def agreement(n_concepts: int) -> list[str]:
    import torch
    from steering_vectors import aggregators as sva
    from steering_vectors.train_steering_vector import aggregate_activations, extract_activations

    from llmlab.lab import corpus, models
    from llmlab.lab import vectors as V

    loaded = models.load()
    model, tok = loaded.model, loaded.tokenizer
    c = corpus.load(None)
    concepts = c.concepts[:n_concepts]
    layers = V.parse_layers(["0.2", "0.35", "0.5", "0.65", "0.8"], model.config.num_hidden_layers)
    pairs = {k: c.pairs(k, seed=0) for k in concepts}
    needed = list(dict.fromkeys(t.text for k in concepts for p in pairs[k] for t in p))

    mean, pca = V.mean_aggregator(), V.pca_aggregator()

    def ours():
        t0 = time.perf_counter()
        acts = V.extract(model, tok, needed, layers, "last", [])
        out = {}
        for k in concepts:
            pi = acts.rows(p.text for p, _ in pairs[k])
            ni = acts.rows(n.text for _, n in pairs[k])
            for l in layers:
                pos, neg = acts.acts[l][pi], acts.acts[l][ni]
                out[k, l] = {"mean": mean(pos, neg), "pca": pca(pos, neg)}
        return out, time.perf_counter() - t0, acts.forwards

    def theirs():
        t0 = time.perf_counter()
        out, forwards = {}, 0
        for k in concepts:
            samples = [(p.text, n.text) for p, n in pairs[k]]
            pos, neg = extract_activations(model, tok, samples, layers=layers, read_token_index=-1)
            forwards += 2 * len(samples)
            for name, agg in (("mean", sva.mean_aggregator()), ("pca", sva.pca_aggregator())):
                for l, v in aggregate_activations(pos, neg, agg).items():
                    out.setdefault((k, l), {})[name] = v.double()
        return out, time.perf_counter() - t0, forwards

    with torch.inference_mode():
        a1, t_ours1, f_ours = ours()
        b, t_theirs, f_theirs = theirs()
        a2, t_ours2, _ = ours()
    cos = {name: [torch.nn.functional.cosine_similarity(a1[key][name], b[key][name], dim=0).item()
                  for key in a1] for name in ("mean", "pca")}
    same = all(torch.equal(a1[key][n], a2[key][n]) for key in a1 for n in ("mean", "pca"))
    worst = min(min(v) for v in cos.values())
    speed = t_theirs / statistics.mean([t_ours1, t_ours2])
    row(f"concept vectors vs steering-vectors 0.12.2, {len(concepts)} concepts x "
        f"{len(layers)} layers, mean and PCA", target="cosine >= 0.999",
        measured=f"min cosine {worst:.6f}", met=worst >= 0.999)
    row("concept-vector training (extract + aggregate) vs steering-vectors",
        target="no slower", measured=f"{statistics.mean([t_ours1, t_ours2]):.1f} s",
        ratio=f"{speed:.1f}x faster ({t_theirs:.1f} s; {f_theirs} vs {f_ours} forward passes)",
        met=speed >= 1)
    lines = [
        f"Same pairs: {len(concepts)} concepts, {sum(len(p) for p in pairs.values())} contrastive "
        f"pairs, layers {', '.join(map(str, layers))}, last token, no chat template.",
        "",
        "| aggregator | min cosine | largest 1 - cosine | vectors compared |",
        "|---|---|---|---|",
        *(f"| {n} | {min(v):.6f} | {1 - min(v):.1e} | {len(v)} |" for n, v in cos.items()),
        "",
        "| training (extract + aggregate, all concepts) | forward passes | wall time (s) |",
        "|---|---|---|",
        f"| llmlab (`vectors.extract` + aggregators), 1st | {f_ours} | {t_ours1:.1f} |",
        f"| steering-vectors 0.12.2 (`extract_activations` + `aggregate_activations`) | "
        f"{f_theirs} | {t_theirs:.1f} |",
        f"| llmlab, 2nd (after steering-vectors) | {f_ours} | {t_ours2:.1f} |",
        "",
        f"steering-vectors / llmlab wall time: **{t_theirs / statistics.mean([t_ours1, t_ours2]):.1f}x**"
        f"; agreement target cosine >= 0.999: **{'met' if min(min(v) for v in cos.values()) >= 0.999 else 'NOT met'}**;"
        f" llmlab's two runs bit-identical: {same}.",
    ]
    return lines


def corpus_runs(variants: bool) -> list[str]:
    from llmlab.lab.runner import run_experiment

    configs = [("defaults (mean pooling, chat template)", {})]
    if variants:
        configs += [("last-token pooling", {"pooling": "last"}),
                    ("no chat template", {"chat_template": "false"})]
    lines = []
    for label, params in configs:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as d:
            r = run_experiment(None, "concept_vectors", params, record=False,
                               out=Path(d), show_progress=False)
            rep = json.loads((Path(r["dir"]) / "report.json").read_text())
        wall = time.perf_counter() - t0
        m, ex, per = r["metrics"], rep["extraction"], rep["per_concept"]
        layers = rep["layers"]
        lines += [f"**{label}** (`llmlab lab run concept_vectors"
                  + "".join(f" -p {k}={v}" for k, v in params.items()) + "`): "
                  f"{wall:.1f} s wall in-process (model already loaded: "
                  f"{ex['forward_s']:.1f} s of forward passes); {ex['unique_texts']} unique "
                  f"texts forwarded instead of {ex['text_uses']} (**{ex['forwards_saved']} "
                  f"forwards saved**, {ex['text_uses'] / ex['unique_texts']:.0f}x fewer); best "
                  f"layer {int(m['best_layer'])}, mean held-out AUC {m['mean_auc']:.3f}, min "
                  f"{m['min_auc']:.3f}; most similar pair cosine {m['max_cosine']:.2f}; "
                  f"redundant vectors: {len(rep['redundant'])}.", ""]
        lines += ["| mean held-out AUC by layer | " + " | ".join(map(str, layers)) + " |",
                  "|---" * (len(layers) + 1) + "|"]
        for g in rep["aggregators"]:
            lines.append(f"| {g} | " + " | ".join(f"{rep['mean_auc'][g][str(l)]:.3f}"
                                                  for l in layers) + " |")
        if rep.get("control"):
            lines.append(f"| {rep['saved_aggregator']}, shuffled labels (control) | "
                         + " | ".join(f"{rep['control'][str(l)]:.3f}" for l in layers) + " |")
        lines.append("")
        if not params:
            best = int(m["best_layer"])
            lines += [f"| concept | positives | held-out AUC at layer {best} (mean) | best layer | "
                      "its AUC | nearest concept (cosine) | ridge R² |", "|---|---|---|---|---|---|---|"]
            for c in rep["concepts"]:
                e = per[c]["layers"][str(best)]
                lines.append(f"| {c} | {per[c]['positives']} | {e['auc']['mean']:.3f} | "
                             f"{per[c]['best_layer']} | {per[c]['best_auc']:.3f} | "
                             f"{e['nearest'][0]['concept']} ({e['nearest'][0]['cosine']:.2f}) | "
                             f"{e['ridge_r2']:.2f} |")
            lines.append("")
    return lines


def sink() -> list[str]:
    """Why mean pooling without the chat template fails at deep layers: the text's first token
    is then the sequence's first position (the attention sink). Its norm, and the held-out AUC
    with and without it in the mean."""
    import torch

    from llmlab.lab import corpus, models
    from llmlab.lab import vectors as V

    loaded = models.load()
    c = corpus.load(None)
    layers = [10, 14, 23]
    texts = c.unique_texts()
    rows: dict = {(l, m): [] for l in layers for m in ("all", "skip1")}
    first, rest = [], []
    for t in texts:
        ids, _ = V.encode(loaded.tokenizer, t, [])
        hs = V.hidden_states(loaded.model, ids, layers)
        for l in layers:
            rows[l, "all"].append(hs[l].mean(0).double())
            rows[l, "skip1"].append(hs[l][1:].mean(0).double())
        first.append(hs[14][0].norm().item())
        rest.append(hs[14][1:].norm(dim=-1).median().item())
    lines = [f"No chat template, mean pooling: at layer 14 the first position's residual norm is "
             f"{statistics.median(first):,.0f} (median over texts) against {statistics.median(rest):,.0f}"
             " for the other tokens.", "",
             "| mean pooled over | " + " | ".join(f"AUC layer {l}" for l in layers) + " |",
             "|---" * (len(layers) + 1) + "|"]
    for mode, label in (("all", "all tokens"), ("skip1", "all but the first")):
        acts = V.Activations(texts, layers, {l: torch.stack(rows[l, mode]) for l in layers},
                             len(texts), 0.0)
        auc = V.train(c, acts, aggregators=("mean",)).report["mean_auc"]["mean"]
        lines.append(f"| {label} | " + " | ".join(f"{auc[str(l)]:.3f}" for l in layers) + " |")
    return lines


def steering(threads: int) -> list[str]:
    """`concept_steering` with its defaults (multipliers relative to the residual norm) on the
    vectors of a default `concept_vectors` run, both recorded in a scratch workspace."""
    from llmlab.create import create_workspace
    from llmlab.lab.runner import run_experiment

    common = {"threads": str(threads)} if threads else {}
    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws", name="Bench Learner")
        t0 = time.perf_counter()
        run_experiment(ws, "concept_vectors", dict(common), show_progress=False)
        t1 = time.perf_counter()
        r = run_experiment(ws, "concept_steering", {"concept": "sad", **common},
                           show_progress=False)
        t2 = time.perf_counter()
    m, rows = r["metrics"], r["tables"]["sweep"]
    lines = [f"`llmlab lab run concept_vectors` then `llmlab lab run concept_steering -p "
             f"concept=sad`" + (f" (both `-p threads={threads}`)" if threads else "")
             + f": {t1 - t0:.0f} s and {t2 - t1:.0f} s. Steered at layer {int(m['layer'])}, "
             f"median residual norm over the prompt {m['resid_norm']:.0f}.", "",
             "| multiplier | added norm | \"sad\" score (sd) | mean rank of \"sad\" | "
             "log-prob / token |", "|---|---|---|---|---|"]
    for x in rows:
        lines.append(f"| {x['multiplier']:g} | {x['added_norm']:.0f} | {x['score']:+.2f} | "
                     f"{x['rank']:.2f} | {x['logprob']:.2f} |")
    best = next(s_["text"] for s_ in r["tables"]["samples"]
                if s_["multiplier"] == max(rows, key=lambda x: x["score"])["multiplier"])
    lines += ["", f"A generation at the highest-scoring multiplier: {best[:160]!r}"]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concepts", type=int, default=8, help="concepts in the agreement part")
    ap.add_argument("--only", default="agreement,corpus,sink,steering")
    ap.add_argument("--threads", type=int, default=0, help="torch threads of the steering "
                    "part's runs (0: the experiments' default)")
    ap.add_argument("--variants", action="store_true", help="also run last-token pooling and "
                    "no chat template on the full corpus")
    a = ap.parse_args()
    import torch

    parts = a.only.split(",")
    print(f"## Concept vectors (issue 7)\n\nMachine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()}"
          f" threads). Date: {time.strftime('%Y-%m-%d')}. Command: `.venv/bin/python "
          f"bench/concept_bench.py --concepts {a.concepts} --only {a.only}"
          f"{' --variants' if a.variants else ''}`.\n")
    if "agreement" in parts:
        print("### Agreement and speed vs steering-vectors\n")
        print("\n".join(agreement(a.concepts)) + "\n")
    if "corpus" in parts:
        print("### Starter corpus\n")
        print("\n".join(corpus_runs(a.variants)))
    if "sink" in parts:
        print("### The first position and mean pooling\n")
        print("\n".join(sink()) + "\n")
    if "steering" in parts:
        print("### Steering\n")
        print("\n".join(steering(a.threads)) + "\n")


if __name__ == "__main__":
    main()
