"""Reading a learner's JSONL input file: one object per line, blank lines skipped, a bad
line named by number. Callers check the keys their records need."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import UserError


def records(p: Path, what: str, shape: str) -> Iterator[tuple[int, object]]:
    """(line number, parsed value) for each non-blank line of `p`; `what` names the file
    and `shape` says what each line holds, for the error when the file is missing."""
    if not p.is_file():
        raise UserError(f"No {what} file at {p}. Give a JSONL file with one object per line: "
                        f"{shape}.")
    for i, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield i, json.loads(raw)
        except ValueError as e:
            raise UserError(f"{p.name} line {i} is not valid JSON ({e}).") from None
