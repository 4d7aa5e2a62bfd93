"""Benchmark the site (issue 4).

1. `llmlab site build` on a workspace of the default course with 10,000 events (a mix of
   observations, misconceptions opened and resolved, exit attempts and predictions):
   cold (empty site/ and no state cache) and warm (site/ and cache present), median of
   several runs, in-process; plus the CLI end to end (`llmlab site build`, with Python
   start-up).
2. `llmlab serve` under 20 concurrent keep-alive clients for 30 s on loopback: requests/s
   and p50/p99 latency for the dashboard (index.html). The server runs in its own process
   (the real CLI); the load generator is a bounded pool of threads with http.client in
   another process.

    .venv/bin/python bench/site_bench.py              # full run (about a minute)
    .venv/bin/python bench/site_bench.py --quick      # 1,000 events, 5 s of load
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
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


def _client(port: int, path: str, until: float, lat: list[float], errors: list[int]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    while time.perf_counter() < until:
        t = time.perf_counter()
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors.append(resp.status)
        except (OSError, http.client.HTTPException):
            errors.append(0)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            continue
        lat.append(time.perf_counter() - t)
    conn.close()


def load(port: int, path: str, clients: int, seconds: float) -> dict:
    """Run in a child process (so the client threads do not share the server's GIL)."""
    lats: list[list[float]] = [[] for _ in range(clients)]
    errors: list[int] = []
    until = time.perf_counter() + seconds
    ts = [threading.Thread(target=_client, args=(port, path, until, lats[i], errors))
          for i in range(clients)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    xs = sorted(x for lat in lats for x in lat)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000  # noqa: E731
    return {"path": path, "clients": clients, "seconds": round(wall, 2), "requests": len(xs),
            "errors": len(errors), "rps": round(len(xs) / wall, 1), "p50_ms": round(q(.5), 2),
            "p90_ms": round(q(.9), 2), "p99_ms": round(q(.99), 2), "max_ms": round(xs[-1] * 1000, 2)}


def bench_server(n: int, clients: int, seconds: float) -> list[dict]:
    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws", name="Bench Learner")
        synth_log(ws, n)
        env = {**os.environ, "LLMLAB_HOME": str(ws.root)}
        srv = subprocess.Popen([sys.executable, "-m", "llmlab", "serve", "--port", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = srv.stdout.readline()
            port = int(line.rsplit(":", 1)[1].strip().rstrip("/"))
            out = []
            for path in ("/index.html", "/concepts/softmax.html", "/index.json"):
                r = subprocess.run([sys.executable, __file__, "--load", str(port), path,
                                    str(clients), str(seconds)], capture_output=True, text=True,
                                   check=True)
                out.append(json.loads(r.stdout))
            return out
        finally:
            srv.terminate()
            srv.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--load", nargs=4)
    ap.add_argument("--skip-server", action="store_true")
    a = ap.parse_args()
    if a.load:
        port, path, clients, seconds = a.load
        print(json.dumps(load(int(port), path, int(clients), float(seconds))))
        return
    n = 1000 if a.quick else 10_000
    info = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()} "
                       f"{platform.release()}", "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}
    print(json.dumps(info))
    b = bench_build(n, 3 if a.quick else 7)
    print(json.dumps(b))
    if not a.skip_server:
        for r in bench_server(n, 20, 5 if a.quick else 30):
            print(json.dumps(r))


if __name__ == "__main__":
    main()
