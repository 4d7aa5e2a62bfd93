"""`llmlab`: the command-line shell. Each command parses input, makes one library call
and formats the result: tables for people, `--json` for programs."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from typer.core import TyperGroup

from . import commands, shell
from .errors import UserError
from .shell import JsonOpt, print_json

console = Console()
err_console = Console(stderr=True)


# Command groups whose modules are imported only when one of their commands runs, so that
# `llmlab state` or `llmlab --help` never imports the lab or the transcript publisher. Their
# help here is what `llmlab --help` lists; tests/test_startup.py checks it is the group's own.
LAZY_GROUPS = {
    "lab": ("llmlab.lab.cli", "Experiments on a real language model: predict, run, compare."),
    "eval": ("llmlab.lab.eval_cli",
             "Evaluate evaluations: calibrate an LLM judge against human scores."),
    "notes": ("llmlab.lab.notes_cli", "Your own notes, read with the lab's retrieval machinery."),
    "transcript": ("llmlab.transcript.cli",
                   "Publish agent session logs (Claude Code JSONL, ChatGPT export) as "
                   "verbatim, day-grouped, scrubbed HTML and markdown pages."),
}


class _Llmlab(shell.LazyGroup):
    """The root command. A UserError, from any command, becomes one paragraph on stderr and exit
    status 1, with no traceback: `main()` and the tests' in-process runner both go through here.
    The LAZY_GROUPS load on first use; listing them in `--help` loads none."""

    lazy = LAZY_GROUPS

    def main(self, *args, **kwargs):
        try:
            return super().main(*args, **kwargs)
        except (UserError, OSError) as e:  # no traceback, as on the fast path
            sys.exit(commands.fail(e))


app = shell.group(
    cls=_Llmlab,
    help="LLM Learning Lab: learn how LLMs work with an honest tutor, a real-model lab and a "
         "dashboard. Start with `llmlab init DIR` or `llmlab demo`.",
    add_completion=False, pretty_exceptions_enable=False,
)
log_app = shell.group(help="Record evidence: observations, misconceptions, exit attempts.")
curriculum_app = shell.group(help="Inspect and validate curricula.")
concept_app = shell.group(help="Look at one concept.")
app.add_typer(log_app, name="log")
app.add_typer(curriculum_app, name="curriculum")
app.add_typer(concept_app, name="concept")
site_app = shell.group(help="The dashboard and pages, rendered from derived state.")
app.add_typer(site_app, name="site")
tutor_app = shell.group(help="The tutor: generated instructions (AGENTS.md, CLAUDE.md) and MCP "
                        "client set-up.")
app.add_typer(tutor_app, name="tutor")
profile_app = shell.group(help="The learner profile (name, goal, background, scope, depth).")
app.add_typer(profile_app, name="profile")

BackgroundOpt = typer.Option(None, "--background", help="Languages, domains and what the "
                             "learner has built (the tutor explains through them).")
ScopeOpt = typer.Option(None, "--scope", help="What the learner wants covered first.")
ExcludeOpt = typer.Option(None, "--exclude", help="What to leave out.")
DepthOpt = typer.Option(None, "--depth", help="overview, working or deep.")
AtOpt = typer.Option(None, "--at", help="Record with this RFC 3339 time (e.g. when back-filling "
                     "notes); must not precede the last event.")
ActorOpt = typer.Option("tutor", "--actor", help="Who is recording: tutor, learner, lab, system.")


_warn = commands.warn
_recorded = commands.recorded


# ---------------------------------------------------------------- workspace

@app.command()
def init(
    directory: Path = typer.Argument(..., help="Folder for the new workspace (created if missing)."),
    name: Optional[str] = typer.Option(None, "--name", help="The learner's name."),
    goal: Optional[str] = typer.Option(None, "--goal", help="What the learner wants to be able to do."),
    curriculum: Optional[str] = typer.Option(None, "--curriculum",
                                             help="A curriculum folder to use instead of the default course."),
    background: Optional[str] = BackgroundOpt, scope: Optional[str] = ScopeOpt,
    exclude: Optional[str] = ExcludeOpt, depth: Optional[str] = DepthOpt,
) -> None:
    """Create a workspace: llmlab.toml, an empty evidence log (mode 0600), .mcp.json, and the
    tutor instructions AGENTS.md and CLAUDE.md.

    In a terminal it asks for the learner profile it was not given (press Enter to skip a
    question); elsewhere it takes the flags only. `llmlab profile set` changes it later."""
    from .create import create_workspace

    if sys.stdin.isatty():
        asks = {"name": "Your name", "goal": "What do you want to be able to do",
                "background": "Your background (languages, domains, what you have built)",
                "scope": "What should come first", "exclude": "What should be left out",
                "depth": "Depth: overview, working or deep"}
        given = {"name": name, "goal": goal, "background": background, "scope": scope,
                 "exclude": exclude, "depth": depth}
        for k, q in asks.items():
            if given[k] is None:
                given[k] = typer.prompt(q, default="", show_default=False).strip() or None
        name, goal, background, scope, exclude, depth = given.values()
    ws = create_workspace(directory, name=name, goal=goal, curriculum=curriculum,
                          background=background, scope=scope, exclude=exclude, depth=depth)
    typer.echo(
        f"Created workspace {ws.root} (the learner profile in llmlab.toml, an empty evidence "
        "log, AGENTS.md and CLAUDE.md, .mcp.json).\n"
        f"See what comes first: cd {ws.root} && llmlab next\n"
        f"Next, start your tutor: cd {ws.root} && claude  (approve the llmlab server, then "
        "say \"Let's start.\"). Another agent: llmlab tutor setup --client cursor|vscode|"
        "gemini|codex|claude-desktop, then open it in this folder.")


# ---------------------------------------------------------------- profile

@profile_app.command("show")
def profile_show(as_json: bool = JsonOpt) -> None:
    """The learner profile the tutor instructions are written for."""
    from . import profile
    from .workspace import Workspace

    shell.out(profile.show(Workspace.find()), as_json, lambda d: console.print(
        "\n".join(f"{k}: {v}" for k, v in d.items())))


@profile_app.command("set")
def profile_set(
    name: Optional[str] = typer.Option(None, "--name", help="The learner's name."),
    goal: Optional[str] = typer.Option(None, "--goal", help="What the learner wants to be able to do."),
    background: Optional[str] = BackgroundOpt, scope: Optional[str] = ScopeOpt,
    exclude: Optional[str] = ExcludeOpt, depth: Optional[str] = DepthOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Change the learner profile in llmlab.toml (other settings and comments are kept) and
    regenerate AGENTS.md from it."""
    from . import profile
    from .workspace import Workspace

    res = profile.update(Workspace.find(), name=name, goal=goal, background=background,
                         scope=scope, exclude=exclude, depth=depth)
    shell.out(res, as_json, lambda d: console.print(
        f"Profile {d['change']}. AGENTS.md: "
        + ("rewritten" if "AGENTS.md" in d["instructions"]["written"] else
           "kept (edited by hand; run `llmlab tutor instructions --force`)"
           if "AGENTS.md" in d["instructions"]["kept"] else "unchanged") + "."))


# ---------------------------------------------------------------- log

@log_app.command("observe")
def log_observe(
    concept: str = typer.Argument(..., help="Concept id (see `llmlab curriculum show`)."),
    quality: float = typer.Option(..., "--quality", "-q", help="How well this one exchange went, 0..1."),
    evidence: str = typer.Option(..., "--evidence", "-e", help="What the learner said or did."),
    probe: str = typer.Option("", "--probe", "-p", help="The question or task that was posed."),
    actor: str = ActorOpt, at: Optional[str] = AtOpt, as_json: bool = JsonOpt,
) -> None:
    """Record how well one exchange on a concept went (never a mastery claim)."""
    commands.log_observe(concept, quality, evidence, probe, actor, at, as_json)


@log_app.command("misconception")
def log_misconception(
    concept: str = typer.Argument(..., help="Concept id."),
    claim: Optional[str] = typer.Option(None, "--claim", help="The wrong claim, in plain words."),
    catalog: Optional[str] = typer.Option(None, "--catalog", help="Id of a known misconception of the concept."),
    quote: str = typer.Option("", "--quote", help="The learner's words."),
    reopens: Optional[str] = typer.Option(None, "--reopens", help="Id of a resolved misconception that came back (a relapse); a catalog one is linked automatically."),
    actor: str = ActorOpt, at: Optional[str] = AtOpt, as_json: bool = JsonOpt,
) -> None:
    """Record that a wrong mental model was seen (opens a misconception, or reopens one)."""
    from . import api
    from .workspace import Workspace

    _recorded(api.open_misconception(Workspace.find(), concept, claim, catalog, quote, actor, at,
                                     reopens), as_json)


@log_app.command("resolve")
def log_resolve(
    event_id: str = typer.Argument(..., help="Id of the misconception_opened event, e.g. evt_000012."),
    evidence: str = typer.Option("", "--evidence", "-e", help="How the learner showed they now get it (required)."),
    actor: str = ActorOpt, at: Optional[str] = AtOpt, as_json: bool = JsonOpt,
) -> None:
    """Record that an open misconception is resolved."""
    from . import api
    from .workspace import Workspace

    _recorded(api.resolve_misconception(Workspace.find(), event_id, evidence, actor, at), as_json)


@log_app.command("exit")
def log_exit(
    item: str = typer.Argument(..., help="Exit item id (see `llmlab curriculum show`)."),
    passed: bool = typer.Option(..., "--passed/--failed", help="Whether the attempt passed."),
    notes: str = typer.Option("", "--notes", help="What happened."),
    actor: str = ActorOpt, at: Optional[str] = AtOpt, as_json: bool = JsonOpt,
) -> None:
    """Record an exit-test or build-milestone attempt."""
    from . import api
    from .workspace import Workspace

    _recorded(api.exit_attempt(Workspace.find(), item, passed, notes, actor, at), as_json)


@log_app.command("note")
def log_note(
    text: str = typer.Argument(..., help="The note: one short text (at most 1,000 characters) "
                               "about the learner, e.g. a reflex seen or what lands."),
    concept: list[str] = typer.Option([], "--concept", "-c", help="A concept id the note is "
                                      "about (repeat for several, at most 10)."),
    tag: list[str] = typer.Option([], "--tag", "-t", help="What kind of note (repeatable): "
                                  "background, reflex, strength, gap or preference."),
    actor: str = ActorOpt, at: Optional[str] = AtOpt, as_json: bool = JsonOpt,
) -> None:
    """Record the tutor's note about the learner (background, a reflex seen, what lands).
    Notes are shown to the tutor and on the dashboard; they never change mastery."""
    from . import api
    from .workspace import Workspace

    _recorded(api.note(Workspace.find(), text, concept, tag, actor, at), as_json)


@app.command()
def predict(
    experiment: str = typer.Argument(..., help="Lab experiment name (see `llmlab lab list`)."),
    quantity: str = typer.Argument(..., help="The quantity you predict (see `llmlab lab list`)."),
    value: float = typer.Argument(..., help="Your predicted value."),
    concept: Optional[str] = typer.Option(None, "--concept", help="Concept this prediction tests."),
    tolerance: Optional[float] = typer.Option(None, "--tolerance",
                                              help="Relative error that counts as right (default from llmlab.toml)."),
    note: str = typer.Option("", "--note", help="Your reasoning, in a sentence."),
    param: list[str] = typer.Option([], "--param", "-p", help="The run this prediction is for, "
                                    "as name=value like `llmlab lab run` (e.g. -p config=PATH or "
                                    "-p prompt=...); omitted: the experiment's defaults."),
    at: Optional[str] = AtOpt, as_json: bool = JsonOpt,
) -> None:
    """Record the learner's prediction before a lab run; the next run under the same
    conditions (model or config, and the parameters the quantity depends on) compares it.
    Without --concept it counts against the concept the quantity measures."""
    from . import api
    from .lab.experiment import parse_params
    from .workspace import Workspace

    _recorded(api.predict(Workspace.find(), experiment, quantity, value, concept, tolerance, note,
                          "learner", at, params=parse_params(param)), as_json)


@app.command()
def undo(
    event_id: str = typer.Argument(..., help="Id of the event to retract."),
    reason: str = typer.Option(..., "--reason", help="Why it should stop counting."),
    actor: str = ActorOpt, as_json: bool = JsonOpt,
) -> None:
    """Retract an event without deleting it: it stops counting."""
    from . import api
    from .workspace import Workspace

    _recorded(api.retract(Workspace.find(), event_id, reason, actor), as_json)


# ---------------------------------------------------------------- reads

@app.command("state")
def state_cmd(as_json: bool = JsonOpt) -> None:
    """The learner state derived from the log: mastery, exit readiness, misconceptions."""
    commands.state(as_json)


@app.command("next")
def next_cmd(limit: int = typer.Option(10, "--limit", help="How many probes to list."),
             as_json: bool = JsonOpt) -> None:
    """What the tutor should do next, most urgent first, each with its reason."""
    commands.next_probes(limit, as_json)


@concept_app.command("show")
def concept_show(
    concept: str = typer.Argument(..., help="Concept id."),
    limit: int = typer.Option(10, "--limit", help="How many of its latest events to show."),
    cursor: Optional[str] = typer.Option(None, "--cursor", help="Show the events before this "
                                         "event id (the `older` id a page ends with)."),
    all_: bool = typer.Option(False, "--all", help="Every event (ignores --limit)."),
    as_json: bool = JsonOpt,
) -> None:
    """One concept: its curriculum entry, state, misconceptions and latest evidence (paged)."""
    from . import api
    from . import render
    from .workspace import Workspace

    d = api.concept(Workspace.find(), concept, limit=None if all_ else limit, cursor=cursor)
    _warn(d["warnings"])
    commands.emit(d, as_json, render.concept)


@curriculum_app.command("validate")
def curriculum_validate(path: Path = typer.Argument(..., help="A curriculum folder."),
                        as_json: bool = JsonOpt) -> None:
    """Check a curriculum: unique ids, references resolve, no prerequisite cycle."""
    from . import curriculum as curriculum_mod

    cur = curriculum_mod.load(path)
    info = {"ok": True, "path": cur.path, **cur.counts()}
    shell.out(info, as_json, lambda d: console.print(
        f"OK: {d['modules']} modules, {d['concepts']} concepts, {d['misconceptions']} "
        f"misconceptions, {d['exit_items']} exit items."))


@curriculum_app.command("show")
def curriculum_show(
    concept: Optional[str] = typer.Argument(None, help="A concept id for its details."),
    path: Optional[Path] = typer.Option(None, "--path", help="Curriculum folder (default: the workspace's, else the default course)."),
    as_json: bool = JsonOpt,
) -> None:
    """The course outline, or one concept's behaviours, misconceptions and links."""
    from . import api
    from . import render
    from . import curriculum as curriculum_mod
    from .schema import dump
    from .workspace import Workspace

    if path is not None:
        cur = curriculum_mod.load(path)
    else:
        try:
            cur = Workspace.find().curriculum
        except UserError:
            cur = curriculum_mod.load(curriculum_mod.default_path())
    if concept:
        if concept not in cur.concepts:
            raise api.unknown("concept", concept, cur.concepts, api.CONCEPT_HINT)
        commands.emit(dump(cur.concepts[concept]), as_json, render.concept_entry)
    else:
        shell.out(dump(cur), as_json, lambda d: print(render.curriculum(cur)))


# ---------------------------------------------------------------- log maintenance

@app.command()
def verify(as_json: bool = JsonOpt) -> None:
    """Replay the log: hash chain, sequential ids, schemas, torn last line. Exit 1 on problems."""
    if commands.verify(as_json):
        raise typer.Exit(1)


@app.command()
def repair(as_json: bool = JsonOpt) -> None:
    """Move the damaged part of the log (a torn last line; an invalid, future-dated or
    chain-breaking line and everything after it) to evidence.quarantine.jsonl, never dropping
    it; keep every event before it. Only truncates and moves, so it works on a full disk."""
    from . import render
    from .integrity import repair as repair_log
    from .workspace import Workspace

    ws = Workspace.find()
    res = repair_log(ws.log_path, ws.state_dir)
    commands.emit(res, as_json, render.repair)


@app.command()
def rebuild(as_json: bool = JsonOpt) -> None:
    """Recompute the derived state from the whole log, replacing the cache (and drop the
    site build's caches: the next site build reads the whole log)."""
    from . import api
    from .workspace import Workspace

    res = api.rebuild(Workspace.find())
    _warn(res["warnings"])
    shell.out(res, as_json, lambda d: console.print(f"Rebuilt state from {d['events']} events."))


@app.command("model-check")
def model_check(
    learners: int = typer.Option(1000, "--learners", help="Simulated learners."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the simulation."),
    bias: float = typer.Option(0.1, "--bias", help="Grading bias of the optimistic tutor case."),
    sweep: bool = typer.Option(False, "--sweep", help="Also scan the skill verdict's parameters "
                               "(tutor_sd, drift_sd, interval) and print the frontier."),
    as_json: bool = JsonOpt,
) -> None:
    """Score the mastery model: replay this log prequentially, and simulated learners
    (false mastery, skill at declaration, miss rate, observations to declaration per rule)."""
    from . import api
    from . import render
    from .workspace import Workspace

    commands.emit(api.model_check(Workspace.find(), learners, seed, bias, sweep), as_json,
                  render.model_check)


@app.command()
def demo(
    directory: Path = typer.Option(Path("demo-workspace"), "--dir", help="Where to create the demo workspace."),
    force: bool = typer.Option(False, "--force", help="Replace an existing demo workspace there."),
    no_serve: bool = typer.Option(False, "--no-serve", help="Do not start the live server (for scripts)."),
    port: Optional[int] = typer.Option(None, "--port", help="Port for the live server (0: any free one)."),
) -> None:
    """Create a demo workspace with a scripted multi-day tutoring trajectory, print the state, build
    the dashboard and serve it live (`--no-serve` to stop after building)."""
    from . import api
    from . import render

    from . import demo as demo_mod

    ws = demo_mod.run(directory, force=force, console=console)
    print(render.state(api.state(ws)))
    from .site import build

    res = build(ws)
    console.print(f"Dashboard: {res['index']} (open it as a file, or serve it live)")
    if not no_serve and not os.environ.get("LLMLAB_NO_SERVE"):
        from .site.server import serve as serve_site

        serve_site(ws, "127.0.0.1", ws.config.settings.port if port is None else port,
                   echo=console.print)


@site_app.command("build")
def site_build(
    force: bool = typer.Option(False, "--force", help="Read the whole log again and render "
                               "every page, instead of only what the log gained since the "
                               "last build and the pages it changed (the files are the same "
                               "either way)."),
    as_json: bool = JsonOpt,
) -> None:
    """Render the dashboard, concept, study and ladder pages (and JSON twins) into site/.

    Incremental: reads only the events added since the last build, and renders only the
    pages whose data changed."""
    commands.site_build(force, as_json)


@app.command()
def serve(
    port: Optional[int] = typer.Option(None, "--port", help="Port (default: settings.port in "
                                       "llmlab.toml, 8765; 0 picks a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but the "
                             "loopback exposes the dashboard to the network and prints a warning."),
) -> None:
    """Serve the dashboard live: rebuilds and reloads open pages when the log or curriculum changes."""
    from .workspace import Workspace

    from .site.server import serve as serve_site

    ws = Workspace.find()
    serve_site(ws, host, ws.config.settings.port if port is None else port, echo=console.print)


flashcards_app = shell.group(help="Flashcards for spaced review in Anki (and markdown).")
app.add_typer(flashcards_app, name="flashcards")


@flashcards_app.command("export")
def flashcards_export(
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the files (default: flashcards/ in the workspace)."),
    concept: Optional[list[str]] = typer.Option(None, "--concept", help="A concept id to include; repeatable."),
    module: Optional[list[str]] = typer.Option(None, "--module", help="A module id whose concepts to include; repeatable."),
    all_: bool = typer.Option(False, "--all", help="Every concept and catalogued misconception of the course."),
    as_json: bool = JsonOpt,
) -> None:
    """Write an Anki-importable text file and a markdown file: due or weak concepts and open
    or recently resolved misconceptions, unless --concept/--module/--all choose others."""
    from .workspace import Workspace

    from . import flashcards

    res = flashcards.export(Workspace.find(), out, concept or [], module or [], all_)
    shell.out({k: v for k, v in res.items() if k != "list"} | {"cards_written": [
        {"guid": c["guid"], "kind": c["kind"], "concept": c["concept"]} for c in res["list"]]},
        as_json, lambda d: console.print(
            f"Wrote {d['cards']} cards ({d['concept_cards']} concept, {d['misconception_cards']} "
            f"misconception) to {d['anki']} (Anki: File > Import) and {d['markdown']}."
            + ("" if d["cards"] else " Nothing is due or weak yet: use --all, --module or "
               "--concept to choose cards.")))


# ---------------------------------------------------------------- tutor

@app.command()
def mcp() -> None:
    """Run the MCP server on stdio for an agent client (Claude Code, Claude Desktop, Cursor):
    tools to read state and record evidence, resources, a start_session prompt."""
    from .mcp_server import main as serve_mcp

    serve_mcp()


@tutor_app.command("instructions")
def tutor_instructions(
    force: bool = typer.Option(False, "--force", help="Overwrite AGENTS.md/CLAUDE.md even if "
                               "they were edited by hand."),
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 1 unless both files "
                               "are current."),
    print_: bool = typer.Option(False, "--print", help="Print AGENTS.md instead of writing it."),
    as_json: bool = JsonOpt,
) -> None:
    """Generate AGENTS.md and CLAUDE.md from the curriculum, llmlab.toml and notes/tutor.md.

    Idempotent: unchanged inputs leave the files byte-identical. A hand-edited file is kept
    unless --force."""
    from .workspace import Workspace

    from . import tutor

    ws = Workspace.find()
    if print_:
        sys.stdout.write(tutor.render(ws)[tutor.AGENTS])
        return
    if check:
        status = tutor.check(ws)
        shell.out(status, as_json, lambda d: console.print(
            "; ".join(f"{k}: {v}" for k, v in d.items()) + "."))
        if any(v != "current" for v in status.values()):
            raise typer.Exit(1)
        return
    res = tutor.write_instructions(ws, force=force)
    shell.out(res, as_json, lambda d: console.print(
        (f"Wrote {', '.join(d['written'])}" if d["written"] else "Up to date")
        + f" in {ws.root}." + (f" Kept hand-edited {', '.join(d['kept'])}." if d["kept"] else "")))


@tutor_app.command("setup")
def tutor_setup(
    client: str = typer.Option(..., "--client", help="claude-code, claude-desktop, cursor, "
                               "vscode, gemini or codex."),
    config: Optional[Path] = typer.Option(None, "--config", help="The client's config file "
                                          "(default: where that client looks for it)."),
    name: str = typer.Option("llmlab", "--name", help="Server name in the client (use another "
                             "per workspace to register several)."),
    print_: bool = typer.Option(False, "--print", help="Print the server entry to add; write "
                                "nothing."),
    as_json: bool = JsonOpt,
) -> None:
    """Add the llmlab MCP server to an agent client's configuration (merged, never clobbered).

    Other servers and settings in the file are kept; a file that cannot be parsed is left
    alone."""
    from .workspace import Workspace

    from . import clients

    res = clients.setup(Workspace.find(), client, config, name, write=not print_)
    if print_:  # only our entry: the rest of the file may hold other servers' secrets
        if res["format"] == "toml":
            import tomlkit

            sys.stdout.write(tomlkit.dumps(res["entry"]))
        else:
            print_json(res["entry"])
        err_console.print(f"Merge this into {res['path']} (or run without --print).")
        return
    shell.out(res, as_json, lambda d: console.print(
        f"{d['change'].capitalize()} server '{d['name']}' in {d['path']}"
        f"{'' if d['written'] else ' (nothing to write)'}.\nNext: {d['next']}"
        + (f"\nClaude Code plugin: {d['plugin']['change']} {d['plugin'].get('path', '')}. "
           f"{d['plugin'].get('error') or d['plugin']['next']}" if "plugin" in d else "")))


def command_tree() -> TyperGroup:
    """The root command with every lazy group loaded: for the tests and docs that walk it."""
    root = typer.main.get_command(app)
    for name in LAZY_GROUPS:
        root.get_command(None, name)
    return root


def main() -> None:
    """The full command line (`llmlab.commands.main` sends here what it does not run)."""
    app()
