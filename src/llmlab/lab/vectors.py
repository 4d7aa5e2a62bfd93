"""Concept vectors: extraction, aggregators, quality report, readout files, steering.

Shapes: H = hidden size, C = concepts, n = unique texts, m = contrastive pairs.
Activations are read from the residual stream after a decoder layer (the layer's output,
before the final norm), pooled over the text's own tokens (`mean`) or taken at its last
token (`last`). With chat-template wrapping, every text is the assistant's reply to the same
fixed user turn, so the template's tokens are identical for positives and negatives and
cancel in the differences; pooling never covers them.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from .corpus import Corpus
from .experiments.concept_vectors import AGGREGATORS
from .hooks import decoder_layers, hooked

USER_TURN = "Write a short paragraph about someone's day."  # the fixed turn around every text
__all__ = ["AGGREGATORS"]  # (declared with the experiment, which must import without torch)
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
                            "depths with a point, 0.0..1.0, e.g. -p layers=0.25,0.5,15") from None
    return sorted(set(out))


def template_prefix(tok, chat_template: bool, user_turn: str = USER_TURN) -> list[int]:
    """Token ids put before every text: the chat template up to the assistant's reply."""
    if not chat_template:
        return []
    if not getattr(tok, "chat_template", None):
        raise UserError("This model's tokenizer has no chat template; run with "
                        "-p chat_template=false.")
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
            model(input_ids=x)
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

    def rows(self, texts: Iterable[str]) -> list[int]:
        index = {t: i for i, t in enumerate(self.texts)}
        return [index[t] for t in texts]


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


# --- aggregators: (P, N) aligned pairs, each (m, H) -> unit vector (H,) -----------------

def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm().clamp_min(1e-12)


def diff_of_means(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    return _unit((pos - neg).mean(0))


def pca_of_differences(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """First right singular vector of the (uncentred) differences, signed to agree with
    their mean."""
    d = pos - neg
    v = torch.linalg.svd(d, full_matrices=False).Vh[0]
    return -v if (d @ v).mean() < 0 else v


def logistic(pos: torch.Tensor, neg: torch.Tensor, l1: bool = False) -> torch.Tensor:
    """Logistic-regression weights (no intercept, data centred on its mean)."""
    from sklearn.linear_model import LogisticRegression

    x = torch.cat([pos, neg])
    x = (x - x.mean(0)).numpy()
    y = [1] * len(pos) + [0] * len(neg)
    clf = LogisticRegression(fit_intercept=False, max_iter=2000, C=1.0,
                             **({"l1_ratio": 1.0, "solver": "liblinear"} if l1 else {}))
    return _unit(torch.from_numpy(clf.fit(x, y).coef_[0]).double())


def aggregate(name: str, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    if name == "mean":
        return diff_of_means(pos, neg)
    if name == "pca":
        return pca_of_differences(pos, neg)
    return logistic(pos, neg, l1=name == "logreg_l1")


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


@dataclass
class Trained:
    vectors: dict[str, dict[int, dict[str, torch.Tensor]]]  # concept -> layer -> agg -> (H,)
    report: dict


def train(corpus: Corpus, acts: Activations, aggregators: tuple[str, ...] = AGGREGATORS,
          saved: str = "mean", folds: int = 4, seed: int = 0,
          track: Callable[[list, str], Iterable] = lambda xs, d: xs) -> Trained:
    """Vectors for every concept, layer and aggregator, with the quality report."""
    fold = folds_of(corpus, folds, seed)
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
            vectors[c][l] = {g: aggregate(g, pos, neg) for g in aggregators}
            aucs = {}
            for g in aggregators:
                sp, sn = [], []
                for f in range(folds):
                    train_ = [j for j, (p, n) in enumerate(pairs)
                              if fold[p.group] != f and fold[n.group] != f]
                    held_p = [t.text for t in pos_rows if fold[t.group] == f]
                    held_n = [t.text for t in neg_rows if fold[t.group] == f]
                    if len(train_) < 2 or not (held_p or held_n):
                        continue
                    v = aggregate(g, pos[train_], neg[train_])
                    sp += (a[acts.rows(held_p)] @ v).tolist()
                    sn += (a[acts.rows(held_n)] @ v).tolist()
                auc = _auc(sp, sn)
                aucs[g] = None if auc is None else round(auc, 4)
            d = pos - neg
            s2 = torch.linalg.svdvals(d) ** 2
            dn = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
            g_ = dn @ dn.T
            m = len(d)
            consistency = ((g_.sum() - g_.diagonal().sum()) / (m * (m - 1))).item() if m > 1 else 1.0
            per[c]["layers"][str(l)] = {"auc": aucs, "pc1_ratio": round((s2[0] / s2.sum()).item(), 4),
                                        "consistency": round(consistency, 4)}
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
            if fit["r2"] > REDUNDANT_R2:
                report["redundant"].append({"concept": c, "layer": l, "r2": round(fit["r2"], 4)})
    for c in corpus.concepts:
        layers = per[c]["layers"]
        best = max(acts.layers, key=lambda l: layers[str(l)]["auc"].get(saved) or 0)
        per[c]["best_layer"] = best
        per[c]["best_auc"] = layers[str(best)]["auc"].get(saved)
    return Trained(vectors, report)


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


# --- readout files ---------------------------------------------------------------------------

@dataclass
class Readout:
    """Unit concept vectors per layer, with the corpus statistics that turn a projection into
    a z-score: score = ((h - center) . v) / scale."""

    concepts: list[str]
    layers: list[int]
    hidden_size: int
    vectors: dict[int, torch.Tensor]  # (C, H)
    center: dict[int, torch.Tensor]  # (H,)
    scale: dict[int, torch.Tensor]  # (C,)
    manifest: dict

    def index(self, concept: str) -> int:
        if concept not in self.concepts:
            from ..errors import unknown

            raise unknown("concept", concept, self.concepts,
                          f"This readout has: {', '.join(self.concepts)}.")
        return self.concepts.index(concept)

    def layer(self, given: str | int | None, concept: str | None = None) -> int:
        """A layer of this readout: `given`, else the concept's (or overall) best layer."""
        if given in (None, ""):
            best = self.manifest.get("best_layer", {})
            return int(best.get(concept or "", best.get("_all", self.layers[len(self.layers) // 2])))
        try:
            l = int(given)
        except ValueError:
            l = -1
        if l not in self.layers:
            raise UserError(f"Layer '{given}' has no vectors in this readout; it has layers "
                            f"{', '.join(map(str, self.layers))}. Extract more with "
                            "`llmlab lab run concept_vectors -p layers=...`.")
        return l

    @property
    def pooling(self) -> str:
        return self.manifest.get("pooling", "mean")

    def prefix(self, tok) -> list[int]:
        """The template tokens the corpus texts were read after (none without a template)."""
        return template_prefix(tok, bool(self.manifest.get("chat_template")),
                               self.manifest.get("user_turn") or USER_TURN)

    def scores(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        """(..., H) hidden states -> (..., C) z-scores."""
        v = self.vectors[layer].to(h.dtype)
        return ((h - self.center[layer].to(h.dtype)) @ v.T) / self.scale[layer].to(h.dtype)


def build_readout(corpus: Corpus, acts: Activations, trained: Trained, meta: dict) -> Readout:
    saved = trained.report["saved_aggregator"]
    vectors, center, scale = {}, {}, {}
    for l in acts.layers:
        v = torch.stack([trained.vectors[c][l][saved] for c in corpus.concepts])  # (C, H)
        mu = acts.acts[l].mean(0)
        proj = (acts.acts[l] - mu) @ v.T  # (n, C)
        vectors[l], center[l] = v.float(), mu.float()
        scale[l] = proj.std(0).clamp_min(1e-6).float()
    best = {c: trained.report["per_concept"][c]["best_layer"] for c in corpus.concepts}
    mean_auc = {l: sum(trained.report["per_concept"][c]["layers"][str(l)]["auc"].get(saved) or 0
                       for c in corpus.concepts) / len(corpus.concepts) for l in acts.layers}
    best["_all"] = max(acts.layers, key=lambda l: mean_auc[l])
    manifest = {"format": "llmlab-readout/1", "concepts": corpus.concepts, "layers": acts.layers,
                "hidden_size": acts.acts[acts.layers[0]].shape[1], "dtype": "float32",
                "aggregator": saved, "best_layer": best, **meta}
    return Readout(corpus.concepts, acts.layers, manifest["hidden_size"], vectors, center,
                   scale, manifest)


def save_readout(r: Readout, folder: Path) -> None:
    from safetensors.torch import save_file

    from ..snapshot import atomic_write

    tensors = {}
    for l in r.layers:
        tensors[f"layer_{l}.vectors"] = r.vectors[l].contiguous()
        tensors[f"layer_{l}.center"] = r.center[l].contiguous()
        tensors[f"layer_{l}.scale"] = r.scale[l].contiguous()
    save_file(tensors, str(folder / "readout.safetensors"), metadata={"format": "llmlab-readout/1"})
    atomic_write(folder / "readout.json", json.dumps(r.manifest, indent=2).encode())


def load_readout(folder: str | Path) -> Readout:
    """Read readout.json + readout.safetensors back, checking they agree."""
    folder = Path(folder).expanduser()
    man_path, ten_path = folder / "readout.json", folder / "readout.safetensors"
    for p in (man_path, ten_path):
        if not p.is_file():
            raise UserError(f"{p} is missing: a readout folder holds readout.json and "
                            "readout.safetensors, written by `llmlab lab run concept_vectors`.")
    from safetensors.torch import load_file

    try:
        m = json.loads(man_path.read_text(encoding="utf-8"))
        concepts, layers, hidden = list(m["concepts"]), [int(x) for x in m["layers"]], int(m["hidden_size"])
        t = load_file(str(ten_path))
        vectors = {l: t[f"layer_{l}.vectors"] for l in layers}
        center = {l: t.get(f"layer_{l}.center", torch.zeros(hidden)) for l in layers}
        scale = {l: t.get(f"layer_{l}.scale", torch.ones(len(concepts))) for l in layers}
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise UserError(f"The readout in {folder} is unreadable ({type(e).__name__}: {e}); "
                        "extract it again with `llmlab lab run concept_vectors`.") from None
    for l, v in vectors.items():
        if tuple(v.shape) != (len(concepts), hidden):
            raise UserError(f"{ten_path}: layer_{l}.vectors has shape {tuple(v.shape)}, but "
                            f"readout.json says ({len(concepts)}, {hidden}).")
    return Readout(concepts, layers, hidden, vectors, center, scale, m)


def open_readout(ctx, given: str) -> tuple[Path, Readout]:
    """The readout an experiment asked for (see `find_readout`), checked against the loaded
    model: a different hidden size is an error, a different model a note in the summary."""
    folder = find_readout(ctx.ws, given)
    r = load_readout(folder)
    hidden = ctx.model.model.config.hidden_size
    if r.hidden_size != hidden:
        raise UserError(f"The readout in {folder} was made for hidden size {r.hidden_size}; "
                        f"this model has {hidden}. Use the model it was extracted from "
                        f"({r.manifest.get('model')}).")
    if r.manifest.get("model_sha256") not in (None, ctx.model.sha256):
        ctx.notes.append(f"The readout was extracted from {r.manifest.get('model')}, not "
                         f"{ctx.model.name}: its scores may mean little here.")
    return folder, r


def find_readout(ws, given: str) -> Path:
    """A readout folder: a path, a run id in the workspace, or (empty) the newest
    concept_vectors run there."""
    if given:
        p = Path(given).expanduser()
        if (p / "readout.json").is_file():
            return p
        if ws is not None and "/" not in given and (ws.runs_dir / given / "readout.json").is_file():
            return ws.runs_dir / given
        raise UserError(f"No readout at '{given}': give the folder of a concept_vectors run "
                        "(it holds readout.json) or its run id.")
    found = sorted(ws.runs_dir.glob("*-concept_vectors-*/readout.json")) if ws else []
    if not found:
        raise UserError("No concept vectors yet: run `llmlab lab run concept_vectors` first "
                        "(or give -p vectors=FOLDER of a readout).")
    return found[-1].parent


# --- steering ---------------------------------------------------------------------------

@contextmanager
def steer(model, layer: int, vector: torch.Tensor, multiplier: float) -> Iterator[None]:
    """Add multiplier x vector to the residual stream after `layer`, at every position, for
    every forward pass inside the block; the hook is removed on exit, also on error."""
    block = decoder_layers(model)[layer]
    p = next(model.parameters())
    add = (multiplier * vector).to(device=p.device, dtype=p.dtype)

    def hook(i, mod, inp, out):
        if isinstance(out, tuple):
            return (out[0] + add, *out[1:])
        return out + add

    with hooked([block], hook):
        yield
