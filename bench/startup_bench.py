"""CLI start-up (issue 19): how long `llmlab --help` and the read and write commands take
from a cold process, against `python -c "import json"` from the same interpreter.

Each command runs as a subprocess exactly as a user runs it (the venv's `llmlab` console
script when there is one, else `python -c "from llmlab.cli import main; main()"`), in a
temporary workspace made with `create_workspace` and a few hundred recorded events. The
commands are interleaved, their order shuffled every round (a fixed seed), so drift from
other processes on the machine falls on all of them alike.

    PYTHONPATH=src .venv/bin/python bench/startup_bench.py [--rounds 21] [--events 200]
                                                           [--before OLD/src]

Reported per command: median, p90 and spread (min-max) of the wall time; the ratio of its
median to the baseline's median (same run); and the median over rounds of the per-round
ratio (paired), which cancels slow rounds. Targets: <= 5x for state, next, log observe and
verify; <= 8x for --help.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _summary import row

TARGETS = {"--help": 8.0, "state": 5.0, "next": 5.0, "log observe": 5.0, "verify": 5.0}


def entry_point() -> list[str]:
    """The `llmlab` console script beside this interpreter, else the same call inline."""
    script = Path(sys.executable).with_name("llmlab")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from llmlab.cli import main; main()"]


def make_workspace(root: Path, events: int) -> Path:
    from llmlab import api
    from llmlab.create import create_workspace

    ws = create_workspace(root / "ws", name="Bench Learner")
    concepts = list(ws.curriculum.concepts)[:10]
    for i in range(events):
        api.observe(ws, concepts[i % len(concepts)], round(0.3 + 0.6 * (i % 7) / 6, 2),
                    f"bench exchange {i}", "", "tutor", None)
    return ws.root


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=21, help="Interleaved rounds (>= 15).")
    ap.add_argument("--events", type=int, default=200, help="Events in the workspace's log.")
    ap.add_argument("--quick", action="store_true", help="Smoke run: 5 rounds, 20 events.")
    ap.add_argument("--before", type=Path, default=None, metavar="SRC",
                    help="Another source tree's src/ folder (e.g. of `git archive main`): its "
                         "`llmlab` commands run interleaved with these, as `(before)` rows.")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.events = 5, 20
    llmlab = entry_point()
    cmds = {
        "import json (baseline)": [sys.executable, "-c", "import json"],
        # what the full CLI pays before llmlab's own code (the hot commands skip it), and
        # llmlab's records (msgspec) that every command loads
        "import typer, rich.console": [sys.executable, "-c", "import typer, rich.console"],
        "import pydantic": [sys.executable, "-c", "import pydantic"],
        "import llmlab's records": [sys.executable, "-c", "import llmlab.events, "
                                    "llmlab.config, llmlab.curriculum"],
        "--help": [*llmlab, "--help"],
        "state": [*llmlab, "state"],
        "next": [*llmlab, "next"],
        "log observe": None,  # its evidence text changes each round (a new event each time)
        "verify": [*llmlab, "verify"],
    }
    if a.before:
        for name in TARGETS:
            cmds[f"{name} (before)"] = cmds[name]
    before_env = {"PYTHONPATH": str(a.before.resolve())} if a.before else {}
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_workspace(Path(tmp), a.events)
        env = {**os.environ, "LLMLAB_HOME": str(root), "NO_COLOR": "1", "COLUMNS": "100"}
        # as from an installed package: compiled modules cached (pip compiles at install)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        rng = random.Random(0)
        for r in range(-1, a.rounds):  # round -1 warms the caches and is not counted
            order = list(cmds)
            rng.shuffle(order)
            for name in order:
                argv = cmds[name] or [*llmlab, "log", "observe", "tokenization", "-q", "0.7",
                                      "-e", f"start-up bench round {r}"]
                e = {**env, **before_env} if name.endswith("(before)") else env
                t = time.perf_counter()
                p = subprocess.run(argv, cwd=root, env=e, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
                if r >= 0:
                    times[name].append(time.perf_counter() - t)
                if p.returncode != 0:
                    sys.exit(f"{name} failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
        shutil.rmtree(root, ignore_errors=True)
    load1 = os.getloadavg()
    base = times["import json (baseline)"]
    b = statistics.median(base)
    print(f"## CLI start-up\n\nMachine: {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()} ({sys.executable}); "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average "
          f"{load0[0]:.1f} at the start, {load1[0]:.1f} at the end. Command: "
          f"`python bench/startup_bench.py --rounds {a.rounds} --events {a.events}"
          f"{' --before ' + str(a.before) if a.before else ''}` "
          f"({a.rounds} interleaved rounds after one warm-up round, order shuffled each round; "
          f"a workspace of {a.events} events; `llmlab` = "
          f"`{' '.join(Path(x).name for x in llmlab[:1])}`; compiled bytecode cached as in an "
          "installed package).\n")
    print("| command | median ms | p90 ms | min-max ms | median / baseline | paired ratio "
          "(median of per-round) | target |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, xs in times.items():
        m = statistics.median(xs)
        paired = statistics.median(x / y for x, y in zip(xs, base))
        target = TARGETS.get(name)  # the (before) rows are for comparison, not targets
        argv = cmds[name]
        shown = f'python -c "{argv[2]}"' if argv and argv[0] == sys.executable else f"llmlab {name}"
        print(f"| `{shown}` | {m * 1e3:.0f} | "
              f"{pct(xs, 0.9) * 1e3:.0f} | {min(xs) * 1e3:.0f}-{max(xs) * 1e3:.0f} | "
              f"{m / b:.1f}x | {paired:.1f}x | {f'<= {target:g}x' if target else ''} |")
        if target:
            row(f"`llmlab {name}` start-up", target=f"<= {target:g}x `python -c \"import json\"`",
                measured=f"{m * 1e3:.0f} ms median (p90 {pct(xs, 0.9) * 1e3:.0f} ms)",
                ratio=f"{m / b:.1f}x ({b * 1e3:.0f} ms baseline)", met=m / b <= target)


if __name__ == "__main__":
    main()
