"""Typed, validated records (msgspec): what the configuration, the curriculum and the event
payloads are built from, and how a validation failure is worded for people.

msgspec rather than pydantic because these records sit on every command's path: importing
`llmlab.events`, `llmlab.config` and `llmlab.curriculum` with msgspec costs about 3x
`python -c "import json"`, where pydantic and the models built on it cost about 6x, more
than the whole 5x budget of `llmlab state` (issue 19; `bench/startup_bench.py`). The records are declared once, here and in their modules; constraints are
`Annotated[..., Meta(...)]` and checks across fields are `__post_init__`, which raises
`ValueError("field: what is wrong")`.
"""

from __future__ import annotations

import re
import typing
from typing import Any, Annotated, TypeVar

import msgspec
from msgspec import Meta

__all__ = ["Meta", "Annotated", "Record", "Invalid", "convert", "dump", "replace", "fields"]

R = TypeVar("R")


class Record(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """A record read from a file: unknown keys are refused; immutable once made. (msgspec
    does not inherit `kw_only`: each subclass declares it, so fields with defaults may come
    first.)"""


class Invalid(ValueError):
    """A record failed validation: `problems` are "field: what is wrong (got value)"."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


_AT = re.compile(r" - at `\$(.*)`$")
_NOUN = {"float": "a number", "int": "an integer", "str": "text", "bool": "true or false",
         "array": "a list", "object": "a table", "null": "nothing"}
_CMP = {"<=": "less than or equal to", ">=": "greater than or equal to", "<": "less than",
        ">": "greater than"}
_RULES = (  # msgspec's wording -> llmlab's
    (re.compile(r"Expected `str` of length >= 1$"), lambda m: "must not be empty"),
    (re.compile(r"Expected `str` of length (<=|>=) (\d+)$"),
     lambda m: f"must be at {'most' if m[1] == '<=' else 'least'} {m[2]} characters"),
    (re.compile(r"Expected `(?:array|object)` of length (<=|>=) (\d+)$"),
     lambda m: f"must have at {'most' if m[1] == '<=' else 'least'} {m[2]} items"),
    (re.compile(r"Expected `(?:float|int)` (<=|>=|<|>) (\S+)$"),
     lambda m: f"must be {_CMP[m[1]]} {m[2].removesuffix('.0')}"),
    (re.compile(r"Expected `str` matching regex '(.*)'$"), lambda m: f"must match {m[1]}"),
    (re.compile(r"Expected `(\w+)`(?: \| `(\w+)`)*, got `(\w+)`$"),
     lambda m: f"must be {_NOUN.get(m[1], m[1])}, not {_NOUN.get(m[3], m[3])}"),
    (re.compile(r"Object contains unknown field `(.*)`$"), lambda m: f"unknown field '{m[1]}'"),
    (re.compile(r"Object missing required field `(.*)`$"),
     lambda m: f"missing required field '{m[1]}'"),
)


def _field_type(cls: Any, path: list[tuple[str, str]]) -> Any:
    """The declared type at `path` inside record class `cls` (None if not found)."""
    t = cls
    for name, index in path:
        t = typing.get_origin(t) is Annotated and typing.get_args(t)[0] or t
        if name:
            hints = typing.get_type_hints(t, include_extras=True) if isinstance(t, type) else {}
            t = hints.get(name)
        else:
            args = typing.get_args(t)
            t = args[0] if args else None
        if t is None:
            return None
    return typing.get_origin(t) is Annotated and typing.get_args(t)[0] or t


def _words(msg: str, cls: Any = None, path: list | None = None) -> str:
    if msg.startswith("Invalid enum value") and cls is not None:
        allowed = typing.get_args(_field_type(cls, path or []))
        if allowed:
            q = [repr(a) for a in allowed]
            return "must be " + (q[0] if len(q) == 1 else ", ".join(q[:-1]) + " or " + q[-1])
    for rule, say in _RULES:
        m = rule.match(msg)
        if m:
            return say(m)
    return msg[0].lower() + msg[1:]


def _describe(err: msgspec.ValidationError, data: Any, cls: Any) -> str:
    """msgspec's message in llmlab's words: "quality: must be less than or equal to 1 (got
    2.0)"."""
    text = str(err)
    m = _AT.search(text)
    if not m:  # a whole-record problem, or one that `__post_init__` worded with its field
        return _words(text)
    path = re.findall(r"\.([^.\[]+)|\[(\d+)\]", m.group(1))
    loc = ".".join(a or b for a, b in path)
    msg = _words(text[:m.start()], cls, path)
    got = data
    for a, b in path:
        try:
            got = got[a] if a else got[int(b)]
        except (KeyError, IndexError, TypeError, ValueError):
            got = None
            break
    got_r = repr(got) if got is not None and not isinstance(got, (dict, list)) else ""
    if len(got_r) > 80:
        got_r = got_r[:79] + "…"
    return f"{loc}: {msg}" + (f" (got {got_r})" if got_r else "")


def convert(data: Any, cls: type[R]) -> R:
    """`data` (dicts and lists, e.g. parsed TOML or JSON) as a `cls`, or `Invalid`."""
    try:
        return msgspec.convert(data, cls)
    except msgspec.ValidationError as e:
        raise Invalid([_describe(e, data, cls)]) from None


def dump(record: Any) -> Any:
    """A record as plain dicts, lists, strings and numbers (JSON- and TOML-ready)."""
    return msgspec.to_builtins(record)


def replace(record: R, **changes: Any) -> R:
    return msgspec.structs.replace(record, **changes)


def fields(cls: type) -> tuple[str, ...]:
    return cls.__struct_fields__
