"""Context budget (issue 18): characters of the MCP read tools' answers and of the tutor
instructions, at several log sizes.

The answers are measured as the MCP server sends them (compact JSON text, the same
`_result` encoding) from the library calls the tools make; tests/test_context_budget.py
checks the limits through the real MCP client at 2,000 events. The log is synthesised by
the test's generator: every event kind, long texts, custom claims of the maximum length.
Also prints the precision/recall of the Stop hook's answer test on the labelled turn pairs.

    PYTHONPATH=src python bench/context_bench.py [--events 2000 10000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from llmlab import api, compact, tutor  # noqa: E402
from llmlab.create import create_workspace  # noqa: E402

from _summary import row  # noqa: E402
from test_context_budget import FOCUS, LIMITS, big_log  # noqa: E402
from test_stop_precision import SETS, pairs, scores  # noqa: E402


INSTRUCTIONS_LIMIT = 16_000  # issue 18: what the agent reads at every session start


def chars(obj) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[21, 2_000, 10_000])
    args = ap.parse_args()
    print("| events | get_state (compact) | get_state (full) | get_concept | next_probes (10) |")
    print("|---|---|---|---|---|")
    worst = {k: (0, 0) for k in LIMITS}  # tool -> (largest answer, at how many events)
    for n in args.events:
        with tempfile.TemporaryDirectory() as d:
            ws = create_workspace(Path(d) / "ws", name="Bench Learner")
            big_log(ws, n)
            full = api.state(ws)
            sizes = {"get_state": chars(api.state_compact(ws)),
                     "get_concept": chars(api.concept_compact(ws, FOCUS, compact.MAX_EVENTS_PAGE)),
                     "next_probes": chars({"next": api.next_compact(ws, compact.MAX_NEXT)})}
            for k, v in sizes.items():
                worst[k] = max(worst[k], (v, n))
            cells = [sizes["get_state"], chars(full), sizes["get_concept"], sizes["next_probes"]]
            print(f"| {n:,} | " + " | ".join(f"{x:,}" for x in cells) + " |")
    for k, (v, n) in worst.items():
        row(f"MCP `{k}` answer, largest over logs of {', '.join(f'{e:,}' for e in args.events)} "
            "events", target=f"<= {LIMITS[k]:,} characters", measured=f"{v:,} at {n:,} events",
            met=v <= LIMITS[k])
    with tempfile.TemporaryDirectory() as d:
        texts = tutor.render(create_workspace(Path(d) / "ws", name="Bench Learner"))
        total = sum(map(len, texts.values()))
        print(f"\nAGENTS.md {len(texts[tutor.AGENTS]):,} + CLAUDE.md {len(texts[tutor.CLAUDE]):,}"
              f" = {total:,} characters (default course)")
    row("AGENTS.md + CLAUDE.md, default course", target=f"<= {INSTRUCTIONS_LIMIT:,} characters",
        measured=f"{total:,}", met=total <= INSTRUCTIONS_LIMIT)
    for name in SETS:
        sc = scores(pairs(name))
        print(name, len(pairs(name)), sc)
        row(f"Stop hook's answer test on `{name}`" + (" (held out; revised on after its first "
            "score)" if "heldout" in name else " (the rules were written on it)"),
            target="precision >= 0.9, recall >= 0.8",
            measured=f"precision {sc['precision']:.2f}, recall {sc['recall']:.2f}",
            met=sc["precision"] >= 0.9 and sc["recall"] >= 0.8)

if __name__ == "__main__":
    main()
