"""Experiment declarations: what an experiment asks, exercises, takes and measures.

Importable without torch, so `llmlab lab list` and prediction validation work on the
core install. Each experiment module defines `SPEC` (a `Spec`) and
`run(ctx, params) -> Outcome`; the runner resolves and validates the parameters before
any model is loaded, so bad input fails in milliseconds with a message listing what is
valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import BadParameter, UnknownName, UserError, closest

_TYPES = {int: "int", float: "float", str: "str", bool: "bool"}


def _num(x: float) -> str:
    return f"{int(x)}" if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Param:
    """A typed parameter. `many=True`: a list, comma-separated in text (`0.5,1,2`)."""

    name: str
    type: type  # int, float, str, bool (of each item when many)
    default: Any
    help: str
    many: bool = False
    low: float | None = None  # inclusive bounds for numbers (each item when many)
    high: float | None = None
    choices: tuple[str, ...] = ()  # allowed values for str (each item when many)
    min_items: int = 1  # for many: how many different values are needed at least

    @property
    def type_name(self) -> str:
        return f"list of {_TYPES[self.type]}" if self.many else _TYPES[self.type]

    def describe(self) -> str:
        """One line for error messages and `lab list`: name (type, range, default)."""
        bits = [self.type_name]
        if self.low is not None or self.high is not None:
            lo = "" if self.low is None else _num(self.low)
            hi = "" if self.high is None else _num(self.high)
            bits.append(f"{lo}..{hi}")
        if self.choices:
            bits.append("one of " + "|".join(self.choices))
        return f"{self.name} ({', '.join(bits)}, default {self.shown_default})"

    @property
    def shown_default(self) -> str:
        if self.many:
            return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in self.default)
        return repr(self.default)

    def _fail(self, got: Any, why: str) -> BadParameter:
        return BadParameter(f"Parameter '{self.name}' {why}; got {got!r}. {self.help}. "
                            f"Expected: {self.describe()}.", self.name, got, why, self.describe())

    def _one(self, raw: Any) -> Any:
        if isinstance(raw, bool) and self.type is not bool:
            raise self._fail(raw, f"must be {_TYPES[self.type]}")
        if isinstance(raw, self.type) or (self.type is float and isinstance(raw, int)):
            value = self.type(raw)
        else:
            s = str(raw).strip()
            try:
                if self.type is bool:
                    if s.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                        raise ValueError
                    value = s.lower() in ("1", "true", "yes", "on")
                else:
                    value = self.type(s)
            except ValueError:
                raise self._fail(raw, f"must be {self.type_name}") from None
        if self.type in (int, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise self._fail(raw, "must be a finite number")
            if (self.low is not None and value < self.low) or \
                    (self.high is not None and value > self.high):
                raise self._fail(raw, "is out of range")
        if self.choices and value not in self.choices:
            raise self._fail(raw, f"must be one of {', '.join(self.choices)}")
        return value

    def parse(self, raw: Any) -> Any:
        if not self.many:
            return self._one(raw)
        items = raw.split(",") if isinstance(raw, str) else list(raw)
        values = [self._one(x) for x in items if str(x).strip()]
        if len(set(values)) < self.min_items:
            n = "one value" if self.min_items == 1 else f"{self.min_items} different values"
            raise self._fail(raw, f"needs at least {n}")
        return values


@dataclass(frozen=True)
class Quantity:
    """Something a learner can predict before a run (`llmlab predict EXP QUANTITY VALUE`).

    Every run reports it as a float in `metrics[name]`. A prediction is scored only by a run
    under the conditions it was made for (`Spec.conditions_for`): the model (or, for a
    config-only run, the config file's content) when `on_model`, and every parameter in
    `depends_on`. Without `--concept` it counts against `concept`, the course concept the
    quantity measures.
    """

    name: str
    unit: str
    help: str
    concept: str = ""  # the course concept it measures (one of the experiment's concepts)
    depends_on: tuple[str, ...] = ()  # parameters its value depends on, besides the model
    on_model: bool = True  # False: the model does not matter (a calculator, a formula)


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
    concepts: tuple[str, ...]  # course concept ids (a test checks the default course has them)
    params: tuple[Param, ...]
    quantities: tuple[Quantity, ...]
    model: str | None = "smollm2-135m-instruct"  # None: needs no model weights
    seconds: float = 30  # measured default run time on a 2-core CPU (BENCHMARKS.md)
    # check(params, workspace): further validation that needs no model (a corpus, a readout
    # folder); runs before the model is loaded and raises UserError
    check: Callable[[dict, Any], None] | None = None

    def resolve(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults overridden by `given`; unknown or ill-typed parameters are user errors."""
        known = {p.name: p for p in self.params}
        out = {p.name: list(p.default) if p.many else p.default for p in self.params}
        for k, v in (given or {}).items():
            if k not in known:
                near = closest(k, known)
                hint = f" Did you mean '{near[0]}'?" if near else ""
                valid = "; ".join(p.describe() for p in self.params)
                raise UnknownName(f"Unknown parameter '{k}' for experiment '{self.name}'.{hint} "
                                  f"Valid parameters: {valid}. Give them as "
                                  "{param:name=value}.", "parameter", k, list(known))
            out[k] = known[k].parse(v)
        return out

    def quantity(self, name: str) -> Quantity | None:
        return next((q for q in self.quantities if q.name == name), None)

    def conditions_for(self, quantity: str, params: dict[str, Any]) -> dict[str, Any]:
        """The conditions a measurement of `quantity` depends on, from (resolved) params.

        A prediction stores them when made; a run scores it only when its own match.
        """
        q = self.quantity(quantity)
        if q is None:
            return {}
        full = {p.name: (list(p.default) if p.many else p.default) for p in self.params}
        full.update(params)
        out: dict[str, Any] = {}
        if self.model and q.on_model:
            if full.get("config"):
                out["config"] = config_identity(full["config"])
            else:
                out["model"] = full.get("model", self.model)
        for name in q.depends_on:
            out[name] = full.get(name)
        return out

    def to_dict(self) -> dict:
        """The declaration as plain data (`llmlab lab list --json`, the MCP server)."""
        return {
            "name": self.name, "question": self.question, "concepts": list(self.concepts),
            "params": [{"name": p.name, "type": p.type_name, "default": p.default,
                        "help": p.help, "low": p.low, "high": p.high,
                        "choices": list(p.choices)} for p in self.params],
            "quantities": [{"name": q.name, "unit": q.unit, "help": q.help,
                            "concept": q.concept, "depends_on": list(q.depends_on)}
                           for q in self.quantities],
            "needs_model": self.model is not None, "seconds": self.seconds,
        }


RunFn = Callable[[Any, dict], Outcome]


def parse_params(items: list[str]) -> dict[str, str]:
    """`-p name=value` options as a dict (values still strings; `Spec.resolve` types them)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"Parameters are given as --param name=value; got {item!r}. "
                            "See `llmlab lab list` for each experiment's parameters.")
        k, v = item.split("=", 1)
        out[k.strip()] = v
    return out


def config_identity(path: str) -> str:
    """A config.json named by its content (the same file under another path matches)."""
    import hashlib
    from pathlib import Path

    f = Path(path).expanduser()
    if not f.is_file():
        raise UserError(f"No config file at {f}. Give the path of a config.json.")
    return "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest()[:16]


def common(model: bool = True) -> tuple[Param, ...]:
    """Parameters every experiment takes."""
    seed = Param("seed", int, 0, "Random seed; the same seed and thread count give the same "
                 "numbers", low=0)
    threads = Param("threads", int, 0, "Torch CPU threads; 0: the cores not busy now (CPU "
                    "count minus the 1-minute load average, at least 1)", low=0, high=1024)
    if not model:
        return (seed, threads)
    return (Param("model", str, "smollm2-135m-instruct",
                  "Model name (`llmlab lab models`) or a local Hugging Face model folder"), seed,
            threads)
