"""Readout files: concept vectors saved per layer with the corpus statistics that make a
projection a z-score, read back, found in a workspace, and checked against a model.

    readout.safetensors  layer_<i>.vectors (C, H) unit rows; layer_<i>.center (H,) the corpus
                         mean; layer_<i>.scale (C,) the std of corpus projections
    readout.json         concepts, layers, hidden_size, dtype, aggregator, best_layer
                         ({concept: layer, "_all": layer}), pooling, chat_template, user_turn,
                         model, model_sha256, corpus
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError, unknown
from .corpus import Corpus
from .vectors import USER_TURN, Activations, Trained, template_prefix


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
                            "the concept_vectors experiment with {param:layers=...}.")
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
    manifest = {"format": "llmlab-readout/1", "concepts": corpus.concepts, "layers": acts.layers,
                "hidden_size": acts.acts[acts.layers[0]].shape[1], "dtype": "float32",
                "aggregator": saved, "best_layer": trained.report["best_layer"], **meta}
    return Readout(corpus.concepts, acts.layers, manifest["hidden_size"], vectors, center,
                   scale, manifest)


def save_readout(r: Readout, folder: Path) -> None:
    from safetensors.torch import save_file

    from ..files import atomic_write

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
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        m = json.loads(man_path.read_text(encoding="utf-8"))
        concepts, layers, hidden = list(m["concepts"]), [int(x) for x in m["layers"]], int(m["hidden_size"])
        t = load_file(str(ten_path))
        vectors = {l: t[f"layer_{l}.vectors"] for l in layers}
        center = {l: t.get(f"layer_{l}.center", torch.zeros(hidden)) for l in layers}
        scale = {l: t.get(f"layer_{l}.scale", torch.ones(len(concepts))) for l in layers}
    except (ValueError, KeyError, TypeError, OSError, SafetensorError) as e:
        raise UserError(f"The readout in {folder} is unreadable ({type(e).__name__}: {e}); "
                        "extract it again with `llmlab lab run concept_vectors`.") from None
    for l in layers:
        for name, t_, want in (("vectors", vectors[l], (len(concepts), hidden)),
                               ("center", center[l], (hidden,)),
                               ("scale", scale[l], (len(concepts),))):
            if tuple(t_.shape) != want:
                raise UserError(f"{ten_path}: layer_{l}.{name} has shape {tuple(t_.shape)}, "
                                f"but readout.json says {want}; extract it again with "
                                "`llmlab lab run concept_vectors`.")
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
    ctx.notes.append(f"Concept vectors: run {folder.name}"
                     + (" (the newest recorded concept_vectors run)" if not given else "")
                     + f", in {folder}.")
    if r.manifest.get("model_sha256") not in (None, ctx.model.sha256):
        ctx.notes.append(f"The readout was extracted from {r.manifest.get('model')}, not "
                         f"{ctx.model.name}: its scores may mean little here.")
    return folder, r


def recorded_runs(ws, experiment: str) -> list[str]:
    """Run ids of the workspace's recorded, unretracted runs of `experiment`, oldest first."""
    from ..log import read_events

    events = read_events(ws.log_path)
    retracted = {e["data"]["target"] for e in events if e["type"] == "retraction"}
    return [e["data"]["run_id"] for e in events
            if e["type"] == "experiment_run" and e["data"].get("experiment") == experiment
            and e["id"] not in retracted]


def find_readout(ws, given: str) -> Path:
    """A readout folder: a path, a run id in the workspace, or (empty) the newest *recorded*
    concept_vectors run there (a --no-record or --out run is used only when named)."""
    from . import runs

    if given:
        return runs.find(ws, given, holding="readout.json", what="readout")
    found = [ws.runs_dir / r for r in recorded_runs(ws, "concept_vectors")
             if runs.RUN_ID.match(r) and (ws.runs_dir / r / "readout.json").is_file()] if ws else []
    if not found:
        raise UserError("No recorded concept vectors in this workspace: run `llmlab lab run "
                        "concept_vectors` (recorded) first, or name a readout with "
                        "{param:vectors=FOLDER} or a run id (an unrecorded run is used only "
                        "when named).")
    return found[-1]
