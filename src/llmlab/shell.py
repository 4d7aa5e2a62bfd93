"""What the command-line shells share: the `--json` option and its one printer."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import typer

JsonOpt = typer.Option(False, "--json", help="Print JSON for programs instead of tables.")


def group(help: str, **kw: Any) -> typer.Typer:
    """A command group as all of llmlab's are: shown on `--help` when run without a command,
    its help printed by click's plain formatter (typer's rich one imports rich's markdown,
    syntax and traceback modules, about 50 ms of every `--help`)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **kw)


def print_json(data: Any) -> None:
    """Stable JSON on stdout for scripts and the tutor (UTF-8, indented)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def out(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """JSON with --json, else the human rendering."""
    if as_json:
        print_json(data)
    else:
        human(data)
