"""Scrubbing recall on the secret-forms fixture (issue 17).

Each line of `tests/fixtures/secrets/forms.jsonl` is a text with the secrets it holds
(`expect: redact`) or an ordinary text that must stay as it is (`expect: keep`). A form
counts as caught when none of its secret substrings survives scrubbing (the transcript
pipeline's `Scrubber`, every layer). Prints recall, the leaks (listed forms of issue 17
first) and the false positives.

    .venv/bin/python bench/scrub_recall.py           # a report for people
    .venv/bin/python bench/scrub_recall.py --json    # the same, for programs
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from llmlab.transcript.scrub import Known, Scrubber

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "secrets" / "forms.jsonl"
# Throughput text: the transcript fixtures, the README and api.py, in 2,000-character strings
THROUGHPUT = [ROOT / "tests" / "fixtures" / "transcript", ROOT / "README.md",
              ROOT / "src" / "llmlab" / "api.py"]


def evaluate(path: Path = FIXTURE) -> dict:
    forms = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    s = Scrubber(Known())
    t0 = time.perf_counter()
    leaks, listed_leaks, false_pos, caught = [], [], [], 0
    positives = [f for f in forms if f["expect"] == "redact"]
    for f in forms:
        out = s(f["text"], "fixture")
        if f["expect"] == "redact":
            if any(sec in out for sec in f["secrets"]):
                (listed_leaks if f["listed"] else leaks).append(f["id"] + " " + f["form"])
            else:
                caught += 1
        elif out != f["text"]:
            false_pos.append(f"{f['id']} {f['text']!r} -> {out!r}")
    return {"forms": len(positives), "listed_forms": sum(f["listed"] for f in positives),
            "caught": caught, "recall": caught / len(positives),
            "listed_leaks": listed_leaks, "other_leaks": leaks,
            "negatives": len(forms) - len(positives), "false_positives": false_pos,
            "seconds": round(time.perf_counter() - t0, 3)}


def throughput(paths: list[Path] = THROUGHPUT, size: int = 2_000, mb: float = 4.0) -> dict:
    """Set-up time of a fresh `Scrubber` (its first call), then MB/s over ordinary text in
    `size`-character strings, the files repeated to about `mb` MB (the Scrubber keeps no
    cache, so a repeat costs what the first pass did)."""
    files = [f for p in paths for f in (sorted(p.rglob("*")) if p.is_dir() else [p])
             if f.is_file()]
    text = "".join(f.read_text(encoding="utf-8", errors="replace") for f in files)
    text *= max(1, round(mb * 1e6 / max(1, len(text.encode("utf-8")))))
    chunks = [text[i:i + size] for i in range(0, len(text), size)]
    t0 = time.perf_counter()
    s = Scrubber(Known())
    s(chunks[0], "bench")
    t1 = time.perf_counter()
    for c in chunks[1:]:
        s(c, "bench")
    sec = time.perf_counter() - t1
    size_mb = len(text.encode("utf-8")) / 1e6
    return {"files": len(files), "mb": round(size_mb, 2), "setup_s": round(t1 - t0, 2),
            "seconds": round(sec, 2), "mb_per_s": round(size_mb / sec, 2)}


def main() -> None:
    from _summary import row  # bench/ is on the path when run as a script (tests import evaluate)

    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    r = evaluate()
    r["throughput"] = throughput()
    listed = r["listed_forms"] - len(r["listed_leaks"])
    row("scrubbing: secret forms listed in issue 17 caught", target="all",
        measured=f"{listed}/{r['listed_forms']}", met=not r["listed_leaks"])
    row("scrubbing: ordinary texts left unchanged", target="all",
        measured=f"{r['negatives'] - len(r['false_positives'])}/{r['negatives']}",
        met=not r["false_positives"])
    row("scrubbing: recall over every secret form in the fixture", target="",
        measured=f"{r['caught']}/{r['forms']} = {r['recall']:.1%}")
    if ap.parse_args().json:
        print(json.dumps(r, indent=2))
        return
    print(f"# {platform.node()} {platform.machine()} python {platform.python_version()}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"recall: {r['caught']}/{r['forms']} = {r['recall']:.1%} "
          f"({r['listed_forms']} forms listed in issue 17: {len(r['listed_leaks'])} leaked)")
    for x in r["listed_leaks"] + r["other_leaks"]:
        print(f"  leak: {x}")
    print(f"ordinary texts changed: {len(r['false_positives'])}/{r['negatives']}")
    for x in r["false_positives"]:
        print(f"  false positive: {x}")
    t = r["throughput"]
    print(f"throughput: {t['mb']} MB ({t['files']} files, repeated, in 2,000-character strings)"
          f" in {t['seconds']} s = {t['mb_per_s']} MB/s, after {t['setup_s']} s of set-up (a "
          "fresh Scrubber's first call, the detect-secrets import included)")


if __name__ == "__main__":
    main()
