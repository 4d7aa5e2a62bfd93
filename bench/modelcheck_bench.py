"""Benchmark `llmlab model-check` (issue 16): time at 1,000 simulated learners, the scores
of each mastery rule with the shipped defaults, their spread over seeds, and the parameter
sweep that chose the defaults.

    PYTHONPATH=src .venv/bin/python bench/modelcheck_bench.py            # full run
    PYTHONPATH=src .venv/bin/python bench/modelcheck_bench.py --quick    # smoke test

Times are for `api.model_check` on an empty workspace (the replay is then trivial; the
simulation is the cost), best and median of `--repeat` runs, one thread (pure Python).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from _summary import row
from llmlab import api, simulate
from llmlab.config import MasteryParams
from llmlab.create import create_workspace


def fmt(r: dict) -> str:
    at = r["skill_at_declaration"]
    pct = "/".join(f"{at[k]:.2f}" if at[k] is not None else "-" for k in ("p10", "median", "p90"))
    return (f"{r['false_mastery_rate']:.1%} | {r['miss_rate']:.1%} | "
            f"{r['observations_to_declaration'] or '-'} | {pct} | {r['declared']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--learners", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--sweep-learners", type=int, default=3000)
    a = ap.parse_args()
    if a.quick:
        a.learners, a.repeat, a.sweep_learners = 200, 1, 200
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        ws = create_workspace(Path(tmp) / "ws", name="Bench")
        times = []
        for _ in range(a.repeat):
            t = time.perf_counter()
            d = api.model_check(ws, learners=a.learners, seed=0)
            times.append(time.perf_counter() - t)
    print(f"\nmodel-check at {a.learners} learners: best {min(times):.2f} s, "
          f"median {statistics.median(times):.2f} s over {a.repeat} runs (target <= 10 s)")
    row(f"`llmlab model-check`, {a.learners} learners", target="<= 10 s",
        measured=f"{statistics.median(times):.2f} s median of {a.repeat}",
        met=statistics.median(times) <= 10)
    for case, limit in (("default", 0.10), ("optimistic", 0.20)):
        fm = d["simulation"][case]["rules"]["skill_interval"]["false_mastery_rate"]
        ewma = d["simulation"][case]["rules"]["ewma_gate"]["false_mastery_rate"]
        row(f"false mastery of the mastered verdict, {case} tutor ({a.learners} simulated "
            "learners, seed 0)", target=f"<= {limit:.0%}", measured=f"{fm:.1%}",
            ratio=f"EWMA gate (the old verdict) {ewma:.1%}", met=fm <= limit)
    for case in ("default", "optimistic"):
        print(f"\n{case} world (seed 0): rule | false mastery | miss | median obs. to "
              "declaration | true skill at declaration p10/50/90 | declared")
        for name, r in d["simulation"][case]["rules"].items():
            print(f"| {name} | {fmt(r)} |")
    p = MasteryParams()
    print("\nskill_interval over seeds 0-4 (false / miss / false with +0.1 bias):")
    for seed in range(5):
        x = simulate.compare(p, a.learners, seed)["rules"]["skill_interval"]
        y = simulate.compare(p, a.learners, seed, simulate.World(bias=0.1))["rules"]["skill_interval"]
        print(f"  seed {seed}: {x['false_mastery_rate']:.1%} / {x['miss_rate']:.1%} / "
              f"{y['false_mastery_rate']:.1%}")
    t = time.perf_counter()
    sw = simulate.sweep(p, a.sweep_learners, 0)
    el = time.perf_counter() - t
    print(f"\nsweep ({a.sweep_learners} learners, {len(sw['rows'])} settings, {el:.1f} s): "
          "frontier, defaults, chosen")
    print("| tutor_sd | drift_sd | interval | false | miss | obs. | false +0.1 | strong | mark |")
    for r in sorted(sw["rows"], key=lambda r: r["false_mastery_rate"]):
        marks = [m for m in ("frontier", "default", "chosen") if r[m]]
        if marks:
            print(f"| {r['tutor_sd']:g} | {r['drift_sd']:g} | {r['interval']:g} | "
                  f"{r['false_mastery_rate']:.1%} | {r['miss_rate']:.1%} | "
                  f"{r['observations_to_declaration'] or '-'} | "
                  f"{r['biased_false_mastery_rate']:.1%} | "
                  f"{'yes' if r['recognises_strong'] else 'no'} | {', '.join(marks)} |")


if __name__ == "__main__":
    main()
