"""Tutor instructions: `AGENTS.md` (and a `CLAUDE.md` that imports it), generated.

Rendered from `templates/tutor/AGENTS.md.j2`, the workspace's curriculum, the learner
profile and mastery gates in `llmlab.toml`, the lab's experiment declarations and the
learner's optional `notes/tutor.md`. The output holds no timestamp and no machine path,
so the same inputs give byte-identical files.

Each generated file starts with a marker line that records the SHA-256 of its body:

    <!-- llmlab:generated sha256=<64 hex> ... -->

That makes two checks cheap: the file is *current* when the body we would render now has
that digest (the inputs did not change), and it was *edited by hand* when its own body no
longer matches the digest. Hand edits are never overwritten without `force`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from .errors import UserError, read_text
from .files import atomic_write
from .lab import catalog
from .workspace import Workspace

AGENTS = "AGENTS.md"
CLAUDE = "CLAUDE.md"
NOTES = Path("notes") / "tutor.md"  # the learner's own additions, included verbatim
MARKER = re.compile(r"\A<!-- llmlab:generated sha256=([0-9a-f]{64})[^\n]*-->\n")


@dataclass(frozen=True)
class ToolDoc:
    """One MCP tool as the instructions present it: name, CLI twin, when to use it."""

    name: str
    cli: str
    use: str
    writes: bool = False


# The MCP server's tools (`mcp_server.py` registers exactly these; a test keeps them equal).
TOOLS: tuple[ToolDoc, ...] = (
    ToolDoc("get_state", "llmlab state --json",
            "Start of every session: headline numbers, open misconceptions, `next`, a line "
            "per concept."),
    ToolDoc("next_probes", "llmlab next --json",
            "What to probe next, most urgent first, with reasons."),
    ToolDoc("get_concept", "llmlab concept show ID --json",
            "Before probing a concept: its entry (openers, misconceptions with corrections), "
            "state, latest evidence."),
    ToolDoc("get_curriculum", "llmlab curriculum show --json",
            "The whole course: modules, concepts, exit items."),
    ToolDoc("record_observation",
            'llmlab log observe CONCEPT -q QUALITY -e "EVIDENCE" -p "PROBE"',
            "After every substantive exchange: its quality (0..1) alone.",
            writes=True),
    ToolDoc("open_misconception",
            'llmlab log misconception CONCEPT --catalog ID --quote "WORDS"  (or --claim "TEXT")',
            "A wrong model showed: catalog id when one fits, the learner's words.",
            writes=True),
    ToolDoc("resolve_misconception", 'llmlab log resolve EVENT_ID -e "EVIDENCE"',
            "Later applied the correct model unprompted, in a new case.",
            writes=True),
    ToolDoc("record_exit_attempt",
            'llmlab log exit ITEM --passed --notes "NOTES"  (or --failed)',
            "An exit question or build milestone, passed or not.", writes=True),
    ToolDoc("record_prediction",
            'llmlab predict EXPERIMENT QUANTITY VALUE --concept ID --note "REASON"',
            "The learner's number, before the run that measures it.", writes=True),
    ToolDoc("retract_event", 'llmlab undo EVENT_ID --reason "REASON"',
            "You recorded something wrong: it stops counting, stays visible.", writes=True),
    ToolDoc("log_note", 'llmlab log note "TEXT" -t TAG',
            "Your note on the learner (not evidence).",
            writes=True),
    ToolDoc("list_experiments", "llmlab lab list --json",
            "Experiments: questions, parameters, predictable quantities."),
    ToolDoc("scan_notes", "llmlab notes scan FILE.md --json",
            "Notes shared: claims near known misconceptions, with corrections; judge, confirm."),
    ToolDoc("run_experiment", "llmlab lab run NAME -p name=value --json",
            "Measure on the real model; compares predictions, records the run.",
            writes=True),
)
TOOL_NAMES = tuple(t.name for t in TOOLS)


# ---------------------------------------------------------------- rendering

def _env() -> Environment:
    env = Environment(loader=PackageLoader("llmlab", "templates/tutor"),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True, autoescape=False)
    env.filters["oneline"] = lambda s: " ".join(str(s).split())
    env.filters["says_more"] = _says_more
    return env


def _says_more(title: str, cid: str) -> bool:
    """Whether a concept's title adds to its id ("The causal mask" adds nothing to
    `causal_mask`), for the compact course map."""
    words = re.sub(r"^(the|a|an) ", "", " ".join(title.lower().split()))
    return words != cid.replace("_", " ")


def context(ws: Workspace) -> dict:
    """Everything the template sees. All of it is data from the workspace: no clock, no paths."""
    cur = ws.curriculum
    notes = ws.root / NOTES
    return {
        "learner": ws.config.learner,
        "mastery": ws.config.mastery,
        "course": cur,
        "modules": [{"module": m, "concepts": [cur.concepts[c] for c in m.concepts]}
                    for m in cur.modules],
        "mechanism": [e for e in cur.exit_items.values() if e.kind == "mechanism"],
        "build": [e for e in cur.exit_items.values() if e.kind == "build"],
        "experiments": catalog.declarations(),
        "tools": TOOLS,
        "notes": read_text(notes).strip() if notes.is_file() else "",
        "notes_path": NOTES.as_posix(),
    }


def _with_marker(body: str, what: str) -> str:
    digest = hashlib.sha256(body.encode()).hexdigest()
    return (f"<!-- llmlab:generated sha256={digest} {what}; regenerate with "
            f"`llmlab tutor instructions`, do not edit -->\n{body}")


def render(ws: Workspace) -> dict[str, str]:
    """File name -> full text (marker line included) of AGENTS.md and CLAUDE.md."""
    env = _env()
    agents = env.get_template("AGENTS.md.j2").render(**context(ws))
    claude = env.get_template("CLAUDE.md.j2").render()
    return {AGENTS: _with_marker(agents, "from the curriculum and llmlab.toml"),
            CLAUDE: _with_marker(claude, "points Claude Code to AGENTS.md")}


# ---------------------------------------------------------------- status and writing

def file_status(path: Path, wanted: str) -> str:
    """`current`, `outdated` (ours, inputs changed), `missing`, `edited` (hand-edited or
    not generated by llmlab)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return "missing"
    except (OSError, UnicodeDecodeError):
        return "edited"
    if text == wanted:
        return "current"
    m = MARKER.match(text)
    if not m:
        return "edited"
    body = text[m.end():]
    if hashlib.sha256(body.encode()).hexdigest() != m.group(1):
        return "edited"
    return "outdated"


def _write(path: Path, text: str) -> None:
    atomic_write(path, text)


def write_instructions(ws: Workspace, force: bool = False, strict: bool = True) -> dict:
    """Write AGENTS.md and CLAUDE.md when they are missing or outdated.

    A file edited by hand (or not written by llmlab) is kept: with `strict` that is a
    `UserError` naming `--force`; without it (the automatic refresh) it is reported as
    `kept`. Returns {"written": [...], "unchanged": [...], "kept": [...], "files": {...}}.
    """
    texts = render(ws)
    status = {name: file_status(ws.root / name, text) for name, text in texts.items()}
    edited = [n for n, s in status.items() if s == "edited"]
    if edited and strict and not force:
        raise UserError(
            f"{' and '.join(edited)} in {ws.root} {'was' if len(edited) == 1 else 'were'} edited "
            "by hand or not written by llmlab, so llmlab will not overwrite "
            f"{'it' if len(edited) == 1 else 'them'}. Move your own guidance to {NOTES.as_posix()} "
            "(it is included in AGENTS.md) and run `llmlab tutor instructions --force`.")
    out: dict = {"written": [], "unchanged": [], "kept": [], "files": {}}
    for name, text in texts.items():
        path = ws.root / name
        out["files"][name] = str(path)
        s = status[name]
        if s == "current":
            out["unchanged"].append(name)
        elif s == "edited" and not force:
            out["kept"].append(name)
        else:
            _write(path, text)
            out["written"].append(name)
    return out


def check(ws: Workspace) -> dict[str, str]:
    """File name -> status, without writing anything."""
    return {name: file_status(ws.root / name, text) for name, text in render(ws).items()}


def refresh(ws: Workspace) -> dict | None:
    """The cheap check on `llmlab mcp` start: regenerate outdated or missing files, keep
    hand edits, never raise (a failed refresh must not stop the server)."""
    try:
        return write_instructions(ws, strict=False)
    except Exception:  # noqa: BLE001 - best effort by design
        return None
