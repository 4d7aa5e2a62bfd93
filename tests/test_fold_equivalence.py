"""The fast fold equals the old fold (issue 19): property tests against `reference_fold`,
a frozen copy of the fold before the retention update was made cheap.

Logs are generated at several densities (many events per concept-day down to one event
a concept every few days, gaps up to years), with retractions, misconceptions (opened,
resolved, reopened), predictions, runs that score them, exit attempts and a concept
the curriculum no longer has. The derived state must be equal to the bit, from scratch,
through the on-disk rebuild and after a snapshot round trip; and the float FSRS stepper
must give the `fsrs` library's cards exactly.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta

import pytest
import reference_fold as ref
from fsrs import Card, Rating
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmlab import api, curriculum, retention, snapshot, state
from llmlab.config import MasteryParams
from llmlab.events import GENESIS, Event, line_hash

from conftest import MINI

CUR = curriculum.load(MINI)
CONCEPTS = [*CUR.concept_ids, "removed_concept"]  # the last one: no longer in the curriculum
P = MasteryParams()
START = datetime(1950, 3, 1, 7, tzinfo=UTC)  # years of gaps fit before NOW
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def gen_events(seed: int, n: int, per_day: float, max_gap_days: int) -> list[dict]:
    """n valid events, hash-chained, ~`per_day` events a day; between days, gaps of 1 to
    `max_gap_days` days. Qualities hit the rating boundaries (0.4, 0.6, 0.85) often."""
    rng = random.Random(seed)
    t, prev, events = START, GENESIS, []
    opened: list[str] = []  # open misconceptions
    resolved: list[str] = []
    pending: list[tuple[str, str | None]] = []  # predictions: (id, concept)
    for i in range(1, n + 1):
        if rng.random() < 1 / max(per_day, 1e-9):  # the next day (or later)
            gap = rng.choice([1, 1, 1, 2, 3, rng.randint(1, max_gap_days)])
            if t + timedelta(days=gap + 1) < NOW:  # never in the future
                t = (t + timedelta(days=gap)).replace(hour=7, minute=0, second=0)
        t += timedelta(seconds=rng.randint(1, 1800))
        eid = f"evt_{i:06d}"
        c = rng.choice(CONCEPTS)
        kind = rng.choices(["observation", "misconception_opened", "misconception_resolved",
                            "prediction", "experiment_run", "exit_attempt", "retraction"],
                           [70, 6, 5, 6, 5, 3, 5])[0]
        if i == 1 and kind in ("misconception_resolved", "retraction"):
            kind = "exit_attempt"  # nothing earlier to refer to
        if kind == "observation":
            q = rng.choice([0.0, 0.4, 0.6, 0.85, 1.0, 0.39999, round(rng.random(), 3),
                            rng.random()])
            data = {"concept": c, "quality": q, "evidence": "e", "probe": ""}
        elif kind == "misconception_opened":
            reopens = resolved.pop(rng.randrange(len(resolved))) \
                if resolved and rng.random() < 0.4 else None
            data = {"concept": c, "claim": "wrong", "catalog": None, "quote": "",
                    "reopens": reopens}
            opened.append(eid)
        elif kind == "misconception_resolved":
            if opened and rng.random() < 0.9:
                target = opened.pop(rng.randrange(len(opened)))
                resolved.append(target)
            else:  # resolves something that is not an open misconception: ignored
                target = f"evt_{rng.randint(1, i - 1):06d}"
            data = {"target": target, "evidence": "e"}
        elif kind == "prediction":
            pc = rng.choice([c, None])
            data = {"experiment": "sampling", "quantity": "top1_prob",
                    "value": rng.random(), "concept": pc, "tolerance": 0.1, "note": "",
                    "conditions": None}
            pending.append((eid, pc))
        elif kind == "experiment_run":
            comps = []
            for pid, pc in pending[: rng.randint(0, 2)]:
                rel = rng.choice([0.0, 0.05, 0.2, 1.5])
                comps.append({"prediction": pid, "quantity": "top1_prob", "predicted": 0.5,
                              "measured": 0.5 * (1 + rel), "abs_error": 0.5 * rel,
                              "rel_error": rel, "tolerance": 0.1, "within": rel <= 0.1,
                              "concept": rng.choice([None, pc, c])})
            del pending[: len(comps)]
            data = {"experiment": "sampling", "run_id": f"r{i}", "params": {},
                    "metrics": {"top1_prob": rng.random()}, "conditions": {},
                    "concepts": rng.choice([[], [c], [c, "softmax"]]), "comparisons": comps}
        elif kind == "exit_attempt":
            data = {"item": rng.choice(["explain_sampling", "build_sampler"]),
                    "passed": rng.random() < 0.5, "notes": ""}
        else:
            data = {"target": f"evt_{rng.randint(1, i - 1):06d}", "reason": "test"}
        ev = Event(id=eid, ts=t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), type=kind, actor="tutor",
                   prev=prev, data=data)
        line = ev.to_line()
        prev = line_hash(line)
        events.append(json.loads(line))
    return events


def both(events: list[dict]) -> tuple[state.State, ref.State]:
    return state.derive(CUR, events, P), ref.derive(CUR, events, P)


NOTE_FIELDS = ("notes", "concept_notes", "note_count")  # the `note` event came after the
# reference was frozen; these logs have none, so the new fold keeps them empty


def assert_same(new: state.State, old: ref.State) -> None:
    d = new.to_dict()
    assert [d.pop(k) for k in NOTE_FIELDS] == [[], {}, 0]
    assert d == old.to_dict()
    for cid, c in new.concepts.items():
        o = old.concepts[cid]
        for now in (NOW, NOW + timedelta(days=400)):
            assert c.reviews.recall(now) == o.reviews.recall(now)
        assert c.reviews.due() == o.reviews.due()


densities = st.sampled_from([(60.0, 3), (8.0, 30), (1.0, 10), (0.3, 400), (0.05, 3000)])


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 300), density=densities)
def test_fast_fold_equals_the_old_fold(seed, n, density):
    events = gen_events(seed, n, *density)
    assert_same(*both(events))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(2, 200), cut=st.floats(0, 1),
       density=densities)
def test_snapshot_round_trip_then_fold_equals_the_old_fold(seed, n, cut, density):
    """The card leaves the fold as the library's dict and comes back: folding on from it
    gives what the old fold gives over the whole log."""
    events = gen_events(seed, n, *density)
    k = int(cut * len(events))
    head = state.derive(CUR, events[:k], P, ref.retractions(events))
    back = state.State.from_dict(json.loads(json.dumps(head.to_dict())))
    tail = state.fold(back, events[k:], P)
    assert_same(tail, ref.derive(CUR, events, P))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), n=st.integers(1, 150), density=densities)
def test_rebuild_from_disk_equals_the_old_fold(ws, seed, n, density):
    """The real rebuild (two streamed passes over evidence.jsonl, checks, snapshot)."""
    events = gen_events(seed, n, *density)
    ws.log_path.write_bytes(b"".join(Event.from_dict(e).to_line() for e in events))
    new, tip = snapshot.from_scratch(ws.log_path, ws.curriculum, P)
    assert tip.damage is None and new.events == len(events)
    assert_same(new, ref.derive(ws.curriculum, events, P))
    scratch, _ = api.load_state(ws, use_cache=False)  # writes the snapshot
    cached, _ = api.load_state(ws)
    assert cached.to_dict() == scratch.to_dict() == new.to_dict()


def library_card(seq: list[tuple[int, int]]) -> Card:
    """The card `fsrs` itself gives for reviews (rating, days after the previous)."""
    sched = retention.scheduler()
    day = date(2000, 1, 1)
    card = Card(card_id=0, due=datetime(2000, 1, 1, 12, tzinfo=UTC))
    for r, gap in seq:
        day += timedelta(days=gap)
        card, _ = sched.review_card(card, Rating(r), datetime(day.year, day.month, day.day,
                                                              12, tzinfo=UTC))
    return card


@settings(max_examples=300, deadline=None)
@given(seq=st.lists(st.tuples(st.integers(1, 4),
                              st.one_of(st.integers(1, 40), st.integers(1, 20_000))),
                    min_size=1, max_size=30))
def test_float_stepper_gives_the_library_card_bit_for_bit(seq):
    fast = retention.fast_reviews()
    assert fast is not None, "FastReviews disagrees with the installed fsrs"
    card, day = None, date(2000, 1, 1).toordinal()
    for r, gap in seq:
        day += gap
        card = retention._step(fast, card, day, r)
    assert retention._card_dict(card) == library_card(seq).to_dict()


def test_the_library_is_the_fallback(monkeypatch):
    """If the float stepper ever disagrees with `fsrs` (a new release changed the math),
    every review goes through the library, with the same results as before."""
    events = gen_events(7, 300, 1.0, 10)
    fast = state.derive(CUR, events, P).to_dict()
    monkeypatch.setattr(retention, "fast_reviews", lambda: None)
    monkeypatch.setattr(retention, "_fast", None)
    slow = state.derive(CUR, events, P)
    assert slow.to_dict() == fast
    assert_same(slow, ref.derive(CUR, events, P))
    back = state.State.from_dict(json.loads(json.dumps(fast)))  # a snapshot from fast mode
    assert back.to_dict() == fast


def test_the_self_check_catches_a_changed_formula(monkeypatch):
    wrong = retention.FastReviews(retention.scheduler())
    wrong.e8 *= 1 + 1e-15  # one bit off in one constant
    assert retention._agrees(retention.FastReviews(retention.scheduler()))
    assert not retention._agrees(wrong)


def test_a_library_without_what_the_stepper_reads_falls_back(monkeypatch):
    """A future `fsrs` that renamed the scheduler's private constants: no crash, the
    library does every review."""
    class Renamed:
        parameters = retention.scheduler().parameters

    monkeypatch.setattr(retention, "scheduler", lambda desired_retention=0.9: Renamed())
    retention.fast_reviews.cache_clear()
    try:
        assert retention.fast_reviews() is None and retention._fast is None
    finally:
        monkeypatch.undo()
        retention.fast_reviews.cache_clear()
        assert retention.fast_reviews() is not None


_text = st.one_of(st.text(max_size=5), st.sampled_from(["", "e", "\ud800", "é", "x" * 20_000,
                                                         "x" * 20_001]))
_value = st.one_of(_text, st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1.0, 1.0000001, -1e-300, 0, 1, True, None]))


@settings(max_examples=400, deadline=None)
@given(d=st.dictionaries(st.sampled_from(["concept", "quality", "evidence", "probe", "extra"]),
                         _value, max_size=5))
def test_the_plain_observation_shortcut_accepts_only_what_the_model_accepts(d):
    """The rebuild skips the `Observation` model for a payload `_plain_observation` accepts:
    the model must accept every such payload (what it refuses still goes through it)."""
    from llmlab.chain import _plain_observation
    from llmlab.events import check_payload
    from llmlab.schema import Invalid

    if _plain_observation(d):
        assert check_payload("observation", d) == d  # raises if the shortcut lied
    plain = {"concept": "c", "quality": 0.5, "evidence": "e", "probe": ""}
    assert _plain_observation(plain)
    for bad in ({**plain, "quality": 1.5}, {**plain, "evidence": ""}, {**plain, "x": 1}):
        assert not _plain_observation(bad)
        with pytest.raises(Invalid):
            check_payload("observation", bad)
