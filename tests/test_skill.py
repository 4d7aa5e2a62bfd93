"""The skill estimate behind the mastered verdict: acceptance cases, objective evidence,
the misconception write-path rules, and the fold's invariants (property tests)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab import api, simulate
from llmlab import state as state_mod
from llmlab.config import MasteryParams
from llmlab.curriculum import load_cached
from llmlab.errors import UserError

from conftest import MINI

D1, D1b, D1c, D1d = (f"2026-11-01T10:{m:02d}:00Z" for m in (0, 10, 20, 30))
D2, D2b = "2026-11-02T10:00:00Z", "2026-11-02T10:10:00Z"
P = MasteryParams()


def c(ws, cid="tokenization"):
    return api.state(ws)["concepts"][cid]


# ------------------------------------------------------------ acceptance cases

def test_four_strong_readings_over_two_days_master(ws):
    for t in (D1, D1b, D2, D2b):
        api.observe(ws, "tokenization", 0.95, "unaided, applied to a new case", at=t)
    st_ = c(ws)
    assert st_["mastered"] and st_["skill_low"] >= P.bar
    assert st_["skill_low"] <= st_["skill"] <= st_["skill_high"]


def test_three_strong_readings_over_two_days_are_not_yet_enough(ws):
    for t in (D1, D1b, D2):
        api.observe(ws, "tokenization", 0.95, "x", at=t)
    assert not c(ws)["mastered"]  # the interval is still too wide: one more reading


def test_a_single_perfect_reading_does_not_master(ws):
    api.observe(ws, "tokenization", 1.0, "perfect", at=D1)
    st_ = c(ws)
    assert not st_["mastered"] and st_["skill_low"] < st_["skill"] < st_["skill_high"]


def test_a_rising_day_does_not_master_and_mastery_is_unchanged(ws):
    seen = []
    for q, t in zip((0.5, 0.9, 0.95), (D1, D1b, D1c)):
        api.observe(ws, "tokenization", q, "x", at=t)
        seen.append(round(c(ws)["mastery"], 3))
    assert seen == [0.5, 0.74, 0.866]  # the EWMA, exactly as before
    assert not c(ws)["mastered"]


def test_the_interval_narrows_with_evidence_and_widens_with_time(ws):
    widths = []
    for t in (D1, D1b, D1c):
        api.observe(ws, "tokenization", 0.7, "x", at=t)
        widths.append(c(ws)["skill_high"] - c(ws)["skill_low"])
    assert widths[0] > widths[1] > widths[2]
    # a fourth reading a month later sits on a wider belief than a fourth the same day
    api.observe(ws, "tokenization", 0.7, "x", at=D1d)
    for t in ("2026-11-01T10:40:00Z", "2026-11-01T10:50:00Z", "2026-11-29T10:00:00Z"):
        api.observe(ws, "softmax", 0.7, "x", at=t)
    s = api.state(ws)["concepts"]
    assert (s["softmax"]["skill_high"] - s["softmax"]["skill_low"]
            > s["tokenization"]["skill_high"] - s["tokenization"]["skill_low"])


def test_state_json_and_history_carry_the_interval(ws, cli):
    for t in (D1, D2):
        api.observe(ws, "tokenization", 0.8, "x", at=t)
    r = cli("state", "--json")
    assert r.returncode == 0, r.stderr
    t = json.loads(r.stdout)["concepts"]["tokenization"]
    assert {"skill", "skill_low", "skill_high", "objective", "objective_share", "relapses"} <= set(t)
    h = t["history"][-1]
    assert h["skill_low"] <= h["skill"] <= h["skill_high"] and h["skill"] == t["skill"]


def test_an_open_misconception_blocks_the_verdict(ws):
    for t in (D1, D1b, D2, D2b):
        api.observe(ws, "tokenization", 0.95, "x", at=t)
    ev = api.open_misconception(ws, "tokenization", catalog="tokens_are_words")
    assert not c(ws)["mastered"]
    api.resolve_misconception(ws, ev.id, "split an unseen word into its tokens")
    assert c(ws)["mastered"]


# ------------------------------------------------------------ objective evidence

def _predict_and_run(ws, value, measured, concept=None, run_concepts=("softmax",)):
    api.predict(ws, "sampling", "top1_prob", value, concept=concept)
    _, comps = api.record_experiment_run(ws, "sampling", f"r{value}", {}, {"top1_prob": measured},
                                         {}, list(run_concepts))
    return comps


def test_a_scored_prediction_feeds_its_concept(ws):
    api.observe(ws, "softmax", 0.6, "x", at=D1)
    before = c(ws, "softmax")
    comps = _predict_and_run(ws, 0.5, 0.5, concept="softmax")
    assert comps[0]["within"]
    after = c(ws, "softmax")
    assert after["objective"] == 1 and after["skill"] > before["skill"]
    assert after["observations"] == 1  # the gates count tutor observations only
    # information share: 1/0.3² against 1/0.15² (defaults) -> 0.2
    assert after["objective_share"] == pytest.approx(
        (1 / P.objective_sd ** 2) / (1 / P.objective_sd ** 2 + 1 / P.tutor_sd ** 2), abs=1e-4)
    assert after["mastery"] == before["mastery"]  # the EWMA stays tutor-only


def test_a_wrong_prediction_lowers_the_estimate(ws):
    api.observe(ws, "softmax", 0.8, "x", at=D1)
    before = c(ws, "softmax")["skill"]
    _predict_and_run(ws, 0.9, 0.1, concept="softmax")  # 800% off
    assert c(ws, "softmax")["skill"] < before


def test_prediction_without_a_concept_counts_for_the_quantitys_concept(ws):
    _predict_and_run(ws, 0.5, 0.5, run_concepts=("softmax", "tokenization"))
    assert c(ws, "softmax")["objective"] == 1 and c(ws)["objective"] == 0  # top1_prob: softmax


def test_without_any_concept_the_runs_single_concept_is_used():
    def run(eid, concepts):
        return [{"id": f"evt_{eid:06d}", "ts": D1, "type": "prediction",
                 "data": {"experiment": "e", "quantity": "x", "value": 1.0, "concept": None}},
                {"id": f"evt_{eid + 1:06d}", "ts": D1, "type": "experiment_run", "data": {
                    "experiment": "e", "run_id": str(eid), "concepts": concepts,
                    "comparisons": [{"prediction": f"evt_{eid:06d}", "quantity": "x",
                                     "predicted": 1.0, "measured": 1.0, "abs_error": 0.0,
                                     "rel_error": 0.0, "tolerance": 0.1, "within": True,
                                     "concept": None}]}}]
    s = state_mod.derive(CUR, run(1, ["softmax"]) + run(3, ["softmax", "tokenization"]), P)
    assert s.concepts["softmax"].objective == 1 and s.concepts["tokenization"].objective == 0


# ------------------------------------------------------------ misconception write path

def test_a_catalog_misconception_cannot_be_opened_twice(ws):
    ev = api.open_misconception(ws, "tokenization", catalog="tokens_are_words")
    before = ws.log_path.read_bytes()
    with pytest.raises(UserError, match=f"already open \\({ev.id}"):
        api.open_misconception(ws, "tokenization", catalog="tokens_are_words")
    assert ws.log_path.read_bytes() == before


def test_resolving_needs_evidence(ws, cli):
    ev = api.open_misconception(ws, "tokenization", catalog="tokens_are_words")
    before = ws.log_path.read_bytes()
    r = cli("log", "resolve", ev.id)
    assert r.returncode != 0 and "needs evidence" in r.stderr and "Traceback" not in r.stderr
    with pytest.raises(UserError, match="needs evidence"):
        api.resolve_misconception(ws, ev.id, "   ")
    assert ws.log_path.read_bytes() == before


def test_a_resolved_misconception_comes_back_as_a_relapse(ws, cli):
    first = api.open_misconception(ws, "tokenization", catalog="tokens_are_words")
    api.resolve_misconception(ws, first.id, "counted tokens of a new word")
    again = api.open_misconception(ws, "tokenization", catalog="tokens_are_words")
    assert again.data["reopens"] == first.id  # linked without being asked
    s = api.state(ws)
    assert s["concepts"]["tokenization"]["relapses"] == 1
    assert [m["id"] for m in s["misconceptions"]["open"]] == [again.id]
    assert s["misconceptions"]["resolved"][0]["reopened_by"] == again.id
    # free-text misconception: reopened explicitly, from the CLI
    free = api.open_misconception(ws, "softmax", claim="softmax is linear")
    with pytest.raises(UserError, match="still open"):
        api.open_misconception(ws, "softmax", reopens=free.id)
    api.resolve_misconception(ws, free.id, "showed the exponential on a new case")
    r = cli("log", "misconception", "softmax", "--reopens", free.id, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"]["claim"] == "softmax is linear"
    assert api.state(ws)["concepts"]["softmax"]["relapses"] == 1
    with pytest.raises(UserError, match="already reopened"):
        api.open_misconception(ws, "softmax", claim="x", reopens=free.id)


# ------------------------------------------------------------ the fold's invariants

CUR = load_cached(MINI)
CIDS = ["tokenization", "softmax", "attention"]
# a concept's own evidence: (kind, quality or predicted value, minutes after the previous)
stream = st.lists(st.tuples(st.sampled_from(["obs", "obs", "obs", "mis", "res", "pred"]),
                            st.floats(0, 1), st.integers(0, 3000)), max_size=12)


def _events(cid: str, items, start: int) -> list[dict]:
    """Events of one concept, ids unique per concept (`start`), in its own time order."""
    out, t, opened = [], 0, []
    for k, (kind, q, dt) in enumerate(items):
        t += dt
        eid = f"evt_{start + 2 * k:06d}"
        ts = f"2026-11-{1 + t // 1440:02d}T{t % 1440 // 60:02d}:{t % 60:02d}:00Z"
        if kind == "obs":
            out.append({"id": eid, "ts": ts, "type": "observation",
                        "data": {"concept": cid, "quality": q, "evidence": "e"}})
        elif kind == "mis":
            opened.append(eid)
            out.append({"id": eid, "ts": ts, "type": "misconception_opened",
                        "data": {"concept": cid, "claim": "c", "catalog": None}})
        elif kind == "res" and opened:
            out.append({"id": eid, "ts": ts, "type": "misconception_resolved",
                        "data": {"target": opened.pop(), "evidence": "e"}})
        elif kind == "pred":
            pid = f"evt_{start + 2 * k + 1:06d}"
            out.append({"id": pid, "ts": ts, "type": "prediction",
                        "data": {"experiment": "e", "quantity": "x", "value": q, "concept": cid}})
            rel = abs(q - 0.5) / 0.5
            out.append({"id": eid, "ts": ts, "type": "experiment_run", "data": {
                "experiment": "e", "run_id": eid, "concepts": [cid], "comparisons": [{
                    "prediction": pid, "quantity": "x", "predicted": q, "measured": 0.5,
                    "abs_error": abs(q - 0.5), "rel_error": rel, "tolerance": 0.1,
                    "within": rel <= 0.1, "concept": cid}]}})
    return out


def _concepts(s) -> dict:
    return s.to_dict()["concepts"]


@settings(max_examples=60, deadline=None)
@given(a=stream, b=stream, mix=st.lists(st.booleans(), min_size=40, max_size=40))
def test_events_on_different_concepts_commute(a, b, mix):
    ea, eb = _events(CIDS[0], a, 1000), _events(CIDS[1], b, 5000)
    one = state_mod.derive(CUR, ea + eb, P)
    merged, ia, ib = [], iter(ea), iter(eb)
    for pick in mix + [True] * len(ea) + [False] * len(eb):  # an arbitrary interleaving
        nxt = next(ia if pick else ib, None)
        if nxt is not None:
            merged.append(nxt)
    merged += list(ia) + list(ib)
    two = state_mod.derive(CUR, merged, P)
    assert _concepts(one) == _concepts(two)


@settings(max_examples=60, deadline=None)
@given(a=stream, b=stream, cut=st.integers(0, 40))
def test_rebuild_equals_incremental(a, b, cut):
    evs = _events(CIDS[0], a, 1000) + _events(CIDS[1], b, 5000)
    whole = state_mod.derive(CUR, evs, P)
    part = state_mod.derive(CUR, evs[:cut], P)
    via_dict = state_mod.State.from_dict(json.loads(json.dumps(part.to_dict())))  # the cache
    state_mod.fold(via_dict, evs[cut:], P)
    assert _concepts(via_dict) == _concepts(whole)
    assert via_dict.misconceptions == whole.misconceptions


@settings(max_examples=60, deadline=None)
@given(a=stream, pick=st.integers(0, 40))
def test_a_retraction_removes_an_events_influence_exactly(a, pick):
    evs = _events(CIDS[0], a, 1000)
    if not evs:
        return
    target = evs[pick % len(evs)]
    retraction = {"id": "evt_999999", "ts": "2026-12-31T00:00:00Z", "type": "retraction",
                  "data": {"target": target["id"], "reason": "r"}}
    with_retraction = state_mod.derive(CUR, evs + [retraction], P)
    without = state_mod.derive(CUR, [e for e in evs if e is not target], P)
    assert _concepts(with_retraction) == _concepts(without)


# ------------------------------------------------------------ model-check as referee

def test_simulated_learners_meet_the_acceptance_bar():
    """The shipped defaults, 1,000 simulated learners, seed 0 (as in BENCHMARKS.md)."""
    plain = simulate.compare(P, 1000, 0)["rules"]
    biased = simulate.compare(P, 1000, 0, simulate.World(bias=0.1))["rules"]
    assert plain["skill_interval"]["false_mastery_rate"] <= 0.10
    assert biased["skill_interval"]["false_mastery_rate"] <= 0.20
    for rule in ("ewma_gate", "single_reading", "bkt"):
        assert plain["skill_interval"]["false_mastery_rate"] < plain[rule]["false_mastery_rate"]
    assert plain["skill_interval"]["skill_at_declaration"]["median"] >= P.bar


def test_a_misconception_caps_the_true_skill_in_the_simulator():
    pop = simulate.learners(300, 1, simulate.World(misconception_rate=1.0))
    # while a misconception is open the gate holds; its true skill is at most 0.75
    assert all(eff <= 0.75 for ln in pop for (_, _, _, mis, eff) in ln.evidence if mis)


def test_model_check_sweep_marks_the_defaults_and_the_frontier(ws, cli):
    r = cli("model-check", "--json", "--learners", "300", "--sweep")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    rows = d["sweep"]["rows"]
    assert sum(x["default"] for x in rows) == 1 and sum(x["chosen"] for x in rows) <= 1
    front = [x for x in rows if x["frontier"]]
    assert front and all(not (o["false_mastery_rate"] < f["false_mastery_rate"]
                              and o["miss_rate"] < f["miss_rate"]) for f in front for o in rows)
    assert set(d["simulation"]["default"]["rules"]) == {
        "skill_interval", "ewma_gate", "single_reading", "plain_mean", "bkt"}
    bad = cli("model-check", "--learners", "0")
    assert bad.returncode != 0 and "at least 1" in bad.stderr
