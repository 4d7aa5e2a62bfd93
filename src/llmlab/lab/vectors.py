"""Concept vectors: extraction, aggregators and the quality report (files: readout.py;
steering: hooks.steer).

Shapes: H = hidden size, C = concepts, n = unique texts, m = contrastive pairs.
Activations are read from the residual stream after a decoder layer (the layer's output,
before the final norm), pooled over the text's own tokens (`mean`) or taken at its last
token (`last`). With chat-template wrapping, every text is the assistant's reply to the same
fixed user turn, so the template's tokens are identical for positives and negatives and
cancel in the differences; pooling never covers them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from ..errors import UserError
from .corpus import Corpus
from .aggregators import AGGREGATORS, FACTORIES
from .hooks import decoder_layers, hooked

USER_TURN = "Write a short paragraph about someone's day."  # the fixed turn around every text
REDUNDANT_R2 = 0.9
RIDGE_ALPHA = 0.1


def parse_layers(specs: list[str], n_layers: int) -> list[int]:
    """Layer indices from `12` (index), `-1` (from the end) or `0.5` (relative depth 0..1)."""
    out = []
    for s in specs:
        s = str(s).strip()
        try:
            if "." in s:
                f = float(s)
                if not 0 <= f <= 1:
                    raise ValueError
                out.append(round(f * (n_layers - 1)))
            else:
                i = int(s)
                if not -n_layers <= i < n_layers:
                    raise ValueError
                out.append(i % n_layers)
        except ValueError:
            raise UserError(f"Layer '{s}' is not a layer of this {n_layers}-layer model. Give "
                            f"indices 0..{n_layers - 1} (-1 counts from the end) or relative "
                            "depths with a point, 0.0..1.0, e.g. {param:layers=0.25,0.5,15}") from None
    return sorted(set(out))


def template_prefix(tok, chat_template: bool, user_turn: str = USER_TURN) -> list[int]:
    """Token ids put before every text: the chat template up to the assistant's reply."""
    if not chat_template:
        return []
    if not getattr(tok, "chat_template", None):
        raise UserError("This model's tokenizer has no chat template; run with "
                        "{param:chat_template=false}.")
    mark = "\u0001TEXT\u0001"
    s = tok.apply_chat_template([{"role": "user", "content": user_turn},
                                 {"role": "assistant", "content": mark}], tokenize=False)
    return tok(s[:s.index(mark)], add_special_tokens=False).input_ids


def encode(tok, text: str, prefix: list[int]) -> tuple[list[int], int]:
    """(ids, start): the prefix then the text's own tokens, which begin at `start`."""
    return prefix + tok(text, add_special_tokens=False).input_ids, len(prefix)


class _Done(Exception):
    """Raised by the hook on the deepest target layer: later layers need not run."""


def hidden_states(model, ids: list[int], layers: list[int]) -> dict[int, torch.Tensor]:
    """Residual stream after each layer in `layers`: {layer: (seq, H)}, one forward pass
    that stops after the deepest of them."""
    blocks = decoder_layers(model)[:max(layers) + 1]
    want, got = set(layers), {}

    def keep(i, mod, inp, out):
        if i in want:
            got[i] = (out[0] if isinstance(out, tuple) else out)[0].float()  # (seq, H)
        if i == len(blocks) - 1:
            raise _Done

    x = torch.tensor([ids], device=model.device)  # (1, seq)
    with hooked(blocks, keep), torch.inference_mode():
        try:
            model(input_ids=x, use_cache=False)
        except _Done:
            pass
    return got


def pool(h: torch.Tensor, start: int, pooling: str) -> torch.Tensor:
    """(seq, H) -> (H,): mean over the text's tokens, or its last token."""
    return h[start:].mean(0) if pooling == "mean" else h[-1]


@dataclass
class Activations:
    texts: list[str]
    layers: list[int]
    acts: dict[int, torch.Tensor]  # layer -> (n, H) float64
    forwards: int
    seconds: float

    def __post_init__(self) -> None:
        self._index = {t: i for i, t in enumerate(self.texts)}

    def rows(self, texts: Iterable[str]) -> list[int]:
        """Row numbers (into each layer's (n, H) matrix) of these texts."""
        return [self._index[t] for t in texts]


def extract(model, tok, texts: list[str], layers: list[int], pooling: str, prefix: list[int],
            track: Callable[[list, str], Iterable] = lambda xs, d: xs,
            max_tokens: int | None = None) -> Activations:
    """Forward each distinct text once and keep its pooled activation at every target layer."""
    unique = list(dict.fromkeys(texts))
    rows: dict[int, list] = {l: [] for l in layers}
    t0, forwards = time.perf_counter(), 0
    for text in track(unique, f"Forwarding {len(unique)} unique texts"):
        ids, start = encode(tok, text, prefix)
        if max_tokens and len(ids) > max_tokens:
            raise UserError(f"A corpus text is {len(ids)} tokens, more than the model's "
                            f"{max_tokens}; split it into shorter paragraphs: {text[:60]!r}...")
        hs = hidden_states(model, ids, layers)
        forwards += 1
        for l in layers:
            rows[l].append(pool(hs[l], start, pooling).double())
    acts = {l: torch.stack(r) for l, r in rows.items()}  # (n, H)
    return Activations(unique, layers, acts, forwards, time.perf_counter() - t0)


# --- quality ------------------------------------------------------------------------------

def _auc(pos: list[float], neg: list[float]) -> float | None:
    """Probability that a positive outscores a negative (ties count half)."""
    if not pos or not neg:
        return None
    p, n = torch.tensor(pos).unsqueeze(1), torch.tensor(neg).unsqueeze(0)
    return ((p > n).double().mean() + 0.5 * (p == n).double().mean()).item()


def folds_of(corpus: Corpus, k: int, seed: int) -> dict[str, int]:
    """Held-out fold of every group (a paired scenario is held out whole)."""
    groups = sorted({t.group for t in corpus.all_texts()})
    random.Random(seed).shuffle(groups)
    return {g: i % k for i, g in enumerate(groups)}


def _spread(d: torch.Tensor) -> dict:
    """How one-dimensional the pair differences d (m, H) are: the first principal
    component's share of their (uncentred) variance, and the mean cosine between two
    different differences."""
    s2 = torch.linalg.svdvals(d) ** 2
    dn = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
    g = dn @ dn.T  # (m, m) cosines
    m = len(d)
    consistency = ((g.sum() - g.diagonal().sum()) / (m * (m - 1))).item() if m > 1 else 1.0
    return {"pc1_ratio": round((s2[0] / s2.sum()).item(), 4), "consistency": round(consistency, 4)}


@dataclass
class Trained:
    vectors: dict[str, dict[int, dict[str, torch.Tensor]]]  # concept -> layer -> agg -> (H,)
    report: dict


def train(corpus: Corpus, acts: Activations, aggregators: tuple[str, ...] = AGGREGATORS,
          saved: str = "mean", folds: int = 4, seed: int = 0,
          track: Callable[[list, str], Iterable] = lambda xs, d: xs) -> Trained:
    """Vectors for every concept, layer and aggregator, with the quality report."""
    fold = folds_of(corpus, folds, seed)
    agg = {g: FACTORIES[g]() for g in aggregators}
    vectors: dict = {}
    per: dict = {}
    for c in track(corpus.concepts, "Training and cross-validating"):
        pairs = corpus.pairs(c, seed)
        pi = acts.rows(p.text for p, _ in pairs)
        ni = acts.rows(n.text for _, n in pairs)
        pos_rows, neg_rows = corpus.positives[c], corpus.negatives(c)
        vectors[c] = {}
        per[c] = {"positives": len(pos_rows), "negatives": len(neg_rows), "pairs": len(pairs),
                  "layers": {}}
        for l in acts.layers:
            a = acts.acts[l]  # (n, H)
            pos, neg = a[pi], a[ni]  # (m, H)
            vectors[c][l] = {g: agg[g](pos, neg) for g in aggregators}
            aucs = {}
            for g in aggregators:
                sp, sn = [], []  # out-of-fold scores of positives and negatives
                for f in range(folds):
                    train_ = [j for j, (p, n) in enumerate(pairs)
                              if fold[p.group] != f and fold[n.group] != f]
                    held_p = [t.text for t in pos_rows if fold[t.group] == f]
                    held_n = [t.text for t in neg_rows if fold[t.group] == f]
                    if len(train_) < 2 or not (held_p or held_n):
                        continue
                    v = agg[g](pos[train_], neg[train_])
                    sp += (a[acts.rows(held_p)] @ v).tolist()
                    sn += (a[acts.rows(held_n)] @ v).tolist()
                auc = _auc(sp, sn)
                aucs[g] = None if auc is None else round(auc, 4)
            per[c]["layers"][str(l)] = {"auc": aucs, **_spread(pos - neg)}
    report = {"concepts": corpus.concepts, "layers": acts.layers, "saved_aggregator": saved,
              "aggregators": list(aggregators), "folds": folds, "per_concept": per,
              "cosine": {}, "redundant": []}
    for l in acts.layers:
        v = torch.stack([vectors[c][l][saved] for c in corpus.concepts])  # (C, H)
        cos = v @ v.T
        report["cosine"][str(l)] = [[round(x, 4) for x in row] for row in cos.tolist()]
        for i, c in enumerate(corpus.concepts):
            others = [j for j in range(len(corpus.concepts)) if j != i]
            near = sorted(others, key=lambda j: -cos[i, j].item())[:3]
            fit = ridge(v[i], v[others])
            entry = per[c]["layers"][str(l)]
            entry["nearest"] = [{"concept": corpus.concepts[j], "cosine": round(cos[i, j].item(), 4)}
                                for j in near]
            entry["ridge_r2"] = round(fit["r2"], 4)
            entry["ridge_top"] = [{"concept": corpus.concepts[others[j]], "weight": round(w, 4)}
                                  for j, w in fit["top"]]
            entry["redundant"] = fit["r2"] > REDUNDANT_R2
            if entry["redundant"]:
                report["redundant"].append({"concept": c, "layer": l, "r2": round(fit["r2"], 4)})
    # mean held-out AUC over concepts, per aggregator and layer; the best layers by it
    report["mean_auc"] = {g: {str(l): _mean([per[c]["layers"][str(l)]["auc"][g]
                                             for c in corpus.concepts]) for l in acts.layers}
                          for g in aggregators}
    report["best_layer"] = {"_all": max(acts.layers,
                                        key=lambda l: report["mean_auc"][saved][str(l)] or 0)}
    for c in corpus.concepts:
        layers = per[c]["layers"]
        best = max(acts.layers, key=lambda l: layers[str(l)]["auc"].get(saved) or 0)
        per[c]["best_layer"] = report["best_layer"][c] = best
        per[c]["best_auc"] = layers[str(best)]["auc"].get(saved)
    return Trained(vectors, report)


def _mean(xs: list) -> float | None:
    """Mean of the values that exist (an AUC is None when a fold held out nothing)."""
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def ridge(y: torch.Tensor, x: torch.Tensor, alpha: float = RIDGE_ALPHA) -> dict:
    """Ridge regression of vector y (H,) on the rows of x (k, H), no intercept. R² is the share
    of y's squared norm explained; `top`: the 3 largest |weights| as (row, weight)."""
    if len(x) == 0:
        return {"r2": 0.0, "top": []}
    xt = x.T  # (H, k)
    w = torch.linalg.solve(xt.T @ xt + alpha * torch.eye(len(x), dtype=x.dtype), xt.T @ y)
    r2 = 1 - ((y - xt @ w).square().sum() / y.square().sum()).item()
    top = sorted(range(len(w)), key=lambda j: -abs(w[j].item()))[:3]
    return {"r2": r2, "top": [(j, w[j].item()) for j in top]}
