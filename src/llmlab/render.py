"""Human-readable terminal output (rich tables). Formatting only: no logic.

Every piece of stored text (evidence, claims, notes, ids, curriculum text) goes through
`safe` and into a `Text` (never rich markup), so control characters such as ESC
(terminal escape sequences: clipboard writes, window titles, screen clears) are shown
escaped, never emitted.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.table import Table
from rich.text import Text

# C0 controls but newline and tab, DEL, C1 controls, and the bidirectional overrides
# that can make text read differently from what it is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_ALL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(m: re.Match) -> str:
    c = ord(m.group())
    return f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}"


def safe(text: object, newlines: bool = True) -> str:
    """`text` with control characters written as escapes (`\\x1b`), never emitted raw.
    With `newlines=False`, newlines and tabs are escaped too (one table cell, one line)."""
    return (_CONTROL if newlines else _CONTROL_ALL).sub(_escape, str(text))


def T(text: object) -> Text:
    """Stored text for a table cell or a line: escaped, one line, no markup."""
    return Text(safe(text, newlines=False))


def _bar(m: float, width: int = 10) -> str:
    n = round(m * width)
    return "█" * n + "·" * (width - n)


def state(con: Console, d: dict) -> None:
    o = d["overall"]
    con.print(Text.assemble(
        ("Learner: ", "bold"), safe(d["learner"]["name"], False), "   ",
        ("Events: ", "bold"), str(d["events"]), "   ",
        ("Overall mastery: ", "bold"), f"{o['mastery']:.2f} over all {o['total']} concepts", "   ",
        ("Mastered: ", "bold"), f"{o['mastered']}/{o['total']}", "   ",
        ("Exit items passed: ", "bold"), f"{o['exit_passed']}/{o['exit_total']}", "   ",
        ("Current module: ", "bold"), safe(d["current_module"], False),
    ))
    if not o["touched"]:
        con.print("No concept probed yet: start a session with your tutor (see AGENTS.md), "
                  "or record evidence with `llmlab log observe`.")
    else:
        _concepts_and_exits(con, d)
    _misconceptions_and_next(con, d)


def _concepts_and_exits(con: Console, d: dict) -> None:
    o = d["overall"]
    t = Table(title=f"Concepts seen ({o['touched']} of {o['total']})", show_lines=False)
    for col in ("concept", "mastery", "", "obs", "days", "status"):
        t.add_column(col)
    for c in d["concepts"].values():
        if not c["observed"]:
            continue
        status = []
        if c["mastered"]:
            status.append("mastered")
        if c["stale"]:
            status.append(f"stale {c['days_since_seen']:.0f}d")
        if c["open_misconceptions"]:
            status.append(f"{len(c['open_misconceptions'])} open misconception(s)")
        if c["prereq_gaps"]:
            status.append("gap: " + ", ".join(map(str, c["prereq_gaps"])))
        t.add_row(T(c["id"]), f"{c['mastery']:.3f}", _bar(c["mastery"]), str(c["observations"]),
                  str(c["days"]), T("; ".join(status)))
    con.print(t)
    e = Table(title="Exit items")
    for col in ("item", "kind", "ready", "passed", "requires"):
        e.add_column(col)
    for item in d["exit_items"].values():
        done = sum(r["mastered"] for r in item["requires"])
        missing = [r["concept"] for r in item["requires"] if not r["mastered"]]
        e.add_row(T(item["id"]), T(item["kind"]), "READY" if item["ready"] else "-",
                  "passed" if item["passed"] else "-",
                  T(f"{done}/{len(item['requires'])} mastered"
                       + (f"; missing {', '.join(missing[:3])}" if missing else "")
                       + (" …" if len(missing) > 3 else "")))
    con.print(e)


def _misconceptions_and_next(con: Console, d: dict) -> None:
    mis = d["misconceptions"]
    if mis["open"]:
        con.print(Text("Open misconceptions:", style="bold"))
        for m in mis["open"]:
            con.print(T(f"  {m['id']} [{m['concept']}] {m['claim']}"))
    if mis["resolved_count"] or mis["open"]:
        con.print(f"Resolved misconceptions: {mis['resolved_count']}")
    notes = d.get("notes", {}).get("latest", [])[:3]
    if notes:
        con.print(Text(f"Tutor's notes (latest {len(notes)} of {d['notes']['count']}):",
                       style="bold"))
        for n in notes:
            about = f" [{', '.join(n['tags'] + n['concepts'])}]" if n["tags"] or n["concepts"] else ""
            con.print(T(f"  {n['id']}{about} {n['text']}"))
    if "next" in d:
        next_probes(con, d["next"])


def next_probes(con: Console, probes: list[dict]) -> None:
    t = Table(title="Next probes")
    for col in ("#", "reason", "target", "why"):
        t.add_column(col)
    for i, p in enumerate(probes, 1):
        t.add_row(str(i), T(p["reason"]), T(p["target"]), T(p["why"]))
    con.print(t)
    if not probes:
        con.print("Nothing pending: every concept is mastered and fresh.")


def concept(con: Console, d: dict) -> None:
    c, s = d["concept"], d["state"]
    if not s["observations"] and not d["evidence"]:
        concept_entry(con, c)
        con.print("Not probed yet: no evidence recorded on this concept.")
        return
    con.print(Text(safe(f"{c['title']} ({c['id']}, module {c['module']})", False), style="bold"))
    con.print(Text(safe(c["summary"])))
    con.print(f"Mastery {s['mastery']:.3f} after {s['observations']} observation(s) on "
              f"{s['days']} day(s); mastered: {s['mastered']}; stale: {s['stale']}")
    if s["prereq_gaps"]:
        con.print(T("Prerequisite gaps: " + ", ".join(map(str, s["prereq_gaps"]))))
    for m in d["misconceptions"]:
        state_ = "resolved" if m["resolved_at"] else "OPEN"
        con.print(T(f"  [{state_}] {m['id']}: {m['claim']}"))
    page = d.get("page") or {}
    title = "Evidence"
    if page and page["shown"] < page["total"]:
        title += f" ({page['shown']} of {page['total']} events)"
    t = Table(title=title)
    for col in ("id", "ts", "type", "detail"):
        t.add_column(col)
    for e in d["evidence"]:
        detail = e["data"].get("evidence") or e["data"].get("claim") or ""
        if e.get("retracted"):
            detail = "(retracted) " + detail
        t.add_row(T(e["id"]), T(str(e["ts"])[:16]), T(e["type"]), T(str(detail)[:120]))
    con.print(t)
    if page.get("older"):
        con.print(Text(f"Earlier events: llmlab concept show {c['id']} --cursor "
                       f"{page['older']}  (or --all)"))


def concept_entry(con: Console, c: dict) -> None:
    con.print(Text(safe(f"{c['title']} ({c['id']}, module {c['module']})", False), style="bold"))
    con.print(Text(safe(c["summary"])))
    if c["prerequisites"]:
        con.print(T("Prerequisites: " + ", ".join(c["prerequisites"])))
    for b in c["behaviours"]:
        con.print(T(f"  behaviour: {b}"))
    for m in c["misconceptions"]:
        con.print(T(f"  misconception {m['id']}: {m['claim']}"))
        con.print(T(f"    correction: {m['correction']}"))
    if c["experiments"]:
        con.print(T("Lab: " + ", ".join(c["experiments"])))


def curriculum(con: Console, cur) -> None:
    con.print(Text(safe(f"{cur.title} ({len(cur.concepts)} concepts)", False), style="bold"))
    for m in cur.modules:
        con.print(Text(safe(f"{m.order}. {m.title} [{m.id}]", False), style="bold"))
        for cid in m.concepts:
            con.print(T(f"   {cid}: {cur.concepts[cid].title}"))
    con.print(Text("Exit items:", style="bold"))
    for e in cur.exit_items.values():
        con.print(T(f"   {e.id} ({e.kind}): {e.title}  requires {', '.join(e.requires)}"))


def verify(con: Console, d: dict) -> None:
    if d["ok"]:
        con.print(f"OK: {d['events']} events, hash chain intact, no torn line.")
        return
    con.print(f"{d['events']} complete events; chain {'intact' if d['chain_ok'] else 'BROKEN'}; "
              f"torn tail: {d['torn_tail_bytes']} bytes.")
    for p in d["problems"]:
        con.print(T(f"  - {p}"))


def model_check(con: Console, d: dict) -> None:
    r = d["replay"]
    con.print(f"Prequential replay of {r['observations']} observations (log loss, lower is better):")
    for k, v in r["log_loss"].items():
        con.print(f"  {k:14s} {v:.4f}" if v is not None else f"  {k:14s} -")
    t = Table(title="Calibration of the engine's prediction")
    for col in ("bin", "n", "predicted", "observed"):
        t.add_column(col)
    for b in r["calibration"]:
        fmt = (lambda x: f"{x:.3f}" if x is not None else "-")
        t.add_row(b["bin"], str(b["n"]), fmt(b["predicted"]), fmt(b["observed"]))
    con.print(t)
    sim = d["simulation"]
    for case, title in (("default", "default world"),
                        ("optimistic", f"optimistic tutor, bias +{sim['optimistic']['world']['bias']:g}")):
        s = Table(title=f"Simulated learners ({sim['learners']}, seed {sim['seed']}, {title}): "
                        "mastery rules")
        for col in ("rule", "declared", "false", "skill at decl. p10/50/90", "miss",
                    "obs. to decl."):
            s.add_column(col)
        for k, v in sim[case]["rules"].items():
            at = v["skill_at_declaration"]
            s.add_row(k, str(v["declared"]), f"{v['false_mastery_rate']:.1%}",
                      "/".join(f"{at[x]:.2f}" if at[x] is not None else "-"
                               for x in ("p10", "median", "p90")),
                      f"{v['miss_rate']:.1%}", str(v["observations_to_declaration"] or "-"))
        con.print(s)
    if "sweep" in d:
        sw = d["sweep"]
        t = Table(title=f"Sweep of the skill verdict ({sw['learners']} learners): the frontier "
                        "(false mastery vs miss rate), the defaults and the chosen row")
        for col in ("tutor_sd", "drift_sd", "interval", "false", "miss", "obs.",
                    f"false +{sw['bias']:g}", "strong", "mark"):
            t.add_column(col)
        for r in sorted(sw["rows"], key=lambda r: r["false_mastery_rate"]):
            marks = [m for m, on in (("frontier", r["frontier"]), ("DEFAULT", r["default"]),
                                     ("CHOSEN", r["chosen"])) if on]
            if marks:
                t.add_row(f"{r['tutor_sd']:g}", f"{r['drift_sd']:g}", f"{r['interval']:g}",
                          f"{r['false_mastery_rate']:.1%}", f"{r['miss_rate']:.1%}",
                          str(r["observations_to_declaration"] or "-"),
                          f"{r['biased_false_mastery_rate']:.1%}",
                          "yes" if r["recognises_strong"] else "no", ", ".join(marks))
        con.print(t)


def repair(con: Console, d: dict) -> None:
    if not d["repaired"]:
        con.print(f"Nothing to repair: the log ends cleanly ({d['events']} events).")
        return
    if d["quarantined_bytes"]:
        where = (d["quarantine"] if "fragment" not in d else
                 "this output (the quarantine file could not be written: "
                 + safe(d.get("quarantine_error", ""), False) + ")")
        con.print(T(f"Moved {d['quarantined_bytes']} bytes after event {d['events']} to "
                    f"{where}: {d['damage']}"))
        if "fragment" in d:
            con.print(T(f"  fragment: {d['fragment']}"))
    if d.get("anchor"):
        con.print(T(f"Accepted the log as it is now: {d['anchor']}"))
    con.print(f"{d['events']} events kept. `llmlab verify` should now report OK.")
