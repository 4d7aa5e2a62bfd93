"""Property test (issue 17): on any damaged log (truncated, blank/garbage/BOM lines
inserted, lines deleted, fields edited), every command either works on the complete
prefix with a warning or fails with a clear message (a `UserError`), never a traceback;
a rejected write changes nothing; `repair` always brings the log back to `verify` OK.

In-process (the shells only add formatting, tested in test_hardening), a bounded number
of examples."""

from __future__ import annotations

import json
import shutil

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from llmlab import api, integrity
from llmlab import log as log_mod
from llmlab.errors import UserError
from llmlab.site import build
from llmlab.workspace import Workspace

FIELDS = ["id", "ts", "type", "actor", "v", "prev", "data"]
VALUES = [None, "", "x", 0, -1, 1.5, True, [], {}, "9999-12-31T23:59:59Z", "evt_000001",
          "evt_000001\n", "\x1b[2J", "observation", "retraction", {"concept": 1}]


def _edit(line: bytes, field: str, value, sub: str | None) -> bytes:
    try:
        ev = json.loads(line)
    except ValueError:
        return line
    if not isinstance(ev, dict):
        return line
    if sub is not None and isinstance(ev.get("data"), dict):
        ev["data"][sub] = value
    elif value is None:
        ev.pop(field, None)
    else:
        ev[field] = value
    return (json.dumps(ev, separators=(",", ":")) + "\n").encode()


damage = st.one_of(
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("insert"), st.floats(0, 1),
              st.sampled_from([b"\n", b"garbage\n", b"\xef\xbb\xbf{}\n", b"[]\n", b"null\n",
                               b"\xff\xfe\n", b'{"id":"evt_000002"}\n'])),
    st.tuples(st.just("delete"), st.floats(0, 1)),
    st.tuples(st.just("edit"), st.floats(0, 1), st.sampled_from(FIELDS),
              st.sampled_from(VALUES),
              st.sampled_from([None, "concept", "quality", "target", "evidence", "passed"])),
    st.tuples(st.just("bom"), st.floats(0, 1)),
)


def _apply(buf: bytes, op) -> bytes:
    lines = buf.splitlines(keepends=True)
    kind, where = op[0], op[1]
    i = min(int(where * len(lines)), len(lines) - 1)
    if kind == "truncate":
        return buf[: int(where * len(buf))]
    if kind == "insert":
        lines.insert(i, op[2])
    elif kind == "delete":
        del lines[i]
    elif kind == "edit":
        lines[i] = _edit(lines[i], op[2], op[3], op[4])
    elif kind == "bom":
        lines[i] = b"\xef\xbb\xbf" + lines[i]
    return b"".join(lines)


def _base(tmp_path_factory) -> Workspace:
    from conftest import MINI

    from llmlab.create import create_workspace

    ws = create_workspace(tmp_path_factory.mktemp("base") / "ws", name="B", curriculum=str(MINI))
    api.observe(ws, "softmax", 0.4, "a")
    m = api.open_misconception(ws, "softmax", claim="wrong")
    api.observe(ws, "tokenization", 0.7, "b")
    api.resolve_misconception(ws, m.id, "c")
    api.exit_attempt(ws, "build_sampler", False, "d")
    api.retract(ws, "evt_000003", "mistake")
    api.observe(ws, "softmax", 0.9, "e")
    return ws


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate])  # no shrinking: each example builds a site
@given(ops=st.lists(damage, min_size=1, max_size=3))
def test_damaged_logs_never_crash_a_command(tmp_path_factory, ops):
    base = _base(tmp_path_factory)
    ws_dir = tmp_path_factory.mktemp("dmg") / "ws"
    shutil.copytree(base.root, ws_dir)
    ws = Workspace.find(ws_dir)
    buf = ws.log_path.read_bytes()
    for op in ops:
        if buf:
            buf = _apply(buf, op)
    ws.log_path.write_bytes(buf)

    rep = log_mod.verify(ws.log_path, anchor=integrity.read_anchor(ws.state_dir))
    state = api.state(ws)  # never raises on a damaged log
    if not rep.ok:
        assert state["warnings"], rep.problems  # a damaged log is never silent
    api.rebuild(ws)
    api.next_probes(ws)
    api.concept(ws, "softmax")
    api.model_check(ws, learners=5)
    build(ws)
    try:
        api.observe(ws, "softmax", 0.5, "new")
    except UserError as e:
        assert ws.log_path.read_bytes() == buf  # a rejected write changes nothing
        assert not rep.ok and "repair" in str(e)
    integrity.repair(ws.log_path, ws.state_dir)
    assert log_mod.verify(ws.log_path, anchor=integrity.read_anchor(ws.state_dir)).ok
    assert not api.state(ws)["warnings"]
    api.observe(ws, "softmax", 0.5, "after repair")
