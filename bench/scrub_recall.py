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

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "secrets" / "forms.jsonl"


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    r = evaluate()
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


if __name__ == "__main__":
    main()
