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
sys.path.insert(0, str(Path(__file__).parent))

from _summary import row as summary_row  # noqa: E402

from llmlab import api, compact, tutor  # noqa: E402
from llmlab.create import create_workspace  # noqa: E402

from test_context_budget import FOCUS, big_log  # noqa: E402
from test_stop_precision import SETS, pairs, scores  # noqa: E402


def chars(obj) -> int:
    return len(json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, nargs="+", default=[21, 2_000, 10_000])
    args = ap.parse_args()
    print("| events | get_state (compact) | get_state (full) | get_concept | next_probes (10) |")
    print("|---|---|---|---|---|")
    for n in args.events:
        with tempfile.TemporaryDirectory() as d:
            ws = create_workspace(Path(d) / "ws", name="Bench Learner")
            big_log(ws, n)
            full = api.state(ws)
            row = [chars(api.state_compact(ws)), chars(full),
                   chars(api.concept_compact(ws, FOCUS, compact.MAX_EVENTS_PAGE)),
                   chars({"next": api.next_compact(ws, compact.MAX_NEXT)})]
            print(f"| {n:,} | " + " | ".join(f"{x:,}" for x in row) + " |")
            if n == max(args.events):
                for what, x, limit in (("get_state (compact)", row[0], 8_000),
                                       ("get_concept (10 events)", row[2], 8_000),
                                       ("next_probes (10)", row[3], 4_000)):
                    summary_row(f"{what}, {n:,} events, characters", target=f"<= {limit:,}",
                                measured=f"{x:,}", ratio=f"{x / limit:.2f}x limit",
                                met=x <= limit)
    with tempfile.TemporaryDirectory() as d:
        texts = tutor.render(create_workspace(Path(d) / "ws", name="Bench Learner"))
        print(f"\nAGENTS.md {len(texts[tutor.AGENTS]):,} + CLAUDE.md {len(texts[tutor.CLAUDE]):,}"
              f" = {sum(map(len, texts.values())):,} characters (default course)")
        total = sum(map(len, texts.values()))
        summary_row("AGENTS.md + CLAUDE.md, default course, characters", target="<= 16,000",
                    measured=f"{total:,}", ratio=f"{total / 16_000:.2f}x limit",
                    met=total <= 16_000)
    for name in SETS:
        s = scores(pairs(name))
        print(name, len(pairs(name)), s)
        held = name == SETS[-1]  # the one set never used to write the rules
        summary_row(f"Stop hook answer test, {name} ({'held out' if held else 'in-sample'}, "
                    f"{len(pairs(name))} pairs)", target="precision >= 0.9, recall >= 0.8",
                    measured=f"precision {s['precision']:.2f}, recall {s['recall']:.2f}",
                    met=s["precision"] >= 0.9 and s["recall"] >= 0.8)


if __name__ == "__main__":
    main()
