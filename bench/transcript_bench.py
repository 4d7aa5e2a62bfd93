"""Transcript publisher benchmark (issue 6).

    .venv/bin/pip install -e '.[bench]'      # claude-code-log, claude-code-transcripts
    .venv/bin/python bench/transcript_bench.py            # 100 MB log: ours vs claude-code-log
    .venv/bin/python bench/transcript_bench.py --with-transcripts   # also claude-code-transcripts (slow)
    .venv/bin/python bench/transcript_bench.py --hard-case          # fixture through every tool

The 100 MB log is generated from the hard-case fixture session
(tests/fixtures/transcript/): its records are repeated with fresh uuids, chained by
parentUuid, one cycle every 30 minutes, and its Read results carry a realistic file body
(numbered source lines, as Claude Code's Read tool returns them). Each tool runs as a
fresh process; wall time is measured around it and peak memory is the child's maximum
resident set size (getrusage RUSAGE_CHILDREN in a wrapper process, per tool).
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
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "transcript" / "claude" / "-home-alice-llm-course"
SID = "0b6f6f0e-1c1a-4b7e-9a51-3c2b8d9e0a11"
BIN = Path(sys.executable).parent
XSS = "<script>window.pwned=1</script>"


def file_body(n_lines: int, seed: int) -> str:
    """A Read result: numbered lines of real Python source (this repository's own)."""
    src = [ln for p in sorted((ROOT / "src" / "llmlab").rglob("*.py")) for ln in p.read_text().splitlines()]
    start = (seed * 97) % max(1, len(src) - n_lines)
    return "\n".join(f"{i + 1:>6}\t{src[start + i]}" for i in range(n_lines))


def generate(path: Path, target_bytes: int) -> dict:
    base = [json.loads(ln) for ln in (FIX / f"{SID}.jsonl").read_text().splitlines()
            if ln.strip() and ln.startswith("{") and ln.endswith("}")]
    base = [r for r in base if r.get("type") != "summary"]
    t0 = datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc)
    size = records = cycles = 0
    prev_last = None
    with open(path, "w", encoding="utf-8") as f:
        while size < target_bytes:
            k = cycles
            remap = {}
            last = None
            for r in base:
                r = json.loads(json.dumps(r))
                for key in ("uuid", "parentUuid", "logicalParentUuid"):
                    if isinstance(r.get(key), str):
                        r[key] = f"{r[key]}-{k}"
                if r.get("uuid") and r.get("parentUuid") is None and r.get("type") == "user" and prev_last:
                    r["parentUuid"] = prev_last  # chain the cycles together
                if isinstance(r.get("timestamp"), str):
                    ts = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
                    r["timestamp"] = (t0 + timedelta(minutes=30 * k) + (ts - datetime(2025, 6, 1, 9, 0, tzinfo=timezone.utc))
                                      % timedelta(hours=1)).isoformat().replace("+00:00", "Z")
                msg = r.get("message")
                if isinstance(msg, dict):
                    if "id" in msg:
                        msg["id"] = f"{msg['id']}_{k}"
                    for b in msg.get("content") if isinstance(msg.get("content"), list) else []:
                        if b.get("type") == "tool_use":
                            b["id"] = f"{b['id']}_{k}"
                        if b.get("type") == "tool_result":
                            b["tool_use_id"] = f"{b['tool_use_id']}_{k}"
                            if "File does not exist" in str(b.get("content")):
                                b["content"] = file_body(600, k)
                                b["is_error"] = False
                line = json.dumps(r, ensure_ascii=False) + "\n"
                f.write(line)
                size += len(line.encode())
                records += 1
                if r.get("uuid"):
                    last = r["uuid"]
                remap[r.get("uuid")] = True
            prev_last = last
            cycles += 1
    return {"bytes": size, "records": records, "cycles": cycles, "last_uuid": prev_last}


def measure(cmd: list[str], cwd: Path, timeout: int = 1800) -> dict:
    """Run cmd in a fresh wrapper process; wall seconds and the child's peak RSS (MB)."""
    wrapper = ("import json,resource,subprocess,sys,time;t=time.perf_counter();"
               "p=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE);"
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
                lines.append(json.dumps({"type": typ, "uuid": uid, "parentUuid": parent, "sessionId": SID,
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


def big(args) -> dict:
    work = Path(tempfile.mkdtemp(prefix="transcript-bench-"))
    proj = work / "projects" / "-bench-project"
    proj.mkdir(parents=True)
    log = proj / f"{SID}.jsonl"
    gen = generate(log, int(args.mb * 1_000_000))
    print(f"generated {gen['bytes'] / 1e6:.1f} MB, {gen['records']:,} records -> {log}", file=sys.stderr)
    res = {"machine": machine(), "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "log": gen, "versions": versions(), "runs": {}}
    ours = [str(BIN / "python"), "-m", "llmlab", "transcript", "build", str(log), "--out", str(work / "ours"),
            "--tz", "UTC", "--force"]
    ccl = [str(BIN / "claude-code-log"), str(log), "-o", str(work / "ccl" / "out.html"), "--no-cache"]
    runs = [("llmlab transcript", ours), ("claude-code-log", ccl)]
    if args.with_transcripts:
        runs.append(("claude-code-transcripts", [str(BIN / "claude-code-transcripts"), "json", str(log), "-o",
                                                 str(work / "cct")]))
    for name, cmd in runs:
        (work / "ccl").mkdir(exist_ok=True)
        print(f"running {name} ...", file=sys.stderr)
        m = measure(cmd, work)
        m["command"] = " ".join(shlex_quote(c) for c in cmd).replace(str(work), "$WORK")
        res["runs"][name] = m
        print(f"  {name}: rc={m['rc']} {m['wall_s']:.2f} s wall, {m['cpu_s']:.2f} s CPU, peak {m['peak_mb']:.0f} MB",
              file=sys.stderr)
    ours_s, ccl_s = res["runs"]["llmlab transcript"]["wall_s"], res["runs"]["claude-code-log"]["wall_s"]
    res["speedup_vs_claude_code_log"] = round(ccl_s / ours_s, 2)
    res["cpu_ratio_vs_claude_code_log"] = round(res["runs"]["claude-code-log"]["cpu_s"]
                                                / res["runs"]["llmlab transcript"]["cpu_s"], 2)
    print("watch-mode update ...", file=sys.stderr)
    res["watch"] = watch_update(log, work / "watch")
    res["work"] = str(work)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return res


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
    ap.add_argument("--mb", type=float, default=100, help="size of the generated log in MB (10^6 bytes)")
    ap.add_argument("--with-transcripts", action="store_true", help="also time claude-code-transcripts (slow)")
    ap.add_argument("--hard-case", action="store_true", help="run the hard-case fixture through every tool")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    res = hard_case(args) if args.hard_case else big(args)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
