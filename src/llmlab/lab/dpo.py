"""Direct preference optimisation (Rafailov et al., arXiv:2305.18290), written out.

    loss = -log sigmoid(beta * ((log pi(chosen) - log ref(chosen))
                               - (log pi(rejected) - log ref(rejected))))

The policy is a LoRA model; the frozen reference is the same model with its adapter
switched off (`disable_adapter`), so no second copy of the weights is needed. A
response's log-probability is the sum over its tokens (the prompt is masked).
"""

from __future__ import annotations

from .tuning_data import Item, Pair, collate, encode


def encode_pair(tok, pair: Pair, max_len: int, where: str = ""):
    """((ids, labels) of prompt+chosen, (ids, labels) of prompt+rejected)."""
    def one(resp):
        msgs = ({"role": "user", "content": pair.prompt}, {"role": "assistant", "content": resp})
        return encode(tok, Item(pair.line, msgs), max_len, where)
    return one(pair.chosen), one(pair.rejected)


def _logits(model, rows, pad_id):
    ids, mask, labels = collate(rows, pad_id)  # (batch, seq) each
    dev = next(model.parameters()).device
    logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits[:, :-1]
    return logits, labels[:, 1:].to(dev)  # (batch, seq-1, vocab), (batch, seq-1)


def seq_logps(model, rows, pad_id):
    """(sum of response-token log-probs, response-token count), each (batch,)."""
    import torch

    logits, labels = _logits(model, rows, pad_id)
    keep = labels != -100
    lp = torch.log_softmax(logits.float(), -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    return (lp * keep).sum(-1), keep.sum(-1)


def policy_and_ref(model, rows, pad_id, grad: bool = True):
    """Sequence log-probs under the policy (adapter on) and the reference (adapter off)."""
    import torch

    with torch.no_grad(), model.disable_adapter():
        ref, n = seq_logps(model, rows, pad_id)
    if grad:
        pol, _ = seq_logps(model, rows, pad_id)
    else:
        with torch.no_grad():
            pol, _ = seq_logps(model, rows, pad_id)
    return pol, ref, n


def dpo_loss(pol_c, pol_r, ref_c, ref_r, beta: float):
    """(mean loss, chosen rewards, rejected rewards); rewards are beta * log(pi / ref)."""
    import torch.nn.functional as F

    r_c, r_r = beta * (pol_c - ref_c), beta * (pol_r - ref_r)
    return -F.logsigmoid(r_c - r_r).mean(), r_c.detach(), r_r.detach()


def step_loss(model, pairs_rows, pad_id, beta: float):
    """DPO loss on a batch of encoded pairs. The chosen and the rejected responses run as two
    forward passes, each padded to its own longest row: a concise answer padded to a rambling
    one's length would be mostly padding."""
    pol_c, ref_c, _ = policy_and_ref(model, [c for c, _ in pairs_rows], pad_id)
    pol_r, ref_r, _ = policy_and_ref(model, [r for _, r in pairs_rows], pad_id)
    return dpo_loss(pol_c, pol_r, ref_c, ref_r, beta)


def _pol_ref_kl(model, rows, pad_id):
    """Under the policy and the reference: (sequence log-prob of each row's response,
    response token count, summed per-token KL(policy || reference) over response tokens)."""
    import torch

    with torch.no_grad():
        logits, labels = _logits(model, rows, pad_id)
        with model.disable_adapter():
            ref_logits, _ = _logits(model, rows, pad_id)
    keep = labels != -100  # (rows, seq-1)
    lp_pol = torch.log_softmax(logits.float(), -1)  # (rows, seq-1, vocab)
    lp_ref = torch.log_softmax(ref_logits.float(), -1)
    kl = (lp_pol.exp() * (lp_pol - lp_ref)).sum(-1)  # (rows, seq-1)
    idx = labels.clamp(min=0)[..., None]
    pol = (lp_pol.gather(-1, idx)[..., 0] * keep).sum(-1)
    ref = (lp_ref.gather(-1, idx)[..., 0] * keep).sum(-1)
    return pol, ref, keep.sum(-1), (kl * keep).sum().item()


def evaluate(model, pairs_rows, pad_id, beta: float, batch: int = 4) -> dict:
    """Held-out pairs: reward margins, accuracies and KL(policy || reference) per token.
    Chosen and rejected run as separate passes (see step_loss), `batch` pairs at a time:
    each pass holds two (rows, seq, vocab) float tensors of log-probs."""
    margins, tok_pref, seq_pref, kls, kl_tokens = [], [], [], 0.0, 0
    for i in range(0, len(pairs_rows), batch):
        chunk = pairs_rows[i:i + batch]
        pol_c, ref_c, n_c, kl_c = _pol_ref_kl(model, [c for c, _ in chunk], pad_id)
        pol_r, ref_r, n_r, kl_r = _pol_ref_kl(model, [r for _, r in chunk], pad_id)
        kls += kl_c + kl_r
        kl_tokens += int(n_c.sum() + n_r.sum())
        margins += (beta * ((pol_c - ref_c) - (pol_r - ref_r))).tolist()
        tok_pref += ((pol_c / n_c) > (pol_r / n_r)).tolist()
        seq_pref += (pol_c > pol_r).tolist()
    k = len(margins)
    return {"mean_margin": sum(margins) / k,
            "reward_accuracy": sum(x > 0 for x in margins) / k,
            "per_token_preference": sum(tok_pref) / k,
            "sequence_preference": sum(seq_pref) / k,
            "kl_per_token": kls / max(kl_tokens, 1)}
