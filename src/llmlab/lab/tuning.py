"""LoRA fine-tuning on the CPU: attach an adapter (peft), train, evaluate, generate.

The shared, memoised model is never modified: `attach` works on a deep copy, so a run
(or a failure inside one) leaves every later experiment the original weights.
"""

from __future__ import annotations

import copy
import json
import math
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Callable

from .tuning_data import Item, collate, encode

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def shapes(config) -> dict[str, tuple[int, int]]:
    """(in, out) features of each projection, from the model config (not the modules)."""
    h = config.hidden_size
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    kv = config.num_key_value_heads * head_dim
    f = config.intermediate_size
    return {"q_proj": (h, config.num_attention_heads * head_dim), "k_proj": (h, kv),
            "v_proj": (h, kv), "o_proj": (config.num_attention_heads * head_dim, h),
            "gate_proj": (h, f), "up_proj": (h, f), "down_proj": (f, h)}


def lora_formula(config, rank: int, targets: list[str]) -> tuple[int, str]:
    """Trainable LoRA parameters: layers x r x sum(in + out) over targets, and the formula."""
    s = shapes(config)
    layers = config.num_hidden_layers
    per = sum(s[t][0] + s[t][1] for t in targets)
    terms = " + ".join(f"({s[t][0]}+{s[t][1]})" for t in targets)
    n = layers * rank * per
    return n, f"{layers} layers x r={rank} x ({terms}) = {n:,}"


def attach(base, rank: int, alpha: float, targets: list[str], seed: int, dropout: float = 0.0):
    """A peft LoRA model on a deep copy of `base` (B = 0 at init: the output is unchanged)."""
    import torch
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(seed)  # A's random init
    model = copy.deepcopy(base)
    cfg = LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets),
                     lora_dropout=dropout, bias="none", task_type="CAUSAL_LM")
    with warnings.catch_warnings():  # peft 0.21 calls a transformers method deprecated in 5.x
        warnings.filterwarnings("ignore", category=FutureWarning)
        return get_peft_model(model, cfg)


def trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def encode_all(tok, items: list[Item], max_len: int, where: str) -> list:
    return [encode(tok, it, max_len, where) for it in items]


def batches(n_items: int, batch: int, steps: int, seed: int) -> list[list[int]]:
    """Item indices per step: seeded shuffles, epoch after epoch."""
    rng, order, out = random.Random(seed), [], []
    for _ in range(steps):
        if len(order) < batch:
            perm = list(range(n_items))
            rng.shuffle(perm)
            order += perm
        out.append(order[:batch])
        order = order[batch:]
    return out


def loss_on(model, rows: list, pad_id: int):
    ids, mask, labels = collate(rows, pad_id)  # (batch, seq) each
    dev = next(model.parameters()).device
    # No padding: no mask, so attention takes the plain causal path (same result, faster)
    mask = None if bool(mask.all()) else mask.to(dev)
    return model(input_ids=ids.to(dev), attention_mask=mask, labels=labels.to(dev)).loss


def eval_loss(model, rows: list, pad_id: int, batch: int = 8) -> float:
    """Mean response-token loss over `rows` (token-weighted across batches)."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch):
            chunk = rows[i:i + batch]
            n = sum(sum(1 for y in lab[1:] if y != -100) for _, lab in chunk)
            total += loss_on(model, chunk, pad_id).item() * n
            count += n
    return total / max(count, 1)


@dataclass
class Curve:
    steps: list[dict] = field(default_factory=list)  # {step, train_loss, seconds, heldout_loss?}


def train(model, rows: list, pad_id: int, *, steps: int, batch: int, lr: float, seed: int,
          heldout: list | None = None, eval_every: int = 0, bar=None,
          on_step: Callable | None = None, weight_decay: float = 0.0) -> Curve:
    """AdamW on the trainable parameters; returns the loss curve.

    on_step(step, model, optimizer, loss) runs after each optimizer step (optimizer_state
    reads Adam's moments there). bar(description) advances a progress bar by one.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    curve = Curve()
    model.train()
    if heldout and eval_every:
        curve.steps.append({"step": 0, "train_loss": None, "seconds": 0.0,
                            "heldout_loss": eval_loss(model, heldout, pad_id)})
    for step, idx in enumerate(batches(len(rows), batch, steps, seed), start=1):
        t0 = time.perf_counter()
        loss = loss_on(model, [rows[i] for i in idx], pad_id)
        loss.backward()
        opt.step()
        if on_step:
            on_step(step, model, opt, loss.item())
        opt.zero_grad(set_to_none=True)
        row = {"step": step, "train_loss": loss.item(),
               "seconds": round(time.perf_counter() - t0, 4)}
        if heldout and eval_every and (step % eval_every == 0 or step == steps):
            row["heldout_loss"] = eval_loss(model, heldout, pad_id)
        curve.steps.append(row)
        if bar:
            bar(f"training, loss {row['train_loss']:.3f}")
    model.eval()
    return curve


def progress(ctx, total: int, label: str):
    """A function that advances a progress bar with a live description (no-op without one)."""
    if ctx.progress is None:
        return lambda description=None: None
    task = ctx.progress.add_task(label, total=total)

    def advance(description=None):
        ctx.progress.update(task, advance=1, description=description or label)
    return advance


def generate(model, tok, prompts: list[tuple[dict, ...]], max_new: int, batch: int = 16) -> list[str]:
    """Greedy replies to chat prompts (left-padded batches), decoded without special tokens."""
    import torch

    outs, side = [], tok.padding_side
    tok.padding_side = "left"  # generation continues from the right end of each row
    try:
        for i in range(0, len(prompts), batch):
            texts = [tok.apply_chat_template(list(p), tokenize=False, add_generation_prompt=True)
                     for p in prompts[i:i + batch]]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
            enc = enc.to(next(model.parameters()).device)
            with torch.no_grad():
                g = model.generate(**enc, max_new_tokens=max_new, do_sample=False,
                                   pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            outs += [tok.decode(x, skip_special_tokens=True).strip()
                     for x in g[:, enc.input_ids.shape[1]:]]
    finally:
        tok.padding_side = side
    return outs


def answer_of(text: str):
    """The parsed answer if `text` is exactly a JSON object {"answer": ...}, else None."""
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return None
    if isinstance(obj, dict) and set(obj) == {"answer"}:
        return obj
    return None


def is_json(text: str) -> bool:
    """Any JSON object at all (for probes: has the format bled into general answers?)."""
    try:
        return isinstance(json.loads(text), dict)
    except (json.JSONDecodeError, ValueError):
        return False


def perplexity(model, tok, lines: list[str]) -> float:
    """exp(mean next-token loss) over every token of `lines` (plain text, no template)."""
    import torch

    total, count = 0.0, 0
    with torch.no_grad():
        for line in lines:
            ids = tok(line, return_tensors="pt", add_special_tokens=False).input_ids
            ids = ids.to(next(model.parameters()).device)  # (1, seq)
            loss = model(input_ids=ids, labels=ids).loss.item()
            total += loss * (ids.shape[1] - 1)
            count += ids.shape[1] - 1
    return math.exp(total / max(count, 1))


def max_logit_diff(a, b, ids) -> float:
    """Largest |logit difference| between two models on the same token ids (batch, seq)."""
    import torch

    with torch.no_grad():
        return (a(input_ids=ids).logits - b(input_ids=ids).logits).abs().max().item()
