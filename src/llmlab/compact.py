"""Compact reads: the learner state, one concept and the next probes within a tutor's
context budget, at any log size.

The full data (`view.summarize`, `api.concept`) grows with the evidence log; a client that
shows a tool result to a model truncates or files away a long one, and the tutor loses what
it needs first (open misconceptions, `next`). These functions keep what a tutor acts on,
bounded: a fixed number of items, each free text clipped. They are pure functions of the
full data, so the compact and the full answers can never disagree.
"""

from __future__ import annotations

from typing import Any

CLAIM_CHARS = 120  # a misconception's claim, as shown in a compact answer
TEXT_CHARS = 160  # any other free text (why, evidence summaries)
OPEN_SHOWN = 5  # open misconceptions listed in the compact state (all are counted)
NEXT_SHOWN = 5
NOTES_SHOWN = 3  # the tutor's latest notes in the compact state (all are counted)
NOTE_CHARS = 80
QUOTE_CHARS = 60  # the learner's words under a misconception, in get_concept
EVENTS_SHOWN = 8  # a concept's latest events, per page
MAX_EVENTS_PAGE = 10
MAX_NEXT = 10


def clip(text: Any, n: int = TEXT_CHARS) -> str:
    """`text` on one line, at most `n` characters (an ellipsis marks a cut)."""
    s = " ".join(str(text or "").split())
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


def concept_line(c: dict) -> str:
    """One concept's derived state in a few words: mastery, observations/days, then
    mastered (else `low`: the lower end of the skill interval, which must reach the bar),
    stale, open misconceptions, the first prerequisite gap (+ how many more)."""
    if not c["observations"]:
        return "not probed"
    parts = [f"{c['mastery']:.2f}", f"{c['observations']} obs/{c['days']}d"]
    if c["mastered"]:
        parts.append("mastered")
    elif c.get("skill_low") is not None:
        parts.append(f"low {c['skill_low']:.2f}")
    if c["stale"]:
        parts.append("stale")
    if c["open_misconceptions"]:
        parts.append(f"{len(c['open_misconceptions'])} open")
    gaps = c["prereq_gaps"]
    if gaps:
        parts.append(f"gap {gaps[0]}" + (f" +{len(gaps) - 1}" if len(gaps) > 1 else ""))
    return ", ".join(parts)


def misconception(m: dict, quote: bool = True) -> dict:
    """An open misconception, its claim clipped, its catalog id when it has one; with the
    learner's words (clipped) unless `quote` is False (the compact state leaves them to
    get_concept)."""
    row = {"id": m["id"], "concept": m["concept"]}
    if m.get("catalog"):
        row["catalog"] = m["catalog"]
    row["claim"] = clip(m["claim"], CLAIM_CHARS)
    if quote:
        row["quote"] = clip(m.get("quote", ""), QUOTE_CHARS)
    return row


def note(n: dict) -> str:
    """One tutor's note on one line: id, tags, the text clipped (its concepts are listed by
    get_concept, which shows a concept's notes)."""
    tags = f" [{','.join(n['tags'])}]" if n.get("tags") else ""
    return f"{n['id']}{tags}: {clip(n['text'], NOTE_CHARS)}"


def probes(items: list[dict], limit: int = NEXT_SHOWN) -> list[dict]:
    """The next probes with their `why` clipped (a custom claim can be long)."""
    return [p | {"why": clip(p["why"], TEXT_CHARS)}
            for p in items[:min(limit, MAX_NEXT)]]


def state(full: dict) -> dict:
    """The compact learner state from the full one (`api.state`)."""
    open_m = full["misconceptions"]["open"]
    exits = full["exit_items"].values()
    preds = full["predictions"]
    concepts = full["concepts"]
    return {
        "learner": {k: clip(v, 300) for k, v in full["learner"].items()},
        "now": full["now"],
        "events": full["events"],
        "last_event": full["last_event"],
        "overall": full["overall"],
        "current_module": full["current_module"],
        "modules": {m["id"]: f"{m['mastered']}/{m['total']} mastered, mastery "
                             f"{m['mastery']:.2f}" for m in full["modules"]},
        "misconceptions": {"open": [misconception(m, quote=False)
                                    for m in open_m[-OPEN_SHOWN:]],
                           "open_count": len(open_m),
                           "resolved_count": full["misconceptions"]["resolved_count"]},
        "next": probes(full["next"]),
        "notes": {"latest": [note(n) for n in full["notes"]["latest"][:NOTES_SHOWN]],
                  "count": full["notes"]["count"]},
        "concepts": {cid: concept_line(c) for cid, c in concepts.items() if c["observations"]},
        "not_probed": [cid for cid, c in concepts.items() if not c["observations"]],
        "exit_items": {"passed": [e["id"] for e in exits if e["passed"]],
                       "ready": [e["id"] for e in exits if e["ready"] and not e["passed"]]},
        "predictions": {"compared": preds["compared"], "within": preds["within"],
                        "hit_rate": preds["hit_rate"], "pending": len(preds["pending"]),
                        "disagreements": preds["disagreements"][:5]},
        "detail": "Compact; detail='full' has every field, get_concept a concept's evidence.",
    }


def event(e: dict) -> dict:
    """One evidence row, its free text clipped (the actor shown when not the tutor)."""
    d = e["data"]
    text = (d.get("evidence") or d.get("claim") or d.get("notes") or d.get("reason")
            or d.get("text") or "")
    row = {"id": e["id"], "ts": e["ts"][:19], "type": e["type"]}
    if e["actor"] != "tutor":
        row["actor"] = e["actor"]
    if "quality" in d:
        row["quality"] = d["quality"]
    if d.get("probe"):
        row["probe"] = clip(d["probe"], 80)
    if text:
        row["text"] = clip(text, 150)
    if e.get("retracted"):
        row["retracted"] = True
    return row


def concept(full: dict) -> dict:
    """The compact answer for one concept from `api.concept` (already paged)."""
    st = {k: v for k, v in full["state"].items() if k != "history"}
    st["open_misconceptions"] = len(st["open_misconceptions"])  # listed under misconceptions
    st["notes"] = [note(n) for n in st.get("notes", [])[:NOTES_SHOWN]]
    mis = full["misconceptions"]
    return {
        "concept": full["concept"],
        "state": st,
        "prerequisites": {p["id"]: f"{p['title']}: {concept_line(p)}"
                          for p in full["prerequisites"]},
        "dependants": full["dependants"],
        "exit_items": {e["id"]: ("passed" if e["passed"] else "ready" if e["ready"]
                                 else "not ready") for e in full["exit_items"]},
        "misconceptions": {"open": [misconception(m) for m in mis if not m["resolved_at"]]
                           [-OPEN_SHOWN:],
                           "resolved_count": sum(bool(m["resolved_at"]) for m in mis)},
        "evidence": [event(e) for e in full["evidence"]],
        "page": full["page"],
    }
