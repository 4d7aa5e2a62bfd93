"""The truncation samplers on hand-made logits: which tokens each keeps, the renormalised
distribution, and seeded draws against it (torch, no model)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llmlab.lab.samplers import draw, min_p, renormalise, top_k, top_p  # noqa: E402


def probs(*logits):
    return torch.softmax(torch.tensor(logits, dtype=torch.float64), dim=-1)


def test_top_p_on_4_1_half_at_0_9_keeps_one_token():
    p = probs(4.0, 1.0, 0.5)  # 0.926, 0.046, 0.028
    assert top_p(0.9)(p).tolist() == [True, False, False]
    assert top_p(0.95)(p).tolist() == [True, True, False]  # 0.926 < 0.95 <= 0.972
    assert top_p(1.0)(p).all()


def test_top_k_and_min_p_keep_what_they_say():
    p = probs(1.0, 3.0, 2.0, 0.0)
    assert top_k(2)(p).tolist() == [False, True, True, False]
    assert top_k(10)(p).all()
    # min-p keeps tokens with p >= min_p * p(top): p = 0.087, 0.644, 0.237, 0.032
    assert min_p(0.1)(p).tolist() == [True, True, True, False]  # threshold 0.064
    assert min_p(0.2)(p).tolist() == [False, True, True, False]  # threshold 0.129
    assert min_p(1.0)(p).tolist() == [False, True, False, False]


def test_renormalised_distribution_and_seeded_draws():
    p = probs(4.0, 3.0, 2.0, 1.0, 0.0)
    keep = top_k(3)(p)
    q = renormalise(p, keep)
    assert q.sum().item() == pytest.approx(1.0, abs=1e-12)
    assert q[3].item() == q[4].item() == 0
    assert q[0].item() == pytest.approx(p[0].item() / p[:3].sum().item())
    a = draw(q, 20000, seed=3)
    assert torch.equal(a, draw(q, 20000, seed=3))  # the same seed draws the same tokens
    counts = torch.bincount(a, minlength=5) / 20000
    assert counts[3] == counts[4] == 0  # never a removed token
    assert (counts - q).abs().max().item() < 0.015  # frequencies follow the renormalised p
