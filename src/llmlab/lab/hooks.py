"""Forward hooks, only inside context managers: every handle is removed in `finally`, so
a failing run (or a failing registration) never leaves a hook behind and shows its real
error. Each hook is tagged, so `hook_count` can prove none is left."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch


def decoder_layers(model) -> list:
    """The transformer blocks of a Llama-style model (`model.model.layers`: Llama, Mistral,
    Qwen, Gemma, SmolLM); anything else is a user error naming what is supported."""
    layers = getattr(getattr(model, "model", None), "layers", None)
    needed = ("self_attn", "mlp")
    if layers is None or not all(hasattr(layers[0], n) for n in needed) or \
            not hasattr(model.model, "norm") or not hasattr(model, "lm_head"):
        from ..errors import UserError

        raise UserError(f"This experiment reads the residual stream of Llama-style models "
                        f"(model.model.layers[i].self_attn/.mlp, model.model.norm, lm_head); "
                        f"{type(model).__name__} is laid out differently. Use "
                        "smollm2-135m-instruct or a Llama/Mistral/Qwen-style folder.")
    return list(layers)


@contextmanager
def hooked(modules: list, hook: Callable[[int, Any, tuple, Any], Any]) -> Iterator[None]:
    """Register `hook(index, module, inputs, output)` as a forward hook on each module."""
    handles = []
    try:
        for i, m in enumerate(modules):
            fn = lambda mod, inp, out, i=i: hook(i, mod, inp, out)  # noqa: E731
            fn.llmlab = True  # tells our hooks from transformers' own output-capturing ones
            handles.append(m.register_forward_hook(fn))
        yield
    finally:
        for h in handles:
            h.remove()


@contextmanager
def capture_residual(model) -> Iterator[list]:
    """Capture the residual stream after every decoder layer.

    Yields a list filled during the forward pass: entry i is the output of layer i,
    shape (batch, seq, hidden). Decoder layers here return a tensor, not a tuple.
    """
    saved: list = []

    def keep(i, mod, inp, out):
        saved.append(out[0] if isinstance(out, tuple) else out)  # (batch, seq, hidden)

    with hooked(decoder_layers(model), keep):
        yield saved


def hook_count(model) -> int:
    """llmlab's forward hooks still registered anywhere in the model (for leak checks)."""
    return sum(getattr(h, "llmlab", False) for m in model.modules()
               for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values()))


@contextmanager
def steer(model, layer: int, vector: torch.Tensor, multiplier: float) -> Iterator[None]:
    """Add multiplier x vector to the residual stream after `layer`, at every position, for
    every forward pass inside the block; the hook is removed on exit, also on error."""
    block = decoder_layers(model)[layer]  # adds to this block's output, (batch, seq, hidden)
    p = next(model.parameters())
    add = (multiplier * vector).to(device=p.device, dtype=p.dtype)

    def hook(i, mod, inp, out):
        if isinstance(out, tuple):
            return (out[0] + add, *out[1:])
        return out + add

    with hooked([block], hook):
        yield
