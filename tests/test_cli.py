"""The CLI as a user runs it: its exit code, its words, the files it wrote. Most tests run it in
this process (conftest `invoke`, through the same root command as the real entry point); the
last ones run the real entry points, `python -m llmlab` and the `llmlab` script, as processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from llmlab import api
from llmlab.workspace import Workspace

MINI = Path(__file__).parent / "fixtures" / "mini"


def test_init_writes_workspace_and_refuses_to_overwrite(tmp_path, invoke):
    r = invoke("init", str(tmp_path / "w"), "--name", "Ana", "--goal", "ship a RAG app")
    assert r.returncode == 0, r.stderr
    root = tmp_path / "w"
    assert "name = \"Ana\"" in (root / "llmlab.toml").read_text()
    assert "ship a RAG app" in (root / "llmlab.toml").read_text()
    assert (root / "evidence.jsonl").read_bytes() == b""
    assert stat.S_IMODE((root / "evidence.jsonl").stat().st_mode) == 0o600
    mcp = json.loads((root / ".mcp.json").read_text())
    assert mcp["mcpServers"]["llmlab"]["args"] == ["mcp"]
    r2 = invoke("init", str(root), "--name", "Bob")
    assert r2.returncode == 1 and "refusing to overwrite" in r2.stderr
    assert "Ana" in (root / "llmlab.toml").read_text()


def test_workspace_found_from_subdirectory(tmp_path, invoke):
    invoke("init", str(tmp_path / "w"), "--curriculum", str(MINI))
    sub = tmp_path / "w" / "notes" / "deep"
    sub.mkdir(parents=True)
    env = {"LLMLAB_HOME": ""}
    r = invoke("log", "observe", "softmax", "-q", "0.7", "-e", "explained", cwd=sub, env=env)
    assert r.returncode == 0, r.stderr
    r = invoke("state", "--json", cwd=sub, env=env)
    assert json.loads(r.stdout)["concepts"]["softmax"]["observations"] == 1


def test_no_workspace_is_a_clear_error(tmp_path, invoke):
    r = invoke("state", cwd=tmp_path, env={"LLMLAB_HOME": ""})
    assert r.returncode == 1 and "llmlab init" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, words", [
    (["log", "observe", "atention", "-q", "0.5", "-e", "x"], ["Unknown concept 'atention'", "'attention'"]),
    (["log", "observe", "softmax", "-q", "1.5", "-e", "x"], ["quality", "0 to 1"]),
    (["log", "resolve", "evt_000001"], ["not an open misconception", "no open misconceptions"]),
    (["log", "exit", "explain_sampl", "--passed"], ["Unknown exit item", "'explain_sampling'"]),
    (["undo", "evt_000099", "--reason", "x"], ["no event evt_000099"]),
    (["log", "misconception", "softmax", "--catalog", "nope"], ["Unknown misconception catalog id"]),
])
def test_bad_input_message_and_log_unchanged(ws, invoke, args, words):
    api.observe(ws, "softmax", 0.5, "seed")
    before = ws.log_path.read_bytes()
    r = invoke(*args)
    assert r.returncode == 1
    for w in words:
        assert w in r.stderr
    assert "Traceback" not in r.stderr
    assert ws.log_path.read_bytes() == before


def test_malformed_curriculum_is_reported(tmp_path, invoke):
    bad = tmp_path / "cur"
    shutil.copytree(MINI, bad)
    (bad / "modules" / "01_basics.toml").write_text("[module\nid = 'x'")
    r = invoke("curriculum", "validate", str(bad))
    assert r.returncode == 1 and "01_basics.toml: malformed TOML" in r.stderr
    r = invoke("init", str(tmp_path / "w"), "--curriculum", str(bad))
    assert r.returncode == 1 and not (tmp_path / "w" / "evidence.jsonl").exists()


def test_curriculum_validator_finds_cycles_and_dangling_refs(tmp_path, invoke):
    bad = tmp_path / "cur"
    shutil.copytree(MINI, bad)
    p = bad / "modules" / "01_basics.toml"
    p.write_text(p.read_text().replace('summary = "Text becomes integer token ids."',
                                       'summary = "x"\nprerequisites = ["softmax"]'))
    (bad / "exit.toml").write_text((bad / "exit.toml").read_text().replace(
        'requires = ["softmax"]', 'requires = ["sofmax"]'))
    r = invoke("curriculum", "validate", str(bad))
    assert r.returncode == 1
    assert "prerequisite cycle: " in r.stderr and "tokenization" in r.stderr
    assert "required concept 'sofmax' does not exist. Did you mean softmax?" in r.stderr


def test_default_curriculum_is_valid_and_large_enough(invoke):
    default = Path(api.__file__).parent / "curriculum" / "default"
    r = invoke("curriculum", "validate", str(default), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["modules"] >= 8 and d["concepts"] >= 45 and d["misconceptions"] >= 30
    from llmlab.curriculum import default_path, load
    cur = load(default_path())
    kinds = [e.kind for e in cur.exit_items.values()]
    assert kinds.count("mechanism") >= 4 and kinds.count("build") >= 4
    assert all(c.behaviours for c in cur.concepts.values())
    assert all(cur.study_page(m.id) for m in cur.modules)


def test_state_json_has_the_documented_fields(ws, invoke):
    invoke("log", "observe", "softmax", "-q", "0.9", "-e", "good")
    d = json.loads(invoke("state", "--json").stdout)
    c = d["concepts"]["softmax"]
    for k in ("mastery", "mastered", "observations", "last_seen", "stale", "open_misconceptions",
              "prereq_gaps"):
        assert k in c
    assert c["mastery"] == pytest.approx(0.6 * 0.9 + 0.4 * 0.5)
    assert set(d["overall"]) >= {"mastery", "mastered", "total"}
    assert d["current_module"] == "basics"
    assert set(d["exit_items"]["explain_sampling"]) >= {"ready", "passed"}
    nxt = json.loads(invoke("next", "--json").stdout)
    assert nxt[0]["reason"] in {"frontier", "shore_up_prerequisite"} and "why" in nxt[0]


def test_concept_show_and_human_output(ws, invoke):
    invoke("log", "observe", "softmax", "-q", "0.9", "-e", "derived the normaliser")
    r = invoke("concept", "show", "softmax")
    assert r.returncode == 0 and "derived the normaliser" in r.stdout
    r = invoke("state")
    assert "Overall mastery" in r.stdout and "softmax" in r.stdout


WRITER = textwrap.dedent("""
    import sys
    from llmlab import api
    from llmlab.workspace import Workspace
    ws = Workspace.find()
    tag, n = sys.argv[1], int(sys.argv[2])
    for i in range(n):
        ev = api.observe(ws, "softmax", 0.5, f"{tag}-{i}")
        print(ev.id, flush=True)
""")


def test_four_concurrent_writers_lose_nothing(ws, invoke, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), f"w{k}", "250"], stdout=subprocess.PIPE,
                              text=True) for k in range(4)]
    outs = [p.communicate(timeout=600)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    events = [json.loads(x) for x in ws.log_path.read_text().splitlines()]
    assert len(events) == 1000
    assert [e["id"] for e in events] == [f"evt_{i:06d}" for i in range(1, 1001)]
    assert sorted(sum(outs, [])) == [e["id"] for e in events]
    for k in range(4):  # each writer's own events are all there, in its order
        mine = [e["data"]["evidence"] for e in events if e["data"]["evidence"].startswith(f"w{k}-")]
        assert mine == [f"w{k}-{i}" for i in range(250)]
    r = invoke("verify", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"]
    assert json.loads(invoke("state", "--json").stdout)["concepts"]["softmax"]["observations"] == 1000


def test_killed_writer_then_verify_and_repair(ws, invoke, tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    p = subprocess.Popen([sys.executable, str(script), "k", "100000"], stdout=subprocess.PIPE,
                         text=True)
    acked = []
    for line in p.stdout:
        acked.append(line.strip())
        if len(acked) == 30:
            break
    p.send_signal(signal.SIGKILL)
    p.wait()
    # a crash mid-line leaves a fragment; make sure there is one (kill timing is not exact)
    with open(ws.log_path, "ab") as f:
        f.write(b'{"id":"evt_9999')
    r = invoke("verify", "--json")
    rep = json.loads(r.stdout)
    assert r.returncode == 1 and rep["torn_tail_bytes"] > 0 and rep["chain_ok"]
    assert any("torn last line" in x for x in rep["problems"])
    r = invoke("log", "observe", "softmax", "-q", "0.5", "-e", "after crash")
    assert r.returncode == 1 and "llmlab repair" in r.stderr
    r = invoke("repair", "--json")
    res = json.loads(r.stdout)
    assert res["repaired"] and res["quarantined_bytes"] > 0
    q = [json.loads(x) for x in (ws.root / "evidence.quarantine.jsonl").read_text().splitlines()]
    assert q[-1]["fragment"].endswith('{"id":"evt_9999')
    ids = {json.loads(x)["id"] for x in ws.log_path.read_text().splitlines()}
    assert set(acked) <= ids  # every acknowledged event survived
    assert invoke("verify").returncode == 0
    assert invoke("log", "observe", "softmax", "-q", "0.5", "-e", "after repair").returncode == 0


def test_tampering_breaks_the_chain(ws, invoke):
    for q in (0.2, 0.4, 0.6):
        api.observe(ws, "softmax", q, "x")
    lines = ws.log_path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"quality":0.4', '"quality":1.0')
    ws.log_path.write_text("".join(lines))
    rep = json.loads(invoke("verify", "--json").stdout)
    assert not rep["chain_ok"] and any("evt_000003" in p and "hash chain" in p for p in rep["problems"])


def test_rebuild_after_deleting_derived_state(ws, invoke):
    for q in (0.2, 0.9):
        api.observe(ws, "softmax", q, "x")
    before = json.loads(invoke("state", "--json").stdout)["concepts"]["softmax"]
    shutil.rmtree(ws.state_dir)
    assert invoke("rebuild").returncode == 0
    after = json.loads(invoke("state", "--json").stdout)["concepts"]["softmax"]
    assert before["mastery"] == after["mastery"] and before["history"] == after["history"]


def test_git_commit_opt_in(ws):
    if not shutil.which("git"):
        pytest.skip("git not installed")
    subprocess.run(["git", "init", "-q"], cwd=ws.root, check=True)
    subprocess.run(["git", "config", "user.email", "t@example.com"], cwd=ws.root, check=True)
    subprocess.run(["git", "config", "user.name", "t"], cwd=ws.root, check=True)
    text = ws.config_path.read_text().replace("git_commit = false", "git_commit = true")
    ws.config_path.write_text(text)
    api.observe(Workspace(ws.root), "softmax", 0.5, "committed")
    for _ in range(100):
        log = subprocess.run(["git", "log", "--oneline"], cwd=ws.root, capture_output=True, text=True)
        if "evt_000001" in log.stdout:
            break
        time.sleep(0.1)
    assert "llmlab: evt_000001 observation" in log.stdout


def test_help_texts_exist_for_every_command(invoke):
    r = invoke("--help")
    assert r.returncode == 0
    for cmd in ("init", "log", "predict", "undo", "state", "next", "verify", "repair", "rebuild",
                "demo", "curriculum", "concept"):
        assert cmd in r.stdout
    for sub in (["log", "observe"], ["log", "misconception"], ["log", "resolve"], ["log", "exit"]):
        out = invoke(*sub, "--help").stdout
        assert "Usage" in out and len(out) > 200
    assert os.environ.get("LLMLAB_HOME")  # the autouse fixture isolates every test


def test_demo_runs_a_multi_day_trajectory_through_the_write_path(tmp_path, invoke):
    r = invoke("demo", "--dir", str(tmp_path / "demo"), "--no-serve")
    assert r.returncode == 0, r.stderr
    assert "Overall mastery" in r.stdout and "Next probes" in r.stdout
    root = tmp_path / "demo"
    events = [json.loads(x) for x in (root / "evidence.jsonl").read_text().splitlines()]
    types = {e["type"] for e in events}
    assert {"observation", "misconception_opened", "misconception_resolved", "retraction",
            "exit_attempt"} <= types
    assert len({e["ts"][:10] for e in events}) >= 5  # several days
    env = {"LLMLAB_HOME": str(root)}
    assert invoke("verify", env=env).returncode == 0
    d = json.loads(invoke("state", "--json", env=env).stdout)
    assert d["concepts"]["tokenization"]["mastered"]
    assert d["misconceptions"]["resolved_count"] == 1
    assert d["concepts"]["self_attention"]["observations"] == 1  # the retracted one is gone
    assert d["concepts"]["softmax"]["prereq_gaps"] == ["logits"]
    try:
        import torch  # noqa: F401
    except ImportError:
        return
    run = [e for e in events if e["type"] == "experiment_run"]  # the demo's lab run
    assert len(run) == 1 and run[0]["data"]["comparisons"][0]["predicted"] == 0.9
    assert (root / "lab" / "runs" / run[0]["data"]["run_id"] / "result.json").is_file()
    assert d["predictions"]["compared"] == 1
    again = invoke("demo", "--dir", str(root), "--no-serve")
    assert again.returncode == 1 and "--force" in again.stderr


@pytest.mark.parametrize("garbage", [b"[]", b'{"fingerprint": 1}', b"\x00\xff", b'{"state": []}'])
def test_corrupt_snapshot_cache_is_rebuilt(ws, invoke, garbage):
    api.observe(ws, "softmax", 0.9, "x")
    from llmlab import snapshot
    fp = snapshot.fingerprint(ws.curriculum, ws.config.mastery)
    if garbage.startswith(b'{"state"'):
        garbage = b'{"fingerprint": "%s", "state": [], "offset": 0, "line_start": 0, "last_hash": ""}' % fp.encode()
    (ws.state_dir / "snapshot.json").write_bytes(garbage)
    r = invoke("state", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["concepts"]["softmax"]["observations"] == 1


def test_python_m_llmlab_is_the_entry_point_and_invoke_agrees(ws, cli, invoke):
    r = cli("--help")
    assert r.returncode == 0 and "Usage: python -m llmlab" in r.stdout
    before = ws.log_path.read_bytes()
    r = cli("log", "observe", "atention", "-q", "0.5", "-e", "x")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("Error: Unknown concept 'atention'") and r.stderr.count("\n") == 1
    assert ws.log_path.read_bytes() == before
    same = invoke("log", "observe", "atention", "-q", "0.5", "-e", "x")
    assert (same.returncode, same.stdout, same.stderr) == (r.returncode, r.stdout, r.stderr)
    assert cli("log", "observe", "softmax", "-q", "0.5", "-e", "x").returncode == 0
    mine, theirs = (json.loads(run("state", "--json").stdout) for run in (invoke, cli))
    assert mine.pop("now") <= theirs.pop("now") and mine == theirs


def test_the_llmlab_console_script(tmp_path):
    exe = Path(sys.executable).parent / "llmlab"
    if not exe.exists():
        pytest.skip("the llmlab script is not installed here (make setup installs it)")
    env = {**os.environ, "LLMLAB_HOME": ""}
    r = subprocess.run([str(exe), "state"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and r.stderr.startswith("Error: No llmlab workspace found")
    assert "llmlab init" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([str(exe), "init", str(tmp_path / "w")], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "w" / "evidence.jsonl").read_bytes() == b""


def test_invoke_shows_a_crash_and_restores_the_process(ws, invoke, tmp_path, monkeypatch):
    """The in-process runner hides nothing a process would show (a crash is a traceback, colour
    and width follow the pipe and COLUMNS) and leaves nothing behind."""
    def crash(*a, **k):
        raise RuntimeError("boom")

    with monkeypatch.context() as m:
        m.setattr(api, "state", crash)
        r = invoke("state")
    assert r.returncode == 1 and "Traceback" in r.stderr and "RuntimeError: boom" in r.stderr
    api.observe(ws, "softmax", 0.9, "x")
    from llmlab import cli as cli_mod
    before = (os.getcwd(), dict(os.environ), cli_mod.console, cli_mod.err_console)
    r = invoke("state", cwd=tmp_path, env={"LLMLAB_HOME": str(ws.root), "COLUMNS": "50"})
    assert r.returncode == 0 and "softmax" in r.stdout and "\x1b[" not in r.stdout
    assert max(map(len, r.stdout.splitlines())) <= 50
    assert (os.getcwd(), dict(os.environ), cli_mod.console, cli_mod.err_console) == before
