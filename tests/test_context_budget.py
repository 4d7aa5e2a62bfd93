"""The context budget: the MCP read tools answer compactly at any log size (issue 18, item 1).

Measured as the tutor receives them: the JSON text of the tool result, through the MCP
SDK's own client over stdio, on a 2,000-event workspace of the default course (long
evidence, custom claims of the maximum length, open and resolved misconceptions, exit
attempts, predictions, retractions, the tutor's notes).
"""

from __future__ import annotations

import json
import random
import time

import pytest

from llmlab import api, log as log_mod
from llmlab.events import GENESIS, Event, line_hash

from test_mcp import connect, data, run

LIMITS = {"get_state": 8_000, "get_concept": 8_000, "next_probes": 4_000}
FOCUS = "tokenization"  # the concept with the most events


def big_log(ws, n: int = 2_000, seed: int = 0) -> None:
    """Write `n` valid, hash-chained events of every kind straight to the log (fast set-up,
    the same lines `api.record` writes; the fold validates them when the state is read)."""
    rng = random.Random(seed)
    cur = ws.curriculum
    concepts = list(cur.concept_ids)
    exits = list(cur.exit_items)
    experiments = api.experiment_catalog()
    prev, t0, span = GENESIS, 1_767_225_600, 120 * 86400
    open_m: list[str] = []
    observations: list[str] = []
    lines = []
    for i in range(1, n + 1):
        eid = f"evt_{i:06d}"
        c = FOCUS if rng.random() < 0.25 else rng.choice(concepts)
        r = rng.random()
        if i == 7:  # the longest evidence the schema accepts
            t, d = "observation", {"concept": FOCUS, "quality": 0.4, "evidence": "x" * 20_000,
                                   "probe": "p" * 20_000}
        elif r < 0.05:
            known = cur.concepts[c].misconceptions
            if known and rng.random() < 0.6:
                t, d = "misconception_opened", {"concept": c, "claim": known[0].claim,
                                                "catalog": known[0].id, "quote": "q" * 500}
            else:
                t, d = "misconception_opened", {"concept": c, "claim": "wrong " * 3_300,
                                                "catalog": None, "quote": "said so " * 100}
            open_m.append(eid)
        elif r < 0.08 and len(open_m) > 3:
            t, d = "misconception_resolved", {"target": open_m.pop(0),
                                              "evidence": "applied it unprompted " * 30}
        elif r < 0.10:
            t, d = "exit_attempt", {"item": rng.choice(exits), "passed": rng.random() < 0.3,
                                    "notes": "covered most parts " * 40}
        elif r < 0.12:
            exp = rng.choice(sorted(experiments))
            t, d = "prediction", {"experiment": exp, "quantity": experiments[exp][0],
                                  "value": rng.random() * 10, "concept": c, "tolerance": None,
                                  "note": "because " * 50}
        elif r < 0.13 and observations:
            t, d = "retraction", {"target": observations.pop(rng.randrange(len(observations))),
                                  "reason": "recorded on the wrong concept " * 10}
        else:
            t, d = "observation", {"concept": c, "quality": round(rng.random(), 3),
                                   "evidence": f"explained {c} on a concrete case " * 12,
                                   "probe": "What happens when the input changes? " * 4}
            observations.append(eid)
        if i % 50 == 25:  # a tutor's note of the longest text the schema accepts, in place
            for kept in (observations, open_m):  # of this event (the other draws unchanged)
                if kept and kept[-1] == eid:
                    kept.pop()
            t, d = "note", {"text": "reads the learner " * 55 + "n" * 10, "tags": ["reflex", "gap"],
                            "concepts": [c, FOCUS] if c != FOCUS else [c]}
        ts = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(t0 + span * i // n))
        line = Event(id=eid, ts=ts, type=t, actor="tutor", prev=prev, data=d).to_line()
        lines.append(line)
        prev = line_hash(line)
    with open(ws.log_path, "wb") as f:
        f.writelines(lines)


@pytest.fixture
def big_ws(default_ws):
    big_log(default_ws)
    return default_ws


def test_the_read_tools_fit_the_budget_on_2000_events(big_ws):
    s = api.state(big_ws)
    assert s["events"] == 2_000 and s["misconceptions"]["open"]  # the log folded, as built
    full_concept = api.concept(big_ws, FOCUS)
    assert len(full_concept["evidence"]) > 400

    async def go():
        async with connect(big_ws.root) as c:
            out = {}
            for name, args in (("get_state", {}), ("next_probes", {"limit": 10}),
                               ("get_concept", {"concept": FOCUS, "limit": 10})):
                res = await c.call_tool(name, args)
                out[name] = (len(res.content[0].text), data(res))
            res = await c.call_tool("get_concept", {"concept": FOCUS})
            first = data(res)
            older = await c.call_tool("get_concept", {"concept": FOCUS,
                                                      "cursor": first["page"]["older"]})
            full = await c.call_tool("get_state", {"detail": "full"})
            return out, first, data(older), len(full.content[0].text)

    out, first, older, full_chars = run(go())
    for name, (chars, _) in out.items():
        assert chars <= LIMITS[name], (name, chars)
    assert full_chars > 3 * LIMITS["get_state"]  # the full answer is still there, and long

    # the compact state keeps what the tutor reads first, and agrees with the full state
    compact = out["get_state"][1]
    assert compact["events"] == 2_000
    assert compact["overall"] == s["overall"]
    assert compact["current_module"] == s["current_module"]
    assert compact["misconceptions"]["open_count"] == len(s["misconceptions"]["open"])
    assert compact["misconceptions"]["resolved_count"] == len(s["misconceptions"]["resolved"])
    assert [m["id"] for m in compact["misconceptions"]["open"]] == \
        [m["id"] for m in s["misconceptions"]["open"]][-5:]
    assert compact["notes"]["count"] == s["notes"]["count"] > 3  # notes are in the log
    assert [n.split()[0].split(":")[0] for n in compact["notes"]["latest"]] == \
        [n["id"] for n in s["notes"]["latest"][:3]]  # the latest three, newest first
    assert [(p["reason"], p["target"]) for p in compact["next"]] == \
        [(p["reason"], p["target"]) for p in s["next"][:5]]
    probed = {k for k, c in s["concepts"].items() if c["observations"]}
    assert set(compact["concepts"]) == probed
    assert set(compact["not_probed"]) == set(s["concepts"]) - probed
    mastery = s["concepts"][FOCUS]["mastery"]
    assert compact["concepts"][FOCUS].startswith(f"{mastery:.2f}, ")
    assert len(out["next_probes"][1]["next"]) == 10

    # get_concept: the entry, the state, the latest events; the cursor pages back
    ids = [e["id"] for e in full_concept["evidence"]]
    assert first["concept"] == json.loads(json.dumps(full_concept["concept"]))
    assert first["state"]["observations"] == full_concept["state"]["observations"]
    assert "history" not in first["state"]
    assert [e["id"] for e in first["evidence"]] == ids[-8:]  # the default page
    assert [e["id"] for e in older["evidence"]] == ids[-16:-8]
    assert first["page"] == {"total": len(ids), "shown": 8, "older": ids[-8]}
    assert older["page"]["older"] == ids[-16]
    assert [e["id"] for e in out["get_concept"][1]["evidence"]] == ids[-10:]  # the largest


def test_concept_paging_reaches_the_first_event_and_the_cli_pages_the_same(big_ws, cli):
    ids = [e["id"] for e in api.concept(big_ws, FOCUS)["evidence"]]
    seen, cursor = [], None
    while True:
        page = api.concept(big_ws, FOCUS, limit=150, cursor=cursor)
        seen = [e["id"] for e in page["evidence"]] + seen
        cursor = page["page"]["older"]
        if cursor is None:
            break
    assert seen == ids  # every event once, in order
    r = cli("concept", "show", FOCUS, "--limit", "3", "--json")
    assert r.returncode == 0, r.stderr
    assert [e["id"] for e in json.loads(r.stdout)["evidence"]] == ids[-3:]
    r = cli("concept", "show", FOCUS, "--limit", "3", "--cursor", ids[-3], "--json")
    assert [e["id"] for e in json.loads(r.stdout)["evidence"]] == ids[-6:-3]
    r = cli("concept", "show", FOCUS, "--limit", "3")
    assert r.returncode == 0 and f"--cursor {ids[-3]}" in r.stdout and f"of {len(ids)}" in r.stdout
    r = cli("concept", "show", FOCUS, "--cursor", "yesterday")
    assert r.returncode == 1 and "not an event id" in r.stderr and "--cursor" in r.stderr
    assert "Traceback" not in r.stderr
    assert log_mod.scan(big_ws.log_path)[0].count == 2_000  # a read wrote nothing


def test_init_ends_with_the_agent_step(tmp_path, cli):
    r = cli("init", str(tmp_path / "course"), "--name", "Ana")
    assert r.returncode == 0, r.stderr
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("Next, start your tutor: ") and f"cd {tmp_path / 'course'} && claude" in last
    assert "llmlab tutor setup --client" in last and "codex" in last


def test_fresh_workspace_state_and_unprobed_concept(default_ws, cli):
    r = cli("state")
    assert r.returncode == 0, r.stderr
    assert "Events: 0" in r.stdout and "Concepts seen" not in r.stdout
    assert "requires" not in r.stdout and "No concept probed yet" in r.stdout  # no exit table
    entry = default_ws.curriculum.concepts[FOCUS]
    r = cli("concept", "show", FOCUS)
    assert r.returncode == 0, r.stderr
    flat = " ".join(r.stdout.split())
    assert "Not probed yet" in flat
    assert " ".join(entry.misconceptions[0].correction.split())[:60] in flat
    assert " ".join(entry.behaviours[0].split())[:40] in flat


def test_the_python_api_accepts_str_paths(tmp_path):
    from llmlab.create import create_workspace
    from llmlab.workspace import Workspace

    root = str(tmp_path / "course")
    create_workspace(root, name="Ana")
    for ws in (Workspace(root), Workspace.find(root)):
        assert ws.root == tmp_path / "course"
        assert api.observe(ws, FOCUS, 0.5, "split 'strawberry' into 3 tokens").data["concept"] == FOCUS
    assert api.state(Workspace(root))["events"] == 2
