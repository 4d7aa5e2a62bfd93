"""The Stop hook's "unrecorded answer" test on labelled tutor/learner turn pairs (issue 18,
item 2): precision >= 0.9 and recall >= 0.8 on the labelled set, and the figures on data the
rules never saw.

Four sets, in the order they were written (history and figures in BENCHMARKS.md):

- `turn_pairs.jsonl` (85 pairs): the rules were developed on it (in-sample);
- `turn_pairs_heldout.jsonl` (30): scored once (precision 0.68), then the rules were revised
  on it, so it is in-sample too;
- `turn_pairs_heldout2.jsonl` (50, fresh phrasings): scored once with the first rules
  (precision 0.71, recall 0.96), then used to develop the simpler second rules: in-sample;
- `turn_pairs_heldout3.jsonl` (50, fresh phrasings): written before the second rules and
  scored once with them, never used to change them: the held-out figure, **precision 0.83,
  recall 1.00**. The floor asserted on it (0.8 / 0.9) is what was reached, not the target.

Each pair is the tutor's last message, the learner's reply and whether it is a substantive
answer to a probe (what the hook should remind about); `kind` says what the other replies are.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from llmlab.plugin.answer import is_answer
from llmlab.plugin.turn import Turn

FIXTURES = Path(__file__).parent / "fixtures" / "hooks"
SETS = ("turn_pairs.jsonl", "turn_pairs_heldout.jsonl", "turn_pairs_heldout2.jsonl",
        "turn_pairs_heldout3.jsonl")
# (precision, recall) floors: the targets on the sets the rules were written on, and
# on the held-out set the figures it reached when scored once (0.83, 1.00), not the target
FLOORS = {"turn_pairs.jsonl": (0.9, 0.8), "turn_pairs_heldout.jsonl": (0.9, 0.8),
          "turn_pairs_heldout2.jsonl": (0.9, 0.8), "turn_pairs_heldout3.jsonl": (0.8, 0.9)}
KINDS = {"answer", "acknowledgement", "small_talk", "meta", "learner_question"}


def pairs(name: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


def scores(rows: list[dict]) -> dict:
    c = Counter((r["answer"], is_answer(r["probe"], r["reply"])) for r in rows)
    tp, fp, fn = c[True, True], c[False, True], c[True, False]
    return {"precision": tp / (tp + fp), "recall": tp / (tp + fn), "tp": tp, "fp": fp, "fn": fn}


def test_the_labelled_sets_are_what_they_claim():
    rows = [r for name in SETS for r in pairs(name)]
    assert len(pairs(SETS[0])) >= 60 and len(pairs(SETS[3])) >= 40
    kinds = Counter(r["kind"] for r in rows)
    assert set(kinds) == KINDS and min(kinds.values()) >= 8, kinds
    assert all(r["answer"] == (r["kind"] == "answer") for r in rows)
    assert len({(r["probe"], r["reply"]) for r in rows}) == len(rows)  # no duplicates


@pytest.mark.parametrize("name", SETS)
def test_reminder_precision_and_recall(name):
    s = scores(pairs(name))
    precision, recall = FLOORS[name]
    print(name, s)  # the figures, with -s
    assert s["precision"] >= precision and s["recall"] >= recall, s


def test_the_held_out_set_is_new():
    """No tutor message of the held-out set appears in the sets the rules were written on
    (a one-word reply such as "ready" may)."""
    seen = {r["probe"] for name in SETS[:3] for r in pairs(name)}
    assert not [r for r in pairs(SETS[3]) if r["probe"] in seen]


def test_the_hook_uses_the_same_test():
    """The Stop hook's Turn decides with `is_answer`; a slash command is never an answer."""
    t = Turn()
    t.probe, t.prompt = "Shall we start there?", "Yes, let's go"
    assert not t.answered_probe
    t.probe, t.prompt = "Logits 4 and 1: what probabilities does softmax give?", "0.95 and 0.05"
    assert t.answered_probe
    t.command = True
    assert not t.answered_probe


if __name__ == "__main__":  # the figures for BENCHMARKS.md
    for name in SETS:
        print(name, len(pairs(name)), scores(pairs(name)))
