"""The rebuild's fast paths agree with the slow ones (issue 19).

- `rebuild.verified` (the one-pass rebuild's reader) checks an observation as llmlab
  writes it inline; on any log it must accept exactly what `log.scan` and
  `chain.checked(log.iter_parsed(...))` (`check_event` on every event) accept, with the
  same events; `rebuild.one_pass` must give the two passes' state and tip, or step aside.
- `state.fold` reviews ended concept-days in batches (`retention.close_days`); folded in
  batches of any size the state is the one folded event by event.
"""

from __future__ import annotations

import json
import re
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


def verdicts(path, n: int) -> tuple[tuple[list[dict], bool], tuple[list[dict], bool]]:
    """(events, accepted) from `rebuild.verified` and from the two passes' checks."""
    from llmlab import rebuild, snapshot
    from llmlab.errors import UserError

    seen = rebuild.Verified()
    try:
        fast = [ev for batch in rebuild.verified(path, n, seen, now=NOW) for ev in batch]
    except (chain.Damaged, UnicodeDecodeError, UserError) + snapshot._FOLD_ERRORS:
        fast = []  # what `one_pass` catches: it steps aside
    tip, _ = log.scan(path, now=NOW)
    slow, why = outcome(chain.checked(log.iter_parsed(path, n), now=NOW))
    return (fast, seen.ok), (slow, why is None and tip.damage is None)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=st.lists(_event(), min_size=1, max_size=6))
def test_the_inline_observation_check_agrees_with_check_event(tmp_path, events):
    path = tmp_path / "evidence.jsonl"
    write_log(path, events)
    (fast, ok), (slow, slow_ok) = verdicts(path, len(events))
    assert ok == slow_ok
    if ok:
        assert fast == slow


@pytest.mark.parametrize("ts", TIMES)
@pytest.mark.parametrize("first", ["2026-01-02T10:00:00.000000Z", "2026-01-02T10:00:00Z"])
def test_every_time_spelling_gets_the_same_verdict(tmp_path, first, ts):
    path = tmp_path / "evidence.jsonl"
    write_log(path, [{**_VALID, "ts": first}, {**_VALID, "ts": ts}])
    (fast, ok), (slow, slow_ok) = verdicts(path, 2)
    assert ok == slow_ok and (fast == slow if ok else True)


def test_the_inline_check_accepts_llmlab_observations(tmp_path):
    """Not vacuous: llmlab's own observations pass; one dated before the last does not."""
    ok = {"ts": "2026-01-02T10:00:00.000000Z", "type": "observation", "actor": "tutor",
          "v": 1, "data": {"concept": "softmax", "quality": 0.5, "evidence": "e", "probe": ""}}
    late = {**ok, "ts": "2026-01-01T10:00:00.000000Z"}
    path = tmp_path / "evidence.jsonl"
    write_log(path, [ok, ok])
    assert verdicts(path, 2)[0][1] is True
    write_log(path, [ok, ok, late])
    assert verdicts(path, 3) == (([], False), (verdicts(path, 3)[1][0], False))


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


def chained(lines: list[bytes]) -> bytes:
    """`lines` with their ids and prevs rewritten in order (the bytes otherwise as they
    are), so a change to one line is not a chain break unless meant."""
    out, prev = [], GENESIS
    for i, line in enumerate(lines, 1):
        line = re.sub(rb'"id":"evt_[0-9]+"', b'"id":"evt_%06d"' % i, line, count=1)
        line = re.sub(rb'"prev":"[0-9a-f]{64}"', b'"prev":"' + prev.encode() + b'"', line,
                      count=1)
        out.append(line)
        prev = line_hash(line)
    return b"".join(out)


def _spaced_retraction(line: bytes) -> bytes:
    return line.replace(b'"type":"retraction"', b'"type": "retraction"')


def _escaped_retraction(line: bytes) -> bytes:
    return line.replace(b'"type":"retraction"', b'"type":"retr\\u0061ction"')


MUTATIONS = {  # what can happen to line k of a valid log (None: the valid log itself)
    "none": None,
    "torn tail": lambda lines, k: b"".join(lines)[:-7],
    "edited byte": lambda lines, k: b"".join(
        lines[:k] + [lines[k].replace(b'"tutor"', b'"tut0r"')] + lines[k + 1:]),
    "edited, rechained": lambda lines, k: chained(
        lines[:k] + [lines[k].replace(b'"tutor"', b'"robot"')] + lines[k + 1:]),
    "edited, not rechained": lambda lines, k: b"".join(
        lines[:k] + [lines[k].replace(b'"evidence":"e"', b'"evidence":"f"')] + lines[k + 1:]),
    "line dropped": lambda lines, k: b"".join(lines[:k] + lines[k + 1:]),
    "spaced retractions": lambda lines, k: chained([_spaced_retraction(x) for x in lines]),
    "escaped retractions": lambda lines, k: chained([_escaped_retraction(x) for x in lines]),
    "trailing garbage": lambda lines, k: b"".join(
        lines[:k] + [lines[k][:-1] + b" x\n"] + lines[k + 1:]),
    "trailing space": lambda lines, k: b"".join(
        lines[:k] + [lines[k][:-1] + b" \n"] + lines[k + 1:]),
    "blank line": lambda lines, k: b"".join(lines[:k] + [b"\n"] + lines[k:]),
    "future": lambda lines, k: chained(
        lines[:k] + [_retimed(lines[k], "2099-01-01T00:00:00.000000Z")] + lines[k + 1:]),
    "out of order": lambda lines, k: chained(
        lines[:k] + [_retimed(lines[k], "1950-01-01T00:00:00.000000Z")] + lines[k + 1:]),
    "bad quality": lambda lines, k: chained(
        lines[:k] + [lines[k].replace(b'"quality":', b'"quality":7')] + lines[k + 1:]),
    "latin-1": lambda lines, k: b"".join(
        lines[:k] + [lines[k].replace(b'"tutor"', b'"tut\xe9r"')] + lines[k + 1:]),
}


def _retimed(line: bytes, ts: str) -> bytes:
    ev = json.loads(line)
    ev["ts"] = ts
    return json.dumps(ev, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), n=st.integers(1, 60), density=fe.densities,
       mutation=st.sampled_from(sorted(MUTATIONS)), where=st.floats(0, 0.999))
def test_one_pass_agrees_with_two_passes(tmp_path, seed, n, density, mutation, where):
    """On a sound log the one-pass rebuild gives the two-pass state and tip; on a damaged
    one it steps aside (None), and `from_scratch` gives the two-pass answer."""
    from llmlab import rebuild, snapshot
    from llmlab.events import Event

    lines = [Event.from_dict(e).to_line() for e in fe.gen_events(seed, n, *density)]
    change = MUTATIONS[mutation]
    path = tmp_path / "evidence.jsonl"
    path.write_bytes(b"".join(lines) if change is None else change(lines, int(where * n)))
    two = snapshot.two_passes(path, fe.CUR, fe.P)
    one = rebuild.one_pass(path, fe.CUR, fe.P, errors=snapshot._FOLD_ERRORS)
    if mutation == "none":
        assert one is not None
    if one is not None:
        assert two[1].damage is None
        assert one[0].to_dict() == two[0].to_dict()
        assert vars(one[1]) == vars(two[1])
    both = snapshot.from_scratch(path, fe.CUR, fe.P)
    assert both[0].to_dict() == two[0].to_dict() and vars(both[1]) == vars(two[1])


def test_a_retraction_the_search_misses_sends_the_log_to_two_passes(tmp_path):
    """Not vacuous: a retraction spelled another way (which the byte search misses) is
    found by the event checks' count, and the one pass steps aside."""
    from llmlab import rebuild, snapshot
    from llmlab.events import Event

    events = fe.gen_events(3, 80, 8.0, 30)
    assert any(e["type"] == "retraction" for e in events)
    lines = [Event.from_dict(e).to_line() for e in events]
    path = tmp_path / "evidence.jsonl"
    path.write_bytes(b"".join(lines))
    assert rebuild.one_pass(path, fe.CUR, fe.P) is not None
    path.write_bytes(chained([_spaced_retraction(x) for x in lines]))
    assert rebuild.one_pass(path, fe.CUR, fe.P) is None


def test_a_log_shorter_than_its_first_pass_counted_is_not_sound(tmp_path):
    """(The log replaced between the passes.) `verified` must see every counted line."""
    from llmlab import rebuild
    from llmlab.events import Event

    path = tmp_path / "evidence.jsonl"
    path.write_bytes(b"".join(Event.from_dict(e).to_line()
                              for e in fe.gen_events(5, 20, 8.0, 30)))
    for count, ok in ((20, True), (19, True), (21, False)):
        seen = rebuild.Verified()
        got = [ev for batch in rebuild.verified(path, count, seen) for ev in batch]
        assert len(got) == min(count, 20) and seen.ok is ok
