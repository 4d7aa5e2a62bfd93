"""What the command-line shells share: the `--json` option and its one printer."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup

from .commands import print_json

JsonOpt = typer.Option(False, "--json", help="Print JSON for programs instead of tables.")


def group(help: str, **kw: Any) -> typer.Typer:
    """A command group as all of llmlab's are: shown on `--help` when run without a command,
    its help printed by click's plain formatter (typer's rich one imports rich's markdown,
    syntax and traceback modules, about 50 ms of every `--help`)."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=None, **kw)


class LazyGroup(TyperGroup):
    """A command group whose sub-groups in `lazy` (name -> (module, help)) are imported only
    when one of their commands runs: each module's `app` becomes the group of that name.
    `--help` lists them from the help given here, importing none."""

    lazy: dict[str, tuple[str, str]] = {}
    _listing = False

    def list_commands(self, ctx):
        names = super().list_commands(ctx)
        return names + [n for n in self.lazy if n not in names]

    def get_command(self, ctx, name):
        if name in self.lazy and name not in self.commands:
            module, help_ = self.lazy[name]
            if self._listing:  # the one line `--help` shows, without the import
                return TyperGroup(name=name, help=help_)
            group = typer.main.get_group(importlib.import_module(module).app)
            group.name = name
            self.add_command(group, name)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except Exception as e:  # click's UsageError: typer suggests among loaded commands only
            unloaded = [n for n in self.lazy if n not in self.commands]
            near = difflib.get_close_matches(args[0], unloaded) if args and unloaded else []
            message = getattr(e, "message", None)
            if near and isinstance(message, str) and "Did you mean" not in message:
                e.message = f"{message.rstrip('.')}. Did you mean {near[0]!r}?"
            raise

    def format_commands(self, ctx, formatter):
        self._listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self._listing = False


def out(data: Any, as_json: bool, human: Callable[[Any], None]) -> None:
    """JSON with --json, else the human rendering."""
    if as_json:
        print_json(data)
    else:
        human(data)
