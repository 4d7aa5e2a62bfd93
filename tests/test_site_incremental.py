"""The incremental site build equals a full build, byte for byte, after every kind of change.

Each step records events through the one write path (`llmlab.api`), builds the workspace's
site (which reads only the lines the log gained), then builds a copy of the workspace from
scratch in another folder and compares every file of the two sites. Both builds get the
same `now` (pages say "3 d ago"); nothing is filtered out of the comparison.
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from llmlab import api
from llmlab.errors import UserError
from llmlab.site import aggregate, build, data
from llmlab.site.server import Server
from llmlab.workspace import Workspace

NOW = datetime.now(UTC).replace(microsecond=0)


class Clock:
    """Event times in order, all before NOW (the write path refuses future times)."""

    def __init__(self):
        self.t = NOW - timedelta(days=20)

    def __call__(self, hours: float = 7) -> str:
        self.t += timedelta(hours=hours)
        return self.t.strftime("%Y-%m-%dT%H:%M:%SZ")


def site_files(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in sorted(site.rglob("*"))
            if p.is_file()}


def full_build(ws: Workspace, where: Path, now: datetime = NOW) -> dict[str, bytes]:
    """A fresh full build of a copy of `ws` (its log, settings and lab runs; no caches)."""
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(ws.root, where, ignore=shutil.ignore_patterns("site", "state"))
    res = build(Workspace(where), now)
    assert res["source"] == "full"
    return site_files(Workspace(where).site_dir)


def assert_same_site(ws: Workspace, tmp_path: Path, now: datetime = NOW) -> None:
    ours = site_files(ws.site_dir)
    ref = full_build(ws, tmp_path / "reference", now)
    assert sorted(ours) == sorted(ref)
    differ = [rel for rel in ref if ours[rel] != ref[rel]]
    assert not differ, f"incremental build differs from a full build in {differ}"


@pytest.fixture
def small_keep(monkeypatch):
    """Keep 3 evidence rows per concept and list 1 resolved misconception, so that a short
    log already exercises what a long one does (rows dropped from the front, counts)."""
    monkeypatch.setattr(aggregate, "EVIDENCE_KEEP", 3)
    monkeypatch.setattr(data, "RESOLVED_KEEP", 1)


def test_incremental_build_equals_a_full_build_after_each_change(ws, tmp_path, small_keep):
    at = Clock()
    first = build(ws, NOW)
    assert first["source"] == "full" and first["events"] == 0
    assert_same_site(ws, tmp_path)

    steps = [
        ("observations", lambda: [api.observe(ws, c, q, f"explained {c} ({q})", at=at())
                                  for c, q in (("tokenization", .6), ("softmax", .8),
                                               ("tokenization", .9), ("tokenization", .7),
                                               ("tokenization", .95))]),
        ("misconception opened", lambda: api.open_misconception(
            ws, "softmax", claim="logit 4 vs 2 is <b>twice</b> as likely", quote="twice",
            at=at())),
        ("misconception resolved", lambda: api.resolve_misconception(
            ws, "evt_000006", "now exponentiates first", at=at())),
        ("second misconception, resolved", lambda: [
            api.open_misconception(ws, "tokenization", catalog="tokens_are_words", at=at()),
            api.resolve_misconception(ws, "evt_000008", "counts tokens", at=at(24))]),
        ("exit attempt and prediction", lambda: [
            api.exit_attempt(ws, "build_sampler", False, "no seed", at=at()),
            api.predict(ws, "sampling", "top1_prob", 0.5, concept="softmax", tolerance=0.2,
                        at=at())]),
    ]
    for what, change in steps:
        change()
        res = build(ws, NOW)
        assert res["source"] == "incremental", what
        assert_same_site(ws, tmp_path)

    # the rows kept per concept roll: tokenization has more evidence than is kept
    twin = json.loads((ws.site_dir / "concepts" / "tokenization.json").read_text())
    assert twin["evidence_total"] == 6 and len(twin["evidence"]) == 3
    assert twin["evidence"][0]["id"] == "evt_000009"  # newest first
    assert "latest 3 shown" in (ws.site_dir / "concepts" / "tokenization.html").read_text()

    # a retraction changes rows already shown: the whole log is folded again
    api.retract(ws, "evt_000005", "wrong concept", at=at())
    assert build(ws, NOW)["source"] == "full"
    assert_same_site(ws, tmp_path)
    twin = json.loads((ws.site_dir / "concepts" / "tokenization.json").read_text())
    assert [e["retracted_by"] for e in twin["evidence"]] == [None, None, "evt_000012"]
    api.observe(ws, "attention", 0.7, "queries and keys", at=at())
    assert build(ws, NOW)["source"] == "incremental"
    assert_same_site(ws, tmp_path)

    # nothing new: nothing read, nothing written
    again = build(ws, NOW)
    assert again["source"] == "cached" and again["written"] == 0
    # --force folds the whole log; the next build is incremental again
    assert build(ws, NOW, force=True)["source"] == "full"
    assert_same_site(ws, tmp_path)
    api.observe(ws, "kv_cache", 0.4, "cache grows with length", at=at())
    assert build(ws, NOW)["source"] == "incremental"
    assert_same_site(ws, tmp_path)
    # a lab run (the event; its time is the clock's, so it comes last) scores the prediction
    api.record_experiment_run(ws, "sampling", "run-1", {}, {"top1_prob": 0.55}, {}, ["softmax"])
    assert build(ws, NOW)["source"] == "incremental"
    assert_same_site(ws, tmp_path)
    assert "run-1" in (ws.site_dir / "concepts" / "softmax.html").read_text()


def _tamper_with_the_count(ws):
    """Set softmax's cached evidence count to 41 in the site cache; returns its path."""
    cache = ws.state_dir / aggregate.CACHE
    doc = json.loads(cache.read_text())
    doc["totals"]["softmax"] = 41
    cache.write_text(json.dumps(doc))
    return cache


def test_the_comparison_can_fail_and_the_cache_is_really_used(ws, tmp_path):
    """Tamper with the cached aggregates: the next incremental build carries the wrong count
    into the pages, and the comparison with a full build catches it."""
    at = Clock()
    api.observe(ws, "softmax", 0.8, "computed it by hand", at=at())
    build(ws, NOW)
    cache = _tamper_with_the_count(ws)
    api.observe(ws, "softmax", 0.9, "explained temperature", at=at())
    assert build(ws, NOW)["source"] == "incremental"
    twin = json.loads((ws.site_dir / "concepts" / "softmax.json").read_text())
    assert twin["evidence_total"] == 42
    with pytest.raises(AssertionError, match="concepts/softmax"):
        assert_same_site(ws, tmp_path)


def test_a_rewritten_or_shortened_log_falls_back_to_a_full_build(ws, tmp_path):
    at = Clock()
    for q in (0.5, 0.6, 0.7):
        api.observe(ws, "softmax", q, f"try {q}", at=at())
    build(ws, NOW)
    # another log with as many lines, but different ones (the chain differs from line 1)
    other = Workspace(Path(shutil.copytree(ws.root, tmp_path / "other")))
    other.log_path.write_bytes(b"")
    shutil.rmtree(other.state_dir)
    at2 = Clock()
    for q in (0.9, 0.2, 0.4):
        api.observe(other, "attention", q, f"other {q}", at=at2())
    shutil.copyfile(other.log_path, ws.log_path)
    res = build(ws, NOW)
    assert res["source"] == "full" and res["events"] == 3
    assert_same_site(ws, tmp_path)
    # shorter than the cache (a repair moved lines out): full again
    lines = ws.log_path.read_bytes().splitlines(keepends=True)
    ws.log_path.write_bytes(b"".join(lines[:2]))
    (ws.state_dir / "anchor.json").unlink(missing_ok=True)
    res = build(ws, NOW)
    assert res["source"] == "full" and res["events"] == 2
    assert_same_site(ws, tmp_path)
    # an unreadable cache: full
    (ws.state_dir / aggregate.CACHE).write_text("{not json")
    api.observe(ws, "softmax", 0.8, "again", at=at())
    assert build(ws, NOW)["source"] == "full"
    assert_same_site(ws, tmp_path)


def test_site_build_force_through_the_cli(ws, invoke):
    api.observe(ws, "softmax", 0.8, "computed it by hand")
    first = json.loads(invoke("site", "build", "--json").stdout)
    assert first["source"] == "full"
    api.observe(ws, "softmax", 0.9, "explained temperature")
    r = invoke("site", "build", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["source"] == "incremental"
    forced = json.loads(invoke("site", "build", "--force", "--json").stdout)
    assert forced["source"] == "full" and forced["events"] == 2
    human = invoke("site", "build")
    assert human.returncode == 0 and "nothing new in the log" in human.stdout


def test_serve_rebuilds_incrementally_on_a_new_event(ws):
    api.observe(ws, "softmax", 0.8, "computed it by hand")
    srv = Server(ws, "127.0.0.1", 0).start()
    try:
        assert srv.live.source == "full"
        before = srv.live.rebuilds
        api.observe(ws, "attention", 0.7, "explained queries and keys <script>")
        deadline = time.monotonic() + 10
        while srv.live.rebuilds == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert srv.live.rebuilds > before and srv.live.error is None
        assert srv.live.source == "incremental"
        page = (ws.site_dir / "concepts" / "attention.html").read_text()
        assert "explained queries and keys &lt;script&gt;" in page
    finally:
        srv.close()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_cached_aggregates_equal_a_fold_of_the_whole_log_on_random_logs(ws, seed, small_keep):
    """Random events of every kind, the aggregates brought up to date after each one (or
    after a few), always equal to a fold of the whole log from scratch."""
    import random

    rng = random.Random(seed)
    at = Clock()
    cur, p = ws.curriculum, ws.config.mastery
    concepts = list(cur.concepts)
    opened: list[str] = []
    sources = set()
    for i in range(40):
        r = rng.random()
        try:  # the write path refuses some (retracting twice, resolving a retracted one)
            if r < 0.15:
                opened.append(api.open_misconception(ws, rng.choice(concepts),
                                                     claim=f"wrong {i}", at=at(1)).id)
            elif r < 0.25 and opened:
                api.resolve_misconception(ws, opened.pop(0), f"fixed {i}", at=at(1))
            elif r < 0.3 and api.state(ws)["events"]:
                n = api.state(ws)["events"]
                api.retract(ws, f"evt_{rng.randint(1, n):06d}", f"mistake {i}", at=at(1))
            else:
                api.observe(ws, rng.choice(concepts), round(rng.random(), 2), f"obs {i}",
                            at=at(1))
        except UserError:
            pass
        if rng.random() < 0.6:
            count = api.state(ws)["events"]
            agg, how = aggregate.current(ws, count)
            sources.add(how)
            ref = aggregate._whole(ws.log_path, cur.concepts, p, count)
            key = aggregate.cache_key(cur.concepts, p)
            assert agg.to_json(key) == ref.to_json(key), (seed, i, how)
    assert "incremental" in sources and "full" in sources


def _mtimes(site: Path) -> dict[str, int]:
    return {str(p.relative_to(site)): p.stat().st_mtime_ns for p in site.rglob("*")
            if p.is_file()}


def _build_info(ws: Workspace) -> dict:
    raw = (ws.site_dir / "build.js").read_text()
    assert raw.startswith("window.llmlabBuild = ") and raw.endswith(";\n")
    return json.loads(raw[len("window.llmlabBuild = "):-2])


def test_only_the_pages_a_change_touches_are_rendered_and_written(ws, tmp_path):
    """Every other page keeps its file (same mtime); the per-build values are in build.js."""
    at = Clock()
    api.observe(ws, "softmax", 0.8, "computed it by hand", at=at())
    first = build(ws, NOW)
    assert first["rendered"] == first["pages"]
    before = _mtimes(ws.site_dir)
    api.note(ws, "prefers numbers", ["kv_cache"], ["preference"], at=at())
    res = build(ws, NOW)
    assert res["source"] == "incremental"
    assert 0 < res["rendered"] < res["pages"]
    after = _mtimes(ws.site_dir)
    changed = {rel for rel in after if after[rel] != before.get(rel)}
    # the note shows on the overview and on its concept's page; nothing else moved
    assert {"index.html", "index.json", "build.js", "concepts/kv_cache.html",
            "concepts/kv_cache.json"} <= changed
    assert not changed & {"concepts/softmax.html", "concepts/softmax.json", "ladder.html",
                          "model.html", "study/basics.html"}, changed
    # pages carry no per-build value: the event count is in build.js
    info = _build_info(ws)
    assert info == {"build": res["build"], "events": 2, "last_event": "evt_000002",
                    "generated_at": NOW.isoformat()}
    assert "evt_000002" not in (ws.site_dir / "concepts" / "softmax.html").read_text()
    assert_same_site(ws, tmp_path)
    # a page deleted or edited by hand is rendered again, though its key is unchanged
    (ws.site_dir / "concepts" / "softmax.html").unlink()
    (ws.site_dir / "ladder.html").write_text("edited")
    res = build(ws, NOW)
    assert res["source"] == "cached" and res["rendered"] == 2
    assert_same_site(ws, tmp_path)
    # nothing new, nothing touched: nothing rendered, nothing written
    res = build(ws, NOW)
    assert res["rendered"] == 0 and res["written"] == 0


def test_incremental_equals_full_after_notes_config_changes_and_days_passing(ws, tmp_path):
    """The changes that are not log events (settings, the clock) and notes: the site is
    always the one a full build makes, and its per-build values follow."""
    at = Clock()
    for c, q in (("tokenization", 0.9), ("softmax", 0.7), ("tokenization", 0.95)):
        api.observe(ws, c, q, f"explained {c}", at=at(30))
    api.open_misconception(ws, "softmax", claim="bigger logit, linearly likelier", at=at())
    build(ws, NOW)
    api.note(ws, "thinks in request latency", ["softmax", "attention"], ["background"],
             at=at())
    assert build(ws, NOW)["source"] == "incremental"
    assert_same_site(ws, tmp_path)
    # the learner's name is on every page: all of them render again
    cfg = ws.config_path.read_text()
    ws.config_path.write_text(cfg.replace('name = "Test Learner"', 'name = "Renamed Learner"'))
    res = build(Workspace(ws.root), NOW)
    assert res["rendered"] == res["pages"]
    assert_same_site(Workspace(ws.root), tmp_path)
    assert "Renamed Learner" in (ws.site_dir / "study" / "basics.html").read_text()
    # a mastery parameter: the aggregates' key changes, the whole log is folded again
    ws.config_path.write_text(ws.config_path.read_text().replace("bar = 0.8", "bar = 0.7"))
    assert build(Workspace(ws.root), NOW)["source"] == "full"
    assert_same_site(Workspace(ws.root), tmp_path)
    # days passing: staleness and the activity chart move with the clock
    for days in (1, 16, 45):
        later = NOW + timedelta(days=days)
        res = build(Workspace(ws.root), later)
        assert res["source"] == "cached" and res["rendered"] > 1, days
        assert_same_site(Workspace(ws.root), tmp_path, later)
        assert _build_info(ws)["generated_at"] == later.isoformat()


def test_rebuild_drops_the_site_caches(ws, tmp_path, invoke):
    """`llmlab rebuild` derives everything again: a tampered site cache is not carried into
    the next build (the tamper test above shows that it otherwise would be)."""
    from llmlab.site import pages

    assert set(api.SITE_CACHES) == {aggregate.CACHE, pages.CACHE}
    at = Clock()
    api.observe(ws, "softmax", 0.8, "computed it by hand", at=at())
    build(ws, NOW)
    cache = _tamper_with_the_count(ws)
    r = invoke("rebuild")
    assert r.returncode == 0, r.stderr
    assert not cache.exists() and not (ws.state_dir / pages.CACHE).exists()
    api.observe(ws, "softmax", 0.9, "explained temperature", at=at())
    res = build(ws, NOW)
    assert res["source"] == "full" and res["rendered"] == res["pages"]
    twin = json.loads((ws.site_dir / "concepts" / "softmax.json").read_text())
    assert twin["evidence_total"] == 2
    assert_same_site(ws, tmp_path)


def test_site_build_takes_the_fast_path_and_prints_what_the_full_cli_does(ws, tmp_path):
    """`llmlab site build` runs without typer, rich or pydantic's CLI layer (`commands.HOT`),
    and says the same as the full command line; options it does not know go to typer."""
    import os
    import re
    import subprocess
    import sys

    from llmlab.commands import parse

    def run(args: list[str], entry: str, home: Path | None = None) -> subprocess.CompletedProcess:
        code = ("import atexit, json, sys\n"
                f"atexit.register(lambda: print(json.dumps(sorted(sys.modules)), "
                f"file=open({str(tmp_path / 'mods.json')!r}, 'w')))\n"
                f"sys.argv = ['llmlab', *{args!r}]\nfrom {entry} import main\nmain()\n")
        env = dict(os.environ, LLMLAB_HOME=str(home or ws.root), COLUMNS="100")
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120)

    api.observe(ws, "softmax", 0.8, "computed it by hand")
    twin = Path(shutil.copytree(ws.root, tmp_path / "twin"))
    assert parse(["site", "build", "--force", "--json"]) is not None
    assert parse(["site", "build", "--help"]) is None
    seconds = re.compile(r"in \d+\.\d\d s")
    for args in (["site", "build"], ["site", "build", "--force"]):
        fast = run(args, "llmlab.entry")
        mods = set(json.loads((tmp_path / "mods.json").read_text()))
        full = run(args, "llmlab.cli", twin)  # a copy in the same state
        assert fast.returncode == full.returncode == 0, fast.stderr + full.stderr
        assert seconds.sub("", fast.stdout) == \
            seconds.sub("", full.stdout).replace(str(twin), str(ws.root)), args
        assert fast.stdout.startswith("Built ") and "\nOpen " in fast.stdout
        for name in ("typer", "click", "rich", "llmlab.cli"):
            assert not any(m == name or m.startswith(name + ".") for m in mods), name
    r = run(["site", "build", "--json"], "llmlab.entry")
    assert json.loads(r.stdout)["source"] == "cached"
    # a user error from the fast path: one paragraph, no traceback
    ws.config_path.write_text("[learner\n")
    bad = run(["site", "build"], "llmlab.entry")
    assert bad.returncode == 1 and bad.stderr.startswith("Error: ") and "Traceback" not in \
        bad.stderr
