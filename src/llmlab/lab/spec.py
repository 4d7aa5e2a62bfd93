"""Experiment declarations: what an experiment asks, exercises, takes and measures.

Importable without torch, so `llmlab lab list` and prediction validation work on the
core install. Each experiment module defines `SPEC` and `run(ctx, params) -> Outcome`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import UserError


@dataclass(frozen=True)
class Param:
    name: str
    type: type  # int, float, str, bool
    default: Any
    help: str

    def parse(self, raw: Any) -> Any:
        if isinstance(raw, self.type) and not (self.type is int and isinstance(raw, bool)):
            return raw
        s = str(raw).strip()
        try:
            if self.type is bool:
                if s.lower() in ("1", "true", "yes", "on"):
                    return True
                if s.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return self.type(s)
        except ValueError:
            raise UserError(f"Parameter '{self.name}' must be {self.type.__name__}, got {s!r}. "
                            f"{self.help} (default {self.default!r}).") from None


@dataclass(frozen=True)
class Quantity:
    name: str
    unit: str
    help: str


@dataclass
class Outcome:
    """What a run measured: scalar metrics, tables, figures (name -> matplotlib figure)."""

    metrics: dict[str, float]
    tables: dict[str, list[dict]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    summary: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Spec:
    name: str
    question: str
    concepts: tuple[str, ...]
    params: tuple[Param, ...]
    quantities: tuple[Quantity, ...]
    model: str | None = "smollm2-135m-instruct"  # None: needs no model weights
    seconds: float = 30  # rough default run time on a 2-core CPU

    def resolve(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults overridden by `given`; unknown or ill-typed parameters are user errors."""
        known = {p.name: p for p in self.params}
        out = {p.name: p.default for p in self.params}
        for k, v in (given or {}).items():
            if k not in known:
                valid = ", ".join(f"{p.name} ({p.type.__name__}, default {p.default!r})"
                                  for p in self.params)
                raise UserError(f"Unknown parameter '{k}' for experiment '{self.name}'. "
                                f"Valid parameters: {valid}.")
            out[k] = known[k].parse(v)
        return out


RunFn = Callable[[Any, dict], Outcome]


def common(model: bool = True) -> tuple[Param, ...]:
    """Parameters every experiment takes."""
    seed = Param("seed", int, 0, "Random seed; the same seed gives the same numbers")
    if not model:
        return (seed,)
    return (Param("model", str, "smollm2-135m-instruct",
                  "Model name (`llmlab lab models`) or a local Hugging Face model folder"), seed)
