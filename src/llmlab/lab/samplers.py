"""Truncation samplers from raw logits: top-k, top-p (nucleus) and min-p.

Each strategy is a small callable built by a factory: it takes the probabilities of the
whole vocabulary at some temperature, `(vocab,)`, and returns the boolean mask of the
tokens it keeps. `renormalise` turns the kept probabilities back into a distribution and
`draw` samples from it with a seeded generator. Every strategy keeps at least one token
(the most likely), as every real implementation does.
"""

from __future__ import annotations

from typing import Callable

import torch

Truncation = Callable[[torch.Tensor], torch.Tensor]  # probs (vocab,) -> keep mask (vocab,)


def top_k(k: int) -> Truncation:
    """Keep the k most likely tokens (ties broken by token id, as a stable sort does)."""
    def keep(probs: torch.Tensor) -> torch.Tensor:
        order = torch.argsort(probs, descending=True, stable=True)  # (vocab,)
        mask = torch.zeros_like(probs, dtype=torch.bool)
        mask[order[:max(1, k)]] = True
        return mask
    return keep


def top_p(p: float) -> Truncation:
    """Keep the smallest set of most likely tokens whose probabilities sum to at least p."""
    def keep(probs: torch.Tensor) -> torch.Tensor:
        order = torch.argsort(probs, descending=True, stable=True)  # (vocab,)
        before = torch.cumsum(probs[order], dim=0) - probs[order]  # mass above each token
        n = max(1, int((before < p).sum().item()))  # tokens needed to reach p
        mask = torch.zeros_like(probs, dtype=torch.bool)
        mask[order[:n]] = True
        return mask
    return keep


def min_p(p: float) -> Truncation:
    """Keep the tokens at least p times as likely as the most likely one."""
    def keep(probs: torch.Tensor) -> torch.Tensor:
        return probs >= p * probs.max()
    return keep


def renormalise(probs: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The kept probabilities scaled to sum to 1; removed tokens get 0."""
    q = torch.where(keep, probs, torch.zeros_like(probs))  # (vocab,)
    return q / q.sum()


def draw(probs: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n seeded samples (token ids) from a distribution."""
    gen = torch.Generator().manual_seed(seed)
    return torch.multinomial(probs.float().cpu(), n, replacement=True, generator=gen)


def strategies(k: int, p: float, m: float) -> dict[str, Truncation]:
    """The three truncations at the given settings, by display name."""
    return {f"top-k {k}": top_k(k), f"top-p {p:g}": top_p(p), f"min-p {m:g}": min_p(m)}
