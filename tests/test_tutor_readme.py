"""The README's "Start learning" section runs as written, and the MCP Inspector (an
independent MCP client) talks to `llmlab mcp` with the exact commands that
docs/tutor-and-clients.md shows."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from doctext import DOCS, commands as lines, section  # one docs parser

TUTOR = DOCS / "tutor-and-clients.md"


def test_start_learning_runs_as_written(tmp_path, cli):
    cmds = lines(section("Start learning"), ("llmlab ", "cd "))
    assert cmds[0].startswith("llmlab init ") and any(c.startswith("llmlab log observe") for c in cmds)
    env = {"LLMLAB_HOME": "", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / ".config"),
           "APPDATA": str(tmp_path / "AppData")}
    cwd = tmp_path
    for line in cmds:
        line = line.replace("~", str(tmp_path))
        if line.startswith("cd "):
            cwd = Path(line[3:])
            continue
        r = cli(*shlex.split(line)[1:], cwd=cwd, env=env)
        assert r.returncode == 0, f"`{line}` failed:\n{r.stdout}\n{r.stderr}"
    ws = tmp_path / "llm-course"
    assert (ws / "AGENTS.md").is_file() and (ws / ".cursor" / "mcp.json").is_file()
    state = json.loads(cli("state", "--json", cwd=ws, env=env).stdout)
    assert state["events"] == 1 and state["concepts"]["tokenization"]["observations"] == 1
    desktop = list(tmp_path.rglob("claude_desktop_config.json"))
    assert len(desktop) == 1 and "llmlab" in json.loads(desktop[0].read_text())["mcpServers"]


def test_start_learning_names_every_client_and_the_docs_every_tool():
    from llmlab import clients, tutor

    for text in (section("Start learning"), section("Clients", TUTOR)):
        for name in clients.CLIENTS:
            assert f"`{name}`" in text, name
    text = section("The MCP server", TUTOR)
    for t in tutor.TOOLS:
        assert f"`{t.name}`" in text, t.name


@pytest.fixture(scope="module")
def npx():
    exe = shutil.which("npx")
    if not exe:
        pytest.skip("npx (Node.js) is not installed")
    try:
        r = subprocess.run([exe, "-y", "@modelcontextprotocol/inspector", "--help"],
                           capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("could not fetch @modelcontextprotocol/inspector in time")
    if r.returncode != 0 or "--cli" not in r.stdout:
        pytest.skip(f"@modelcontextprotocol/inspector is not available: {r.stderr[-300:]}")
    return exe


def test_mcp_inspector_cli_commands_in_the_docs(ws, npx):
    cmds = lines(section("The MCP server", TUTOR), ("npx ",))
    assert len(cmds) == 2 and all("--cli llmlab mcp" in c for c in cmds)
    env = {**os.environ, "LLMLAB_HOME": "",
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])}
    outs = []
    for line in cmds:
        r = subprocess.run(shlex.split(line), cwd=ws.root, env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, f"`{line}` failed:\n{r.stdout}\n{r.stderr}"
        outs.append(json.loads(r.stdout))
    from llmlab import tutor

    assert [t["name"] for t in outs[0]["tools"]] == list(tutor.TOOL_NAMES)
    assert outs[1]["isError"] is False and outs[1]["structuredContent"]["next"][0]["target"] \
        == "tokenization"


def test_mcp_inspector_records_and_rejects_like_the_cli(ws, npx):
    base = [npx, "-y", "@modelcontextprotocol/inspector", "--cli",
            sys.executable, "-m", "llmlab", "mcp", "-e", f"LLMLAB_HOME={ws.root}",
            "--method", "tools/call", "--tool-name", "record_observation"]
    ok = subprocess.run(base + ["--tool-arg", "concept=softmax", "--tool-arg", "quality=0.7",
                                "--tool-arg", "evidence=computed 0.95 for logits 4 and 1"],
                        capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["structuredContent"]["id"] == "evt_000001"
    before = ws.log_path.read_bytes()
    bad = subprocess.run(base + ["--tool-arg", "concept=sofmax", "--tool-arg", "quality=0.7",
                                 "--tool-arg", "evidence=x"],
                         capture_output=True, text=True, timeout=300)
    res = json.loads(bad.stdout)
    assert res["isError"] is True and "Did you mean 'softmax'" in res["content"][0]["text"]
    assert ws.log_path.read_bytes() == before
