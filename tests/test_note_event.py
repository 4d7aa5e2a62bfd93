"""The `note` event (issue 18, item 5): the tutor's running picture of the learner, written
through the one write path, kept in the derived state, shown compactly to the tutor and
on the dashboard, and never counted as evidence."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab import api, compact
from llmlab import state as state_mod
from llmlab.config import MasteryParams
from llmlab.curriculum import load_cached
from llmlab.events import NOTE_TAGS

from conftest import MINI
from test_mcp import connect, data, run

CUR = load_cached(MINI)
P = MasteryParams()


def _state_json(ws) -> dict:
    return json.loads(json.dumps(api.state(ws)))


def test_cli_records_a_note_and_the_state_shows_it(ws, invoke):
    r = invoke("log", "note", "Backend engineer; reaches for database analogies", "-t",
               "background", "--json")
    assert r.returncode == 0, r.stderr
    ev = json.loads(r.stdout)
    assert ev["type"] == "note" and ev["actor"] == "tutor"
    assert ev["data"] == {"text": "Backend engineer; reaches for database analogies",
                          "concepts": [], "tags": ["background"]}
    r = invoke("log", "note", "Numbers land better than diagrams", "-c", "softmax", "-c",
               "softmax", "-t", "preference", "-t", "strength")
    assert r.returncode == 0, r.stderr
    s = _state_json(ws)
    assert s["notes"]["count"] == 2
    assert [n["id"] for n in s["notes"]["latest"]] == ["evt_000002", "evt_000001"]  # newest first
    assert s["notes"]["latest"][0]["concepts"] == ["softmax"]  # duplicates dropped
    assert [n["id"] for n in s["concepts"]["softmax"]["notes"]] == ["evt_000002"]
    assert s["concepts"]["tokenization"]["notes"] == []
    assert s["recent"][0]["summary"] == ("note: [preference, strength] Numbers land better "
                                         "than diagrams")
    # the human-readable state lists them too
    out = invoke("state").stdout
    assert "Tutor's notes (latest 2 of 2):" in out and "database analogies" in out


@pytest.mark.parametrize("args, words", [
    (["   "], "must not be blank"),
    (["x" * 1001], "at most 1000 characters"),
    (["fine", "-t", "mood"], "'background', 'reflex', 'strength', 'gap' or 'preference'"),
    (["fine", "-c", "atention"], "Unknown concept 'atention'"),
    (["fine", *[a for c in range(11) for a in ("-c", "softmax")]], "at most 10"),
])
def test_bad_notes_are_refused_and_change_nothing(ws, invoke, args, words):
    invoke("log", "observe", "softmax", "-q", "0.5", "-e", "said exp then divide")
    before = ws.log_path.read_bytes()
    r = invoke("log", "note", *args)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert words in " ".join(r.stderr.split()), r.stderr
    assert ws.log_path.read_bytes() == before


def test_a_retracted_note_is_gone_from_state_and_compact(ws):
    keep = api.note(ws, "Reframes under pressure: answers an easier question", ["softmax"],
                    ["reflex"])
    drop = api.note(ws, "Recorded about the wrong learner", ["tokenization"], ["gap"])
    api.retract(ws, drop.id, "wrong learner")
    s = _state_json(ws)
    assert [n["id"] for n in s["notes"]["latest"]] == [keep.id] and s["notes"]["count"] == 1
    assert s["concepts"]["tokenization"]["notes"] == []
    c = compact.state(api.state(ws))
    assert c["notes"] == {"latest": [f"{keep.id} [reflex]: Reframes under pressure: answers an "
                                     "easier question"], "count": 1}
    # the rebuilt state (no cache) agrees with the incremental one
    api.rebuild(ws)
    assert _state_json(ws)["notes"] == s["notes"]


def test_the_compact_state_keeps_three_notes_clipped(ws):
    for i in range(5):
        api.note(ws, f"note {i} " + "long " * 150, ["softmax"], ["gap"])
    c = compact.state(api.state(ws))
    assert c["notes"]["count"] == 5
    assert [n.split(" ")[0] for n in c["notes"]["latest"]] == \
        ["evt_000005", "evt_000004", "evt_000003"]
    assert all(len(n) <= 100 and n.endswith("…") for n in c["notes"]["latest"])
    cc = api.concept_compact(ws, "softmax")
    assert len(cc["state"]["notes"]) == 3 and cc["state"]["notes"][0].startswith("evt_000005")
    assert cc["evidence"][-1]["type"] == "note" and cc["evidence"][-1]["text"].startswith("note 4")


# ---------------------------------------------------------------- a note is not evidence

OBS = st.tuples(st.sampled_from(sorted(CUR.concepts)), st.floats(0, 1), st.integers(0, 40))
NOTE = st.tuples(st.text(min_size=1, max_size=40).filter(str.strip),
                 st.lists(st.sampled_from(sorted(CUR.concepts)), max_size=3),
                 st.lists(st.sampled_from(NOTE_TAGS), max_size=2), st.integers(0, 40))


def _events(obs, notes, with_notes: bool) -> list[dict]:
    """The log with the notes, or the same log without them (every other event keeps its
    id and time, as if the notes had been retracted)."""
    items = [(day, 0, "observation", {"concept": c, "quality": q, "evidence": "e", "probe": ""})
             for c, q, day in obs]
    items += [(day, 1, "note", {"text": t, "concepts": cs, "tags": tags})
              for t, cs, tags, day in notes]
    items.sort(key=lambda x: (x[0], x[1]))
    evs = [{"id": f"evt_{i:06d}", "ts": f"2026-01-{1 + day // 2:02d}T{10 + day % 2}:00:00Z",
            "type": t, "actor": "tutor", "data": d}
           for i, (day, _, t, d) in enumerate(items, 1)]
    return evs if with_notes else [e for e in evs if e["type"] != "note"]


@settings(max_examples=40, deadline=None)
@given(st.lists(OBS, max_size=25), st.lists(NOTE, min_size=1, max_size=8))
def test_notes_change_no_mastery_or_progress_number(obs, notes):
    a = state_mod.derive(CUR, _events(obs, notes, True), P)
    b = state_mod.derive(CUR, _events(obs, notes, False), P)
    assert a.to_dict()["concepts"] == b.to_dict()["concepts"]
    for k in ("misconceptions", "exit_attempts", "predictions", "runs", "module_floor"):
        assert getattr(a, k) == getattr(b, k)
    assert a.note_count == len(notes) and b.note_count == 0


def test_a_note_leaves_the_derived_headline_numbers_alone(ws):
    for c, q in (("softmax", 0.9), ("tokenization", 0.4)):
        api.observe(ws, c, q, "answered with numbers")
    before = api.state(ws)
    api.note(ws, "Strong on arithmetic; weak on why", ["softmax", "tokenization"], ["strength"])
    after = api.state(ws)
    for k in ("overall", "current_module", "modules", "exit_items", "predictions", "next"):
        assert after[k] == before[k], k
    for cid, c in before["concepts"].items():
        assert {k: v for k, v in after["concepts"][cid].items() if k not in ("notes", "days_since_seen")} \
            == {k: v for k, v in c.items() if k not in ("notes", "days_since_seen")}


# ---------------------------------------------------------------- MCP and the brief

def test_mcp_log_note_and_get_state_show_it(ws):
    async def go():
        async with connect(ws.root) as c:
            ok = data(await c.call_tool("log_note", {"text": "Likes to predict before reading",
                                                     "concepts": ["softmax"],
                                                     "tags": ["preference"]}))
            bad = await c.call_tool("log_note", {"text": "x", "tags": ["mood"]})
            state = data(await c.call_tool("get_state", {}))
            return ok, bad, state

    ok, bad, state = run(go())
    assert ok["type"] == "note" and ok["data"]["tags"] == ["preference"]
    assert bad.is_error and "background, reflex, strength, gap, preference" in bad.content[0].text
    assert state["notes"] == {"latest": [f"{ok['id']} [preference]: Likes to predict before "
                                         "reading"], "count": 1}


def test_the_session_start_brief_lists_the_latest_notes(ws, tmp_path):
    from test_plugin import payload, run_hook

    api.note(ws, "Backend engineer, 10 years of Go", tags=["background"])
    api.note(ws, "Guesses when unsure instead of saying so", ["softmax"], ["reflex"])
    r = run_hook("session-start", payload("session_start.json", ws.root), tmp_path)
    text = json.loads(r.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "The tutor's notes on this learner (latest 2 of 2; not evidence):" in text
    assert "evt_000002 [reflex] Guesses when unsure instead of saying so" in text
    assert text.index("evt_000002 [reflex]") < text.index("evt_000001 [background]")


def test_the_instructions_tell_the_tutor_to_write_and_read_notes(ws):
    from llmlab import tutor

    text = tutor.render(ws)[tutor.AGENTS]
    assert "**Keep notes** (`log_note`)" in text and "your `notes` on the" in text
