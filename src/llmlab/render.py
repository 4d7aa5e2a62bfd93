"""Human-readable terminal output: plain text and aligned tables. Formatting only: no logic.

Plain text rather than rich tables: the read and write commands a tutor calls many times a
session (`state`, `next`, `log observe`, `verify`) render through here, and importing rich
alone costs more than the whole command may (issue 19: <= 5x `python -c "import json"`).
Each function returns the text; the shell prints it.

Every piece of stored text (evidence, claims, notes, ids, curriculum text) goes through
`safe`, so control characters such as ESC (terminal escape sequences: clipboard writes,
window titles, screen clears) are shown escaped, never emitted.
"""

from __future__ import annotations

import re

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


def T(text: object) -> str:
    """Stored text for a table cell or a line: escaped, one line."""
    return safe(text, newlines=False)


def width() -> int:
    """The terminal's width (COLUMNS if set); 100 when the output is not a terminal."""
    import shutil

    return max(40, shutil.get_terminal_size((100, 24)).columns)


def wrap(text: str, indent: str = "    ") -> str:
    """One line of text folded to the terminal width, continuation lines indented."""
    if len(text) <= width():
        return text
    import textwrap

    return "\n".join(textwrap.wrap(text, width(), subsequent_indent=indent,
                                   break_on_hyphens=False))


SOURCE_WORDS = {"full": "read the whole log", "incremental": "read only the new events",
                "cached": "nothing new in the log"}


def site_build(d: dict) -> str:
    """What `llmlab site build` did, and where the dashboard is."""
    return wrap(f"Built {d['pages']} pages from {d['events']} events in {d['seconds']:.2f} s "
                f"({SOURCE_WORDS[d['source']]}; {d['rendered']} pages rendered, "
                f"{d['written']} files written, {d['unchanged']} unchanged).") + \
        f"\nOpen {safe(d['index'])}"


def fields(parts: list[str]) -> str:
    """Label-value pairs on as few lines as the width allows, three spaces apart."""
    lines = [""]
    for p in parts:
        if lines[-1] and len(lines[-1]) + 3 + len(p) > width():
            lines.append("")
        lines[-1] += ("   " if lines[-1] else "") + p
    return "\n".join(lines)


def table(title: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A titled table: columns padded to their widest cell, a rule under the heading. When
    it is wider than the terminal, the widest columns narrow and their cells fold onto more
    lines. Cells are already text (stored text through `T`)."""
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    floor = [max(len(c), 6) for c in columns]
    while sum(widths) + 2 * (len(widths) - 1) > width():
        i = max(range(len(widths)), key=lambda k: widths[k] - floor[k])
        if widths[i] <= floor[i]:
            break  # as narrow as it goes
        widths[i] -= 1

    def line(cells) -> list[str]:
        if all(len(c) <= w for c, w in zip(cells, widths)):
            return ["  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()]
        import textwrap

        parts = [textwrap.wrap(c, w, break_on_hyphens=False) or [""]
                 for c, w in zip(cells, widths)]
        return ["  ".join((p[k] if k < len(p) else "").ljust(w)
                          for p, w in zip(parts, widths)).rstrip()
                for k in range(max(map(len, parts)))]

    out = [wrap(title), *line(columns), *line(["-" * w for w in widths])]
    for r in rows:
        out += line(r)
    return "\n".join(out)


def _bar(m: float, width: int = 10) -> str:
    n = round(m * width)
    return "█" * n + "·" * (width - n)


def state(d: dict) -> str:
    o = d["overall"]
    out = [fields([f"Learner: {safe(d['learner']['name'], False)}", f"Events: {d['events']}",
                   f"Overall mastery: {o['mastery']:.2f} over all {o['total']} concepts",
                   f"Mastered: {o['mastered']}/{o['total']}",
                   f"Exit items passed: {o['exit_passed']}/{o['exit_total']}",
                   f"Current module: {safe(d['current_module'], False)}"])]
    if not o["touched"]:
        out.append(wrap("No concept probed yet: start a session with your tutor (see "
                        "AGENTS.md), or record evidence with `llmlab log observe`.", ""))
    else:
        out += _concepts_and_exits(d)
    out += _misconceptions_and_next(d)
    return "\n".join(out)


def _concepts_and_exits(d: dict) -> list[str]:
    o = d["overall"]
    rows = []
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
        rows.append((T(c["id"]), f"{c['mastery']:.3f}", _bar(c["mastery"]),
                     str(c["observations"]), str(c["days"]), T("; ".join(status))))
    exits = []
    for item in d["exit_items"].values():
        done = sum(r["mastered"] for r in item["requires"])
        missing = [r["concept"] for r in item["requires"] if not r["mastered"]]
        exits.append((T(item["id"]), T(item["kind"]), "READY" if item["ready"] else "-",
                      "passed" if item["passed"] else "-",
                      T(f"{done}/{len(item['requires'])} mastered"
                        + (f"; missing {', '.join(missing[:3])}" if missing else "")
                        + (" …" if len(missing) > 3 else ""))))
    return [table(f"Concepts seen ({o['touched']} of {o['total']})",
                  ("concept", "mastery", "", "obs", "days", "status"), rows), "",
            table("Exit items", ("item", "kind", "ready", "passed", "requires"), exits)]


def _misconceptions_and_next(d: dict) -> list[str]:
    out = []
    mis = d["misconceptions"]
    if mis["open"]:
        out.append("Open misconceptions:")
        out += [wrap(T(f"  {m['id']} [{m['concept']}] {m['claim']}")) for m in mis["open"]]
    if mis["resolved_count"] or mis["open"]:
        out.append(f"Resolved misconceptions: {mis['resolved_count']}")
    notes = d.get("notes", {}).get("latest", [])[:3]
    if notes:
        out.append(f"Tutor's notes (latest {len(notes)} of {d['notes']['count']}):")
        for n in notes:
            about = f" [{', '.join(n['tags'] + n['concepts'])}]" if n["tags"] or n["concepts"] else ""
            out.append(wrap(T(f"  {n['id']}{about} {n['text']}")))
    if "next" in d:
        out += ["", next_probes(d["next"])]
    return out


def next_probes(probes: list[dict]) -> str:
    out = table("Next probes", ("#", "reason", "target", "why"),
                [(str(i), T(p["reason"]), T(p["target"]), T(p["why"]))
                 for i, p in enumerate(probes, 1)])
    if not probes:
        out += "\nNothing pending: every concept is mastered and fresh."
    return out


def concept(d: dict) -> str:
    c, s = d["concept"], d["state"]
    if not s["observations"] and not d["evidence"]:
        return concept_entry(c) + "\nNot probed yet: no evidence recorded on this concept."
    out = [safe(f"{c['title']} ({c['id']}, module {c['module']})", False), safe(c["summary"]),
           f"Mastery {s['mastery']:.3f} after {s['observations']} observation(s) on "
           f"{s['days']} day(s); mastered: {s['mastered']}; stale: {s['stale']}"]
    if s["prereq_gaps"]:
        out.append(T("Prerequisite gaps: " + ", ".join(map(str, s["prereq_gaps"]))))
    for m in d["misconceptions"]:
        state_ = "resolved" if m["resolved_at"] else "OPEN"
        out.append(T(f"  [{state_}] {m['id']}: {m['claim']}"))
    page = d.get("page") or {}
    title = "Evidence"
    if page and page["shown"] < page["total"]:
        title += f" ({page['shown']} of {page['total']} events)"
    rows = []
    for e in d["evidence"]:
        detail = e["data"].get("evidence") or e["data"].get("claim") or ""
        if e.get("retracted"):
            detail = "(retracted) " + detail
        rows.append((T(e["id"]), T(str(e["ts"])[:16]), T(e["type"]), T(str(detail)[:120])))
    out.append(table(title, ("id", "ts", "type", "detail"), rows))
    if page.get("older"):
        out.append(safe(f"Earlier events: llmlab concept show {c['id']} --cursor "
                        f"{page['older']}  (or --all)"))
    return "\n".join(out)


def concept_entry(c: dict) -> str:
    out = [safe(f"{c['title']} ({c['id']}, module {c['module']})", False), safe(c["summary"])]
    if c["prerequisites"]:
        out.append(T("Prerequisites: " + ", ".join(c["prerequisites"])))
    out += [T(f"  behaviour: {b}") for b in c["behaviours"]]
    for m in c["misconceptions"]:
        out += [T(f"  misconception {m['id']}: {m['claim']}"),
                T(f"    correction: {m['correction']}")]
    if c["experiments"]:
        out.append(T("Lab: " + ", ".join(c["experiments"])))
    return "\n".join(out)


def curriculum(cur) -> str:
    out = [safe(f"{cur.title} ({len(cur.concepts)} concepts)", False)]
    for m in cur.modules:
        out.append(safe(f"{m.order}. {m.title} [{m.id}]", False))
        out += [T(f"   {cid}: {cur.concepts[cid].title}") for cid in m.concepts]
    out.append("Exit items:")
    out += [T(f"   {e.id} ({e.kind}): {e.title}  requires {', '.join(e.requires)}")
            for e in cur.exit_items.values()]
    return "\n".join(out)


def verify(d: dict) -> str:
    if d["ok"]:
        return f"OK: {d['events']} events, hash chain intact, no torn line."
    return "\n".join([f"{d['events']} complete events; chain "
                      f"{'intact' if d['chain_ok'] else 'BROKEN'}; torn tail: "
                      f"{d['torn_tail_bytes']} bytes."] + [T(f"  - {p}") for p in d["problems"]])


def model_check(d: dict) -> str:
    r = d["replay"]
    out = [f"Prequential replay of {r['observations']} observations (log loss, lower is better):"]
    out += [f"  {k:14s} {v:.4f}" if v is not None else f"  {k:14s} -"
            for k, v in r["log_loss"].items()]
    fmt = (lambda x: f"{x:.3f}" if x is not None else "-")
    out += ["", table("Calibration of the engine's prediction", ("bin", "n", "predicted", "observed"),
                      [(b["bin"], str(b["n"]), fmt(b["predicted"]), fmt(b["observed"]))
                       for b in r["calibration"]])]
    sim = d["simulation"]
    for case, title in (("default", "default world"),
                        ("optimistic", f"optimistic tutor, bias +{sim['optimistic']['world']['bias']:g}")):
        rows = []
        for k, v in sim[case]["rules"].items():
            at = v["skill_at_declaration"]
            rows.append((k, str(v["declared"]), f"{v['false_mastery_rate']:.1%}",
                         "/".join(f"{at[x]:.2f}" if at[x] is not None else "-"
                                  for x in ("p10", "median", "p90")),
                         f"{v['miss_rate']:.1%}", str(v["observations_to_declaration"] or "-")))
        out += ["", table(f"Simulated learners ({sim['learners']}, seed {sim['seed']}, {title}): "
                          "mastery rules", ("rule", "declared", "false", "skill at decl. p10/50/90",
                                            "miss", "obs. to decl."), rows)]
    if "sweep" in d:
        sw = d["sweep"]
        rows = []
        for r in sorted(sw["rows"], key=lambda r: r["false_mastery_rate"]):
            marks = [m for m, on in (("frontier", r["frontier"]), ("DEFAULT", r["default"]),
                                     ("CHOSEN", r["chosen"])) if on]
            if marks:
                rows.append((f"{r['tutor_sd']:g}", f"{r['drift_sd']:g}", f"{r['interval']:g}",
                             f"{r['false_mastery_rate']:.1%}", f"{r['miss_rate']:.1%}",
                             str(r["observations_to_declaration"] or "-"),
                             f"{r['biased_false_mastery_rate']:.1%}",
                             "yes" if r["recognises_strong"] else "no", ", ".join(marks)))
        out += ["", table(f"Sweep of the skill verdict ({sw['learners']} learners): the frontier "
                          "(false mastery vs miss rate), the defaults and the chosen row",
                          ("tutor_sd", "drift_sd", "interval", "false", "miss", "obs.",
                           f"false +{sw['bias']:g}", "strong", "mark"), rows)]
    return "\n".join(out)


def repair(d: dict) -> str:
    if not d["repaired"]:
        return f"Nothing to repair: the log ends cleanly ({d['events']} events)."
    out = []
    if d["quarantined_bytes"]:
        where = (d["quarantine"] if "fragment" not in d else
                 "this output (the quarantine file could not be written: "
                 + safe(d.get("quarantine_error", ""), False) + ")")
        out.append(T(f"Moved {d['quarantined_bytes']} bytes after event {d['events']} to "
                     f"{where}: {d['damage']}"))
        if "fragment" in d:
            out.append(T(f"  fragment: {d['fragment']}"))
    if d.get("anchor"):
        out.append(T(f"Accepted the log as it is now: {d['anchor']}"))
    out.append(f"{d['events']} events kept. `llmlab verify` should now report OK.")
    return "\n".join(out)
