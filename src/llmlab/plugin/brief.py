"""The compact learner brief the session-start hook puts into the tutor's context.

A pure function of the learner state (`api.state`'s dict): current module, next probes
with their reason codes, due reviews, open misconceptions, the tutor's latest notes and exit
items ready to attempt.
Written as plain statements, not commands: Claude Code wraps hook context in a system
reminder, and imperative "system" text can trip prompt-injection defences
(https://code.claude.com/docs/en/hooks#add-context-for-claude).
"""

from __future__ import annotations

from datetime import datetime

NOTES = 3  # the tutor's latest notes shown
MAX_CHARS = 4000  # well under Claude Code's 10,000-character cap on hook output strings


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def brief(summary: dict, titles: dict[str, str], probes: int = 5,
          as_of: datetime | None = None) -> str:
    """The brief as text. `titles` maps concept and module ids to titles."""
    o = summary["overall"]
    when = f"as of {as_of:%Y-%m-%d %H:%M} UTC; " if as_of else ""
    lines = [
        f"llmlab learner state ({when}{summary['events']} evidence events; "
        f"last {summary.get('last_event') or 'none'}):",
        f"- Overall mastery {o['mastery']:.2f} over all {o['total']} concepts; mastered "
        f"{o['mastered']}/{o['total']}; exit items passed {o['exit_passed']}/{o['exit_total']}.",
    ]
    cm = summary.get("current_module")
    lines.append(f"- Current module: {cm} ({titles.get(cm, cm)})." if cm
                 else "- Current module: none (every module is mastered).")
    nxt = summary.get("next", [])[:probes]
    if nxt:
        lines.append("- Next probes, most urgent first:")
        for i, p in enumerate(nxt, 1):
            lines.append(f"  {i}. [{p['reason']}] {p['target']}: {_clip(p['why'], 220)}")
    else:
        lines.append("- Next probes: none listed.")
    due = [c for c in summary["concepts"].values() if c.get("stale")]
    due.sort(key=lambda c: (c.get("recall") if c.get("recall") is not None else 1.0))
    if due:
        lines.append("- Due for review: " + ", ".join(
            f"{c['id']} (mastery {c['mastery']:.2f}, seen {c['days_since_seen']:.0f}d ago)"
            for c in due[:8]) + (f", and {len(due) - 8} more." if len(due) > 8 else "."))
    open_m = summary["misconceptions"]["open"]
    if open_m:
        lines.append("- Open misconceptions: " + "; ".join(
            f"{m['id']} on {m['concept']}: \"{_clip(m['claim'], 120)}\"" for m in open_m[:6])
            + (f"; and {len(open_m) - 6} more." if len(open_m) > 6 else "."))
    notes = summary.get("notes", {}).get("latest", [])[:NOTES]
    if notes:
        lines.append(f"- The tutor's notes on this learner (latest {len(notes)} of "
                     f"{summary['notes']['count']}; not evidence):")
        for n in notes:
            tags = f"[{', '.join(n['tags'])}] " if n["tags"] else ""
            lines.append(f"  - {n['id']} {tags}{_clip(n['text'], 200)}")
    ready = [e for e in summary["exit_items"].values() if e["ready"] and not e["passed"]]
    if ready:
        lines.append("- Exit items ready to attempt: " + ", ".join(
            f"{e['id']} ({e['kind']}: {_clip(e['title'], 80)})" for e in ready[:6]) + ".")
    lines.append("- Evidence is recorded only through the llmlab MCP record tools or "
                 "`llmlab log ...`; these hooks never record anything. "
                 "`llmlab next` gives the full list.")
    text = "\n".join(lines)
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"
