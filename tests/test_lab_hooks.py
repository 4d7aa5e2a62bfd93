"""Activation capture: exact, and every hook removed, also when the forward pass fails."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from llmlab.lab import models  # noqa: E402
from llmlab.lab.runner import run_experiment  # noqa: E402
from llmlab.lab.hooks import capture_residual, hook_count, hooked  # noqa: E402

pytestmark = pytest.mark.model
IDS = torch.tensor([[504, 3575, 282, 4617, 314]])


@pytest.fixture(scope="module")
def smol():
    return models.load()


def test_capture_residual_equals_hidden_states_and_the_output(smol):
    with torch.no_grad(), capture_residual(smol.model) as saved:
        out = smol.model(IDS, output_hidden_states=True)
    assert len(saved) == 30 and saved[0].shape == (1, 5, 576)  # (batch, seq, hidden)
    for i in range(29):  # hidden_states[-1] has the final norm applied; the capture does not
        assert torch.equal(saved[i], out.hidden_states[i + 1])
    with torch.no_grad():  # the logit lens at the last layer is the model's output
        lens = smol.model.lm_head(smol.model.model.norm(saved[-1]))
    assert torch.allclose(lens, out.logits, atol=1e-4)
    assert hook_count(smol.model) == 0


def test_hooks_are_removed_when_a_run_fails(smol, monkeypatch):
    def boom(i, mod, inp, out):
        raise RuntimeError("hook failed")

    with hooked(list(smol.model.model.layers), lambda *a: None):
        assert hook_count(smol.model) == 30  # the counter sees live hooks
    assert hook_count(smol.model) == 0
    with pytest.raises(RuntimeError, match="hook failed"):  # the real error, not a cleanup one
        with hooked(list(smol.model.model.layers), boom):
            smol.model(IDS)
    assert hook_count(smol.model) == 0
    with pytest.raises(RuntimeError, match="lm_head broke"):
        with capture_residual(smol.model) as saved:
            monkeypatch.setattr(smol.model.lm_head, "forward", lambda *a: (_ for _ in ()).throw(
                RuntimeError("lm_head broke")))
            smol.model(IDS)
    assert len(saved) == 30 and hook_count(smol.model) == 0
    monkeypatch.undo()
    # a whole experiment failing mid-forward leaves no hook behind either
    monkeypatch.setattr(smol.model.model.layers[5].mlp, "forward",
                        lambda *a: (_ for _ in ()).throw(RuntimeError("mlp broke")))
    with pytest.raises(RuntimeError, match="mlp broke"):
        run_experiment(None, "residual", {}, record=False, show_progress=False)
    assert hook_count(smol.model) == 0
    monkeypatch.undo()
    with torch.no_grad():
        smol.model(IDS)  # and the model still works


def test_a_hook_that_fails_to_register_removes_the_earlier_ones(smol):
    class Broken(torch.nn.Module):
        def register_forward_hook(self, hook):
            raise RuntimeError("cannot hook")

    modules = [*list(smol.model.model.layers)[:3], Broken()]
    with pytest.raises(RuntimeError, match="cannot hook"):
        with hooked(modules, lambda *a: None):
            pass
    assert hook_count(smol.model) == 0
