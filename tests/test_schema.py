"""`llmlab.schema`: msgspec's validation failures in llmlab's words, naming the field and
the value given."""

from __future__ import annotations

import pytest

from llmlab import config
from llmlab.events import check_payload
from llmlab.schema import Invalid, convert


@pytest.mark.parametrize("data, words", [
    ({"mastery": {"alpha": 2}}, "mastery.alpha: must be less than or equal to 1 (got 2)"),
    ({"mastery": {"min_days": 0}}, "mastery.min_days: must be greater than or equal to 1 (got 0)"),
    ({"learner": {"depth": "x"}}, "learner.depth: must be 'overview', 'working' or 'deep' (got 'x')"),
    ({"learner": {"scope": "x" * 301}}, "learner.scope: must be at most 300 characters"),
    ({"settings": {"port": "80"}}, "settings.port: must be an integer, not text (got '80')"),
    ({"mastery": {"colour": 1}}, "mastery: unknown field 'colour'"),
])
def test_config_problems_name_the_key_and_the_value(data, words):
    with pytest.raises(Invalid) as e:
        convert(data, config.Config)
    assert str(e.value).startswith(words), str(e.value)


@pytest.mark.parametrize("type_, data, words", [
    ("observation", {"concept": "a", "quality": 0.5, "evidence": "e"},
     "missing required field 'probe'"),
    ("observation", {"concept": "a", "quality": 0.5, "evidence": "", "probe": ""},
     "evidence: must not be empty"),
    ("note", {"text": "  "}, "text: must not be blank"),
    ("note", {"text": "x", "concepts": ["a"] * 11}, "concepts: must have at most 10 items"),
    ("prediction", {"experiment": "e", "quantity": "q", "value": float("inf"), "note": ""},
     "value: must be a finite number"),
    ("retraction", {"target": "evt_1", "reason": "r"}, "target: must be an event id"),
    ("experiment_run", {"experiment": "e", "run_id": "r", "comparisons": [{"prediction": 1}]},
     "comparisons.0.prediction: must be text, not an integer (got 1)"),
    ("note", {"text": "\ud800"}, "text contains a lone surrogate"),
])
def test_payload_problems_name_the_field(type_, data, words):
    with pytest.raises(Invalid) as e:
        check_payload(type_, data)
    assert str(e.value).startswith(words), str(e.value)


def test_a_valid_payload_comes_back_normalised():
    assert check_payload("note", {"text": " learns by example ", "tags": ["gap", "gap"]}) == \
        {"text": "learns by example", "concepts": [], "tags": ["gap"]}
    q = check_payload("observation", {"concept": "a", "quality": 1, "evidence": "e",
                                      "probe": ""})["quality"]
    assert q == 1.0 and type(q) is float  # written to the log as 1.0, as pydantic did
