"""The dashboard in a real browser (Debian's Chromium driven by Playwright).

Covers issue 4's acceptance list: the demo dashboard's headline numbers equal
`llmlab state --json`, a screenshot, links to a concept and a study page, the "ready"
marker, live update within 2 s with no manual reload, escaping on every page, no network
request from file://, and an empty workspace rendering zeros.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmlab import api
from llmlab.core import parse_ts
from llmlab.site import build
from llmlab.site.data import days_ago
from llmlab.site.server import Server
from llmlab.create import create_workspace
from llmlab.workspace import Workspace

from conftest import MINI, invoke_cli

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PAYLOAD = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1">'
SHOTS = Path(os.environ.get("LLMLAB_SCREENSHOTS", "")) if os.environ.get("LLMLAB_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    pg = ctx.new_page()
    pg.errors = []
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    ctx.close()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`llmlab demo --no-serve`, run once (in-process, through the real root command): a
    workspace and its built site."""
    root = tmp_path_factory.mktemp("demo") / "demo-workspace"
    r = invoke_cli("demo", "--dir", str(root), "--no-serve")
    assert r.returncode == 0, r.stderr
    assert "Dashboard: " in r.stdout and (root / "site" / "index.html").is_file()
    return Workspace(root)


def _state(ws: Workspace) -> dict:
    r = invoke_cli("state", "--json", env={"LLMLAB_HOME": str(ws.root)})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _at(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- the demo dashboard

def test_demo_dashboard_headline_equals_state_and_links_work(demo, page, tmp_path):
    state = _state(demo)
    o = state["overall"]
    page.goto((demo.site_dir / "index.html").as_uri())
    overall = page.locator("[data-testid=overall-mastery]")
    assert float(overall.get_attribute("data-value")) == o["mastery"]
    assert overall.locator(".num").inner_text() == f"{100 * o['mastery']:.0f}%"
    assert page.locator("[data-testid=mastered] .num").inner_text() == f"{o['mastered']}/{o['total']}"
    assert page.locator("[data-testid=exit-passed] .num").inner_text() == \
        f"{o['exit_passed']}/{o['exit_total']}"
    assert page.locator("[data-testid=current-module]").get_attribute("data-value") == \
        state["current_module"]
    # exit items come first, every one of them, with chips for every required concept
    assert page.locator("main > section").nth(1).get_attribute("id") == "exit"
    for item in state["exit_items"].values():
        box = page.locator(f"[data-exit={item['id']}]")
        assert box.locator(".chip").count() == len(item["requires"])
        assert box.locator("[data-testid=ready-marker]").count() == int(item["ready"])
    # next probes with their reasons, in order
    probes = page.locator("#next .probes li")
    assert probes.count() == len(state["next"])
    assert state["next"][0]["reason"].replace("_", " ") in probes.first.inner_text().lower()
    # one card per concept, lab runs with predicted vs measured
    assert page.locator(".card").count() == o["total"]
    assert page.locator("#lab .run").count() == min(10, len(state["runs"]))
    if state["runs"]:
        assert page.locator("#lab table.cmp").count() >= 1
        for img in page.locator("#lab .figs img").all():
            assert img.evaluate("i => i.complete && i.naturalWidth > 0")
    shot = (SHOTS or tmp_path) / "dashboard.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    # follow a concept card to its page
    page.locator("#module-inference_loop a.card-title", has_text="Softmax").click()
    assert page.url.endswith("/concepts/softmax.html")
    assert page.locator("h1").inner_text().startswith("Softmax")
    assert page.locator("[data-testid=concept-mastery]").inner_text() == \
        f"{state['concepts']['softmax']['mastery']:.3f}"
    assert page.locator("svg.chart circle.pt").count() == \
        len(state["concepts"]["softmax"]["history"])
    if SHOTS:
        page.screenshot(path=str(SHOTS / "concept.png"), full_page=True)
    # and back, then to the module's study page
    _check_build_values(page, demo, state)
    page.go_back()
    page.locator("#module-inference_loop a.study-link").click()
    assert page.url.endswith("/study/inference_loop.html")
    assert page.locator("article.prose h1").inner_text() == "The inference loop"
    assert page.locator("article.prose details").count() >= 1
    if SHOTS:
        page.screenshot(path=str(SHOTS / "study.png"), full_page=True)
    _check_build_values(page, demo, state)
    page.locator("nav.nav a", has_text="Project ladder").click()
    assert page.url.endswith("/ladder.html")
    assert page.locator(".rung").count() == sum(
        e["kind"] == "build" for e in state["exit_items"].values())
    assert page.errors == []


def _check_build_values(page, ws: Workspace, state: dict) -> None:
    """The per-build values (from build.js, not in the page's HTML) as the browser shows
    them: the event count and last event of `llmlab state`, the build time, and every
    event time as "N d ago" counted from the build time."""
    info = json.loads((ws.site_dir / "build.js").read_text().split("=", 1)[1].rstrip(";\n"))
    n = state["events"]
    assert n > 0 and info["events"] == n
    foot = page.locator("[data-testid=build-info]").inner_text()
    assert foot == (f"Derived from {n:,} event{'s' * (n != 1)} in evidence.jsonl "
                    f"(last {state['last_event']}); built "
                    f"{info['generated_at'][:16].replace('T', ' ')} UTC."), foot
    built = parse_ts(info["generated_at"])
    for t in page.locator("time[data-ago]").all():
        assert t.inner_text() == days_ago(t.get_attribute("datetime"), built)
        assert t.get_attribute("title").endswith(" UTC")


def test_without_javascript_pages_show_absolute_times_and_no_counts(demo, browser):
    ctx = browser.new_context(java_script_enabled=False)
    pg = ctx.new_page()
    try:
        pg.goto((demo.site_dir / "concepts" / "softmax.html").as_uri())
        assert pg.locator("[data-testid=build-info]").inner_text() == \
            "Derived from the events in evidence.jsonl."
        seen = pg.locator("time[data-ago]").first
        ts = seen.get_attribute("datetime")
        assert seen.inner_text() == ts[:16].replace("T", " ") + " UTC"
    finally:
        ctx.close()


def test_file_url_makes_no_network_request(demo, page):
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    for rel in ("index.html", "concepts/tokenization.html", "study/transformer.html",
                "ladder.html"):
        page.goto((demo.site_dir / rel).as_uri())
        page.wait_for_load_state("networkidle")
    assert requests, "the request log recorded nothing"
    assert [u for u in requests if not u.startswith("file://")] == []
    assert page.locator("#live").is_hidden()  # no event stream from a file
    assert page.errors == []


# ---------------------------------------------------------------- readiness

def test_ready_marker_appears_after_the_concepts_are_mastered(ws, page, invoke):
    assert invoke("site", "build").returncode == 0
    page.goto((ws.site_dir / "index.html").as_uri())
    item = page.locator("[data-exit=explain_sampling]")
    assert item.locator("[data-testid=ready-marker]").count() == 0
    assert item.locator(".progress").inner_text() == "0/2 mastered"
    days = (2.2, 2.1, 1.2, 1.1, 0.02, 0.01)  # three observations each, on two+ days
    for i, concept in enumerate(["tokenization", "softmax"] * 3):
        r = invoke("log", "observe", concept, "-q", "1.0", "-e", "explained it with numbers",
                   "--at", _at(days[i]))
        assert r.returncode == 0, r.stderr
    assert invoke("site", "build").returncode == 0
    page.reload()
    assert item.locator("[data-testid=ready-marker]").is_visible()
    assert "is-ready" in item.get_attribute("class")
    assert item.locator(".chip .ck").count() == 2
    state = _state(ws)
    assert state["exit_items"]["explain_sampling"]["ready"] is True
    page.goto((ws.site_dir / "ladder.html").as_uri())
    assert page.locator("#build_sampler .marker.ready").is_visible()


# ---------------------------------------------------------------- live update

def test_live_update_within_two_seconds_without_reload(ws, page, invoke):
    env = {**os.environ, "LLMLAB_HOME": str(ws.root)}
    srv = subprocess.Popen([sys.executable, "-m", "llmlab", "serve", "--port", "0"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = srv.stdout.readline()
        assert line.startswith("Serving the dashboard at http://127.0.0.1:"), line
        url = line.split(" at ", 1)[1].strip()
        page.goto(url)
        page.locator("#live").wait_for(state="visible", timeout=5000)  # event stream open
        before = page.locator("[data-testid=overall-mastery]").get_attribute("data-value")
        page.evaluate("window.__sameDocument = true")
        r = invoke("log", "observe", "tokenization", "-q", "0.9", "-e", "live: counted tokens",
                   "--json")
        assert r.returncode == 0, r.stderr
        logged = parse_ts(json.loads(r.stdout)["ts"])
        page.wait_for_function(
            "before => document.querySelector('[data-testid=overall-mastery]').dataset.value"
            " !== before", arg=before, timeout=4000)
        lag = (datetime.now(UTC) - logged).total_seconds()
        assert lag < 2.0, f"page updated {lag:.2f} s after the observation was logged"
        assert page.locator("#timeline").inner_text().count("live: counted tokens") == 1
        n = _state(ws)["events"]
        assert page.locator("[data-build=events]").inner_text() == f"{n} event{'s' * (n != 1)}"
        # the server pushed a reload: nobody navigated, and the new build id is in the page
        assert page.evaluate("window.__sameDocument") is None
        assert page.url == url
        assert page.errors == []
    finally:
        srv.terminate()
        srv.communicate(timeout=10)


# ---------------------------------------------------------------- escaping

def test_hostile_text_is_shown_as_text_on_every_page(tmp_path, page):
    ws = create_workspace(tmp_path / "evil", name="Ana " + PAYLOAD, goal="goal " + PAYLOAD,
                        curriculum=str(MINI))
    api.observe(ws, "tokenization", 0.4, "evidence " + PAYLOAD, probe="probe " + PAYLOAD,
                at=_at(1))
    api.open_misconception(ws, "softmax", claim="claim " + PAYLOAD, quote="quote " + PAYLOAD,
                           at=_at(1))
    api.exit_attempt(ws, "build_sampler", False, notes="notes " + PAYLOAD, at=_at(0.5))
    api.observe(ws, "attention", 0.5, "second " + PAYLOAD)
    api.note(ws, "note " + PAYLOAD, ["tokenization"], ["reflex"])
    build(ws)
    pages = {  # page -> the hostile texts it must show
        "index.html": ["Ana ", "claim ", "quote ", "second ", "note "],
        "concepts/tokenization.html": ["Ana ", "evidence ", "probe ", "note "],
        "concepts/softmax.html": ["Ana ", "claim ", "quote "],
        "concepts/attention.html": ["Ana ", "second "],
        "ladder.html": ["Ana "],
        "study/basics.html": ["Ana "],
    }
    with Server(ws, "127.0.0.1", 0) as srv:
        for base in (ws.site_dir.as_uri() + "/", srv.url):  # as a file, and under the CSP
            for rel, texts in pages.items():
                page.goto(base + rel)
                page.wait_for_load_state("load")
                body = page.locator("body").inner_text()
                for t in texts:
                    assert t + PAYLOAD in body, (base, rel, t)
                assert page.evaluate("typeof window.pwned") == "undefined", (base, rel)
                assert page.locator("img[src=x]").count() == 0
                srcs = [s.get_attribute("src") for s in page.locator("script").all()]
                assert [s.rsplit("/", 1)[-1] for s in srcs] == ["build.js", "live.js"], srcs
    assert page.errors == []


# ---------------------------------------------------------------- the tutor's notes

def test_tutors_notes_show_on_the_overview_and_the_concept_page(ws, page, invoke):
    for args in (["Backend engineer; thinks in request latency", "-t", "background"],
                 ["Numbers land better than diagrams", "-c", "softmax", "-t", "preference"],
                 ["Recorded on the wrong learner", "-c", "softmax"]):
        assert invoke("log", "note", *args).returncode == 0
    assert invoke("undo", "evt_000003", "--reason", "wrong learner").returncode == 0
    assert invoke("site", "build").returncode == 0
    page.goto((ws.site_dir / "index.html").as_uri())
    panel = page.locator("#notes")
    assert "Tutor's notes" in panel.locator("h2").inner_text()
    assert "2 notes" in panel.locator("h2").inner_text()  # the retracted one is gone
    items = panel.locator("li")
    assert items.count() == 2
    assert "Numbers land better than diagrams" in items.nth(0).inner_text()  # newest first
    assert "preference" in items.nth(0).locator(".badge").inner_text()
    assert "Backend engineer; thinks in request latency" in items.nth(1).inner_text()
    assert "wrong learner" not in panel.inner_text()
    items.nth(0).locator("a", has_text="Softmax").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("concepts/softmax.html")
    notes = page.locator("#notes")
    assert "Numbers land better than diagrams" in notes.inner_text()
    assert "wrong learner" not in notes.inner_text()
    assert page.locator("#evidence .t-note").count() == 2  # both, the retracted one struck
    assert page.locator("#evidence .t-note.retracted").count() == 1
    twin = json.loads((ws.site_dir / "index.json").read_text())
    assert [n["text"] for n in twin["notes"]["latest"]] == [
        "Numbers land better than diagrams", "Backend engineer; thinks in request latency"]


# ---------------------------------------------------------------- empty workspace

def test_empty_workspace_renders_zeros(ws, page, invoke):
    assert invoke("site", "build").returncode == 0
    page.goto((ws.site_dir / "index.html").as_uri())
    assert page.locator("[data-testid=overall-mastery] .num").inner_text() == "0%"
    assert page.locator("[data-testid=mastered] .num").inner_text() == "0/4"
    assert page.locator("[data-testid=exit-passed] .num").inner_text() == "0/2"
    assert page.locator("[data-testid=current-module]").get_attribute("data-value") == "basics"
    assert "0 events" in page.locator("#timeline").inner_text()
    assert page.locator(".card").count() == 4
    for rel in ("index.html", "concepts/kv_cache.html", "ladder.html", "study/attention.html"):
        page.goto((ws.site_dir / rel).as_uri())
        text = page.locator("body").inner_text()
        for bad in ("None", "undefined", "NaN", "{{", "{%", "Traceback"):
            assert bad not in text, (rel, bad)
    assert page.errors == []
