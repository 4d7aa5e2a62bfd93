"""Letter counting in `tokens`: answers parse robustly, a spelling counts only when it spells
the word, and every accuracy has a Wilson interval (no model: the parsing and the stats)."""

from __future__ import annotations

import pytest

pytest.importorskip("scipy")

from llmlab.lab.experiments.tokens import WORDS, parse_count, spelled_word  # noqa: E402
from llmlab.lab.stats import wilson  # noqa: E402


@pytest.mark.parametrize("text, n", [
    ("12", 12), ("10", 10), ("The letter 'r' appears 12 times in 'strawberry'.", 12),
    ("There are 3 r's in strawberry.", 3), ("It appears twelve times.", 12),
    ("The letter 's' appears four times", 4), ("zero", 0), ("None: it does not appear", 0),
    ("In the list:\n1. s\n2. t\n3. r\nThe letter 'r' appears 2 times.", 2),
    ("The answer is 3.", 3), ("I cannot tell.", None), ("", None),
])
def test_counts_parse_robustly(text, n):
    assert parse_count(text) == n


def test_a_spelling_counts_only_when_it_spells_the_word():
    assert spelled_word("s\nt\nr\na\nw\nb\ne\nr\nr\ny") == "strawberry"
    assert spelled_word("1. B\n2. a\n3. n\n4. a\n5. n\n6. a") == "banana"
    assert spelled_word("- b\n- a\n- n\n- a\n- n\n- a\n") == "banana"
    assert spelled_word("Sure! Here it is:\nb\na\nn\na\nn\na") == "banana"
    assert spelled_word("B-A-N-A-N-A") == "banana"
    assert spelled_word("The word banana has six letters.") != "banana"


def test_the_trial_words_have_true_counts_and_variety():
    assert len(WORDS) >= 30
    assert len({w for w, _ in WORDS}) == len(WORDS)
    counts = {w.count(letter) for w, letter in WORDS}
    assert len(counts) >= 3 and min(counts) >= 1  # not all the same answer


def test_wilson_interval():
    lo, hi = wilson(0, 10)
    assert lo == 0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = wilson(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-4) and hi == pytest.approx(0.7634, abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)  # no trials: no information
