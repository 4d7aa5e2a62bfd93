"""Judge calibration statistics against hand-computed values, and `llmlab eval calibrate`
as a user runs it (bad files get a clear error and exit 1)."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("scipy")

from llmlab.errors import UserError  # noqa: E402
from llmlab.lab import judge  # noqa: E402


def rows(pairs, dim="all"):
    return [{"item": str(i), "dimension": dim, "human": float(h), "judge": float(j)}
            for i, (h, j) in enumerate(pairs)]


def test_statistics_by_hand():
    rep = judge.calibrate(rows(zip([1, 2, 3, 4, 5], [2, 2, 4, 4, 5])), threshold=3)
    g = rep["groups"][0]
    assert g["pearson"] == pytest.approx(8 / math.sqrt(72))  # 0.9428
    assert g["spearman"] == pytest.approx(9 / math.sqrt(90))  # ties get mean ranks
    assert g["mae"] == pytest.approx(0.4) and g["bias"] == pytest.approx(0.4)
    assert g["judge_higher"] == 0.4 and g["judge_lower"] == 0.0
    assert g["kappa"] == 1.0 and (g["tp"], g["fp"], g["fn"], g["tn"]) == (3, 0, 0, 2)
    assert g["pearson_lo"] <= g["pearson"] <= g["pearson_hi"] + 1e-9


def test_kappa_of_the_study_pages_worked_example():
    # 80 human passes, 20 fails; the judge passes 78 of the 80 and 12 of the 20
    data = [(4, 4)] * 78 + [(4, 2)] * 2 + [(2, 4)] * 12 + [(2, 2)] * 8
    g = judge.calibrate(rows(data), threshold=3)["groups"][0]
    assert g["agreement"] == pytest.approx(0.86)
    assert g["kappa"] == pytest.approx((0.86 - 0.74) / (1 - 0.74))  # 0.46
    assert g["kappa_lo"] < g["kappa"] < g["kappa_hi"]
    assert judge.kappa([True] * 9 + [False], [True] * 10) == 0.0  # always "pass": no skill


def test_per_dimension_and_constant_columns():
    data = rows([(1, 3), (5, 3), (3, 3)], "tone") + rows([(1, 1), (2, 2), (4, 5)], "facts")
    rep = judge.calibrate(data)
    by = {g["dimension"]: g for g in rep["groups"]}
    assert set(by) == {"all", "tone", "facts"} and by["all"]["n"] == 6
    assert by["tone"]["pearson"] != by["tone"]["pearson"]  # undefined for a constant judge
    assert json.loads(json.dumps(judge.plain(rep)))["groups"][2]["pearson"] is None
    assert "undefined" in " ".join(judge.lines(rep))


def test_bad_score_files(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("item,human\na,1\n")
    with pytest.raises(UserError, match="lacks the column.*judge.*it has item, human"):
        judge.read_scores(p)
    p.write_text("item,human,judge\na,1,2\nb,3,good\nc,2,2\n")
    with pytest.raises(UserError, match="line 3 \\(item b\\): the judge score 'good' is not a number"):
        judge.read_scores(p)
    p.write_text("item,human,judge\na,1,2\n")
    with pytest.raises(UserError, match="at least 3"):
        judge.read_scores(p)


def test_eval_calibrate_cli(cli, tmp_path, ws):
    p = tmp_path / "scores.csv"
    p.write_text("item,dimension,human,judge\n" + "".join(
        f"i{i},{'a' if i % 2 else 'b'},{h},{j}\n"
        for i, (h, j) in enumerate([(1, 2), (2, 2), (3, 4), (4, 4), (5, 5), (2, 1)])))
    r = cli("eval", "calibrate", str(p), "--json", "--figure", str(tmp_path / "rel.png"))
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert [g["dimension"] for g in rep["groups"]] == ["all", "a", "b"]
    assert rep["groups"][0]["mae"] == pytest.approx(3 / 6)
    assert (tmp_path / "rel.png").read_bytes()[:4] == b"\x89PNG"
    r = cli("eval", "calibrate", str(p))
    assert r.returncode == 0 and "kappa" in r.stdout and "Pearson" in r.stdout
    log = (ws.root / "evidence.jsonl").read_bytes()
    p.write_text("item,human,score\na,1,2\n")
    r = cli("eval", "calibrate", str(p))
    assert r.returncode == 1 and "lacks the column(s) judge" in r.stderr
    assert "Traceback" not in r.stderr
    p.write_text("item,human,judge\na,1,2\nb,x,2\nc,1,1\n")
    r = cli("eval", "calibrate", str(p))
    assert r.returncode == 1 and "'x' is not a number" in r.stderr
    assert (ws.root / "evidence.jsonl").read_bytes() == log
