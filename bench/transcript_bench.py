"""Transcript publisher benchmark (issues 6 and 19): speed against claude-code-log, and memory.

    pip install -e '.[bench]'                            # claude-code-log, claude-code-transcripts
    python bench/transcript_bench.py                     # 10, 100 MB vs claude-code-log; 200 MB, 1 GB ours only
    python bench/transcript_bench.py --sizes 10 --big 0  # a quick run
    python bench/transcript_bench.py --with-transcripts  # also claude-code-transcripts (slow)
    python bench/transcript_bench.py --watch             # also watch-mode updates on the 100 MB log
    python bench/transcript_bench.py --hard-case         # the hard-case fixture through every tool

The logs come from `bench/transcript_gen.py` (seeded, committed; nothing from the
repository, so the input is the same on every commit). At each size the tools run
interleaved (ours, claude-code-log, ours, ...), each as a fresh process; wall time is
measured around it and peak memory is the child's maximum resident set size
(getrusage RUSAGE_CHILDREN in a wrapper process, per run). Sizes up to --repeat-mb run
--repeats times and report the median. The 1 GB log is ours only (claude-code-log needs
about 68 MB of memory per MB of this log, so by default it runs up to 100 MB only, under a
12 GB address-space cap).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from _summary import row
from transcript_gen import SESSION, generate

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "transcript" / "claude" / "-home-alice-llm-course"
SID = "0b6f6f0e-1c1a-4b7e-9a51-3c2b8d9e0a11"  # the hard-case fixture session
BIN = Path(sys.executable).parent
XSS = "<script>window.pwned=1</script>"
SEED = 19
PEER_GB = 12  # address-space cap for the peer tools (claude-code-log took 58-68 MB per MB of this log)


def measure(cmd: list[str], cwd: Path, timeout: int = 1800, limit_gb: float = 0) -> dict:
    """Run cmd in a fresh wrapper process; wall seconds and the child's peak RSS (MB).
    `limit_gb` caps the child's address space (a peer tool that would take the machine's
    memory fails instead)."""
    cap = (f"resource.setrlimit(resource.RLIMIT_AS,({int(limit_gb * 2**30)},{int(limit_gb * 2**30)}))"
           if limit_gb else "None")
    wrapper = ("import json,resource,subprocess,sys,time;t=time.perf_counter();"
               f"p=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE,"
               f"preexec_fn=lambda:{cap});"
               "w=time.perf_counter()-t;r=resource.getrusage(resource.RUSAGE_CHILDREN);"
               "print(json.dumps({'rc':p.returncode,'wall_s':w,'peak_mb':r.ru_maxrss/1024,'cpu_s':r.ru_utime+r.ru_stime,"
               "'stderr':p.stderr.decode(errors='replace')[-600:]}))")
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], cwd=cwd, capture_output=True, text=True,
                         timeout=timeout)
    return json.loads(out.stdout)


def watch_update(log: Path, out: Path, n: int = 10) -> dict:
    """End to end: a running `--watch` sees 10 appended records and rewrites the page."""
    proc = subprocess.Popen([str(BIN / "python"), "-m", "llmlab", "transcript", "build", str(log), "--out", str(out),
                             "--tz", "UTC", "--watch", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, bufsize=1)
    try:
        buf = ""
        while True:  # the initial build's report is one JSON document
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(proc.stderr.read())
            buf += line
            if line.startswith("}"):
                break
        meta = json.loads(buf)
        page = out / f"{meta['sessions'][0]['file']}"
        last = None
        with open(log, "rb") as f:
            f.seek(max(0, log.stat().st_size - 200_000))
            for ln in f.read().splitlines():
                try:
                    rec = json.loads(ln)
                    last = rec.get("uuid") or last
                except ValueError:
                    pass
        results = []
        for trial in range(3):
            lines = []
            parent = last
            for i in range(n):
                uid = f"bench-{trial}-{i}"
                typ = "user" if i % 2 == 0 else "assistant"
                msg = ({"role": "user", "content": f"BENCH_APPEND_{trial}_{i}"} if typ == "user" else
                       {"id": f"msg_bench_{trial}_{i}", "role": "assistant",
                        "content": [{"type": "text", "text": f"reply {trial} {i}"}]})
                lines.append(json.dumps({"type": typ, "uuid": uid, "parentUuid": parent, "sessionId": SESSION,
                                         "timestamp": f"2026-01-01T00:{trial:02d}:{i:02d}Z", "message": msg}))
                parent = uid
            last = parent
            t = time.perf_counter()
            with open(log, "a") as f:
                f.write("\n".join(lines) + "\n")
            upd = json.loads(proc.stdout.readline())  # {"updated": [...], "seconds": poll time}
            seen = time.perf_counter() - t
            ok = f"BENCH_APPEND_{trial}_{n - 2}" in page.read_text()
            results.append({"append_to_page_s": round(seen, 3), "update_s": upd["seconds"], "page_has_records": ok})
        return {"trials": results}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def machine() -> str:
    cpu = ""
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        mem = f"{int(next(ln.split()[1] for ln in open('/proc/meminfo') if ln.startswith('MemTotal'))) / 1048576:.0f} GiB"
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {mem}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for pkg in ("claude-code-log", "claude-code-transcripts"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def ours_cmd(log: Path, out: Path) -> list[str]:
    return [str(BIN / "python"), "-m", "llmlab", "transcript", "build", str(log), "--out", str(out), "--tz", "UTC",
            "--force"]


def ccl_cmd(log: Path, out: Path) -> list[str]:
    return [str(BIN / "claude-code-log"), str(log), "-o", str(out / "out.html"), "--no-cache"]


def run_tool(name: str, cmd: list[str], work: Path, limit_gb: float = 0) -> dict:
    print(f"  {name} ...", file=sys.stderr)
    m = measure(cmd, work, timeout=7200, limit_gb=limit_gb)
    m["command"] = " ".join(shlex_quote(c) for c in cmd).replace(str(work), "$WORK")
    m["load"] = round(os.getloadavg()[0], 1)
    print(f"  {name}: rc={m['rc']} {m['wall_s']:.1f} s wall, {m['cpu_s']:.1f} s CPU, peak {m['peak_mb']:.0f} MB, "
          f"load {m['load']}", file=sys.stderr)
    if m["rc"] != 0:
        print(m["stderr"], file=sys.stderr)
    return m


def median_of(runs: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "peak_mb")}


def one_size(mb: float, work: Path, tools: list[str], repeats: int) -> dict:
    proj = work / "projects" / "-bench-project"
    shutil.rmtree(work / "projects", ignore_errors=True)
    proj.mkdir(parents=True)
    log = proj / f"{SESSION}.jsonl"
    gen = generate(log, int(mb * 1_000_000), seed=SEED)
    print(f"{mb:g} MB: generated {gen['bytes'] / 1e6:.1f} MB, {gen['records']:,} records", file=sys.stderr)
    runs: dict[str, list[dict]] = {t: [] for t in tools}
    cmds = {"llmlab transcript": ours_cmd, "claude-code-log": ccl_cmd,
            "claude-code-transcripts": lambda lg, o: [str(BIN / "claude-code-transcripts"), "json", str(lg), "-o",
                                                      str(o)]}
    for _ in range(repeats):
        for t in tools:  # interleaved, so load drifts hit every tool alike
            out = work / "out" / re.sub(r"\W", "-", t)
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            runs[t].append(run_tool(t, cmds[t](log, out), work, 0 if t == "llmlab transcript" else PEER_GB))
            shutil.rmtree(out, ignore_errors=True)
    return {"log": gen, "runs": runs, "median": {t: median_of(r) for t, r in runs.items()}}


def big(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="transcript-bench-"))
    res = {"machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "versions": versions(), "seed": SEED, "threads": "1 (CPython, single-threaded)", "sizes": {}}
    peers = ["claude-code-log"] + (["claude-code-transcripts"] if args.with_transcripts else [])
    for mb in args.sizes:
        reps = args.repeats if mb <= args.repeat_mb else 1
        res["sizes"][f"{mb:g}"] = one_size(mb, work, ["llmlab transcript", *(peers if mb <= args.peer_mb else [])],
                                           reps)
        if args.json:  # as each size finishes
            args.json.write_text(json.dumps(res, indent=2))
    if args.big:
        res["sizes"][f"{args.big:g}"] = one_size(args.big, work, ["llmlab transcript"], 1)
    if args.watch:
        proj = work / "projects" / "-bench-project"
        shutil.rmtree(work / "projects", ignore_errors=True)
        proj.mkdir(parents=True)
        log = proj / f"{SESSION}.jsonl"
        generate(log, 100_000_000, seed=SEED)
        print("watch-mode update ...", file=sys.stderr)
        res["watch"] = watch_update(log, work / "watch")
    res["load_end"] = round(os.getloadavg()[0], 1)
    shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    report(res, args)
    return res


def report(res: dict, args) -> None:
    """The markdown for BENCHMARKS.md and one summary row per target."""
    print(f"\nMachine: {res['machine']}. Date: {res['date']}. Seed {res['seed']}. Load at the end "
          f"{res['load_end']}.\n")
    print("| log | records | tool | runs | wall (median) | CPU (median) | peak RSS (median) | load at each run |")
    print("|---|---|---|---|---|---|---|---|")
    for size, r in res["sizes"].items():
        for t, runs in r["runs"].items():
            m = r["median"][t]
            print(f"| {size} MB | {r['log']['records']:,} | {t} | {len(runs)} | {m['wall_s']:.1f} s | "
                  f"{m['cpu_s']:.1f} s | {m['peak_mb']:.0f} MB | {', '.join(str(x['load']) for x in runs)} |")
    for size, r in res["sizes"].items():
        med = r["median"]
        if "claude-code-log" in med:
            o, c = med["llmlab transcript"], med["claude-code-log"]
            print(f"\n{size} MB: {c['wall_s'] / o['wall_s']:.2f}x faster wall, {c['cpu_s'] / o['cpu_s']:.2f}x CPU, "
                  f"{c['peak_mb'] / o['peak_mb']:.1f}x less memory than claude-code-log")
    sizes = res["sizes"]
    if "100" in sizes and "claude-code-log" in sizes["100"]["median"]:
        o, c = sizes["100"]["median"]["llmlab transcript"], sizes["100"]["median"]["claude-code-log"]
        ratio = c["wall_s"] / o["wall_s"]
        row("transcripts, 100 MB log: speed vs claude-code-log", target=">= 2x claude-code-log (3.0x before issue 19)",
            measured=f"{o['wall_s']:.1f} s vs {c['wall_s']:.1f} s wall",
            ratio=f"{ratio:.2f}x wall, {c['cpu_s'] / o['cpu_s']:.2f}x CPU", met=ratio >= 2)
    for size in ("200", f"{args.big:g}"):
        if size in sizes and size != "0":
            o = sizes[size]["median"]["llmlab transcript"]
            c = sizes[size]["median"].get("claude-code-log")
            row(f"transcripts, {size} MB log: peak memory", target="<= 300 MB peak RSS",
                measured=f"{o['peak_mb']:.0f} MB ({o['wall_s']:.0f} s wall)",
                ratio=f"claude-code-log {c['peak_mb']:.0f} MB" if c else "ours only", met=o["peak_mb"] <= 300)


def shlex_quote(s: str) -> str:
    import shlex
    return shlex.quote(s)


def hard_case(args) -> dict:
    """Run the hard-case fixture through every tool and check the outputs mechanically."""
    work = Path(tempfile.mkdtemp(prefix="transcript-hard-"))
    proj = work / "-home-alice-llm-course"
    shutil.copytree(FIX, proj)
    outs = {}
    subprocess.run([str(BIN / "python"), "-m", "llmlab", "transcript", "build", str(proj), "--out",
                    str(work / "ours"), "--tz", "UTC"], check=True, capture_output=True)
    outs["llmlab transcript"] = work / "ours" / f"{SID}.html"
    subprocess.run([str(BIN / "claude-code-log"), str(proj / f"{SID}.jsonl"), "-o", str(work / "ccl.html"),
                    "--no-cache"], capture_output=True)
    outs["claude-code-log"] = work / "ccl.html"
    r = subprocess.run([str(BIN / "claude-code-transcripts"), "json", str(proj / f"{SID}.jsonl"), "-o",
                        str(work / "cct")], capture_output=True, text=True)
    cct = sorted((work / "cct").glob("*.html")) if (work / "cct").is_dir() else []
    outs["claude-code-transcripts"] = cct
    secrets = {"OpenAI key (tool input)": "sk-proj-T3stFakeKey", "Anthropic key (tool result)": "sk-ant-api03-Fake",
               "AWS key (cwd)": "AKIAIOSFODNN7EXAMPLE", "GitHub token (summary record)": "ghp_FakeGithubToken",
               "HF token (compaction summary)": "hf_FakeHuggingFace", "e-mail (tool result)": "alice@example.com",
               "home path": "/home/alice"}
    checks = {}
    for name, paths in outs.items():
        paths = paths if isinstance(paths, list) else [paths]
        text = "\n".join(p.read_text(errors="replace") for p in paths if p.is_file())
        plain = re.sub(r"<[^>]+>", " ", text)
        checks[name] = {
            "pages": len(paths),
            "leaked_secrets": [k for k, v in secrets.items() if v in text],
            "system_reminder_text_shown": "The user opened the file" in plain,
            "caveat_shown": "Caveat: The messages below" in plain,
            "skill_meta_shown": "Base directory for this skill" in plain,
            "ansi_codes_left": "\x1b[" in text or "[1m" in plain,
            "raw_script_tags": text.count(XSS),
            "compaction_summary_present": "This session is being continued" in plain,
            "subagent_one_reply": "SUBAGENT_ONE_REPLY" in plain, "subagent_two_reply": "SUBAGENT_TWO_REPLY" in plain,
            "signature_only_thinking_noted": bool(re.search(r"signature|not (stored|recorded)|redacted", plain, re.I)),
            "duplicate_uuid_rendered_once": plain.count("Run the softmax demo") == 1,
            "chain_order_ok": (plain.find("T=0.5 -&gt; [0.88") if "T=0.5 -&gt;" in plain else plain.find("T=0.5 -> [0.88"))
            < plain.find("SECOND_REPLY") if "SECOND_REPLY" in plain else None,
        }
        checks[name]["pwned_in_browser"] = browser_pwned(paths)
    shutil.rmtree(work, ignore_errors=True) if not args.keep else None
    return {"versions": versions(), "checks": checks, "work": str(work)}


def browser_pwned(paths: list[Path]):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        try:
            hits = []
            for path in paths:
                if path.is_file():
                    pg = b.new_page()
                    pg.goto(path.as_uri())
                    pg.wait_for_timeout(300)
                    hits.append(pg.evaluate("typeof window.pwned") != "undefined")
                    pg.close()
            return any(hits)
        finally:
            b.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=lambda v: [float(x) for x in v.split(",")], default=[10, 100, 200],
                    help="log sizes in MB (10^6 bytes), comma-separated, timed against claude-code-log")
    ap.add_argument("--big", type=float, default=1000, help="a last size, ours only (memory); 0 to skip")
    ap.add_argument("--repeats", type=int, default=3, help="runs per tool at sizes up to --repeat-mb")
    ap.add_argument("--repeat-mb", type=float, default=10)
    ap.add_argument("--peer-mb", type=float, default=100,
                    help="run the peer tools only up to this size (claude-code-log: ~68 MB of memory per MB)")
    ap.add_argument("--with-transcripts", action="store_true", help="also time claude-code-transcripts (slow)")
    ap.add_argument("--watch", action="store_true", help="also time watch-mode updates on a 100 MB log")
    ap.add_argument("--hard-case", action="store_true", help="run the hard-case fixture through every tool")
    ap.add_argument("--keep", action="store_true", help="keep the hard-case work folder")
    ap.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = ap.parse_args()
    res = hard_case(args) if args.hard_case else big(args)
    if args.hard_case:
        print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
