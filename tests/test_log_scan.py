"""The first pass of a rebuild (`log.scan`) checks the lines llmlab writes at the byte level
only; a line it lets through that is not a valid event must still be damage *at its own
line* for every reader, as for any other bad line: never an exception, never an event
lost before it, the log unchanged by a refused write (issue 22, item 3).

The damaged line keeps what the byte-level check looks at (its id first, `prev` the hash
of line 1) and the next line's `prev` is re-chained to it, so only parsing finds it."""

from __future__ import annotations

import pytest

from llmlab import api, integrity, snapshot
from llmlab import log as log_mod
from llmlab.errors import UserError
from llmlab.events import line_hash


def _observation_line(ws) -> bytes:
    return ws.log_path.read_bytes().splitlines(keepends=True)[1]


def _data_is(text: bytes):
    """Line 2 with everything from `"data"` on replaced by `text`."""
    return lambda line: line[:line.index(b'"data"')] + text


DAMAGE = {
    # the bug: the bytes "retraction" made scan json.loads the line itself, and raise
    "not JSON, with the text retraction": _data_is(b'"data":"retraction" oops}\n'),
    "a retraction without a target": lambda line: _data_is(b'"data":{}}\n')(
        line.replace(b'"type":"observation"', b'"type":"retraction"')),
    "a retraction whose data is a string": lambda line: _data_is(b'"data":"retraction"}\n')(
        line.replace(b'"type":"observation"', b'"type":"retraction"')),
    # the same path without the text: the second pass blamed the line before it
    "not JSON": _data_is(b'"data": oops}\n'),
    "not UTF-8": lambda line: line.replace(b'"evidence":"b"', b'"evidence":"\xff"'),
    "something after the object": lambda line: line[:-1] + b' {"x":1}\n',
}


def _damage(ws, how) -> bytes:
    """Line 2 of three observations damaged by `how`, line 3 re-chained to it."""
    lines = ws.log_path.read_bytes().splitlines(keepends=True)
    bad = DAMAGE[how](lines[1])
    assert bad.startswith(b'{"id":"evt_000002",') and line_hash(lines[0]).encode() in bad
    third = lines[2].replace(line_hash(lines[1]).encode(), line_hash(bad).encode())
    buf = lines[0] + bad + third
    ws.log_path.write_bytes(buf)
    return buf


@pytest.fixture
def three(ws):
    for q, text in ((0.4, "a"), (0.5, "b"), (0.6, "c")):
        api.observe(ws, "softmax", q, text)
    return ws


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_every_reader_reports_the_damaged_line(three, how, invoke):
    ws = three
    buf = _damage(ws, how)
    assert log_mod.verify(ws.log_path).problems[0].startswith("line 2")

    # the library readers: damage at line 2, the one event before it kept. (The first
    # pass parses only lines that may be retractions; the second finds the others.)
    tip, retracted = log_mod.scan(ws.log_path)
    assert retracted == {}
    if b'"retraction"' in buf:
        assert tip.count == 1 and tip.damage.startswith("line 2 "), tip.damage
    assert [e["id"] for e in log_mod.read_events(ws.log_path)] == ["evt_000001"]
    st, tip = snapshot.from_scratch(ws.log_path, ws.curriculum, ws.config.mastery)
    assert st.events == 1 and tip.count == 1 and tip.damage.startswith("line 2 "), tip.damage
    assert "line 2 " in api.state(ws)["warnings"][0]
    assert api.rebuild(ws)["events"] == 1
    assert len(api.concept(ws, "softmax")["evidence"]) == 1
    assert api.event_type(ws, "evt_000002") is None

    # the write path refuses, naming the line, and changes nothing
    with pytest.raises(UserError, match="line 2 .*repair"):
        api.observe(ws, "softmax", 0.5, "new")
    assert ws.log_path.read_bytes() == buf

    # the CLI, as a user runs it
    for args in (["state"], ["verify"], ["log", "observe", "softmax", "-q", "0.5", "-e", "new"]):
        r = invoke(*args)
        assert "Traceback" not in r.stderr and "line 2" in r.stdout + r.stderr, (args, r)
        assert (r.returncode == 0) == (args == ["state"]), (args, r)
    assert ws.log_path.read_bytes() == buf

    # repair moves line 2 on; the log verifies and counts the one event before it
    integrity.repair(ws.log_path, ws.state_dir)
    assert log_mod.verify(ws.log_path, anchor=integrity.read_anchor(ws.state_dir)).ok
    assert api.rebuild(ws) == {"events": 1, "last_event": "evt_000001", "warnings": []}


def test_retractions_and_the_text_retraction_still_count(ws):
    """A real retraction is found by the first pass and its target stops counting; an
    observation whose evidence is the word itself (`"evidence":"retraction"`) is an
    ordinary event."""
    api.observe(ws, "softmax", 0.3, "a")
    api.observe(ws, "softmax", 0.9, "retraction")
    api.observe(ws, "softmax", 0.2, "b")
    api.retract(ws, "evt_000003", "mistake")
    assert b'"evidence":"retraction"' in _observation_line(ws)
    tip, retracted = log_mod.scan(ws.log_path)
    assert (tip.count, tip.damage, retracted) == (4, None, {"evt_000003": "evt_000004"})
    st, tip = snapshot.from_scratch(ws.log_path, ws.curriculum, ws.config.mastery)
    assert st.events == 4 and tip.damage is None and st.retracted == retracted
    counted = [e for e in api.concept(ws, "softmax")["evidence"] if not e["retracted"]]
    assert [e["data"]["evidence"] for e in counted] == ["a", "retraction"]
    assert api.state(ws)["warnings"] == []


def test_the_commands_in_a_fresh_process_report_it(three, cli):
    """`llmlab state`, `verify` and `log observe` as a user runs them (the entry point's
    fast path): the damaged line named, no traceback, the log unchanged."""
    buf = _damage(three, "not JSON, with the text retraction")
    env = {"LLMLAB_HOME": str(three.root)}
    state = cli("state", env=env)
    assert state.returncode == 0 and "line 2 is not UTF-8 JSON" in state.stdout + state.stderr
    for args in (["verify"], ["log", "observe", "softmax", "-q", "0.5", "-e", "new"]):
        r = cli(*args, env=env)
        assert r.returncode != 0 and "line 2" in r.stdout + r.stderr, (args, r)
        assert "Traceback" not in r.stderr, r.stderr
    assert three.log_path.read_bytes() == buf
