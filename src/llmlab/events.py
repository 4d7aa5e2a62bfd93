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
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import UserError

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


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text_field(min_length: int = 1, max_length: int = 20_000):
    return Field(min_length=min_length, max_length=max_length)


class Observation(_Payload):
    concept: str
    quality: float = Field(ge=0.0, le=1.0)
    evidence: str = _text_field()
    probe: str = _text_field(0)


class MisconceptionOpened(_Payload):
    concept: str
    claim: str = _text_field()
    catalog: str | None = None
    quote: str = _text_field(0)
    reopens: str | None = None  # a resolved misconception that came back (a relapse)


def _event_ref(v: str) -> str:
    if not is_event_id(v):
        raise ValueError("must be an event id: 'evt_' and the event number in six ASCII "
                         "digits, nothing else (e.g. evt_000012)")
    return v


class MisconceptionResolved(_Payload):
    target: str
    evidence: str = _text_field(0)

    _target = field_validator("target")(classmethod(lambda cls, v: _event_ref(v)))


class ExitAttempt(_Payload):
    item: str
    passed: bool
    notes: str = _text_field(0)


class Prediction(_Payload):
    experiment: str
    quantity: str
    value: float
    concept: str | None = None
    tolerance: float | None = Field(None, ge=0)  # relative; None: the workspace default
    note: str = _text_field(0)
    # what the measured value depends on (model or config, parameters); None: the defaults
    conditions: dict[str, Any] | None = None

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return v


class Comparison(_Payload):
    prediction: str
    quantity: str
    predicted: float
    measured: float
    abs_error: float
    rel_error: float
    tolerance: float
    within: bool
    concept: str | None = None


class ExperimentRun(_Payload):
    experiment: str
    run_id: str = _text_field()
    params: dict[str, Any] = {}
    metrics: dict[str, float] = {}
    conditions: dict[str, Any] = {}
    concepts: list[str] = []
    comparisons: list[Comparison] = []


class Retraction(_Payload):
    target: str
    reason: str = _text_field()

    _target = field_validator("target")(classmethod(lambda cls, v: _event_ref(v)))


# What a tutor's note is about (a small fixed vocabulary, so notes can be filtered):
NoteTag = Literal["background", "reflex", "strength", "gap", "preference"]
NOTE_TAGS: tuple[str, ...] = get_args(NoteTag)
NOTE_CHARS = 1000  # a note is a short running observation, not a transcript
NOTE_CONCEPTS = 10


class Note(_Payload):
    """The tutor's running picture of the learner: background, reflexes seen, what lands.
    Never evidence of mastery: the fold keeps it out of every progress number."""
    text: str = _text_field(1, NOTE_CHARS)
    concepts: list[str] = Field(default_factory=list, max_length=NOTE_CONCEPTS)
    tags: list[NoteTag] = Field(
        default_factory=list, max_length=len(NOTE_TAGS))

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v.strip()

    @field_validator("concepts", "tags")
    @classmethod
    def _unique(cls, v: list) -> list:
        return list(dict.fromkeys(v))


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


def validate_payload(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """Check a payload against its schema; returns the normalised payload."""
    model = PAYLOADS.get(type_)
    if model is None:
        raise UserError(
            f"Unknown event type '{type_}'. Valid types: {', '.join(PAYLOADS)}."
        )
    try:
        return model(**data).model_dump(mode="json")
    except ValidationError as e:
        parts = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "payload"
            got = err.get("input")
            got_r = repr(got) if not isinstance(got, dict) and got is not None else ""
            got_s = f" (got {got_r if len(got_r) <= 80 else got_r[:79] + '…'})" if got_r else ""
            parts.append(f"{loc}: {err['msg']}{got_s}")
        raise UserError(
            f"Invalid {type_} event: " + "; ".join(parts) + ". "
            + _FIX_HINTS.get(type_, "")
        ) from None


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
