"""The commands a tutor runs most, and the fast path's parser for them (`llmlab.entry`).

`state`, `next`, `verify`, `log observe` and `site build` run without the CLI framework when their
arguments are exactly as the full command line declares them (`HOT`); everything else, and
anything `parse` does not fully understand (`--help`, an unknown or repeated option, a value
of the wrong type, a missing argument), goes to the full command line (`llmlab.cli`, typer),
which words the error. Both run the same functions below, so a command prints the same
whichever way it came (tests/test_startup.py checks that, and that `HOT` declares exactly
the full CLI's options).

Why: typer with rich and pydantic costs ~3x `python -c "import json"` before a command does
anything; a tutor calls these commands many times a session (issue 19 asks <= 5x in all).
This module and what it runs import none of them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import UserError


# ---------------------------------------------------------------- output (shared with cli)

def print_json(data: Any) -> None:
    """Stable JSON on stdout for scripts and the tutor (UTF-8, indented)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """JSON with --json, else the text `human` renders (`llmlab.render`)."""
    if as_json:
        print_json(data)
    else:
        sys.stdout.write(human(data) + "\n")


def warn(warnings: list[str]) -> None:
    """Each warning once, on stderr (stdout stays the data)."""
    from .render import safe

    for w in dict.fromkeys(warnings):
        sys.stderr.write(f"Warning: {safe(w)}\n")


def fail(e: Exception) -> int:
    """A user error (or a file condition no library call anticipated) as one paragraph on
    stderr, no traceback; the exit status."""
    from .render import safe  # text from the log or the user: control chars escaped

    if isinstance(e, UserError):
        sys.stderr.write(f"Error: {safe(str(e))}\n")
    else:
        from .log import os_message

        sys.stderr.write("Error: " + safe(os_message(e, getattr(e, "filename", None)
                                                     or "a workspace file", "use")) + "\n")
    return 1


# ---------------------------------------------------------------- the commands

def state(as_json: bool = False) -> int:
    from . import api, render
    from .workspace import Workspace

    d = api.state(Workspace.find())
    warn(d["warnings"])
    emit(d, as_json, render.state)
    return 0


def next_probes(limit: int = 10, as_json: bool = False) -> int:
    from . import api, render
    from .workspace import Workspace

    ws = Workspace.find()
    warn(api.load_state(ws)[1].warnings)
    emit(api.next_probes(ws, limit=limit), as_json, render.next_probes)
    return 0


def verify(as_json: bool = False) -> int:
    """Exit status 1 when the log has problems."""
    from . import log as log_mod
    from . import render
    from .integrity import read_anchor
    from .workspace import Workspace

    ws = Workspace.find()
    rep = log_mod.verify(ws.log_path, anchor=read_anchor(ws.state_dir))
    emit(rep.to_dict(), as_json, render.verify)
    return 0 if rep.ok else 1


def recorded(ev, as_json: bool) -> None:
    emit(ev.to_dict(), as_json, lambda d: f"Recorded {d['id']} ({d['type']}) at {d['ts']}.")


def log_observe(concept: str, quality: float, evidence: str, probe: str = "",
                actor: str = "tutor", at: str | None = None, as_json: bool = False) -> int:
    from . import api
    from .workspace import Workspace

    recorded(api.observe(Workspace.find(), concept, quality, evidence, probe, actor, at),
             as_json)
    return 0


def site_build(force: bool = False, as_json: bool = False) -> int:
    from . import render
    from .site.build import build
    from .workspace import Workspace

    d = build(Workspace.find(), force=force)
    warn(d["warnings"])
    emit(d, as_json, render.site_build)
    return 0


# ---------------------------------------------------------------- the fast path's parser

@dataclass(frozen=True)
class Opt:
    names: tuple[str, ...]  # as the full CLI spells them, e.g. ("--quality", "-q")
    dest: str
    kind: type | None  # None: a flag
    default: Any = None
    required: bool = False


@dataclass(frozen=True)
class Hot:
    run: Callable[..., int]
    args: tuple[str, ...]  # required positional arguments, in order
    opts: tuple[Opt, ...]


JSON = Opt(("--json",), "as_json", None, False)
HOT: dict[tuple[str, ...], Hot] = {
    ("state",): Hot(state, (), (JSON,)),
    ("next",): Hot(next_probes, (), (Opt(("--limit",), "limit", int, 10), JSON)),
    ("verify",): Hot(verify, (), (JSON,)),
    ("log", "observe"): Hot(log_observe, ("concept",), (
        Opt(("--quality", "-q"), "quality", float, required=True),
        Opt(("--evidence", "-e"), "evidence", str, required=True),
        Opt(("--probe", "-p"), "probe", str, ""),
        Opt(("--actor",), "actor", str, "tutor"),
        Opt(("--at",), "at", str, None),
        JSON)),
    ("site", "build"): Hot(site_build, (), (Opt(("--force",), "force", None, False), JSON)),
}


def parse(argv: list[str]) -> tuple[Hot, dict[str, Any]] | None:
    """The hot command and its keyword arguments, or None when `argv` is anything else or
    anything this parser does not fully understand (the full CLI then takes it)."""
    for path, hot in HOT.items():
        if tuple(argv[:len(path)]) == path:
            break
    else:
        return None
    by_name = {n: o for o in hot.opts for n in o.names}
    kw: dict[str, Any] = {}
    positional: list[str] = []
    rest = argv[len(path):]
    i = 0
    while i < len(rest):
        a = rest[i]
        if a.startswith("-") and a != "-":
            name, eq, value = a.partition("=") if a.startswith("--") else (a, "", "")
            o = by_name.get(name)
            if o is None or o.dest in kw or (eq and o.kind is None):
                return None  # unknown (--help too), repeated, or a value given to a flag
            if o.kind is None:
                kw[o.dest] = True
            else:
                if not eq:
                    i += 1
                    if i >= len(rest):
                        return None
                    value = rest[i]
                try:
                    kw[o.dest] = o.kind(value)
                except ValueError:
                    return None
        else:
            positional.append(a)
        i += 1
    if len(positional) != len(hot.args) or any(o.required and o.dest not in kw
                                                for o in hot.opts):
        return None
    kw.update(zip(hot.args, positional))
    for o in hot.opts:
        kw.setdefault(o.dest, o.default)
    return hot, kw
