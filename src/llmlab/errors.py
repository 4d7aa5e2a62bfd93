"""User-facing errors.

Every error a user can cause is a `UserError`: its message says what was wrong and
what to do. Shells (CLI, MCP) turn it into a one-paragraph message, never a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


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
