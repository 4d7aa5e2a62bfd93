"""`llmlab transcript`: publish agent session logs as verbatim, scrubbed pages."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..errors import UserError
from .. import shell

console = Console()
err = Console(stderr=True)

app = shell.group(help="Publish agent session logs (Claude Code JSONL, ChatGPT export) as verbatim, "
                       "day-grouped, scrubbed HTML and markdown pages.")
hook_app = shell.group(help="A Claude Code hook that refreshes the transcript after each turn.")
app.add_typer(hook_app, name="hook")


class Fmt(str, Enum):
    html = "html"
    md = "md"
    both = "both"


class Tools(str, Enum):
    full = "full"
    brief = "brief"
    prompts = "prompts"


class ThinkingOpt(str, Enum):
    show = "show"
    hide = "hide"


class Images(str, Enum):
    placeholder = "placeholder"
    embed = "embed"


def _n(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _human_build(r: dict) -> None:
    for s in r["sessions"]:
        state = "wrote" if s.get("rebuilt", True) else "unchanged"
        st = s["stats"]
        extra = []
        if st["skipped"]:
            extra.append("skipped " + ", ".join(f"{k} {v}" for k, v in sorted(st["skipped"].items())))
        if st["torn_lines"]:
            extra.append(f"{st['torn_lines']} unreadable lines skipped")
        if st["subagents"]:
            extra.append(f"{st['subagents']} sub-agent conversations attached")
        console.print(
            f"{state} {', '.join(s['files'])}: {s['title']} ({_n(s['exchanges'], 'exchange')}, {_n(s['days'], 'day')})"
            + (f"; {'; '.join(extra)}" if extra else ""), markup=False, highlight=False)
    sc = r["scrub"]
    if not sc["enabled"]:
        console.print("Scrubbing is OFF (--no-scrub): keep these pages private.", style="bold red")
    elif sc["total"]:
        console.print(f"Scrubbed {sc['total']} value(s) this run: " + ", ".join(
            f"{rule} {n} ({', '.join(f'{w} {c}' for w, c in sc['by_field'][rule].items())})"
            for rule, n in sc["by_rule"].items()), markup=False, highlight=False)
    else:
        console.print("Scrubbed nothing this run (no secrets or personal data matched).")
    console.print(f"Index: {r['index']}", markup=False, highlight=False)


@app.command("build")
def build(
    paths: Optional[list[Path]] = typer.Argument(None, help="Session .jsonl files, folders of sessions, or a "
                                                 "ChatGPT conversations.json. Default: this folder's Claude "
                                                 "Code sessions (~/.claude/projects/<folder>/)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder. Default: "
                                       "<workspace>/site/transcripts inside a workspace, else ./transcripts."),
    fmt: Fmt = typer.Option(Fmt.html, "--format", help="html, md, or both."),
    tz: str = typer.Option("local", "--tz", help="Timezone for days and times: local, UTC, or an IANA name."),
    tools: Tools = typer.Option(Tools.full, "--tools", help="full: every tool call, collapsed; brief: "
                                "'Bash ×5' per reply; prompts: the conversation only."),
    thinking: ThinkingOpt = typer.Option(ThinkingOpt.show, "--thinking", help="Stored thinking text: show "
                                         "(collapsed) or hide. Signature-only thinking is always noted."),
    images: Images = typer.Option(Images.placeholder, "--images", help="placeholder, or embed (data: URIs)."),
    afterthought: Optional[Path] = typer.Option(None, "--afterthought", help="A markdown file appended to "
                                                "each page of this run as an authored 'Afterthought' section."),
    afterthoughts: Optional[Path] = typer.Option(None, "--afterthoughts", help="A folder of <session-id>.md "
                                                 "afterthoughts, one per session. Default: "
                                                 "<workspace>/notes/afterthoughts."),
    scrub_config: Optional[Path] = typer.Option(None, "--scrub-config", help="TOML with [scrub] names, paths, "
                                                "values to remove. Default: <workspace>/transcript.toml."),
    no_scrub: bool = typer.Option(False, "--no-scrub", help="Do not scrub secrets (pages for your eyes only)."),
    force: bool = typer.Option(False, "--force", help="Re-render sessions even when their logs are unchanged."),
    title: str = typer.Option("Transcripts", "--title", help="Title of the index page."),
    watch: bool = typer.Option(False, "--watch", help="Keep running; update pages as the logs grow."),
    as_json: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Render sessions to pages (one per session) and an index, scrubbed; only changed logs re-render."""
    from .days import Options, resolve_tz
    from .publish import Publisher, Settings, load_known

    from . import output_dir

    folder, root = output_dir(out)
    resolve_tz(tz)
    settings = Settings(out=folder, formats=("html", "md") if fmt == Fmt.both else (fmt.value,),
                        opts=Options(tools=tools.value, thinking=thinking.value, images=images.value, tz=tz),
                        afterthought=afterthought, scrub=not no_scrub,
                        afterthoughts=afterthoughts or (root / "notes" / "afterthoughts" if root else None),
                        known=load_known(scrub_config, root), in_workspace=root is not None and out is None,
                        force=force or watch, title=title)
    pub = Publisher(settings, keep=watch)
    if as_json or not err.is_terminal:
        report = pub.build(list(paths or []))
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err,
                      transient=True) as bar:
            task = bar.add_task("Publishing sessions", total=None)
            report = pub.build(list(paths or []), progress=lambda done, total: bar.update(
                task, completed=done, total=total))
    shell.out(report, as_json, _human_build)
    if watch:
        from .watch import watch as run_watch

        def updated(entries: list[dict], secs: float) -> None:
            if as_json:
                sys.stdout.write(json.dumps({"updated": [e["file"] for e in entries], "seconds": round(secs, 3)})
                                 + "\n")
                sys.stdout.flush()
            else:
                console.print(f"updated {', '.join(e['file'] for e in entries)} in {secs:.2f} s", markup=False)

        if not as_json:
            console.print("Watching for changes; Ctrl-C to stop.")
        try:
            run_watch(pub, updated)
        except KeyboardInterrupt:
            pass


@app.command("list")
def list_sessions(
    paths: Optional[list[Path]] = typer.Argument(None, help="Files or folders (default: this folder's "
                                                 "Claude Code sessions)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List the sessions that `build` would publish, with their sub-agent logs."""
    from .discover import find

    rows = [{"kind": s.kind, "path": str(s.path), "bytes": s.path.stat().st_size,
             "subagents": len(s.agents)} for s in find(list(paths or []))]

    def human(rows):
        for r in rows:
            console.print(f"{r['path']}  {r['kind']}  {r['bytes']:,} bytes  {r['subagents']} sub-agent logs",
                          markup=False, highlight=False)
    shell.out(rows, as_json, human)


ToolsOpt = typer.Option(Tools.full, "--tools", help="full, brief or prompts (as for build).")
ThinkingOptT = typer.Option(ThinkingOpt.show, "--thinking", help="show or hide (as for build).")
ImagesOpt = typer.Option(Images.placeholder, "--images", help="placeholder or embed (as for build).")
TzOpt = typer.Option("local", "--tz", help="Timezone (as for build).")
FmtOpt = typer.Option(Fmt.html, "--format", help="html, md, or both (as for build).")


def _render_args(tools: Tools, thinking: ThinkingOpt, images: Images, tz: str, fmt: Fmt) -> list[str]:
    """The non-default render options, as command-line arguments."""
    pairs = (("--tools", tools.value, "full"), ("--thinking", thinking.value, "show"),
             ("--images", images.value, "placeholder"), ("--tz", tz, "local"), ("--format", fmt.value, "html"))
    return [a for flag, v, default in pairs if v != default for a in (flag, v)]


@hook_app.command("install")
def hook_install(
    project: Path = typer.Option(Path("."), "--project", help="The project whose .claude/settings.json gets "
                                 "the hook."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder the hook writes to (default as "
                                       "for build)."),
    tools: Tools = ToolsOpt, thinking: ThinkingOpt = ThinkingOptT, images: Images = ImagesOpt,
    tz: str = TzOpt, fmt: Fmt = FmtOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Add a Stop hook to .claude/settings.json (merged; existing settings are kept).

    Render options given here are used by every refresh the hook makes."""
    from . import hook as hook_mod
    from .days import resolve_tz

    resolve_tz(tz)
    r = hook_mod.install(project.resolve(), out.resolve() if out else None,
                         _render_args(tools, thinking, images, tz, fmt))
    shell.out(r, as_json, lambda r: console.print(
        (f"Added the hook to {r['settings']}" if r["changed"] else f"The hook is already in {r['settings']}")
        + f": {r['command']}", markup=False, highlight=False))


@hook_app.command("remove")
def hook_remove(
    project: Path = typer.Option(Path("."), "--project", help="The project whose settings hold the hook."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Remove our hook from .claude/settings.json, leaving everything else."""
    from . import hook as hook_mod

    r = hook_mod.uninstall(project.resolve())
    shell.out(r, as_json, lambda r: console.print(
        f"Removed the hook from {r['settings']}" if r["changed"] else "No llmlab transcript hook was installed.",
        markup=False, highlight=False))


@hook_app.command("run")
def hook_run(
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default as for build)."),
    tools: Tools = ToolsOpt, thinking: ThinkingOpt = ThinkingOptT, images: Images = ImagesOpt,
    tz: str = TzOpt, fmt: Fmt = FmtOpt,
) -> None:
    """What the hook runs: read the hook payload on stdin and refresh that session's page.

    Never fails the agent's turn: problems are reported on stderr with exit status 0."""
    from . import hook as hook_mod
    from .days import Options
    from .publish import Publisher, Settings, load_known

    from . import output_dir

    path = hook_mod.payload_path(sys.stdin.read())
    if path is None or not path.is_file():
        err.print("llmlab transcript hook: no transcript_path in the hook payload; nothing to do.")
        return
    try:
        folder, root = output_dir(out)
        Publisher(Settings(out=folder, known=load_known(None, root),
                           formats=("html", "md") if fmt == Fmt.both else (fmt.value,),
                           opts=Options(tools=tools.value, thinking=thinking.value, images=images.value, tz=tz),
                           afterthoughts=root / "notes" / "afterthoughts" if root else None,
                           in_workspace=root is not None and out is None)).build([path])
    except UserError as e:
        err.print(f"llmlab transcript hook: {e}", markup=False)
    except Exception as e:  # noqa: BLE001 - a hook must never break the agent's turn
        err.print(f"llmlab transcript hook: could not refresh the page ({type(e).__name__}: {e}). "
                  "Run `llmlab transcript build` by hand to see the full error.", markup=False)
