"""Benchmark the tutor state engine (issues 2 and 19).

1. One append (validate, lock, append, fsync, incremental derive; no rendering) with
   1k, 10k and 100k events already in the log: p50/p99, and a naive full re-derive per
   append for comparison, as a ratio measured in the same run.
2. Full rebuild of 1,000,000 events: events/s and peak memory (in a child process).
3. Full rebuild at a realistic density (at most one event per concept per UTC day, so
   every event folds one FSRS review) of 1k, 10k and 100k events, against parsing the
   same file as JSON in the same child process, the two interleaved (issue 19).

    .venv/bin/python bench/engine_bench.py                    # full run
    .venv/bin/python bench/engine_bench.py --quick            # smaller sizes, a smoke test
    .venv/bin/python bench/engine_bench.py --only realistic   # section 3 alone
    .venv/bin/python bench/engine_bench.py --only ab --before OLD/src   # rebuild, two trees
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _summary import row
from llmlab import api
from llmlab.events import GENESIS, Event, line_hash
from llmlab.create import create_workspace
from llmlab.workspace import Workspace


def _write(ws: Workspace, stamped: list[tuple[int, str]], seed: int) -> None:
    """Write observation events at (unix time, concept), hash-chained, straight to the log."""
    rng = random.Random(seed)
    prev = GENESIS
    with open(ws.log_path, "wb") as f:
        for i, (t, c) in enumerate(stamped, 1):
            ts = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(t))
            ev = Event(id=f"evt_{i:06d}", ts=ts, type="observation", actor="tutor", prev=prev,
                       data={"concept": c, "quality": round(rng.random(), 3),
                             "evidence": f"learner explained {c} with a concrete example, "
                                         "mostly right, one slip on the details", "probe": ""})
            line = ev.to_line()
            f.write(line)
            prev = line_hash(line)


def synth_log(ws: Workspace, n: int, seed: int = 0) -> None:
    """Write n valid, hash-chained observation events straight to the log (fast set-up),
    over 300 days: about 65 events per concept per day on the default course (packed, so
    the once-per-concept-day retention update is rare)."""
    rng = random.Random(seed)
    concepts = ws.curriculum.concept_ids
    t0, span = 1_767_225_600, 300 * 86400  # from 2026-01-01
    _write(ws, [(t0 + span * i // n, rng.choice(concepts)) for i in range(1, n + 1)], seed)


def synth_log_realistic(ws: Workspace, n: int, seed: int = 0, per_day: int = 24) -> None:
    """Write n observation events at a realistic density: at most one event per concept per
    UTC day (`per_day` distinct concepts a day, in random order, 08:00-20:00), so every
    event opens a new concept-day and folds one FSRS review. The last day is 2026-11-01;
    the first is n / per_day days before it (about 11 years for 100k events)."""
    rng = random.Random(seed)
    concepts = ws.curriculum.concept_ids
    per_day = min(per_day, len(concepts))
    days = -(-n // per_day)
    first = 1_793_491_200 - (days - 1) * 86400  # 2026-11-01 00:00 UTC, minus the days
    stamped: list[tuple[int, str]] = []
    for d in range(days):
        picked = rng.sample(concepts, per_day)
        step = 12 * 3600 // per_day
        for k, c in enumerate(picked):
            if len(stamped) < n:
                stamped.append((first + d * 86400 + 8 * 3600 + k * step, c))
    _write(ws, stamped, seed)


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


CURRICULUM = None  # None: the default course


def bench_append(n: int, reps: int, naive_reps: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws", curriculum=CURRICULUM)
        synth_log(ws, n)
        api.load_state(ws)  # build the snapshot once, as a running workspace has
        times = []
        for i in range(reps):
            t = time.perf_counter()
            api.observe(ws, "softmax", 0.7, f"bench {i}")
            times.append((time.perf_counter() - t) * 1000)
        naive = []
        for i in range(naive_reps):
            t = time.perf_counter()
            api.observe(ws, "softmax", 0.7, f"naive {i}")
            api.load_state(ws, use_cache=False)  # what a non-incremental engine does
            naive.append((time.perf_counter() - t) * 1000)
        return {"events": n, "p50_ms": statistics.median(times), "p99_ms": pct(times, 0.99),
                "naive_p50_ms": statistics.median(naive),
                "ratio_naive_over_incremental": statistics.median(naive) / statistics.median(times)}


REBUILD_CHILD = """
import json, resource, sys, time
from llmlab import api
from llmlab.workspace import Workspace
ws = Workspace(__import__('pathlib').Path(sys.argv[1]))
t = time.perf_counter()
s, tip = api.load_state(ws, use_cache=False)
dt = time.perf_counter() - t
try:  # VmHWM: this process's peak since exec (ru_maxrss also counts the forked parent's pages)
    peak = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM'))
except (OSError, StopIteration):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"events": s.events, "seconds": dt, "peak_rss_mb": peak / 1024}))
"""


def bench_rebuild(n: int) -> dict:
    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws", curriculum=CURRICULUM)
        synth_log(ws, n)
        size = ws.log_path.stat().st_size
        out = subprocess.run([sys.executable, "-c", REBUILD_CHILD, str(ws.root)], check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out)
        r["events_per_s"] = r["events"] / r["seconds"]
        r["log_mb"] = size / 1e6
        return r


DENSITY_CHILD = """
import json, os, statistics, sys, time
from llmlab import api
from llmlab.workspace import Workspace
ws = Workspace(__import__('pathlib').Path(sys.argv[1]))
rounds = int(sys.argv[2])
scan_once = json.JSONDecoder().scan_once

def parse():  # reading the log as JSON: every line through json.loads, streamed as the rebuild is
    n = 0
    with open(ws.log_path, 'rb') as f:
        for line in f:
            json.loads(line)
            n += 1
    return n

def parse_list():  # the same, every event kept in a list (allocation and GC grow with the log)
    with open(ws.log_path, 'rb') as f:
        return len([json.loads(line) for line in f])

def scan():  # the floor of a stdlib read: the C scanner on each line, nothing kept
    n = 0
    with open(ws.log_path, 'rb', buffering=1 << 20) as f:
        for line in f:
            scan_once(line.decode('utf-8'), 0)
            n += 1
    return n

def rebuild():  # what `llmlab rebuild` does: both passes, the checks, the fold, the snapshot
    s, tip = api.load_state(ws, use_cache=False)
    assert tip.damage is None
    return s.events

fns = {'parse': parse, 'parse_list': parse_list, 'scan': scan, 'rebuild': rebuild}
out = {k: [] for k in fns}
cpu = {k: [] for k in fns}
for r in range(rounds):  # interleaved, the order rotated each round
    order = list(fns)[r % 4:] + list(fns)[:r % 4]
    for k in order:
        c, t = time.process_time(), time.perf_counter()
        n = fns[k]()
        out[k].append(time.perf_counter() - t)
        cpu[k].append(time.process_time() - c)
print(json.dumps({"events": n, "wall": out, "cpu": cpu}))
"""


def bench_realistic(n: int, rounds: int) -> dict:
    """Rebuild vs JSON parse of the same realistic-density log, in a fresh interpreter."""
    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws", curriculum=CURRICULUM)
        synth_log_realistic(ws, n)
        size = ws.log_path.stat().st_size
        load0 = os.getloadavg()[0]
        out = subprocess.run([sys.executable, "-c", DENSITY_CHILD, str(ws.root), str(rounds)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out)
        med = {k: statistics.median(v) for k, v in r["wall"].items()}
        # paired: the rebuild over the parse of the same round, so a busy moment cancels
        def paired(times: dict, base: str) -> float:
            return statistics.median(b / p for b, p in zip(times["rebuild"], times[base]))

        cpu = statistics.median(r["cpu"]["rebuild"])
        return {"events": r["events"], "log_mb": size / 1e6, "rounds": rounds, **med,
                "events_per_s": r["events"] / med["rebuild"], "ratio": paired(r["wall"], "parse"),
                "cpu_ratio": paired(r["cpu"], "parse"), "cpu_ratio_scan": paired(r["cpu"], "scan"),
                "cpu_ratio_list": paired(r["cpu"], "parse_list"),
                "cpu_rebuild": cpu, "cpu_events_per_s": r["events"] / cpu,
                "load": (load0, os.getloadavg()[0])}


def realistic_section(sizes: list[int]) -> None:
    print("\n## Rebuild at a realistic density (<= 1 event per concept per day)\n")
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; one thread (pure Python); "
          "each size in a fresh process, 5 rounds, the four readings interleaved (order "
          "rotated); times are medians, ratios medians of the per-round ratios. JSON parse = "
          "json.loads on every line, streamed; CPU = process time (leaves out the waiting on "
          "a busy machine)")
    print("\n| events | log (MB) | JSON parse (s) | rebuild (s) | events/s | rebuild / parse | "
          "CPU: events/s | CPU: rebuild / parse | CPU: rebuild / parse into a list | "
          "CPU: rebuild / C-scanner read | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        r = bench_realistic(n, rounds=5)
        print(f"| {n:,} | {r['log_mb']:.1f} | {r['parse']:.3f} | {r['rebuild']:.3f} | "
              f"{r['events_per_s']:,.0f} | {r['ratio']:.2f}x | {r['cpu_events_per_s']:,.0f} | "
              f"{r['cpu_ratio']:.2f}x | {r['cpu_ratio_list']:.2f}x | {r['cpu_ratio_scan']:.2f}x | "
              f"{r['load'][0]:.1f}-{r['load'][1]:.1f} |", flush=True)
        if n == 100_000:
            met = r["events_per_s"] >= 100_000 and r["ratio"] <= 2.5
            row("rebuild, 100k events, realistic density (<= 1 event per concept-day)",
                target=">= 100,000 events/s and <= 2.5x the JSON parse of the same file",
                measured=f"{r['events_per_s']:,.0f} events/s ({r['rebuild']:.2f} s wall; "
                         f"{r['cpu_events_per_s']:,.0f} events/s in CPU time)",
                ratio=f"{r['ratio']:.2f}x JSON parse ({r['parse']:.2f} s), same run "
                      f"({r['cpu_ratio']:.2f}x in CPU time)",
                met=met)


AB_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from llmlab import snapshot
from llmlab.workspace import Workspace
ws = Workspace(Path(sys.argv[2]))
def rebuild():
    snapshot.from_scratch(ws.log_path, ws.curriculum, ws.config.mastery,
                          ws.state_dir / "snapshot.json", "ab")
def parse():
    with open(ws.log_path, "rb") as f:
        for line in f:
            json.loads(line)
R, P = [], []
for _ in range(3):
    c = time.process_time(); rebuild(); R.append(time.process_time() - c)
    c = time.process_time(); parse(); P.append(time.process_time() - c)
print(json.dumps({"rebuild": min(R), "parse": min(P),
                  "ratio": min(r / p for r, p in zip(R, P))}))
"""


def before_after(before: Path, after: Path, n: int, rounds: int) -> None:
    """The full rebuild of one realistic-density log by two source trees (`--only ab`): a
    fresh interpreter per tree per round, alternating, each timing `snapshot.from_scratch`
    and the streamed `json.loads` parse 3 times (CPU time, the minimum of each)."""
    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws", curriculum=CURRICULUM)
        synth_log_realistic(ws, n)
        load0 = os.getloadavg()[0]
        got: dict[str, list[dict]] = {"before": [], "after": []}
        for _ in range(rounds):
            for name, src in (("before", before), ("after", after)):
                out = subprocess.run([sys.executable, "-c", AB_CHILD, str(src.resolve()),
                                      str(ws.root)], check=True, capture_output=True,
                                     text=True).stdout
                got[name].append(json.loads(out))
        load1 = os.getloadavg()[0]
    print(f"\n## Before and after: {n:,} events, realistic density\n\n{rounds} rounds, "
          f"CPU time, load {load0:.1f}-{load1:.1f}\n")
    print("| tree | rebuild (s), min-max | events/s (CPU), median | parse (s), median | "
          "rebuild / parse, min-max |")
    print("|---|---|---|---|---|")
    for name, src in (("before", before), ("after", after)):
        reb = [r["rebuild"] for r in got[name]]
        ratio = [r["ratio"] for r in got[name]]
        print(f"| {name} (`{src}`) | {min(reb):.3f}-{max(reb):.3f} | "
              f"{n / statistics.median(reb):,.0f} | "
              f"{statistics.median(r['parse'] for r in got[name]):.3f} | "
              f"{min(ratio):.2f}x-{max(ratio):.2f}x |")
    b, f = (statistics.median(r["rebuild"] for r in got[k]) for k in ("before", "after"))
    row(f"rebuild before/after, {n:,} events, realistic density (CPU time)", target="",
        measured=f"{b:.3f} s -> {f:.3f} s", ratio=f"{b / f:.2f}x faster, same runs", met=None)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--curriculum", default=None, help="curriculum folder (default course if unset)")
    ap.add_argument("--only", choices=["realistic", "ab"], default=None,
                    help="run one section alone (realistic: the issue-19 rebuild rows; ab: "
                         "the rebuild by --before's source tree and --after's)")
    ap.add_argument("--before", type=Path, help="--only ab: the old tree's src folder")
    ap.add_argument("--after", type=Path, default=Path("src"), help="--only ab: the new one's")
    ap.add_argument("--rounds", type=int, default=4, help="--only ab: rounds")
    a = ap.parse_args()
    if a.only == "ab":
        if a.before is None:
            ap.error("--only ab needs --before (a source tree's src folder)")
        before_after(a.before, a.after, 10_000 if a.quick else 100_000, a.rounds)
        return
    global CURRICULUM
    CURRICULUM = a.curriculum
    if a.only == "realistic":
        print(f"# machine: {platform.node()} {platform.machine()} cpus={os.cpu_count()} "
              f"python {platform.python_version()}")
        realistic_section([1_000, 10_000] if a.quick else [1_000, 10_000, 100_000])
        return
    sizes = [1_000, 10_000] if a.quick else [1_000, 10_000, 100_000]
    print(f"# machine: {platform.node()} {platform.machine()} cpus={os.cpu_count()} "
          f"python {platform.python_version()}; date {time.strftime('%Y-%m-%d')}")
    print("| events in log | append p50 (ms) | append p99 (ms) | naive re-derive p50 (ms) | naive / incremental |")
    print("|---|---|---|---|---|")
    for n in sizes:
        r = bench_append(n, reps=200, naive_reps=5 if n >= 100_000 else 20)
        print(f"| {n:,} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['naive_p50_ms']:.1f} | "
              f"{r['ratio_naive_over_incremental']:.1f}x |", flush=True)
    n = 100_000 if a.quick else 1_000_000
    r = bench_rebuild(n)
    print(f"\nrebuild: {r['events']:,} events ({r['log_mb']:.0f} MB) in {r['seconds']:.2f} s = "
          f"{r['events_per_s']:,.0f} events/s; peak RSS {r['peak_rss_mb']:.0f} MB")
    realistic_section([1_000, 10_000] if a.quick else [1_000, 10_000, 100_000])


if __name__ == "__main__":
    main()
