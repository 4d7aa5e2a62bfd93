"""Benchmark the site (issues 4 and 19).

1. `llmlab site build` through the CLI (a fresh process each time, the command a user
   runs) on the default course with 1k, 10k and 100k synthesised events (observations,
   misconceptions opened and resolved, exit attempts):
   - cold: a full build with nothing cached (no site/, no state/, an empty $LLMLAB_CACHE:
     compiled templates and rendered study pages too);
   - incremental: one new event appended (through `llmlab.api`; another concept and
     quality each time), then `llmlab site build`, which reads only that line and renders
     only the pages it changed; median of several;
   - the JSON parse of the whole log (`json.loads` per line) in the same run, interleaved
     with the incremental builds, and `llmlab --help` (the CLI's start-up floor).
   Target (issue 19): incremental <= 0.5 s at 100k events and <= 1.5x the parse time.
2. The server under load is `bench/server_bench.py` (wrk in its own process).

    .venv/bin/python bench/site_bench.py                  # full run (a few minutes)
    .venv/bin/python bench/site_bench.py --quick          # 1k and 10k events
    git archive fb905ab src | tar -x -C /tmp/old    # llmlab before the incremental build
    .venv/bin/python bench/site_bench.py --sizes 100000 --baseline /tmp/old/src
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _summary import row
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


def _cli(args: list[str], env: dict, out: list | None = None) -> tuple[float, float]:
    """(wall, CPU) seconds of `llmlab ARGS` in a fresh process (its stdout onto `out`)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "llmlab", *args], env=env, check=True,
                       capture_output=True)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out is not None:
        out.append(r.stdout)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _parse(log: Path) -> tuple[float, float]:
    """(wall, CPU) seconds to parse every line of the log as JSON, in this process."""
    t, c = time.perf_counter(), time.process_time()
    with open(log, "rb") as f:
        events = [json.loads(line) for line in f]
    assert events
    return time.perf_counter() - t, time.process_time() - c


def _med(xs: list[tuple[float, float]], i: int) -> float:
    return statistics.median(x[i] for x in xs)


def bench_build(n: int, reps: int) -> dict:
    """Cold full builds, then `reps` rounds of (--help, parse the log, append one event,
    build), interleaved so that each ratio compares figures taken under the same load."""
    from llmlab import api

    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws", name="Bench Learner")
        synth_log(ws, n)
        load0 = os.getloadavg()[0]
        env = {**os.environ, "LLMLAB_HOME": str(ws.root), "LLMLAB_CACHE": str(Path(d) / "cache")}
        cold = []
        for i in range(3):
            shutil.rmtree(ws.site_dir, ignore_errors=True)
            shutil.rmtree(ws.state_dir, ignore_errors=True)
            ws.state_dir.mkdir()
            fresh = {**env, "LLMLAB_CACHE": str(Path(d) / f"cold{i}")}
            cold.append(_cli(["site", "build"], fresh))
        _cli(["site", "build"], env)  # warm $LLMLAB_CACHE (templates, study pages)
        helps, parse, inc, outs = [], [], [], []
        concepts = ws.curriculum.concept_ids
        for i in range(reps):
            helps.append(_cli(["--help"], env))
            parse.append(_parse(ws.log_path))
            # a different concept and quality each time: its mastery moves, so the pages
            # showing it (prerequisites, dependants, module, exit items) render again too
            api.observe(Workspace(ws.root), concepts[i * 7 % len(concepts)],
                        0.45 + 0.1 * (i % 5), f"bench event {i}")
            inc.append(_cli(["site", "build", "--json"], env, outs))
        rendered = [json.loads(o)["rendered"] for o in outs]
        res = build(Workspace(ws.root))
        assert res["source"] == "cached" and res["events"] == n + reps, res
        r = {"events": n, "pages": res["pages"], "reps": reps,
             "cold_median_s": _med(cold, 0), "cold_max_s": max(x[0] for x in cold),
             "cold_cpu_s": _med(cold, 1),
             "incremental_median_s": _med(inc, 0), "incremental_max_s": max(x[0] for x in inc),
             "incremental_cpu_s": _med(inc, 1),
             "rendered_median": statistics.median(rendered), "rendered_max": max(rendered),
             "parse_median_s": _med(parse, 0), "parse_cpu_s": _med(parse, 1),
             "help_median_s": _med(helps, 0), "help_cpu_s": _med(helps, 1),
             "load": [round(load0, 1), round(os.getloadavg()[0], 1)]}
        r["ratio"] = r["incremental_median_s"] / r["parse_median_s"]
        r["ratio_cpu"] = r["incremental_cpu_s"] / r["parse_cpu_s"]
        return r


def bench_baseline(n: int, reps: int, src: str) -> dict:
    """The same incremental CLI build with an earlier llmlab (`src`: its source folder) on a
    copy of the same workspace, interleaved, each copy written only by its own version."""
    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "new", name="Bench Learner")
        synth_log(ws, n)
        shutil.copytree(ws.root, Path(d) / "old")
        ours = str(Path(__file__).resolve().parents[1] / "src")
        sides = {"baseline": (src, Path(d) / "old"), "this": (ours, ws.root)}
        times: dict[str, list] = {k: [] for k in sides}
        load0 = os.getloadavg()[0]
        for i in range(reps + 1):
            for name, (path, root) in sides.items():
                env = {**os.environ, "PYTHONPATH": path, "LLMLAB_HOME": str(root),
                       "LLMLAB_CACHE": str(Path(d) / f"cache-{name}")}
                if i:  # round 0 only builds once, so that each side has its caches
                    subprocess.run([sys.executable, "-c", "from llmlab import api; from "
                                    "llmlab.workspace import Workspace; api.observe("
                                    f"Workspace.find(), 'softmax', 0.7, 'bench {i}')"],
                                   env=env, check=True)
                t = _cli(["site", "build"], env)
                if i:
                    times[name].append(t)
        return {"events": n, "reps": reps, "baseline_src": src,
                **{f"{k}_median_s": _med(v, 0) for k, v in times.items()},
                **{f"{k}_cpu_s": _med(v, 1) for k, v in times.items()},
                "load": [round(load0, 1), round(os.getloadavg()[0], 1)]}


def build_table(rows: list[dict]) -> str:
    out = ["| events | cold full build | incremental after one new event: median (max) | "
           "pages rendered of all: median (max) | JSON parse of the log | incremental / "
           "parse | `llmlab --help` | load at start, end |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['events']:,} | {r['cold_median_s']:.2f} s (CPU {r['cold_cpu_s']:.2f} s) | "
            f"**{r['incremental_median_s']:.2f} s** ({r['incremental_max_s']:.2f} s; CPU "
            f"{r['incremental_cpu_s']:.2f} s) | {r['rendered_median']:g} of {r['pages']} "
            f"({r['rendered_max']}) | {r['parse_median_s']:.2f} s (CPU "
            f"{r['parse_cpu_s']:.2f} s) | **{r['ratio']:.2f}x** (CPU {r['ratio_cpu']:.2f}x) | "
            f"{r['help_median_s']:.2f} s (CPU {r['help_cpu_s']:.2f} s) | "
            f"{r['load'][0]}, {r['load'][1]} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--skip-server", action="store_true", help=argparse.SUPPRESS)  # no server here
    ap.add_argument("--sizes", help="comma-separated log sizes (default 1000,10000,100000)")
    ap.add_argument("--baseline", metavar="SRC", help="also time an earlier llmlab's "
                    "incremental build at the largest size (SRC: its src/ folder, e.g. from "
                    "`git archive COMMIT src | tar -x -C /tmp/old`)")
    a = ap.parse_args()
    sizes = [1000, 10_000] if a.quick else [1000, 10_000, 100_000]
    if a.sizes:
        sizes = [int(x) for x in a.sizes.split(",")]
    info = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
                       f"{platform.release()}", "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    print(json.dumps(info))
    # What `pip install` leaves: compiled modules. Without them (PYTHONDONTWRITEBYTECODE, a
    # source checkout) every fresh `llmlab` process compiles llmlab's sources first.
    import compileall

    import llmlab

    compileall.compile_dir(Path(llmlab.__file__).parent, quiet=1)
    rows = []
    for n in sizes:
        rows.append(bench_build(n, 5 if a.quick else 7))
        print(json.dumps(rows[-1]), flush=True)
    print(build_table(rows))
    big = rows[-1]
    if big["events"] == 100_000:
        row("site build after one new event, 100k events (`llmlab site build`, fresh process)",
            target="<= 0.5 s and <= 1.5x JSON parse of the log",
            measured=f"{big['incremental_median_s']:.2f} s (median of {big['reps']}; CPU "
                     f"{big['incremental_cpu_s']:.2f} s)",
            ratio=f"{big['ratio']:.2f}x JSON parse ({big['parse_median_s']:.2f} s; CPU "
                  f"{big['ratio_cpu']:.2f}x)",
            met=big["incremental_median_s"] <= 0.5 and big["ratio"] <= 1.5)
    if a.baseline:
        b = bench_baseline(sizes[-1], 5, a.baseline)
        print(json.dumps(b))
        print(f"| {b['events']:,} events | baseline {b['baseline_median_s']:.2f} s (CPU "
              f"{b['baseline_cpu_s']:.2f} s) | this {b['this_median_s']:.2f} s (CPU "
              f"{b['this_cpu_s']:.2f} s) | CPU baseline / this "
              f"{b['baseline_cpu_s'] / b['this_cpu_s']:.1f}x | load {b['load'][0]}, "
              f"{b['load'][1]} |")


if __name__ == "__main__":
    main()
