"""The default concept vectors are the newest *recorded* concept_vectors run of the workspace:
a --no-record run (or a retracted one) never becomes the default (no model needed)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from llmlab import api  # noqa: E402
from llmlab.errors import UserError  # noqa: E402
from llmlab.lab.readout import find_readout  # noqa: E402


def _folder(ws, run_id):
    d = ws.runs_dir / run_id
    d.mkdir(parents=True)
    (d / "readout.json").write_text("{}")
    return d


def test_a_no_record_run_never_becomes_the_default_vectors(ws):
    with pytest.raises(UserError, match="No recorded concept vectors"):
        find_readout(ws, "")
    _folder(ws, "20261101-000000-concept_vectors-aaaa")  # written with --no-record
    with pytest.raises(UserError, match="No recorded concept vectors"):
        find_readout(ws, "")
    rec = _folder(ws, "20261102-000000-concept_vectors-bbbb")
    api.record_experiment_run(ws, "concept_vectors", rec.name, {}, {}, {}, [])
    _folder(ws, "20261103-000000-concept_vectors-cccc")  # newer, but not recorded
    assert find_readout(ws, "") == rec
    assert find_readout(ws, "20261103-000000-concept_vectors-cccc").name.endswith("cccc")  # by id
    newer = _folder(ws, "20261104-000000-concept_vectors-dddd")
    ev, _ = api.record_experiment_run(ws, "concept_vectors", newer.name, {}, {}, {}, [])
    assert find_readout(ws, "") == newer
    api.retract(ws, ev.id, "bad corpus")
    assert find_readout(ws, "") == rec  # a retracted run is not the default either
