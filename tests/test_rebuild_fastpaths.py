"""The rebuild's fast paths agree with the slow ones (issue 19).

- `log.iter_checked` checks an observation as llmlab writes it inline; on any log it must
  yield the same events, and stop at the same line with the same message, as
  `chain.checked(log.iter_parsed(...))`, which runs `check_event` on every event.
- `state.fold` reviews ended concept-days in batches (`retention.close_days`); folded in
  batches of any size the state is the one folded event by event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import test_fold_equivalence as fe
from llmlab import chain, log, state
from llmlab.events import GENESIS, line_hash

NOW = datetime(2026, 11, 1, tzinfo=UTC)

TIMES = [  # llmlab's spelling, other valid ones, invalid ones, future, out of order
    "2026-01-02T10:00:00.000000Z", "2026-01-02T10:00:00Z", "2026-01-02T10:00:00+00:00",
    "2026-01-02T11:00:00+01:00", "2026-01-02T10:00:00-00:00", "2026-01-01T23:59:59.999999Z",
    "2026-01-02T09:59:59.999999Z", "2026-01-03T00:00:00.000001Z",
    "2026-02-30T10:00:00.000000Z", "2026-01-02T24:00:00.000000Z", "2026-01-02 10:00:00Z",
    "20260102T100000Z", "2026-01-02T10:00:00z", "2026-01-02T10:00:00.000000",
    "2099-01-01T00:00:00.000000Z", "2026-11-01T00:04:59.000000Z",
    "2026-11-01T00:05:01.000000Z", "2026-W01-5T10:00:00Z", "Z", "", "2026-01-02T10:00:00ZZ",
    "2026-01-02T10:00:00.000000+00:00Z", "\uff12026-01-02T10:00:00Z", "٢٠٢٦-01-02T10:00:00Z"]
_ts = st.one_of(st.sampled_from(["2026-01-02T10:00:00.000000Z", "2026-01-02T09:59:59.999999Z",
                                 "2099-01-01T00:00:00.000000Z"]),
                st.sampled_from(TIMES), st.text(max_size=30).map(lambda s: s + "Z"),
                st.integers(), st.none())
_quality = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 1.5, -0.1, 0, 1, True, None, "0.5"]),
                     st.floats(allow_nan=True, allow_infinity=True))
_payload = st.one_of(
    st.fixed_dictionaries({"concept": st.sampled_from(["softmax", "x", "é", "\ud800"]),
                           "quality": _quality,
                           "evidence": st.sampled_from(["e", "", "é", "x" * 20_001]),
                           "probe": st.sampled_from(["", "p", "\udfff"])}),
    st.dictionaries(st.sampled_from(["concept", "quality", "evidence", "probe", "target"]),
                    st.one_of(st.text(max_size=3), _quality), max_size=5),
    st.sampled_from([None, [], "data"]))
_VALID = {"ts": "2026-01-02T10:00:00.000000Z", "type": "observation", "actor": "tutor",
          "v": 1, "data": {"concept": "softmax", "quality": 0.5, "evidence": "e", "probe": ""}}
_changes = {
    "ts": _ts,
    "type": st.sampled_from(["note", "observations", None]),
    "actor": st.sampled_from(["learner", "robot", None]),
    "v": st.sampled_from([2, 0, "1", None]),
    "data": _payload,
}


@st.composite
def _event(draw) -> dict:
    """A valid observation with none, one or two of its fields changed (mostly the time
    and the payload), so most events reach the inline check and some fail it late."""
    ev = dict(_VALID)
    for key in draw(st.lists(st.sampled_from(["ts", "ts", "ts", "data", "data", "type",
                                              "actor", "v"]), max_size=2)):
        ev[key] = draw(_changes[key])
    return ev


def write_log(path, events: list[dict]) -> None:
    """Hash-chained lines with sequential ids: the byte-level checks pass, so every event
    reaches the event checks."""
    prev, out = GENESIS, b""
    for i, ev in enumerate(events, 1):
        line = json.dumps({"id": f"evt_{i:06d}", "ts": ev["ts"], "type": ev["type"],
                           "actor": ev["actor"], "v": ev["v"], "prev": prev,
                           "data": ev["data"]}, separators=(",", ":")).encode() + b"\n"
        out += line
        prev = line_hash(line)
    path.write_bytes(out)


def outcome(gen) -> tuple[list[dict], object]:
    got: list[dict] = []
    try:
        for ev in gen:
            got.append(ev)
    except chain.Damaged as e:
        return got, ("damaged", e.n, e.problem)
    except Exception as e:  # what the fold's caller turns into "a payload it cannot use"
        return got, type(e).__name__
    return got, None


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=st.lists(_event(), min_size=1, max_size=6))
def test_the_inline_observation_check_agrees_with_check_event(tmp_path, events):
    path = tmp_path / "evidence.jsonl"
    write_log(path, events)
    fast = outcome(log.iter_checked(path, len(events), [0], now=NOW))
    slow = outcome(chain.checked(log.iter_parsed(path, len(events)), now=NOW))
    assert fast == slow


@pytest.mark.parametrize("ts", TIMES)
@pytest.mark.parametrize("first", ["2026-01-02T10:00:00.000000Z", "2026-01-02T10:00:00Z"])
def test_every_time_spelling_gets_the_same_verdict(tmp_path, first, ts):
    path = tmp_path / "evidence.jsonl"
    write_log(path, [{**_VALID, "ts": first}, {**_VALID, "ts": ts}])
    fast = outcome(log.iter_checked(path, 2, [0], now=NOW))
    assert fast == outcome(chain.checked(log.iter_parsed(path, 2), now=NOW))
    assert len(fast[0]) >= 1


def test_the_inline_check_accepts_llmlab_observations(tmp_path):
    """Not vacuous: llmlab's own observations take the inline path and pass."""
    ok = {"ts": "2026-01-02T10:00:00.000000Z", "type": "observation", "actor": "tutor",
          "v": 1, "data": {"concept": "softmax", "quality": 0.5, "evidence": "e", "probe": ""}}
    late = {**ok, "ts": "2026-01-01T10:00:00.000000Z"}
    path = tmp_path / "evidence.jsonl"
    write_log(path, [ok, ok, late])
    got, why = outcome(log.iter_checked(path, 3, [0], now=NOW))
    assert len(got) == 2 and why == ("damaged", 3, "line 3 (evt_000003) is dated "
                                     "2026-01-01T10:00:00.000000Z, before the event before it.")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), n=st.integers(1, 200), batch=st.integers(1, 5),
       density=fe.densities)
def test_batched_reviews_equal_reviews_event_by_event(seed, n, batch, density):
    events = fe.gen_events(seed, n, *density)
    one_by_one = state.initial(fe.CUR)
    one_by_one.retracted = state.retractions(events)
    for ev in events:  # `apply`: a fold of one event, its concept-day reviewed at once
        state.apply(one_by_one, ev, fe.P)
    old = state.CLOSE_BATCH
    state.CLOSE_BATCH = batch
    try:
        batched = state.derive(fe.CUR, events, fe.P)
    finally:
        state.CLOSE_BATCH = old
    assert batched.to_dict() == one_by_one.to_dict()
    assert batched.to_dict() == state.derive(fe.CUR, events, fe.P).to_dict()
