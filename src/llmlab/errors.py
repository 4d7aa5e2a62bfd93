"""User-facing errors.

Every error a user can cause is a `UserError`: its message says what was wrong and
what to do. Shells (CLI, MCP) turn it into a one-paragraph message, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """Bad input or state the user can fix. The message names the fix."""


def closest(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """The closest valid ids to `word`, best first (for 'did you mean' hints)."""
    choices = list(choices)
    hits = difflib.get_close_matches(word, choices, n=n, cutoff=0.5)
    if not hits:
        hits = [c for c in choices if word.lower() in c.lower()][:n]
    return hits


def unknown(kind: str, word: str, choices: Iterable[str], hint: str) -> UserError:
    """An 'unknown X' error with suggestions and where to look."""
    choices = sorted(choices)
    near = closest(word, choices)
    msg = f"Unknown {kind} '{word}'."
    if near:
        msg += " Did you mean " + ", ".join(f"'{c}'" for c in near) + "?"
    msg += f" {hint}"
    return UserError(msg)
