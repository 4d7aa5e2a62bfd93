"""Benchmark the Claude Code plugin's hooks (issue 8): wall time per hook invocation.

Each hook is run exactly as Claude Code runs it: `bash -c` with the command from
plugin/hooks/hooks.json, the event's JSON on stdin, a fresh interpreter every time. On
workspaces (default course) of 100 and 10,000 events, 20 runs each, median and max:

- session-start, brief cached: `state/brief.json` is current (the stop hook refreshes it
  in the background after every turn that recorded evidence);
- session-start, brief recomputed: `state/brief.json` deleted before every run (as at the
  first start after evidence recorded outside Claude Code, or more than a week after the
  last turn): the state is read from the warm `state/snapshot.json` and summarized;
- session-start, state/ caches lost: both deleted before every run (`rm -rf state/`); the
  10,000-event case answers at once and leaves the rebuild to a background process;
- stop, reminder: the session log (about 2 MB, 2,000 records) ends with an answered,
  unrecorded probe, so the hook reads the log's tail and the evidence log's last event;
- stop, recorded: the same, but the turn recorded its evidence;
- either hook outside any workspace.

    .venv/bin/python bench/hooks_bench.py            # 20 runs per case
    .venv/bin/python bench/hooks_bench.py --runs 5   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from engine_bench import synth_log  # noqa: E402

from llmlab import api  # noqa: E402
from llmlab.create import create_workspace  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "hooks"
BUDGET_MS = 300


def hook_commands() -> dict[str, str]:
    h = json.loads((ROOT / "plugin" / "hooks" / "hooks.json").read_text())
    return {e: groups[0]["hooks"][0]["command"] for e, groups in h["hooks"].items()}


def session_log(path: Path, tail_fixture: str, filler: int = 2000) -> None:
    """A realistic session log: `filler` earlier exchanges, then the fixture's turn, moved
    to the present (after the synthetic evidence log's last event)."""
    recs = [json.loads(x) for x in (FIX / tail_fixture).read_text().splitlines()
            if x.endswith("}")]
    t0 = datetime.fromisoformat(recs[2]["timestamp"].replace("Z", "+00:00"))
    now = datetime.now(timezone.utc)
    for r in recs:
        if "timestamp" in r:
            t = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
            r["timestamp"] = (now + (t - t0)).isoformat().replace("+00:00", "Z")
    tail = [json.dumps(r) for r in recs]
    rec = recs[-1]
    with open(path, "w") as f:
        for i in range(filler):
            r = dict(rec, uuid=f"fill-{i}", timestamp="2026-03-02T09:00:00.000Z")
            r["message"] = dict(rec["message"], content=[
                {"type": "text", "text": f"Earlier exchange {i}: " + "lorem ipsum " * 80}])
            f.write(json.dumps(r) + "\n")
        f.write("\n".join(tail) + "\n")


def payload(name: str, cwd: Path, transcript: Path) -> str:
    text = (FIX / name).read_text().replace("__CWD__", str(cwd))
    return text.replace("__TRANSCRIPT__", str(transcript))


def time_runs(command: str, stdin: str, cwd: Path, runs: int, before=None) -> dict:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    times, cpu, out = [], [], ""
    for _ in range(runs):
        if before:
            before()
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        r = subprocess.run(["bash", "-c", command], input=stdin, capture_output=True, text=True,
                           cwd=cwd, env=env, timeout=60)
        times.append((time.perf_counter() - t) * 1000)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000)
        if r.returncode != 0:
            raise SystemExit(f"hook failed ({r.returncode}): {r.stderr}")
        out = r.stdout
    return {"median_ms": statistics.median(times), "max_ms": max(times),
            "cpu_median_ms": statistics.median(cpu),
            "output": "json" if out.startswith("{") else ("none" if not out else "text")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000])
    args = ap.parse_args()
    cmds = hook_commands()
    results = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        unrecorded, recorded = d / "unrecorded.jsonl", d / "recorded.jsonl"
        session_log(unrecorded, "answered_unrecorded.jsonl")
        session_log(recorded, "answered_recorded_mcp.jsonl")
        elsewhere = d / "elsewhere"
        elsewhere.mkdir()
        for n in args.sizes:
            ws = create_workspace(d / f"ws{n}")
            synth_log(ws, n)
            cache, brief = ws.state_dir / "snapshot.json", ws.state_dir / "brief.json"
            api.load_state(ws)  # a running workspace has its state cache
            warm = cache.read_bytes()

            def lose_all() -> None:  # a one-off: let the last run's background rebuild end
                time.sleep(1.5)
                cache.unlink(missing_ok=True)
                brief.unlink(missing_ok=True)

            cases = [
                ("session-start, brief cached", "SessionStart", "session_start.json",
                 unrecorded, None),
                ("session-start, brief recomputed", "SessionStart", "session_start.json",
                 unrecorded, lambda: brief.unlink(missing_ok=True)),
                ("session-start, state/ caches lost", "SessionStart", "session_start.json",
                 unrecorded, lose_all),
                ("stop, reminder", "Stop", "stop.json", unrecorded, None),
                ("stop, recorded", "Stop", "stop.json", recorded, None),
            ]
            for label, event, fx, tr, before in cases:
                res = time_runs(cmds[event], payload(fx, ws.root, tr), ws.root, args.runs, before)
                results.append({"events": n, "hook": label, **res})
                time.sleep(1.0)  # let a background rebuild (cache-lost case) finish
                cache.write_bytes(warm)
                subprocess.run([sys.executable, "-m", "llmlab.plugin.hooks", "refresh-brief",
                                str(ws.root)], check=True)  # as the stop hook leaves it
            cache.write_bytes(warm)
        for event, fx in (("SessionStart", "session_start.json"), ("Stop", "stop.json")):
            res = time_runs(cmds[event], payload(fx, elsewhere, unrecorded), elsewhere, args.runs)
            results.append({"events": "no workspace", "hook": event, **res})
    load = os.getloadavg()  # other processes on the machine inflate wall times
    print(f"# machine: {platform.node()} {platform.machine()} {platform.processor() or ''} "
          f"cpus={os.cpu_count()} python {platform.python_version()}; "
          f"load average {load[0]:.1f}/{load[1]:.1f}; date {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"# {args.runs} runs per case; budget {BUDGET_MS} ms\n")
    print("| workspace events | hook | median ms | max ms | CPU median ms | output | max within budget |")
    print("|---|---|---:|---:|---:|---|---|")
    for r in results:
        ok = "yes" if r["max_ms"] <= BUDGET_MS else "NO"
        print(f"| {r['events']} | {r['hook']} | {r['median_ms']:.0f} | {r['max_ms']:.0f} | "
              f"{r['cpu_median_ms']:.0f} | {r['output']} | {ok} |")
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
