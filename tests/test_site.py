"""The site build and the live server, at the boundary users touch: the CLI, the files it
writes, raw HTTP requests. (Browser tests are in test_site_browser.py.)"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from llmlab import api
from llmlab.site import build
from llmlab.site import svg
from llmlab.site.server import CSP, Server
from llmlab.workspace import Workspace


def _at(days_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _some_evidence(ws: Workspace) -> None:
    api.observe(ws, "tokenization", 0.9, "split strawberry into tokens", "count the r's", at=_at(3))
    api.open_misconception(ws, "softmax", claim="logit 4 vs 2 is twice as likely",
                           quote="twice, surely", at=_at(3))
    api.observe(ws, "softmax", 0.6, "computed softmax by hand", at=_at(2))
    api.resolve_misconception(ws, "evt_000002", "now exponentiates first", at=_at(2))
    api.observe(ws, "tokenization", 0.95, "explained BPE merges", at=_at(1))
    api.retract(ws, "evt_000003", "wrong concept", at=_at(1))
    api.exit_attempt(ws, "build_sampler", False, "no seed", at=_at(1))


# ---------------------------------------------------------------- build and JSON twins

def test_site_build_cli_writes_every_page_and_twin(ws, invoke):
    _some_evidence(ws)
    r = invoke("site", "build", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    site = ws.site_dir
    cur = ws.curriculum
    expected = ["index.html", "index.json", "ladder.html", "ladder.json", "model.html",
                "model.json", "static/site.css", "static/live.js"]
    expected += [f"concepts/{c}.html" for c in cur.concepts]
    expected += [f"concepts/{c}.json" for c in cur.concepts]
    expected += [f"study/{m.id}.html" for m in cur.modules]
    for rel in expected:
        assert (site / rel).is_file(), rel
    assert res["pages"] == 3 + len(cur.concepts) + len(cur.modules)
    # a second build with nothing new rewrites nothing but what carries the build time
    again = json.loads(invoke("site", "build", "--json").stdout)
    assert again["build"] == res["build"]
    assert again["written"] <= 1 + len(cur.concepts) + len(cur.modules) + 3
    # no temp files left behind by the atomic writes
    assert not [p for p in site.rglob(".*") if p.is_file()]
    # pages of concepts the curriculum no longer has are removed
    (site / "concepts" / "gone.html").write_text("old")
    assert json.loads(invoke("site", "build", "--json").stdout)["pruned"] == 1
    assert not (site / "concepts" / "gone.html").exists()


def test_json_twins_equal_the_state_and_the_api(ws, invoke):
    _some_evidence(ws)
    build(ws)
    state = json.loads(invoke("state", "--json").stdout)
    index = json.loads((ws.site_dir / "index.json").read_text())
    assert index["overall"] == state["overall"]
    assert index["current_module"]["id"] == state["current_module"]
    assert [e["id"] for e in index["exit_items"]] == list(state["exit_items"])
    assert [p["target"] for p in index["next"]] == [p["target"] for p in state["next"]]
    assert index["misconceptions"]["resolved_count"] == state["misconceptions"]["resolved_count"]
    for cid in ws.curriculum.concepts:
        twin = json.loads((ws.site_dir / "concepts" / f"{cid}.json").read_text())
        ref = api.concept(ws, cid)
        # the site also files a resolution under its misconception's concept
        mine = [e for e in twin["evidence"] if e["type"] != "misconception_resolved"]
        assert [e["id"] for e in mine] == [e["id"] for e in reversed(ref["evidence"])]
        assert [bool(e["retracted_by"]) for e in mine] == \
            [e["retracted"] for e in reversed(ref["evidence"])]
        assert twin["state"]["mastery"] == ref["state"]["mastery"]
        assert [m["id"] for m in twin["misconceptions"]] == [m["id"] for m in ref["misconceptions"]]
        assert [p["id"] for p in twin["prerequisites"]] == list(ref["concept"]["prerequisites"])
    softmax = json.loads((ws.site_dir / "concepts" / "softmax.json").read_text())
    assert "misconception_resolved" in [e["type"] for e in softmax["evidence"]]


def test_model_page_shows_the_replay_of_this_log(ws, cli):
    _some_evidence(ws)
    build(ws)
    model = json.loads((ws.site_dir / "model.json").read_text())
    replay = json.loads(cli("model-check", "--json", "--learners", "10").stdout)["replay"]
    assert model["observations"] == replay["observations"] == 2  # the retracted one is out
    assert model["log_loss"] == replay["log_loss"]
    html = (ws.site_dir / "model.html").read_text()
    filled = sum(b["n"] > 0 for b in model["calibration"] + model["calibration_skill"])
    assert html.count('class="cal-pt') == filled and filled >= 2
    assert f'{model["log_loss"]["skill"]:.4f}' in html


def test_concept_chart_draws_the_skill_band(ws):
    for t in (3, 2, 1):
        api.observe(ws, "tokenization", 0.8, "x", at=_at(t))
    build(ws)
    html = (ws.site_dir / "concepts" / "tokenization.html").read_text()
    assert html.count('class="band"') == 1 and 'class="skill"' in html
    s = api.state(ws)["concepts"]["tokenization"]
    assert f"[{s['skill_low']:.2f}, {s['skill_high']:.2f}]" in html


def test_empty_workspace_builds_zeros(ws):
    res = build(ws)
    assert res["events"] == 0
    index = json.loads((ws.site_dir / "index.json").read_text())
    assert index["overall"]["mastery"] == 0 and index["overall"]["mastered"] == 0
    assert index["timeline"] == [] and index["runs"] == []
    html = (ws.site_dir / "index.html").read_text()
    assert "0%" in html
    text = re.sub(r"<[^>]+>", " ", html)
    assert not re.search(r"\b(None|nan|NaN|undefined|null)\b|\{\{|\{%", text)


def test_retracted_evidence_is_marked_and_escaped_text_never_raw(ws):
    payload = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1">'
    api.observe(ws, "softmax", 0.5, payload, probe=payload)
    api.retract(ws, "evt_000001", payload)
    build(ws)
    for rel in ("index.html", "concepts/softmax.html"):
        html = (ws.site_dir / rel).read_text()
        assert "<script>window.pwned" not in html and "<img src=x" not in html, rel
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html, rel
    assert "retracted by evt_000002" in (ws.site_dir / "concepts/softmax.html").read_text()


def test_lab_runs_are_shown_with_figures_copied(ws):
    run_dir = ws.runs_dir / "20260101-000000-sampling-abcd"
    run_dir.mkdir(parents=True)
    (run_dir / "fig.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (ws.runs_dir / "bad").mkdir()
    (ws.runs_dir / "bad" / "result.json").write_text("{not json")
    (run_dir / "result.json").write_text(json.dumps({
        "run_id": run_dir.name, "experiment": "sampling", "question": "What does T do?",
        "concepts": ["softmax"], "params": {"seed": 0}, "metrics": {"top1_prob": 0.36},
        "tables": {"top_k": [{"rank": 1, "token": "<b>x</b>", "prob": 0.5}]},
        "figures": ["fig.png", "../../../llmlab.toml"], "conditions": {"model": "m", "seed": 0},
        "comparisons": [{"prediction": "evt_000001", "quantity": "top1_prob", "predicted": 0.9,
                         "measured": 0.36, "abs_error": 0.54, "rel_error": 1.5,
                         "tolerance": 0.1, "within": False, "concept": "softmax"}],
        "summary": ["top token p = 0.36"]}))
    build(ws)
    assert (ws.site_dir / "lab" / run_dir.name / "fig.png").read_bytes().startswith(b"\x89PNG")
    assert not (ws.site_dir / "llmlab.toml").exists()
    html = (ws.site_dir / "index.html").read_text()
    assert "outside tolerance" in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert "result.json unreadable" in html  # a broken run is reported, not fatal
    concept = (ws.site_dir / "concepts" / "softmax.html").read_text()
    assert run_dir.name in concept


def test_study_pages_render_curriculum_markdown_with_details(default_ws):
    build(default_ws)
    html = (default_ws.site_dir / "study" / "inference_loop.html").read_text()
    assert "<details>" in html and "<table>" in html  # curriculum markdown may use HTML
    assert 'id="what-an-application-developer-must-know"' in html  # headings get anchors
    assert 'href="#what-an-application-developer-must-know"' in html  # and a TOC
    ladder = (default_ws.site_dir / "ladder.html").read_text()
    for item in default_ws.curriculum.exit_items.values():
        if item.kind == "build":
            assert item.title.replace("'", "&#39;") in ladder


def test_graph_layout_puts_prerequisites_left_of_dependants(default_ws):
    cur = default_ws.curriculum
    nodes = [{"id": c.id, "module_order": cur.module(c.module).order,
              "prerequisites": list(c.prerequisites)} for c in cur.concepts.values()]
    xy = svg.layout(nodes)
    assert set(xy) == set(cur.concepts)
    assert len(set(xy.values())) == len(xy)  # no two nodes on the same spot
    for c in cur.concepts.values():
        for p in c.prerequisites:
            if cur.concepts[p].module == c.module:  # same column, above
                assert xy[p][0] == xy[c.id][0] and xy[p][1] < xy[c.id][1], (p, c.id)
            else:  # an earlier module's column
                assert xy[p][0] < xy[c.id][0], (p, c.id)
    assert len({x for x, _ in xy.values()}) == len(cur.modules)


# ---------------------------------------------------------------- the server

def _raw(port: int, request_line: str, host: str = "127.0.0.1") -> tuple[int, dict, bytes]:
    """Send one request exactly as written (no client-side path normalisation)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"{request_line}\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.fixture
def server(ws):
    _some_evidence(ws)
    srv = Server(ws, "127.0.0.1", 0).start()
    yield srv
    srv.close()


TRAVERSALS = [
    "GET /../llmlab.toml HTTP/1.1",
    "GET /%2e%2e/evidence.jsonl HTTP/1.1",
    "GET /%2E%2E/evidence.jsonl HTTP/1.1",
    "GET //etc/passwd HTTP/1.1",
    "GET /leak.toml HTTP/1.1",  # a symlink inside site/ pointing outside
    "GET /leakdir/evidence.jsonl HTTP/1.1",  # a symlinked folder pointing outside
    "GET /..%2fllmlab.toml HTTP/1.1",
    "GET /%2e%2e%2fllmlab.toml HTTP/1.1",
    "GET /static/..%2f..%2fllmlab.toml HTTP/1.1",
    "GET /concepts/../../llmlab.toml HTTP/1.1",
    "GET /.%2e/llmlab.toml HTTP/1.1",
    "GET /%252e%252e/llmlab.toml HTTP/1.1",
    "GET /..\\llmlab.toml HTTP/1.1",
    "GET /%5c..%5cllmlab.toml HTTP/1.1",
    "GET /%00/../llmlab.toml HTTP/1.1",
    "GET /%ff%fe HTTP/1.1",
    "GET http://127.0.0.1/../llmlab.toml HTTP/1.1",
    "GET /etc/passwd HTTP/1.1",
    "GET /.index.html.tmp HTTP/1.1",
    "HEAD /../llmlab.toml HTTP/1.1",
]


def test_path_traversal_and_symlink_escape_get_404_and_leak_nothing(server, ws):
    site = ws.site_dir
    (site / "leak.toml").symlink_to(ws.root / "llmlab.toml")
    (site / "leakdir").symlink_to(ws.root, target_is_directory=True)
    (site / ".index.html.tmp").write_text("temp")
    port = server.httpd.server_address[1]
    secrets = [b"[learner]", b"root:", b"evt_000001", b"strawberry", b"temp"]
    for req in TRAVERSALS:
        status, headers, body = _raw(port, req)
        assert status == 404, (req, status)
        assert not any(s in body for s in secrets), req
        assert headers["content-security-policy"] == CSP
    # the same files by their honest names are fine
    assert _raw(port, "GET / HTTP/1.1")[0] == 200
    assert _raw(port, "GET /concepts/softmax.html?x=1 HTTP/1.1")[0] == 200
    assert _raw(port, "GET /study/ HTTP/1.1")[0] == 404  # no listing, no index there


def test_server_methods_headers_host_and_caching(server):
    port = server.httpd.server_address[1]
    status, headers, body = _raw(port, "GET /index.html HTTP/1.1")
    assert status == 200 and body.startswith(b"<!doctype html>")
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "'unsafe-inline'" not in headers["content-security-policy"]
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    status, h2, body = _raw(port, "HEAD /index.html HTTP/1.1")
    assert status == 200 and body == b"" and h2["content-length"] == headers["content-length"]
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
        status, h, _ = _raw(port, f"{method} /index.html HTTP/1.1")
        assert status == 405 and h["allow"] == "GET, HEAD", method
    assert _raw(port, "GET /index.html HTTP/1.1", host="attacker.example")[0] == 421
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/index.json", headers={"If-None-Match": headers.get("etag", "")})
    r = conn.getresponse()
    r.read()
    assert r.status == 200  # a different file's ETag does not match
    conn.request("GET", "/index.json")
    r = conn.getresponse()
    etag, _ = r.getheader("ETag"), r.read()
    conn.request("GET", "/index.json", headers={"If-None-Match": etag})
    r = conn.getresponse()
    r.read()
    assert r.status == 304
    conn.close()


def test_server_rebuilds_on_a_new_event_and_pushes_the_build_id(server, ws):
    port = server.httpd.server_address[1]
    first = server.live.build_id
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET /__events?build={first} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        buf = b""
        while b"retry:" not in buf:
            buf += s.recv(4096)
        t0 = time.monotonic()
        api.observe(ws, "attention", 0.7, "explained queries and keys")
        while b"event: reload" not in buf:
            buf += s.recv(4096)
        elapsed = time.monotonic() - t0
    assert elapsed < 2.0
    assert server.live.build_id != first and server.live.build_id.encode() in buf
    index = json.loads((ws.site_dir / "index.json").read_text())
    assert index["timeline"][0]["summary"].endswith("explained queries and keys")


def test_server_keeps_serving_when_a_rebuild_fails(server, ws):
    ok = server.live.build_id
    cfg = ws.config_path.read_text()

    def replace(text: str) -> None:  # atomically, so the watcher never sees half a file
        tmp = ws.root / "llmlab.toml.new"
        tmp.write_text(text)
        os.replace(tmp, ws.config_path)

    replace(cfg + "\n[[[broken\n")
    deadline = time.monotonic() + 5
    while server.live.error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.live.error and "not valid TOML" in server.live.error
    assert server.live.build_id == ok
    port = server.httpd.server_address[1]
    assert _raw(port, "GET / HTTP/1.1")[0] == 200
    replace(cfg)
    deadline = time.monotonic() + 5
    while server.live.error is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.live.error is None  # fixed: rebuilt, banner gone


def test_serve_cli_prints_the_url_and_warns_off_loopback(ws):
    env = {**os.environ, "LLMLAB_HOME": str(ws.root)}
    for host, warns in (("127.0.0.1", False), ("0.0.0.0", True)):
        p = subprocess.Popen([sys.executable, "-m", "llmlab", "serve", "--port", "0", "--host", host],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            assert line.startswith("Serving the dashboard at http://"), line
            port = int(line.strip().rstrip("/").rsplit(":", 1)[1])
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            assert conn.getresponse().status == 200
            conn.close()
        finally:
            p.terminate()
            _, err = p.communicate(timeout=10)
        assert ("Warning: serving on 0.0.0.0" in err) is warns, err


def test_serve_reports_a_busy_port_as_a_user_error(ws, cli):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = cli("serve", "--port", str(s.getsockname()[1]), timeout=30)
    assert r.returncode == 1 and "--port 0" in r.stderr and "Traceback" not in r.stderr


def test_readme_dashboard_commands_run_as_written(ws, cli):
    from doctext import DOCS, commands

    cmds = commands((DOCS / "dashboard.md").read_text())
    assert "llmlab site build" in cmds and "llmlab serve" in cmds
    api.observe(ws, "softmax", 0.7, "exponentiated first")
    with socket.socket() as s:  # plain `llmlab serve` uses settings.port: point it at a free one
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    ws.config_path.write_text(ws.config_path.read_text().replace("port = 8765", f"port = {free}"))
    env = {**os.environ, "LLMLAB_HOME": str(ws.root)}
    for line in cmds:
        args = line.split()[1:]
        if args[0] != "serve":
            r = cli(*args)
            assert r.returncode == 0, f"`{line}` failed:\n{r.stdout}\n{r.stderr}"
            continue
        p = subprocess.Popen([sys.executable, "-m", "llmlab", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out = p.stdout.readline()
            assert out.startswith("Serving the dashboard at http://127.0.0.1:"), (line, out)
            port = int(out.strip().rstrip("/").rsplit(":", 1)[1])
            if args == ["serve"]:
                assert port == free
            assert _raw(port, "GET / HTTP/1.1")[0] == 200
        finally:
            p.terminate()
            p.communicate(timeout=10)


def test_references_link_urls_and_arxiv_ids_and_escape_the_rest():
    from llmlab.site.build import reference

    assert str(reference("arXiv:2205.14135 (Dao et al.)")) == (
        '<a href="https://arxiv.org/abs/2205.14135" rel="noopener noreferrer">arXiv:2205.14135</a>'
        " (Dao et al.)")
    assert "<script>" not in str(reference("<script>x</script> arXiv:1706.03762"))
    assert str(reference("javascript:alert(1)")) == "javascript:alert(1)"  # not a link
