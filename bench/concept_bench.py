"""Benchmark concept vectors (issue 7). Prints a markdown section for BENCHMARKS.md.

1. Agreement and speed against the public `steering-vectors` library, on the same model
   object, the same contrastive pairs (llmlab's `Corpus.pairs` of the starter corpus) and the
   same layers: cosine between the two libraries' difference-of-means and PCA vectors for
   every concept and layer, in two read modes: the last token without the chat template
   (steering-vectors end to end) and `concept_vectors`' defaults, the mean over the text's
   tokens inside the chat template (steering-vectors records and aggregates; the template
   string and the mean over positions are this script's). Speed: the wall time of training
   (extracting activations + aggregating, last token) in interleaved rounds that alternate
   which library goes first. llmlab forwards each unique text once; steering-vectors
   forwards both texts of every pair.
2. The full starter corpus through `concept_vectors` with its defaults (and, with
   --variants, last-token pooling and no chat template): wall time, forwards saved by
   de-duplication, held-out AUC per concept and per aggregator.
3. Without the chat template, the first position (the attention sink) in mean pooling.
4. Steering: `concept_steering` toward "sad" with its defaults, on the vectors of a default
   `concept_vectors` run: the readout score, rank and fluency per multiplier.

    .venv/bin/pip install --no-deps steering-vectors==0.12.2   # (it pins an older transformers)
    .venv/bin/python bench/concept_bench.py [--concepts 8] [--speed-concepts K] [--pairs N] [--rounds 3]
                     [--threads N] [--variants] [--only agreement,corpus,sink,steering]
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


def _our_vectors(model, tok, concepts, pairs, layers, pooling, prefix):
    """llmlab: `vectors.extract` (each distinct text once) + llmlab's aggregators."""
    from llmlab.lab import aggregators as A
    from llmlab.lab import vectors as V

    needed = list(dict.fromkeys(t.text for k in concepts for p in pairs[k] for t in p))
    acts = V.extract(model, tok, needed, layers, pooling, prefix)
    mean, pca, out = A.mean_aggregator(), A.pca_aggregator(), {}
    for k in concepts:
        pi = acts.rows(p.text for p, _ in pairs[k])
        ni = acts.rows(n.text for _, n in pairs[k])
        for l in layers:
            pos, neg = acts.acts[l][pi], acts.acts[l][ni]  # (m, H)
            out[k, l] = {"mean": mean(pos, neg), "pca": pca(pos, neg)}
    return out, acts.forwards


def _their_vectors_last(model, tok, concepts, pairs, layers):
    """steering-vectors end to end: `extract_activations` (last token, both texts of every
    pair) + `aggregate_activations` with its own aggregators."""
    from steering_vectors import aggregators as sva
    from steering_vectors.train_steering_vector import aggregate_activations, extract_activations

    out, forwards = {}, 0
    for k in concepts:
        samples = [(p.text, n.text) for p, n in pairs[k]]
        pos, neg = extract_activations(model, tok, samples, layers=layers, read_token_index=-1)
        forwards += 2 * len(samples)
        for name, agg in (("mean", sva.mean_aggregator()), ("pca", sva.pca_aggregator())):
            for l, v in aggregate_activations(pos, neg, agg).items():
                out.setdefault((k, l), {})[name] = v.double()
    return out, forwards


def _their_vectors_default(model, tok, concepts, pairs, layers, user_turn):
    """The defaults (mean over the text's tokens, chat template) with steering-vectors'
    activation recording and aggregation; the template string and the mean over positions
    are this script's (steering-vectors reads one position per text). Returns the vectors,
    the forwards and how many texts tokenize differently joined to the template than apart."""
    from steering_vectors import aggregators as sva
    from steering_vectors import record_activations
    from steering_vectors.train_steering_vector import aggregate_activations

    # built here from the tokenizer's own template, not with llmlab's template_prefix
    head = tok.apply_chat_template([{"role": "user", "content": user_turn}],
                                   add_generation_prompt=True, tokenize=False)
    head_ids = tok(head).input_ids
    pooled, split = {}, 0
    for text in dict.fromkeys(t.text for k in concepts for p in pairs[k] for t in p):
        enc = tok([head + text], return_tensors="pt", padding=True)  # as extract_activations
        split += enc.input_ids[0, :len(head_ids)].tolist() != head_ids
        with record_activations(model, "decoder_block", layer_nums=layers) as rec:
            model(**enc.to(model.device))
        # mean over the text's own tokens: every position after the template's
        pooled[text] = {l: rec[l][-1][0, len(head_ids):].mean(0) for l in layers}  # (H,)
    out = {}
    for k in concepts:
        pos = {l: [pooled[p.text][l][None] for p, _ in pairs[k]] for l in layers}
        neg = {l: [pooled[n.text][l][None] for _, n in pairs[k]] for l in layers}
        for name, agg in (("mean", sva.mean_aggregator()), ("pca", sva.pca_aggregator())):
            for l, v in aggregate_activations(pos, neg, agg).items():
                out.setdefault((k, l), {})[name] = v.double()
    return out, len(pooled), split


def _cosines(a: dict, b: dict) -> dict[str, list[float]]:
    import torch

    return {n: [torch.nn.functional.cosine_similarity(a[key][n], b[key][n], dim=0).item()
                for key in a] for n in ("mean", "pca")}


def _spread(xs: list[float], fmt: str = "{:.1f}") -> str:
    return (fmt + " (" + fmt + "-" + fmt + ")").format(statistics.median(xs), min(xs), max(xs))


def agreement(n_concepts: int, speed_concepts: int, rounds: int, n_pairs: int = 0) -> list[str]:
    import random

    import torch

    from llmlab.lab import corpus, models
    from llmlab.lab import vectors as V

    loaded = models.load()
    model, tok = loaded.model, loaded.tokenizer
    c = corpus.load(None)
    concepts = c.concepts[:n_concepts]
    timed = concepts[:speed_concepts or n_concepts]
    layers = V.parse_layers(["0.2", "0.35", "0.5", "0.65", "0.8"], model.config.num_hidden_layers)
    pairs = {k: c.pairs(k, seed=0) for k in concepts}
    if n_pairs:  # a seeded sample of each concept's pairs, to fit a busy machine
        pairs = {k: random.Random(f"0:{k}").sample(v, min(n_pairs, len(v))) for k, v in pairs.items()}
    lines = [f"Same model object, same pairs (`Corpus.pairs` of the starter corpus, seed 0"
             + (f"; a seeded sample of {n_pairs} per concept" if n_pairs else "") + "): "
             f"{len(concepts)} concepts, {sum(len(pairs[k]) for k in concepts)} contrastive pairs, layers "
             f"{', '.join(map(str, layers))}; torch {torch.get_num_threads()} threads.", ""]

    # speed, last token without the template (steering-vectors' own read mode): rounds
    # alternate which library goes first; the load average is read around every timing
    ours_t, theirs_t, loads, runs, theirs_first = [], [], [], [], None
    with torch.inference_mode():
        for r in range(rounds):
            for who in (("ours", "theirs") if r % 2 == 0 else ("theirs", "ours")):
                loads.append(os.getloadavg()[0])
                t0 = time.perf_counter()
                if who == "ours":
                    out, f_ours = _our_vectors(model, tok, timed, pairs, layers, "last", [])
                    ours_t.append(time.perf_counter() - t0)
                    runs.append(out)
                else:
                    out, f_theirs = _their_vectors_last(model, tok, timed, pairs, layers)
                    theirs_t.append(time.perf_counter() - t0)
                    theirs_first = theirs_first or out
        loads.append(os.getloadavg()[0])
        # agreement, last token: the timed concepts from the first round, the rest untimed
        a_last = runs[0] if len(timed) == len(concepts) else \
            _our_vectors(model, tok, concepts, pairs, layers, "last", [])[0]
        b_last = dict(theirs_first)
        if len(timed) < len(concepts):
            b_last.update(_their_vectors_last(model, tok, concepts[len(timed):], pairs, layers)[0])
        # agreement, the experiment's defaults
        a_def, f_def = _our_vectors(model, tok, concepts, pairs, layers, "mean",
                                    V.template_prefix(tok, True))
        b_def, f_def_theirs, split = _their_vectors_default(model, tok, concepts, pairs, layers,
                                                            V.USER_TURN)
    same = all(torch.equal(x[key][n], runs[0][key][n]) for x in runs[1:] for key in runs[0]
               for n in ("mean", "pca"))
    cos = {"last token, no chat template": _cosines(a_last, b_last),
           "defaults: mean over the text's tokens, chat template": _cosines(a_def, b_def)}
    for mode, cs in cos.items():
        worst = min(min(v) for v in cs.values())
        row(f"concept vectors vs steering-vectors 0.12.2, {mode}, {len(concepts)} concepts x "
            f"{len(layers)} layers, mean and PCA", target="cosine >= 0.999",
            measured=f"min cosine {worst:.6f}", met=worst >= 0.999)
    ratios = [b / a for a, b in zip(ours_t, theirs_t)]
    row(f"concept-vector training (extract + aggregate, last token, {len(timed)} concepts) vs "
        "steering-vectors", target="no slower",
        measured=f"{_spread(ours_t)} s, median (min-max) of {rounds} interleaved rounds",
        ratio=f"{_spread(ratios)}x faster (steering-vectors {_spread(theirs_t)} s; "
              f"{f_theirs} vs {f_ours} forward passes)", met=min(ratios) >= 1)
    lines += ["| read mode | aggregator | min cosine | largest 1 - cosine | vectors compared |",
              "|---|---|---|---|---|"]
    for mode, cs in cos.items():
        lines += [f"| {mode} | {n} | {min(v):.6f} | {1 - min(v):.1e} | {len(v)} |"
                  for n, v in cs.items()]
    lines += [
        "",
        "Last token: steering-vectors end to end (`extract_activations(read_token_index=-1)`, "
        "both texts of every pair, then `aggregate_activations` with its `mean_aggregator` and "
        "`pca_aggregator`). Defaults: steering-vectors reads one position per text, so the "
        "mean pooling is this script's: it builds the prompt from the tokenizer's own chat "
        "template (`apply_chat_template` of the user turn with the generation prompt, not "
        "llmlab's `template_prefix`) followed by the text, tokenizes it as `extract_activations` "
        "does, records the decoder blocks' outputs with steering-vectors' `record_activations` "
        "(full forward), averages the positions after the template's tokens, and hands the "
        "pooled pairs to `aggregate_activations` with steering-vectors' aggregators. Each of the "
        f"{f_def_theirs} distinct texts is forwarded once on that side too (the vectors do not "
        f"depend on it); texts whose tokens differ at the template boundary when joined: {split}.",
        "",
        f"Speed, last token, {len(timed)} concepts ({sum(len(pairs[k]) for k in timed)} pairs), "
        f"{rounds} rounds alternating which library goes first (round 1: llmlab first); load "
        f"average (1 min) around the timings {min(loads):.1f}-{max(loads):.1f}.", "",
        "| training (extract + aggregate) | forward passes | wall time per round (s) | "
        "median (min-max) |", "|---|---|---|---|",
        f"| llmlab (`vectors.extract` + aggregators) | {f_ours} | "
        f"{', '.join(f'{t:.1f}' for t in ours_t)} | {_spread(ours_t)} |",
        f"| steering-vectors 0.12.2 (`extract_activations` + `aggregate_activations`) | "
        f"{f_theirs} | {', '.join(f'{t:.1f}' for t in theirs_t)} | {_spread(theirs_t)} |",
        "",
        f"steering-vectors / llmlab wall time, per round: {', '.join(f'{x:.1f}x' for x in ratios)}"
        f"; median **{statistics.median(ratios):.1f}x** (min {min(ratios):.1f}x, max "
        f"{max(ratios):.1f}x); per forward pass {statistics.median(theirs_t) / f_theirs * 1e3:.0f} "
        f"ms against {statistics.median(ours_t) / f_ours * 1e3:.0f} ms (medians). llmlab's "
        f"{rounds} runs bit-identical: {same}.",
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
    ap.add_argument("--speed-concepts", type=int, default=0, help="concepts in the agreement "
                    "part's timed rounds (0: all of --concepts)")
    ap.add_argument("--pairs", type=int, default=0, help="contrastive pairs per concept in the "
                    "agreement part, a seeded sample (0: all)")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds in the agreement part, "
                    "alternating which library goes first")
    ap.add_argument("--threads", type=int, default=0, help="torch threads of this process and "
                    "of the steering part's runs (0: torch's and the experiments' defaults)")
    ap.add_argument("--variants", action="store_true", help="also run last-token pooling and "
                    "no chat template on the full corpus")
    a = ap.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    parts = a.only.split(",")
    print(f"## Concept vectors (issue 7)\n\nMachine: {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()}"
          f" threads). Date: {time.strftime('%Y-%m-%d')}. Command: `.venv/bin/python "
          f"bench/concept_bench.py --concepts {a.concepts} --only {a.only}"
          f"{f' --speed-concepts {a.speed_concepts}' if a.speed_concepts else ''}"
          f"{f' --pairs {a.pairs}' if a.pairs else ''}"
          f"{f' --rounds {a.rounds}' if a.rounds != 3 else ''}"
          f"{f' --threads {a.threads}' if a.threads else ''}"
          f"{' --variants' if a.variants else ''}`.\n")
    if "agreement" in parts:
        print("### Agreement and speed vs steering-vectors\n")
        print("\n".join(agreement(a.concepts, a.speed_concepts, a.rounds, a.pairs)) + "\n")
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
