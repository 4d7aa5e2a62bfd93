"""The concept corpus: layout validation (every kind of mistake), the starter corpus, pairs.
No model needed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmlab.errors import UserError
from llmlab.lab import corpus

MINI = Path(__file__).parent / "fixtures" / "concepts_mini"


@pytest.fixture
def mini(tmp_path) -> Path:
    root = tmp_path / "corpus"
    shutil.copytree(MINI, root)
    return root


def problems(root, **kw) -> str:
    with pytest.raises(UserError) as e:
        corpus.load(root, **{"min_positives": 3, **kw})
    return str(e.value)


def test_the_mini_corpus_is_valid_and_counts_add_up(mini):
    c = corpus.load(mini, min_positives=3)
    assert c.concepts == ["anxious", "calm", "curious"]
    assert {k: len(v) for k, v in c.positives.items()} == {"anxious": 4, "calm": 4, "curious": 4}
    assert [t.text for t in c.baselines][0].startswith("Sam stood at the bus stop")
    assert len(c.neutral) == 2
    # negatives: the other concepts' positives, the baselines, the neutral texts
    neg = c.negatives("calm")
    assert len(neg) == 4 + 4 + 1 + 2 and not any(t in c.positives["calm"] for t in neg)
    s = c.summary()
    assert s["unique_texts"] == 4 * 3 + 1 + 2 == len(c.unique_texts())
    assert s["text_uses"] == 3 * (4 + 11) and s["forwards_saved"] == 45 - 15


def test_pairs_contrast_same_scene_and_use_every_negative(mini):
    c = corpus.load(mini, min_positives=3)
    for concept in c.concepts:
        pairs = c.pairs(concept, seed=0)
        assert all(p in c.positives[concept] for p, _ in pairs)
        assert all(n not in c.positives[concept] for _, n in pairs)
        scene = [(p, n) for p, n in pairs if p.scenario]
        # the paired text meets the baseline and each other concept of the same scene
        assert sorted(n.source for _, n in scene) == sorted(
            f"paired/bus_stop/{x}.txt#1" for x in ["baseline", *c.concepts] if x != concept)
        used = {n.source for _, n in pairs}
        assert {t.source for t in c.negatives(concept)} <= used
        assert c.pairs(concept, seed=0) == pairs and c.pairs(concept, seed=1) != pairs


@given(st.lists(st.text(alphabet="abc xyz.,'", min_size=1, max_size=30)
                .map(lambda t: " ".join(t.split())).filter(bool), max_size=8))
def test_paragraphs_round_trip(paras):
    assert corpus.paragraphs("\n\n".join(paras)) == paras
    assert corpus.paragraphs("\n \n\n".join(p.replace(" ", "\n") for p in paras)) == paras


def test_paragraphs_split_on_blank_lines_and_join_lines():
    assert corpus.paragraphs("a b\nc\n\n\n  d  \n \n\ne\n") == ["a b c", "d", "e"]
    assert corpus.paragraphs("\n \n") == []


def test_missing_folder(tmp_path):
    msg = problems(tmp_path / "nope")
    assert "does not exist" in msg and "stories/<concept>.txt" in msg


def test_no_corpus_folders(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert "none of stories/, paired/, direct/" in problems(tmp_path)


def test_unknown_folder_and_stray_texts_are_named(mini):
    (mini / "storys").mkdir()
    (mini / "proud.txt").write_text("A paragraph.\n")
    (mini / "README.md").write_text("# notes\n")  # other files at the top are fine
    msg = problems(mini)
    assert "storys/: unknown folder (did you mean stories/?)" in msg
    assert "proud.txt: texts belong in stories/, paired/<scenario>/ or direct/" in msg
    assert "2 problems" in msg


def test_empty_file_is_named(mini):
    (mini / "stories" / "calm.txt").write_text("\n\n  \n")
    msg = problems(mini, min_positives=2)
    assert "stories/calm.txt: the file is empty" in msg


def test_too_few_positives_names_the_files(mini):
    msg = problems(mini, min_positives=6)
    assert "concept 'calm' has 4 positive texts (direct/calm.txt, paired/bus_stop/calm.txt, " \
           "stories/calm.txt), fewer than the 6 needed" in msg
    assert "3 problems" in msg  # all three concepts, reported at once


def test_scenario_without_baseline(mini):
    (mini / "paired" / "bus_stop" / "baseline.txt").unlink()
    assert "paired/bus_stop/: no baseline.txt" in problems(mini)


def test_scenario_with_only_a_baseline(mini):
    (mini / "paired" / "lift").mkdir()
    (mini / "paired" / "lift" / "baseline.txt").write_text("The lift stopped at the fourth floor.\n")
    assert "paired/lift/: no concept files next to the baseline" in problems(mini)


def test_non_txt_file_and_bad_names(mini):
    (mini / "stories" / "calm.md").write_text("A paragraph.\n")
    (mini / "stories" / "Very Calm.txt").write_text("A paragraph.\n")
    (mini / "paired" / "stray.txt").write_text("A paragraph.\n")
    msg = problems(mini)
    assert "stories/calm.md: only .txt files belong here" in msg
    assert "stories/Very Calm.txt: concept names are lowercase letters" in msg
    assert "paired/stray.txt: paired/ holds one folder per scenario" in msg
    assert "3 problems" in msg


def test_not_utf8(mini):
    (mini / "direct" / "calm.txt").write_bytes(b"caf\xe9 au lait\n")
    assert re.search(r"direct/calm.txt: not UTF-8 text", problems(mini))


def test_same_text_as_positive_and_negative(mini):
    text = (mini / "stories" / "calm.txt").read_text().split("\n\n")[0]
    (mini / "direct" / "curious.txt").write_text(text + "\n")
    (mini / "direct" / "_neutral.txt").write_text(text + "\n")
    msg = problems(mini, min_positives=2)
    assert "direct/curious.txt#1 repeats stories/calm.txt#1 word for word (calm and curious)" in msg
    assert "direct/_neutral.txt#1 repeats stories/calm.txt#1 word for word (calm and neutral)" in msg


def test_one_concept_is_not_enough(tmp_path):
    (tmp_path / "stories").mkdir()
    (tmp_path / "stories" / "calm.txt").write_text("A.\n\nB.\n\nC.\n")
    assert "at least 2 concepts" in problems(tmp_path)


def test_unknown_concept_filter(mini):
    assert "concept 'anxius' is not in the corpus (did you mean anxious?)" in problems(
        mini, concepts=["anxius"])


def test_concept_filter_keeps_the_others_as_negatives(mini):
    c = corpus.load(mini, min_positives=3, concepts=["calm", "curious"])
    assert c.concepts == ["calm", "curious"]
    anxious = (mini / "direct" / "anxious.txt").read_text().strip()
    assert anxious in [t.text for t in c.negatives("calm")]
    assert len(c.unique_texts()) == 15  # nothing is dropped from the forward passes


def test_the_starter_corpus_meets_its_promises():
    c = corpus.load(None)
    assert len(c.concepts) >= 8 and {"calm", "content", "curious", "surprised"} <= set(c.concepts)
    assert len(c.scenarios) >= 3
    for name, scene in c.scenarios.items():
        assert "baseline" in scene and set(c.concepts) <= set(scene), name
    assert min(len(v) for v in c.positives.values()) >= 6
    assert c.neutral
    # stories show the concept without naming it
    for concept in c.concepts:
        for t in c.positives[concept]:
            if t.source.startswith(("stories/", "paired/")):
                assert not re.search(rf"\b{concept}\b", t.text, re.I), t.source
    # and the stories spread over several settings: no two paragraphs alike across concepts
    assert len(c.unique_texts()) == len(c.all_texts())


def test_corpus_command_counts_and_reports_mistakes(invoke, mini):
    r = invoke("lab", "corpus", str(mini), "--min-positives", "3", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["concepts"] == {"anxious": 4, "calm": 4, "curious": 4}
    assert (info["unique_texts"], info["text_uses"], info["forwards_saved"]) == (15, 45, 30)
    r = invoke("lab", "corpus")  # the starter corpus, as a table
    assert r.returncode == 0 and "surprised" in r.stdout and "180 unique texts" in r.stdout
    (mini / "stories" / "calm.txt").write_text("")
    r = invoke("lab", "corpus", str(mini))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "stories/calm.txt: the file is empty" in r.stderr
    assert "concept 'anxious' has 4 positive texts" in r.stderr


def test_shuffled_control_keeps_texts_and_counts_but_not_labels(mini):
    c = corpus.load(mini, min_positives=3)
    s = c.shuffled(seed=0)
    assert s.concepts == c.concepts
    assert {k: len(v) for k, v in s.positives.items()} == {k: len(v) for k, v in c.positives.items()}
    assert sorted(t.text for t in s.all_texts()) == sorted(t.text for t in c.all_texts())
    assert any({t.text for t in s.positives[k]} != {t.text for t in c.positives[k]}
               for k in c.concepts)
    assert not s.scenarios and all(t.scenario is None for k in s.concepts for t in s.positives[k])
    assert [t.group for k in s.concepts for t in s.positives[k]] != []  # groups kept for folds
    for k in s.concepts:
        assert all(p in s.positives[k] and n not in s.positives[k] for p, n in s.pairs(k))
