"""Run every benchmark behind BENCHMARKS.md, one after another, and rewrite the summary
table at the top of BENCHMARKS.md from the targets they report (`make bench` runs this).

Each script runs to the end as its own process (`python bench/NAME.py ARGS`, from the
repository root, with `src/` on the path), its output passed through as it comes. It
reports one row per target with `_summary.row` into a JSONL file named by
LLMLAB_BENCH_SUMMARY. A script that fails (non-zero exit, or past `--timeout`) does not
stop the others: it becomes a row of its own, met: no, with the end of its output.

The table between `<!-- summary:start -->` and `<!-- summary:end -->` is rewritten; the rest
of the file is left as it is (the markers are added before the first section if missing).
Rows of scripts that did not run this time (`--only`) are kept from the table's previous
run, with that run's date and machine.

    python bench/run_all.py                          # every script (hours on 2 cores)
    python bench/run_all.py --only startup,modelcheck
    python bench/run_all.py --quick                  # smoke run; BENCHMARKS.md untouched
    python bench/run_all.py --list
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import signal
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- summary:start -->", "<!-- summary:end -->"
DATA = "<!-- summary:data"


@dataclass(frozen=True)
class Script:
    name: str
    file: str
    args: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()  # the arguments of a smoke run (smaller sizes, fewer rounds)
    torch: bool = False  # needs the lab extra (and the model wheel)


# The order `make bench` runs them: the quick, pure-Python ones first.
SCRIPTS = (
    Script("startup", "startup_bench.py", (), ("--quick",)),
    Script("engine", "engine_bench.py", (), ("--quick",)),
    Script("site", "site_bench.py", (), ("--quick",)),
    Script("server", "server_bench.py", (), ("--seconds", "3", "--events", "1000")),
    Script("hooks", "hooks_bench.py", (), ("--runs", "3", "--sizes", "100")),
    Script("context", "context_bench.py", (), ("--events", "21", "200")),
    Script("modelcheck", "modelcheck_bench.py", (), ("--quick",)),
    Script("scrub", "scrub_recall.py"),
    Script("transcript", "transcript_bench.py", ("--with-transcripts",),
           ("--sizes", "2", "--big", "5", "--repeats", "1")),
    Script("transcript-hard", "transcript_bench.py", ("--hard-case",), ("--hard-case",)),
    Script("lab", "lab_bench.py", (), ("--only", "load", "--reps", "3"), torch=True),
    Script("concept", "concept_bench.py", ("--variants", "--threads", "2"),
           ("--only", "agreement", "--concepts", "1", "--pairs", "10", "--rounds", "2"),
           torch=True),
    Script("rag", "rag_bench.py", ("--only", "speed,parity,notes,slow"),
           ("--only", "parity", "--reps", "1"), torch=True),
    Script("tuning", "tuning_bench.py", ("--default-run",), ("--blocks", "1", "--steps", "2"),
           torch=True),
)


@dataclass
class Outcome:
    script: Script
    argv: list[str]
    returncode: int
    seconds: float
    rows: list[dict] = field(default_factory=list)
    tail: list[str] = field(default_factory=list)


def run_info() -> dict:
    """Where and when: machine, date, Python, the commit measured."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} "
                       f"{platform.release()}",
            "python": platform.python_version(), "commit": commit or "unknown"}


def run_script(s: Script, bench_dir: Path, quick: bool, timeout: float | None,
               tmp: Path) -> Outcome:
    """One script as its own process; its rows, exit status and the end of its output."""
    args = list(s.quick if quick else s.args)
    argv = [sys.executable, str(bench_dir / s.file), *args]
    shown = " ".join(["python", f"bench/{s.file}", *args])
    rows_file = tmp / f"{s.name}.jsonl"
    env = {**os.environ, "LLMLAB_BENCH_SUMMARY": str(rows_file), "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                       os.environ.get("PYTHONPATH")]))}
    print(f"\n==> {shown}", flush=True)
    tail: deque[str] = deque(maxlen=20)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, errors="replace",
                         start_new_session=True)  # its own process group, to stop it whole

    def pump() -> None:
        for line in p.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            tail.append(line.rstrip("\n"))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        rc: int | None = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        rc = None
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
    reader.join(timeout=10)
    out = Outcome(s, argv, -9 if rc is None else rc, time.monotonic() - t0, tail=list(tail))
    if rows_file.exists():
        out.rows = [json.loads(x) for x in rows_file.read_text(encoding="utf-8").splitlines()
                    if x.strip()]
    if rc is None or rc != 0:
        why = (f"stopped after the {timeout:g} s timeout" if rc is None else f"exit {rc}")
        last = next((x for x in reversed(out.tail) if x.strip()), "no output")
        out.rows.append({"what": f"`{s.file}` did not finish", "target": "runs to the end",
                         "measured": f"{why}: {last[:200]}", "ratio": "", "met": False,
                         "load": round(os.getloadavg()[0], 1), "command": shown})
    elif not out.rows:
        out.rows.append({"what": f"`{s.file}` reported no target", "target": "",
                         "measured": "ran to the end", "ratio": "", "met": None,
                         "load": round(os.getloadavg()[0], 1), "command": shown})
    return out


# ---------------------------------------------------------------- the table


def cell(x) -> str:
    return str(x if x is not None else "").replace("|", "\\|").replace("\n", " ")


def met_word(met) -> str:
    return "yes" if met is True else "**no**" if met is False else "-"


def stored_rows(text: str) -> list[dict]:
    """The rows behind the current table (kept in a comment between the markers)."""
    if START not in text or END not in text:
        return []
    block = text[text.index(START):text.index(END)]
    if DATA not in block:
        return []
    raw = block[block.index(DATA) + len(DATA):]
    raw = raw[:raw.index("-->")]
    try:
        rows = json.loads(raw)
    except json.JSONDecodeError:
        return []
    return rows if isinstance(rows, list) else []


def render(rows: list[dict]) -> str:
    lines = [START, "## Summary", "",
             "One row per target, written by `make bench` (`python bench/run_all.py`) from what "
             "each script measured; the sections below give the detail and the conditions. "
             "Ratios are to the peer tool or the physical baseline measured in the same run. "
             "Load is the 1-minute load average when the row was measured. A script that did "
             "not finish is a row of its own.", "",
             "| what | target | measured | ratio | met | load | command |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| " + " | ".join(cell(x) for x in (
            r.get("what", "") + (" (quick run)" if r.get("quick") else ""), r.get("target"),
            r.get("measured"), r.get("ratio"), met_word(r.get("met")), r.get("load"),
            f"`{r['command']}`" if r.get("command") else "")) + " |")
    runs: dict[tuple, list[str]] = {}
    for r in rows:
        info = r.get("run", {})
        key = tuple(info.get(k, "?") for k in ("date", "machine", "python", "commit"))
        if r.get("script") not in runs.setdefault(key, []):
            runs[key].append(r.get("script", "?"))
    lines.append("")
    for (date, machine, python, commit), scripts in runs.items():
        lines.append(f"Run {date} on {machine}, Python {python}, commit {commit}: "
                     f"{', '.join(scripts)}.")
    data = json.dumps(rows, ensure_ascii=False, indent=None).replace("-->", "--\\u003e")
    lines += ["", f"{DATA}", data, "-->", END]
    return "\n".join(lines)


def write_summary(md: Path, outcomes: list[Outcome], info: dict, quick: bool) -> list[dict]:
    """Replace the table between the markers; keep rows of scripts that did not run."""
    text = md.read_text(encoding="utf-8") if md.exists() else "# Benchmarks\n"
    ran = {o.script.name for o in outcomes}
    new = [dict(r, script=o.script.name, run=info, **({"quick": True} if quick else {}))
           for o in outcomes for r in o.rows]
    order = {s.name: i for i, s in enumerate(SCRIPTS)}
    kept = [r for r in stored_rows(text) if r.get("script") not in ran]
    rows = sorted(kept + new, key=lambda r: order.get(r.get("script"), len(order)))
    block = render(rows)
    if START in text and END in text:
        text = text[:text.index(START)] + block + text[text.index(END) + len(END):]
    else:  # before the first section, after the title and its paragraph
        at = text.find("\n## ")
        text = (text.rstrip("\n") + "\n\n" + block + "\n") if at < 0 else (
            text[:at + 1] + block + "\n\n" + text[at + 1:])
    tmp = md.with_name(md.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, md)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", help="Comma-separated script names (see --list).")
    ap.add_argument("--skip", help="Comma-separated script names not to run.")
    ap.add_argument("--quick", action="store_true", help="Smaller sizes, fewer rounds: a smoke "
                    "run. Leaves BENCHMARKS.md alone unless --md is given.")
    ap.add_argument("--timeout", type=float, default=None, help="Seconds per script "
                    "(default: none).")
    ap.add_argument("--md", type=Path, default=None, help="The file whose summary table to "
                    "rewrite (default: BENCHMARKS.md; --quick: none).")
    ap.add_argument("--bench-dir", type=Path, default=Path(__file__).resolve().parent,
                    help=argparse.SUPPRESS)  # tests run a fake bench folder
    ap.add_argument("--list", action="store_true", help="List the scripts and exit.")
    a = ap.parse_args(argv)
    if a.list:
        for s in SCRIPTS:
            print(f"{s.name:16s} python bench/{s.file} {' '.join(s.args)}".rstrip()
                  + (f"   (quick: {' '.join(s.quick)})" if s.quick else "")
                  + ("   [torch]" if s.torch else ""))
        return 0
    names = {s.name for s in SCRIPTS}
    chosen = [x.strip() for x in (a.only or "").split(",") if x.strip()] or [s.name for s in SCRIPTS]
    skip = {x.strip() for x in (a.skip or "").split(",") if x.strip()}
    bad = sorted((set(chosen) | skip) - names)
    if bad:
        ap.error(f"unknown script name(s): {', '.join(bad)}; choose from {', '.join(sorted(names))}")
    scripts = [s for s in SCRIPTS if s.name in chosen and s.name not in skip]
    md = a.md or (None if a.quick else ROOT / "BENCHMARKS.md")
    info = run_info()
    print(f"Benchmarks: {', '.join(s.name for s in scripts)}; {info['date']}; {info['machine']}; "
          f"Python {info['python']}; commit {info['commit']}", flush=True)
    outcomes = []
    with tempfile.TemporaryDirectory(prefix="llmlab-bench-") as tmp:
        for s in scripts:
            outcomes.append(run_script(s, a.bench_dir.resolve(), a.quick, a.timeout, Path(tmp)))
    failed = [o.script.name for o in outcomes if o.returncode != 0]
    print("\n" + render([dict(r, script=o.script.name, run=info, **({"quick": True} if a.quick
                                                                     else {}))
                         for o in outcomes for r in o.rows]).split(DATA)[0].replace(START, ""))
    if md is not None:
        write_summary(md, outcomes, info, a.quick)
        print(f"Summary table rewritten in {md}.")
    if failed:
        print(f"Did not finish: {', '.join(failed)}.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
