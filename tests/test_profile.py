"""The learner profile: asked by `llmlab init` in a terminal, set by flags or `llmlab profile
set`, kept in llmlab.toml (comments survive) and written into AGENTS.md."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tomllib

from llmlab.create import create_workspace


def test_flags_reach_llmlab_toml_and_agents_md(tmp_path, cli):
    root = tmp_path / "w"
    r = cli("init", str(root), "--name", "Ana", "--background", "iOS engineer; UTF-8 in Swift",
            "--scope", "RAG first", "--exclude", "training maths", "--depth", "deep")
    assert r.returncode == 0, r.stderr
    learner = tomllib.loads((root / "llmlab.toml").read_text())["learner"]
    assert learner | {"goal": ""} == {"name": "Ana", "goal": "",
                                      "background": "iOS engineer; UTF-8 in Swift",
                                      "scope": "RAG first", "exclude": "training maths",
                                      "depth": "deep"}
    agents = (root / "AGENTS.md").read_text()
    assert "**Background:** iOS engineer; UTF-8 in Swift" in agents
    assert "**Wants first:** RAG first" in agents and "**Leave out:** training maths" in agents
    assert "**Depth:** deep (derivations" in agents
    plain = create_workspace(tmp_path / "plain")  # an empty profile adds no empty lines
    text = (plain.root / "AGENTS.md").read_text()
    assert "Background" not in text and "**Depth:** working" in text


def test_profile_set_keeps_the_rest_of_llmlab_toml(tmp_path, cli):
    ws = create_workspace(tmp_path / "w", name="Bo")
    cfg = ws.root / "llmlab.toml"
    cfg.write_text("# my notes on this course\n" + cfg.read_text())
    env = {"LLMLAB_HOME": str(ws.root)}
    r = cli("profile", "set", "--background", "data engineer, SQL and Spark", "--json", env=env)
    assert r.returncode == 0, r.stderr
    assert cfg.read_text().startswith("# my notes on this course\n")
    assert "data engineer, SQL and Spark" in (ws.root / "AGENTS.md").read_text()
    before = (cfg.read_bytes(), (ws.root / "AGENTS.md").read_bytes())
    r = cli("profile", "set", "--depth", "bottomless", env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "overview, working, deep" in r.stderr
    assert (cfg.read_bytes(), (ws.root / "AGENTS.md").read_bytes()) == before
    r = cli("profile", "show", "--json", env=env)
    assert '"background": "data engineer, SQL and Spark"' in r.stdout


def test_init_asks_in_a_terminal(tmp_path):
    """On a terminal, init asks each question it was not given a flag for."""
    root = tmp_path / "w"
    leader, follower = os.openpty()
    p = subprocess.Popen([sys.executable, "-m", "llmlab", "init", str(root), "--name", "Cy"],
                         stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    answers = ["ship RAG", "Go backend developer", "", "", "overview"]
    seen = b""
    deadline = time.time() + 60
    while answers and time.time() < deadline:
        chunk = os.read(leader, 4096)
        seen += chunk
        if seen.rstrip().endswith(b":"):
            os.write(leader, (answers.pop(0) + "\n").encode())
            seen = b""
    assert p.wait(timeout=60) == 0
    os.close(leader)
    learner = tomllib.loads((root / "llmlab.toml").read_text())["learner"]
    assert (learner["name"], learner["goal"], learner["background"], learner["depth"]) == (
        "Cy", "ship RAG", "Go backend developer", "overview")
    assert learner["scope"] == "" and learner["exclude"] == ""


def test_a_realistic_profile_keeps_the_instructions_within_budget(tmp_path):
    ws = create_workspace(tmp_path / "w", name="Ana", background=(
        "Ten years of backend work in Go and Python; built payment APIs, a search service on "
        "Elasticsearch and a small chat assistant on a hosted LLM API."),
        scope="RAG and evaluation first", exclude="training maths")
    size = sum(len((ws.root / f).read_text()) for f in ("AGENTS.md", "CLAUDE.md"))
    assert size <= 16_000, size
