"""Before and after: the full rebuild of one realistic-density log by two source trees.

Each round runs one fresh interpreter per tree, alternating; each interpreter times
`snapshot.from_scratch` (the whole rebuild, snapshot write included) and the streamed
`json.loads` parse of the same file 3 times, CPU time, and keeps the minimum of each and of
their per-repeat ratio. A busy moment then hits both trees alike.

    python bench/rebuild_ab.py --before ../main/src --after src          # 4 rounds, 100k
    python bench/rebuild_ab.py --before OLD/src --after src --events 10000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _summary import row

CHILD = """
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


def run(src: Path, ws: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(src.resolve()), str(ws)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", type=Path, required=True, help="the old tree's src folder")
    ap.add_argument("--after", type=Path, default=Path("src"), help="the new tree's src folder")
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=4)
    a = ap.parse_args()
    from engine_bench import synth_log_realistic
    from llmlab.create import create_workspace

    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws")
        synth_log_realistic(ws, a.events)
        load0 = os.getloadavg()[0]
        got: dict[str, list[dict]] = {"before": [], "after": []}
        for _ in range(a.rounds):
            for name, src in (("before", a.before), ("after", a.after)):
                got[name].append(run(src, ws.root))
        load1 = os.getloadavg()[0]
    print(f"\n{a.events:,} events, realistic density; {a.rounds} rounds; CPU time; "
          f"load {load0:.1f}-{load1:.1f}\n")
    print("| tree | rebuild (s), min-max | events/s (CPU), median | parse (s), median | "
          "rebuild / parse, min-max |")
    print("|---|---|---|---|---|")
    for name, src in (("before", a.before), ("after", a.after)):
        rs = got[name]
        reb = [r["rebuild"] for r in rs]
        ratio = [r["ratio"] for r in rs]
        print(f"| {name} (`{src}`) | {min(reb):.3f}-{max(reb):.3f} | "
              f"{a.events / statistics.median(reb):,.0f} | "
              f"{statistics.median(r['parse'] for r in rs):.3f} | "
              f"{min(ratio):.2f}x-{max(ratio):.2f}x |")
    b, f = (statistics.median(r["rebuild"] for r in got[k]) for k in ("before", "after"))
    row(f"rebuild before/after, {a.events:,} events, realistic density (CPU time)",
        target="", measured=f"{b:.3f} s -> {f:.3f} s",
        ratio=f"{b / f:.2f}x faster, same runs", met=None)


if __name__ == "__main__":
    main()
