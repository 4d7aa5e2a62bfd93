"""Evidence events: frozen, versioned records and their payload schemas.

A line of `evidence.jsonl` is one event:

    {"id": "evt_000042", "ts": "2026-11-22T10:00:00Z", "type": "observation",
     "actor": "tutor", "v": 1, "prev": "<sha256 of the previous line>", "data": {...}}

`data` is validated by the payload model of its `type`. Old schema versions are upgraded
on read (`upgrade`), never rewritten on disk.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

import msgspec

from .errors import UserError
from .schema import Annotated, Invalid, Meta, convert, dump

SCHEMA_VERSION = 1
GENESIS = "0" * 64
ACTORS = ("tutor", "learner", "lab", "system")

# The one id grammar every shell shares: `evt_` and the sequence number in ASCII digits,
# zero-padded to six, nothing after (`\Z`, not `$`, which also matches before a trailing
# newline; `[0-9]`, not `\d`, which also matches other scripts' digits). Canonical: one
# spelling per event (evt_0000001 is not evt_000001).
EVENT_ID = re.compile(r"\Aevt_(?:[0-9]{6}|[1-9][0-9]{6,})\Z")
# How far an event time may lie ahead of this machine's clock (two machines' clocks).
MAX_SKEW = timedelta(minutes=5)


def is_event_id(s: object) -> bool:
    return isinstance(s, str) and EVENT_ID.match(s) is not None


def check_event_id(s: str, what: str = "event id") -> str:
    if not is_event_id(s):
        raise UserError(f"{s!r} is not a valid {what}: it must be 'evt_' followed by the "
                        "event number in six ASCII digits (more only past 999999) and nothing else, e.g. evt_000012. Copy it from "
                        "`llmlab state --json` or the dashboard timeline.")
    return s


class _Payload(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """An event's `data`. Not frozen: `__post_init__` may normalise a field (a note's
    text is stripped); a payload lives only while it is checked."""


TEXT_MAX = 20_000
Text = Annotated[str, Meta(min_length=1, max_length=TEXT_MAX)]
Text0 = Annotated[str, Meta(max_length=TEXT_MAX)]


def _event_ref(field_: str, v: str) -> None:
    if not is_event_id(v):
        raise ValueError(f"{field_}: must be an event id: 'evt_' and the event number in six "
                         "ASCII digits, nothing else (e.g. evt_000012)")


class Observation(_Payload, kw_only=True):
    concept: str
    quality: Annotated[float, Meta(ge=0.0, le=1.0)]
    evidence: Text
    probe: Text0


class MisconceptionOpened(_Payload, kw_only=True):
    concept: str
    claim: Text
    catalog: str | None = None
    quote: Text0
    reopens: str | None = None  # a resolved misconception that came back (a relapse)


class MisconceptionResolved(_Payload, kw_only=True):
    target: str
    evidence: Text0

    def __post_init__(self) -> None:
        _event_ref("target", self.target)


class ExitAttempt(_Payload, kw_only=True):
    item: str
    passed: bool
    notes: Text0


class Prediction(_Payload, kw_only=True):
    experiment: str
    quantity: str
    value: float
    concept: str | None = None
    tolerance: Annotated[float, Meta(ge=0)] | None = None  # relative; None: the workspace default
    note: Text0
    # what the measured value depends on (model or config, parameters); None: the defaults
    conditions: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.value):
            raise ValueError("value: must be a finite number")


class Comparison(_Payload, kw_only=True):
    prediction: str
    quantity: str
    predicted: float
    measured: float
    abs_error: float
    rel_error: float
    tolerance: float
    within: bool
    concept: str | None = None


class ExperimentRun(_Payload, kw_only=True):
    experiment: str
    run_id: Text
    params: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    conditions: dict[str, Any] = {}
    concepts: list[str] = []
    comparisons: list[Comparison] = []


class Retraction(_Payload, kw_only=True):
    target: str
    reason: Text

    def __post_init__(self) -> None:
        _event_ref("target", self.target)


# What a tutor's note is about (a small fixed vocabulary, so notes can be filtered):
NoteTag = Literal["background", "reflex", "strength", "gap", "preference"]
NOTE_TAGS: tuple[str, ...] = get_args(NoteTag)
NOTE_CHARS = 1000  # a note is a short running observation, not a transcript
NOTE_CONCEPTS = 10


class Note(_Payload, kw_only=True):
    """The tutor's running picture of the learner: background, reflexes seen, what lands.
    Never evidence of mastery: the fold keeps it out of every progress number."""
    text: Annotated[str, Meta(min_length=1, max_length=NOTE_CHARS)]
    concepts: Annotated[list[str], Meta(max_length=NOTE_CONCEPTS)] = []
    tags: Annotated[list[NoteTag], Meta(max_length=len(NOTE_TAGS))] = []

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError("text: must not be blank")
        self.text = self.text.strip()
        self.concepts = list(dict.fromkeys(self.concepts))
        self.tags = list(dict.fromkeys(self.tags))


PAYLOADS: dict[str, type[_Payload]] = {
    "observation": Observation,
    "misconception_opened": MisconceptionOpened,
    "misconception_resolved": MisconceptionResolved,
    "exit_attempt": ExitAttempt,
    "prediction": Prediction,
    "experiment_run": ExperimentRun,
    "retraction": Retraction,
    "note": Note,
}
EventType = Literal[
    "observation", "misconception_opened", "misconception_resolved", "exit_attempt",
    "prediction", "experiment_run", "retraction", "note",
]


@dataclass(frozen=True)
class Event:
    id: str
    ts: str
    type: str
    actor: str
    prev: str
    data: dict[str, Any] = field(default_factory=dict)
    v: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "ts": self.ts, "type": self.type, "actor": self.actor,
                "v": self.v, "prev": self.prev, "data": self.data}

    def to_line(self) -> bytes:
        """The exact bytes written to the log (one line, newline-terminated)."""
        return (json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"),
                           sort_keys=False) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        raw = upgrade(raw)
        return cls(id=raw["id"], ts=raw["ts"], type=raw["type"], actor=raw["actor"],
                   prev=raw["prev"], data=raw["data"], v=raw["v"])

    @classmethod
    def from_line(cls, line: bytes | str) -> Event:
        return cls.from_dict(json.loads(line))

    @property
    def seq(self) -> int:
        return int(self.id.split("_", 1)[1])


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring an event read from disk to the current schema (never rewrites the file).

    Version 1 is the first published schema; a future v2 adds its step here.
    """
    v = raw.get("v")
    if v == SCHEMA_VERSION:
        return raw
    if isinstance(v, int) and v > SCHEMA_VERSION:
        raise UserError(
            f"Event {raw.get('id')} has schema version {v}, newer than this llmlab "
            f"understands ({SCHEMA_VERSION}). Upgrade llmlab (`pip install -U llmlab`)."
        )
    raise UserError(f"Event {raw.get('id')} has an invalid schema version {v!r}: llmlab did "
                    "not write that line (or it was edited). `llmlab verify` lists the damage; "
                    "restore the line from a backup or the workspace's git history.")


def line_hash(line: bytes) -> str:
    """Hash-chain link: SHA-256 of a line's bytes without its trailing newline."""
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def now_utc() -> datetime:
    return datetime.now(UTC)


def format_ts(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_not_future(t: datetime, now: datetime | None = None) -> datetime:
    """Event time never lies in the future (beyond MAX_SKEW of clock difference)."""
    now = now or now_utc()
    if t > now + MAX_SKEW:
        raise UserError(
            f"Timestamp {format_ts(t)} is in the future (this machine's clock says "
            f"{format_ts(now)}; up to {int(MAX_SKEW.total_seconds() // 60)} minutes of clock "
            "difference is allowed). An event records something that already happened: give "
            "the time it happened, or leave out --at for now. If this machine's clock is "
            "wrong, set it right first.")
    return t


def check_payload(type_: str, data: Any) -> dict[str, Any]:
    """The payload of an event of `type_` (a known type), normalised, or `Invalid` saying
    what is wrong. Text must be Unicode that UTF-8 can write (a lone surrogate, which JSON
    can spell, is refused)."""
    out = dump(convert(data, PAYLOADS[type_]))
    try:
        msgspec.json.encode(out)  # UTF-8: refuses a lone surrogate
    except UnicodeEncodeError:
        raise Invalid(["text contains a lone surrogate (not Unicode text UTF-8 can write)"]) \
            from None
    return out


def validate_payload(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """Check a payload against its schema; returns the normalised payload."""
    if type_ not in PAYLOADS:
        raise UserError(
            f"Unknown event type '{type_}'. Valid types: {', '.join(PAYLOADS)}."
        )
    try:
        return check_payload(type_, data)
    except Invalid as e:
        raise UserError(f"Invalid {type_} event: {e}. " + _FIX_HINTS.get(type_, "")) from None


_FIX_HINTS = {
    "observation": "Quality is how well this one exchange went, a number from 0 to 1; "
                   "evidence is a short factual note of what the learner said or did.",
    "misconception_opened": "Give the concept id and the wrong claim in the learner's words.",
    "prediction": "Give the experiment, the quantity and a finite numeric value.",
    "retraction": "Give the id of the event to retract and a reason.",
    "note": f"A note is one short text (at most {NOTE_CHARS} characters) about the learner, "
            f"with optional concept ids (at most {NOTE_CONCEPTS}) and tags from: "
            f"{', '.join(NOTE_TAGS)}.",
}
