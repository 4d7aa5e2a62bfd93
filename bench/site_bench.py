"""Benchmark the site (issue 4).

1. `llmlab site build` on a workspace of the default course with 10,000 events (a mix of
   observations, misconceptions opened and resolved, exit attempts and predictions):
   cold (empty site/ and no state cache) and warm (site/ and cache present), median of
   several runs, in-process; plus the CLI end to end (`llmlab site build`, with Python
   start-up).
2. The server under load is `bench/server_bench.py` (wrk in its own process).

    .venv/bin/python bench/site_bench.py              # full run (about a minute)
    .venv/bin/python bench/site_bench.py --quick      # 1,000 events
"""

from __future__ import annotations

import argparse
import json
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

from llmlab.events import GENESIS, Event, line_hash
from llmlab.site import build
from llmlab.create import create_workspace
from llmlab.workspace import Workspace


def synth_log(ws: Workspace, n: int, seed: int = 0) -> None:
    """n valid, hash-chained events of every kind the dashboard shows, written directly."""
    rng = random.Random(seed)
    cur = ws.curriculum
    concepts = cur.concept_ids
    exits = list(cur.exit_items)
    prev, t0, span = GENESIS, 1_767_225_600, 120 * 86400
    open_mis: list[str] = []
    with open(ws.log_path, "wb") as f:
        for i in range(1, n + 1):
            ts = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(t0 + span * i // n))
            c = rng.choice(concepts)
            r = rng.random()
            if r < 0.03 and cur.concepts[c].misconceptions:
                m = cur.concepts[c].misconceptions[0]
                typ, data = "misconception_opened", {"concept": c, "claim": m.claim,
                                                     "catalog": m.id, "quote": "I think so."}
                open_mis.append(f"evt_{i:06d}")
            elif r < 0.05 and open_mis:
                typ, data = "misconception_resolved", {"target": open_mis.pop(0),
                                                       "evidence": "now explains it"}
            elif r < 0.06:
                typ, data = "exit_attempt", {"item": rng.choice(exits), "passed": rng.random() < .3,
                                             "notes": "attempt"}
            else:
                typ, data = "observation", {
                    "concept": c, "quality": round(rng.random() ** 0.5, 3),
                    "evidence": f"learner explained {c} with a concrete example, mostly right",
                    "probe": f"Why does {c} matter here?"}
            ev = Event(id=f"evt_{i:06d}", ts=ts, type=typ, actor="tutor", prev=prev, data=data)
            line = ev.to_line()
            f.write(line)
            prev = line_hash(line)


def bench_build(n: int, reps: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws", name="Bench Learner")
        synth_log(ws, n)
        cold, warm = [], []
        for _ in range(reps):
            shutil.rmtree(ws.site_dir, ignore_errors=True)
            shutil.rmtree(ws.state_dir, ignore_errors=True)
            ws.state_dir.mkdir()
            t = time.perf_counter()
            res = build(Workspace(ws.root))
            cold.append(time.perf_counter() - t)
        for _ in range(reps):
            t = time.perf_counter()
            build(Workspace(ws.root))
            warm.append(time.perf_counter() - t)
        env = {**os.environ, "LLMLAB_HOME": str(ws.root)}
        cli = []
        for _ in range(max(2, reps // 2)):
            shutil.rmtree(ws.site_dir, ignore_errors=True)
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "llmlab", "site", "build"], env=env, check=True,
                           capture_output=True)
            cli.append(time.perf_counter() - t)
        return {"events": n, "pages": res["pages"], "files": res["written"],
                "cold_median_s": statistics.median(cold), "cold_max_s": max(cold),
                "warm_median_s": statistics.median(warm),
                "cli_median_s": statistics.median(cli)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n = 1000 if a.quick else 10_000
    info = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
                       f"{platform.release()}", "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(info))
    b = bench_build(n, 3 if a.quick else 7)
    print(json.dumps(b))


if __name__ == "__main__":
    main()
