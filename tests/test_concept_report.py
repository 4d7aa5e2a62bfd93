"""Concept vectors from the CLI in a workspace, and their quality report page in the dashboard,
checked in headless Chromium against report.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmlab.site.build import build
from llmlab.workspace import Workspace

from conftest import invoke_cli
from test_site_browser import browser, page  # noqa: F401  (fixtures)

MINI = Path(__file__).parent / "fixtures" / "concepts_mini"


@pytest.fixture(scope="module")
def lab_ws(tmp_path_factory):
    """A default-course workspace with one recorded concept_vectors run (via the CLI) and a
    built site."""
    pytest.importorskip("torch")
    root = tmp_path_factory.mktemp("cv") / "ws"
    env = {"LLMLAB_HOME": str(root)}
    assert invoke_cli("init", str(root)).returncode == 0
    r = invoke_cli("lab", "run", "concept_vectors", "-p", f"corpus={MINI}", "-p", "min_positives=3",
                   "-p", "layers=5,14", "-p", "folds=3", "--json", env=env)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["event"] and result["metrics"]["unique_texts"] == 15
    b = invoke_cli("site", "build", env=env)
    assert b.returncode == 0, b.stderr
    return Workspace(root), result


@pytest.mark.model
def test_readout_finds_the_newest_vectors_in_the_workspace(lab_ws):
    ws, result = lab_ws
    r = invoke_cli("lab", "run", "concept_readout", "-p", "text=Why does the river bend there?",
                   "--json", env={"LLMLAB_HOME": str(ws.root)})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert f"Vectors from {result['dir']}." in out["summary"]
    assert out["event"] and 1 <= out["metrics"]["concept_rank"] <= 3
    state = json.loads(invoke_cli("state", "--json", env={"LLMLAB_HOME": str(ws.root)}).stdout)
    assert [r["experiment"] for r in state["runs"]][-2:] == ["concept_vectors", "concept_readout"]


@pytest.mark.model
def test_bad_corpus_from_the_cli_is_a_clear_error_and_changes_nothing(lab_ws, tmp_path):
    ws, _ = lab_ws
    before = ws.log_path.read_bytes()
    runs = sorted(p.name for p in ws.runs_dir.iterdir())
    (tmp_path / "stories").mkdir()
    (tmp_path / "stories" / "calm.txt").write_text("")
    (tmp_path / "stories" / "sad.txt").write_text("One.\n\nTwo.\n")
    r = invoke_cli("lab", "run", "concept_vectors", "-p", f"corpus={tmp_path}",
                   env={"LLMLAB_HOME": str(ws.root)})
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "stories/calm.txt: the file is empty" in r.stderr
    assert "concept 'sad' has 2 positive texts (stories/sad.txt), fewer than the 6" in r.stderr
    assert ws.log_path.read_bytes() == before
    assert sorted(p.name for p in ws.runs_dir.iterdir()) == runs


@pytest.mark.model
@pytest.mark.browser
def test_report_page_shows_what_report_json_says(lab_ws, page):  # noqa: F811
    ws, result = lab_ws
    rid = result["run_id"]
    rep = json.loads((Path(result["dir"]) / "report.json").read_text())
    page.goto((ws.site_dir / "index.html").as_uri())
    page.click(f"#run-{rid} a.report-link")
    assert page.url.endswith(f"lab/{rid}/report.html")
    assert page.title().startswith("Concept vectors: quality report")
    best = rep["best_layer"]["_all"]
    assert page.inner_text("#best-layer") == str(best)
    assert "15 unique texts forwarded once each, instead of 45 (30 forwards saved)" in \
        page.inner_text("#extraction")
    rows = page.query_selector_all("#auc-grid tbody tr")
    assert [r.query_selector("th").inner_text() for r in rows] == rep["concepts"]
    for row, c in zip(rows, rep["concepts"]):
        cells = row.query_selector_all("td")
        for cell, layer in zip(cells, rep["layers"]):
            auc = rep["per_concept"][c]["layers"][str(layer)]["auc"]["mean"]
            assert cell.inner_text() == f"{auc:.3f}"
        outlined = [cell.get_attribute("data-layer") for cell in cells
                    if "best" in cell.get_attribute("class")]
        assert outlined == [str(rep["per_concept"][c]["best_layer"])]
    cos = page.query_selector_all("#cosine tbody tr")
    for i, row in enumerate(cos):
        vals = [float(td.inner_text()) for td in row.query_selector_all("td")]
        assert vals == [round(v, 2) for v in rep["cosine"][str(best)][i]]
    assert page.query_selector("#detail tbody tr th").inner_text() == rep["concepts"][0]
    control = page.query_selector_all("#aggregators tbody tr")[-1]
    assert control.query_selector("th").inner_text() == "mean on shuffled labels (control)"
    assert [td.inner_text() for td in control.query_selector_all("td")] == [
        f"{rep['control'][str(l)]:.3f}" for l in rep["layers"]]
    # the figures load, and the JSON twin is the report itself
    for img in page.query_selector_all("img"):
        assert page.evaluate("(i) => i.complete && i.naturalWidth > 0", img)
    twin = json.loads((ws.site_dir / "lab" / rid / "report.json").read_text())
    assert twin == rep
    assert page.errors == []


def test_a_broken_report_is_shown_as_an_error_not_a_crash(ws):
    run = ws.runs_dir / "20261129-000000-concept_vectors-abcd"
    run.mkdir(parents=True)
    (run / "result.json").write_text(json.dumps({"experiment": "concept_vectors", "metrics": {}}))
    (run / "report.json").write_text('{"concepts": ["calm"]')
    out = build(ws)
    html = (ws.site_dir / "lab" / run.name / "report.html").read_text()
    assert "report.json of run 20261129-000000-concept_vectors-abcd is unreadable" in html
    assert out["pages"] == 2 + len(ws.curriculum.concepts) + len(ws.curriculum.modules) + 1
