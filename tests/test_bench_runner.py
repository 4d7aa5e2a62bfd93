"""bench/run_all.py (`make bench`): every script runs to the end, a failing one becomes a
row, and only the summary table between the markers in BENCHMARKS.md is rewritten."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN_ALL = ROOT / "bench" / "run_all.py"

FAKE = {
    # two targets, one met and one missed; a pipe in a cell must not break the table
    "startup_bench.py": """
from _summary import row
print("## CLI start-up (fake)")
row("`llmlab state` start-up", target="<= 5x", measured="12.0x | slow", ratio="340 ms / 28 ms",
    met=False)
row("`llmlab --help` start-up", target="<= 8x", measured="5.1x", met=True)
""",
    # fails half-way, after one row
    "engine_bench.py": """
import sys
from _summary import row
row("append p50 at 100,000 events", target="<= 15 ms", measured="8.1 ms", met=True)
print("boom: the log is gone", flush=True)
sys.exit(3)
""",
    # runs to the end without reporting a target
    "context_bench.py": "print('nothing to report')\n",
}

BEFORE = """# Benchmarks

Every figure here was produced by a script under `bench/`.

## Tutor state engine (issue 2)

| events | append p50 |
|---|---|
| 1,000 | 4.43 |
"""


def fake_bench(tmp_path: Path) -> Path:
    d = tmp_path / "bench"
    d.mkdir()
    shutil.copy(ROOT / "bench" / "_summary.py", d / "_summary.py")
    for name, code in FAKE.items():
        (d / name).write_text(code)
    return d


def run_all(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(RUN_ALL), *args], capture_output=True, text=True,
                          timeout=300)


def table(text: str) -> list[list[str]]:
    block = text[text.index("<!-- summary:start -->"):text.index("<!-- summary:end -->")]
    lines = [x for x in block.splitlines() if x.startswith("| ") and not x.startswith("| what")]
    return [[c.strip() for c in x.strip("|").split(" | ")] for x in lines]


def test_runs_every_script_records_failures_and_rewrites_only_the_table(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(BEFORE)
    bench = fake_bench(tmp_path)
    r = run_all("--only", "startup,engine,context", "--bench-dir", str(bench), "--md", str(md))
    assert r.returncode == 1, r.stderr  # one script failed, and the others still ran
    assert "boom: the log is gone" in r.stdout and "nothing to report" in r.stdout
    text = md.read_text()
    assert text.count("<!-- summary:start -->") == text.count("<!-- summary:end -->") == 1
    # the table went in before the first section; everything else is byte for byte the same
    start, end = text.index("<!-- summary:start -->"), text.index("<!-- summary:end -->")
    assert text[:start] + text[end + len("<!-- summary:end -->"):].lstrip("\n") == BEFORE
    assert text.index("## Summary") < text.index("## Tutor state engine")
    rows = table(text)
    by_what = {x[0]: x for x in rows}
    assert by_what["`llmlab state` start-up"][1:5] == ["<= 5x", "12.0x \\| slow",
                                                        "340 ms / 28 ms", "**no**"]
    assert by_what["`llmlab --help` start-up"][4] == "yes"
    assert by_what["append p50 at 100,000 events"][4] == "yes"  # rows before a failure count
    failed = by_what["`engine_bench.py` did not finish"]
    assert failed[1] == "runs to the end" and failed[2].startswith("exit 3: boom")
    assert failed[4] == "**no**" and failed[6] == "`python bench/engine_bench.py`"
    assert by_what["`context_bench.py` reported no target"][4] == "-"
    for x in rows:
        assert len(x) == 7 and x[5].replace(".", "").isdigit()  # the load average
    assert by_what["`llmlab state` start-up"][6] == "`python bench/startup_bench.py`"
    assert "Python" in text[start:end] and "CPUs" in text[start:end] and "UTC" in text[start:end]


def test_a_partial_run_keeps_the_other_scripts_rows_and_the_rest_of_the_file(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(BEFORE)
    bench = fake_bench(tmp_path)
    assert run_all("--only", "startup,engine", "--bench-dir", str(bench),
                   "--md", str(md)).returncode == 1
    first = md.read_text()
    # a later section edited by hand, then only `startup` again, now with one target
    edited = first.replace("| 1,000 | 4.43 |", "| 1,000 | 4.40 |")
    md.write_text(edited)
    (bench / "startup_bench.py").write_text(
        "from _summary import row\nrow('`llmlab state` start-up', target='<= 5x', "
        "measured='4.2x', met=True)\n")
    r = run_all("--only", "startup", "--bench-dir", str(bench), "--md", str(md))
    assert r.returncode == 0, r.stdout + r.stderr
    text = md.read_text()
    whats = [x[0] for x in table(text)]
    assert whats == ["`llmlab state` start-up", "append p50 at 100,000 events",
                     "`engine_bench.py` did not finish"]  # startup replaced, engine kept
    assert table(text)[0][2:5] == ["4.2x", "", "yes"]
    end = text.index("<!-- summary:end -->") + len("<!-- summary:end -->")
    assert text[end:] == edited[edited.index("<!-- summary:end -->") + len("<!-- summary:end -->"):]
    rows = json.loads(text[text.index("<!-- summary:data") + len("<!-- summary:data"):
                           text.index("-->", text.index("<!-- summary:data"))])
    assert {r["script"] for r in rows} == {"startup", "engine"}


def test_bad_names_are_refused_and_a_quick_run_leaves_benchmarks_md_alone(tmp_path):
    r = run_all("--only", "engin")
    assert r.returncode == 2 and "unknown script name(s): engin" in r.stderr
    before = (ROOT / "BENCHMARKS.md").read_bytes()
    r = run_all("--only", "modelcheck", "--quick")  # the real script, small
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert (ROOT / "BENCHMARKS.md").read_bytes() == before
    assert "| false mastery of the mastered verdict, default tutor" in r.stdout
    assert "`python bench/modelcheck_bench.py --quick`" in r.stdout


def test_make_bench_runs_every_script_under_bench():
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_all", RUN_ALL)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["run_all"] = mod  # its dataclasses look their module up
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules["run_all"]
    helpers = {"_summary.py", "run_all.py", "transcript_gen.py"}  # imported by the benches, not run alone
    scripts = {p.name for p in (ROOT / "bench").glob("*.py")} - helpers
    assert scripts == {s.file for s in mod.SCRIPTS}
    assert "bench/run_all.py" in (ROOT / "Makefile").read_text()
