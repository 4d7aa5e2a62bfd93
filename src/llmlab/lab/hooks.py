"""Forward hooks, only inside context managers: registered before `try`, removed in
`finally`, so a failing run never leaves a hook behind (and shows its real error)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable


def decoder_layers(model) -> list:
    """The transformer blocks of a Llama-style model (`model.model.layers`)."""
    return list(model.model.layers)


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
