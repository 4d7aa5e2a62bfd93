"""User-facing errors: data first, words per shell.

Every error a user can cause is a `UserError`: its message says what was wrong and what
to do. The facts travel with it (`UnknownName`: kind, word, choices; `BadParameter`: name,
value, rule), so a program can act on them. A message names inputs in a shell-neutral
markup, and each shell renders its own words: `{opt:claim}` is `--claim` on the command
line and the `claim` argument through MCP; `{param:layers=0.5}` is `-p layers=0.5` on the
command line and `params {"layers": "0.5"}` through MCP; `{cmd:state}` is `llmlab state
--json` or the `get_state` tool. `str(error)` is the command-line wording.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

Shell = Literal["cli", "mcp"]
_MARKUP = re.compile(r"\{(opt|param|cmd):([a-z_]+)(?:=([^{}]*))?\}")
# {cmd:NAME}: where to look, as a command line or as the MCP tool that answers the same
COMMANDS = {"state": ("`llmlab state --json`", "get_state"),
            "curriculum": ("`llmlab curriculum show`", "get_curriculum"),
            "experiments": ("`llmlab lab list`", "list_experiments")}


def _spell(kind: str, name: str, value: str | None, shell: Shell) -> str:
    if kind == "cmd":
        return COMMANDS[name][0 if shell == "cli" else 1]
    if shell == "cli":
        if kind == "opt":
            flag = f"--{name.replace('_', '-')}"
            return flag if value is None else f"{flag} {value}"
        value = "VALUE" if value is None else f'"{value}"' if " " in value else value
        return f"-p {name}={value}"
    if kind == "opt":
        return f"the `{name}` argument" + (f" ({value})" if value is not None else "")
    shown = json.dumps({name: value if value is not None else "VALUE"})
    return f"params {shown}"


def render(message: str, shell: Shell) -> str:
    """A message with its input references spelt for `shell`."""
    return _MARKUP.sub(lambda m: _spell(m[1], m[2], m[3], shell), message)


class UserError(Exception):
    """Bad input or state the user can fix. The message names the fix."""

    def __init__(self, message: str, **facts) -> None:
        super().__init__(message)
        self.facts = facts

    def render(self, shell: Shell = "cli") -> str:
        return render(self.args[0], shell)

    def __str__(self) -> str:
        return self.render("cli")


class UnknownName(UserError):
    """An id that names nothing: `kind` ('concept'), the `word` given, the valid `choices`."""

    def __init__(self, message: str, kind: str, word: str, choices: list[str]) -> None:
        super().__init__(message, kind=kind, word=word, choices=choices)
        self.kind, self.word, self.choices = kind, word, choices


class BadParameter(UserError):
    """A parameter value that breaks its `rule`: `name`, the `value` given, `expected`."""

    def __init__(self, message: str, name: str, value: object, rule: str, expected: str) -> None:
        super().__init__(message, name=name, value=value, rule=rule, expected=expected)
        self.name, self.value, self.rule, self.expected = name, value, rule, expected


def closest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest valid ids to `word`, best first (for 'did you mean' hints)."""
    choices = list(choices)
    import difflib

    hits = difflib.get_close_matches(word, choices, n=n, cutoff=0.5)
    if not hits:
        hits = [c for c in choices if word.lower() in c.lower()][:n]
    return hits


def unknown(kind: str, word: str, choices: Iterable[str], hint: str) -> UnknownName:
    """An 'unknown X' error with suggestions and where to look."""
    choices = sorted(choices)
    near = closest(word, choices)
    msg = f"Unknown {kind} '{word}'."
    if near:
        msg += " Did you mean " + ", ".join(f"'{c}'" for c in near) + "?"
    msg += f" {hint}"
    return UnknownName(msg, kind, word, choices)


def read_text(path: Path) -> str:
    """A UTF-8 text file the user edits, or a `UserError` that names the file and the fix
    (not valid UTF-8, a folder where the file should be, unreadable)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path} is not valid UTF-8 text (byte {e.start}: {e.reason}). Save it "
                        "as UTF-8 and run the command again.") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder, but llmlab expects a file there. Move the folder "
                        "away.") from None
    except OSError as e:
        raise UserError(f"Cannot read {path}: {e.strerror}. Check that it exists and is "
                        "readable.") from None
