"""`llmlab serve` under load (issues 4 and 19): a real HTTP load tool in its own process.

The server is the real CLI (`llmlab serve --port 0` on 127.0.0.1) in its own process, on a
workspace of the default course with 10,000 synthesised events (`site_bench.synth_log`).
The load comes from `wrk` (Debian package `wrk`; install it with `apt-get install wrk`),
another process: 20 keep-alive connections on 2 wrk threads for 30 s per path. Reported:
requests/s, p50/p90/p99 latency as wrk measures them (from the request's send to its last
byte), errors, and the load average before and after each path.

    apt-get install wrk
    python bench/server_bench.py               # 30 s per path
    python bench/server_bench.py --seconds 5   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _summary import row
from site_bench import synth_log

from llmlab.create import create_workspace

PATHS = ("/index.html", "/concepts/softmax.html", "/index.json")
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(out: str) -> dict:
    """requests/s, latency percentiles (ms), requests and errors from `wrk --latency` output."""
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M)}
    if "99" not in pct:
        raise RuntimeError(f"wrk reported no latency distribution (no request answered?):\n{out}")
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))
    n = int(re.search(r"^\s+(\d+) requests in", out, re.M).group(1))
    errs = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    mx = re.search(r"^\s+Latency\s+\S+\s+\S+\s+(\S+)", out, re.M)
    return {"rps": rps, "requests": n, "errors": errs + (int(non2xx.group(1)) if non2xx else 0),
            "p50_ms": pct["50"], "p90_ms": pct["90"], "p99_ms": pct["99"],
            "max_ms": _ms(mx.group(1)) if mx else None}


def machine() -> str:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def ready(port: int, srv: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until the server answers the dashboard (it may still be building the site)."""
    until = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=10) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        if srv.poll() is not None or time.monotonic() > until:
            raise RuntimeError(f"llmlab serve did not answer on port {port}: {srv.stderr.read()[-2000:]}")
        time.sleep(0.2)


def run(events: int, clients: int, threads: int, seconds: int) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit("wrk is not installed: `apt-get install wrk` (Debian/Ubuntu) or `brew install wrk`, then rerun.")
    version = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.split(" Copyright")[0].strip()
    res = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "events": events,
           "tool": version, "clients": clients, "wrk_threads": threads, "seconds": seconds, "paths": []}
    with tempfile.TemporaryDirectory() as d:
        ws = create_workspace(Path(d) / "ws", name="Bench Learner")
        synth_log(ws, events)
        env = {**os.environ, "LLMLAB_HOME": str(ws.root)}
        srv = subprocess.Popen([sys.executable, "-m", "llmlab", "serve", "--port", "0"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = srv.stdout.readline()
            port = int(re.search(r":(\d+)/?\s*$", line).group(1))
            res["server_pid"] = srv.pid
            ready(port, srv)
            for path in PATHS:
                before = round(os.getloadavg()[0], 1)
                cmd = [wrk, f"-t{threads}", f"-c{clients}", f"-d{seconds}s", "--latency",
                       f"http://127.0.0.1:{port}{path}"]
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
                r = {"path": path, **parse_wrk(out), "load_before": before,
                     "load_after": round(os.getloadavg()[0], 1),
                     "command": " ".join(cmd).replace(str(port), "$PORT")}
                res["paths"].append(r)
                print(json.dumps(r), file=sys.stderr)
        finally:
            srv.terminate()
            srv.wait(10)
    return res


def report(res: dict) -> None:
    print(f"Machine: {res['machine']}. Date: {res['date']}. Load tool: {res['tool']}, {res['clients']} "
          f"connections on {res['wrk_threads']} threads, {res['seconds']} s per path; {res['events']:,} events.\n")
    print("| path | requests/s | p50 | p90 | p99 | max | errors | load before / after |")
    print("|---|---|---|---|---|---|---|---|")
    for r in res["paths"]:
        mx = f"{r['max_ms']:.0f} ms" if r["max_ms"] is not None else "?"
        print(f"| `{r['path']}` | {r['rps']:,.0f} | {r['p50_ms']:.1f} ms | {r['p90_ms']:.1f} ms | "
              f"**{r['p99_ms']:.1f} ms** | {mx} | {r['errors']} | {r['load_before']} / {r['load_after']} |")
    dash = res["paths"][0]
    row("server: dashboard under 20 concurrent clients (wrk, own process)",
        target="p99 latency and requests/s reported (no numeric target in BENCHMARKS.md; issue 4 measured "
               "p99 24.7 ms)", measured=f"p99 {dash['p99_ms']:.1f} ms, {dash['rps']:,.0f} req/s",
        ratio=f"p50 {dash['p50_ms']:.1f} ms, {dash['errors']} errors", met=None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--seconds", type=int, default=30, help="load per path")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    a = ap.parse_args()
    res = run(a.events, a.clients, a.threads, a.seconds)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2))
    report(res)


if __name__ == "__main__":
    main()
