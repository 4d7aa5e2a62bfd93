"""The lab's declarations and input validation: fast, and most of it needs no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, strategies as st

from llmlab.errors import UserError
from llmlab.lab.catalog import NAMES, declarations, quantities, spec, specs
from llmlab.lab.experiment import Param


def test_every_experiment_is_declared_with_real_concepts_and_quantities():
    from llmlab.curriculum import default_path, load

    cur = load(default_path())
    assert tuple(specs()) == NAMES
    for s in specs().values():
        assert s.question.endswith("?") and s.concepts and s.quantities, s.name
        missing = [c for c in s.concepts if c not in cur.concepts]
        assert not missing, f"{s.name} names concepts missing from the default course: {missing}"
        assert {"model", "seed"} <= {p.name for p in s.params}
        assert len({q.name for q in s.quantities}) == len(s.quantities)
        s.resolve({})  # the defaults are valid values of their own parameters
    linked = {e for c in cur.concepts.values() for e in c.experiments}
    assert linked <= set(quantities())  # every experiment the course links to exists


def test_declarations_are_plain_json():
    data = json.loads(json.dumps(declarations()))
    sampling = next(d for d in data if d["name"] == "sampling")
    temps = next(p for p in sampling["params"] if p["name"] == "temperatures")
    assert temps["type"] == "list of float" and temps["default"] == [0.5, 1.0, 2.0]
    assert {"name", "unit", "help", "concept", "depends_on"} == set(sampling["quantities"][0])


def test_declarations_import_without_torch(tmp_path):
    """`llmlab lab list` and prediction validation work on the core install (no torch)."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'numpy', 'matplotlib'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import llmlab.lab.catalog as lab\n"
        "assert len(lab.quantities()) == len(lab.NAMES) == 18\n"
        "from llmlab.cli import main\n"
        "sys.argv = ['llmlab', 'lab', 'list', '--json']\n"
        "main()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [d["name"] for d in json.loads(r.stdout)] == list(NAMES)
    code_run = code.replace("'list', '--json'", "'run', 'residual', '--no-record'")
    r = subprocess.run([sys.executable, "-c", code_run], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "pip install -e '.[lab]'" in r.stderr
    assert "Traceback" not in r.stderr


def test_param_parsing_and_messages():
    s = spec("sampling")
    p = s.resolve({"temperatures": "0.7, 1.5", "draws": "10", "top_k": 3})
    assert p["temperatures"] == [0.7, 1.5] and p["draws"] == 10 and p["top_k"] == 3
    assert s.resolve({"temperatures": [2, 0.5]})["temperatures"] == [2.0, 0.5]
    cases = [
        ({"draws": "many"}, "Parameter 'draws' must be int; got 'many'"),
        ({"draws": "0"}, "'draws' is out of range.*1..1000000"),
        ({"draws": True}, "must be int"),
        ({"temperatures": "0,1"}, "'temperatures' is out of range"),
        ({"temperatures": "1,x"}, "must be list of float"),
        ({"temperatures": ","}, "needs at least one value"),
        ({"logits": "nan"}, "finite"),
        ({"draw": "3"}, "Unknown parameter 'draw'.*Did you mean 'draws'.*Valid parameters: "
                        "prompt .*draws \\(int"),
    ]
    for given_, message in cases:
        with pytest.raises(UserError, match=message):
            s.resolve(given_)
    with pytest.raises(UserError, match="one of float32.*int4"):
        spec("anatomy").resolve({"dtypes": "float16,fp8"})
    with pytest.raises(UserError, match="Unknown experiment 'tokenz'. Did you mean 'tokens'"):
        spec("tokenz")


@given(st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=8))
def test_list_params_round_trip_through_their_text_form(values):
    p = Param("lengths", int, (1,), "lengths", many=True, low=1, high=10**6)
    assert p.parse(",".join(map(str, values))) == values
    assert p.parse(values) == values


@given(st.booleans())
def test_bool_params_parse_words(b):
    p = Param("flag", bool, False, "a flag")
    assert p.parse("yes" if b else "off") is b and p.parse(b) is b


@pytest.mark.parametrize("args, words", [
    (["lab", "run", "tokenz"], ["Unknown experiment 'tokenz'", "tokens, sampling"]),
    (["lab", "run", "sampling", "-p", "draw=3"], ["Unknown parameter 'draw'", "draws (int"]),
    (["lab", "run", "sampling", "-p", "draws=lots"], ["must be int", "default 2000"]),
    (["lab", "run", "sampling", "-p", "draws"], ["name=value"]),
    (["lab", "run", "sampling", "-p", "model=gpt-9"], ["Unknown model 'gpt-9'",
                                                       "llmlab lab models"]),
    (["lab", "run", "cost", "-p", "lengths=64"], ["needs at least 2 different values"]),
])
def test_bad_input_exits_1_with_what_is_valid(invoke, args, words):
    """Bad input fails fast (before the model loads) with a message, never a traceback."""
    r = invoke(*args, "--no-record")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in r.stderr, r.stderr
