"""The `llmlab` console script and `python -m llmlab`: the hot commands (`commands.HOT`)
on the fast path, everything else through the full command line (`llmlab.cli`)."""

from __future__ import annotations

import sys

from .commands import fail, parse
from .errors import UserError


def main() -> None:
    hit = parse(sys.argv[1:])
    if hit is None:
        from .cli import main as full

        full()
        return
    hot, kw = hit
    try:
        code = hot.run(**kw)
    except (UserError, OSError) as e:
        code = fail(e)
    sys.stdout.flush()
    sys.exit(code)
