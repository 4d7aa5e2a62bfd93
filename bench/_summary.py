"""One row per target for the summary table at the top of BENCHMARKS.md.

A bench script calls `row(...)` once per target it measures. When `make bench` runs the
scripts (bench/run_all.py), it sets LLMLAB_BENCH_SUMMARY to a JSONL file and collects the
rows into the table; run alone, a script prints its rows as they come and writes nothing.

    from _summary import row
    row("rebuild, 100k events, realistic density", target=">= 100,000 events/s",
        measured="142,000 events/s", ratio="2.1x JSON parse", met=True)
"""

from __future__ import annotations

import json
import os
import sys


def command() -> str:
    """The command that ran this script, as a reader would type it."""
    return "python " + " ".join(["bench/" + os.path.basename(sys.argv[0]), *sys.argv[1:]]).strip()


def row(what: str, *, target: str, measured: str, ratio: str = "", met: bool | None = None,
        cmd: str | None = None) -> dict:
    """Record one target: what was measured, the target, the figure, the ratio to the peer or
    physical baseline (same run), whether it was met, the load average now and the command."""
    rec = {"what": what, "target": target, "measured": measured, "ratio": ratio, "met": met,
           "load": round(os.getloadavg()[0], 1), "command": cmd or command()}
    path = os.environ.get("LLMLAB_BENCH_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")
    else:
        print(f"[summary] {what}: {measured} (target {target}; {ratio}; "
              f"{'met' if met else 'not met' if met is False else 'no target'}; load {rec['load']})",
              file=sys.stderr)
    return rec
