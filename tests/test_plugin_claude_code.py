"""The plugin in the real Claude Code (skipped unless a `claude` binary is available: set
LLMLAB_CLAUDE_BIN or put `claude` on PATH; the npm package `@anthropic-ai/claude-code`).

Claude Code runs offline against a canned Messages API (`fixtures/hooks/mock_messages_api.py`):
1. `claude -p` in a workspace with `--plugin-dir plugin` and no venv on PATH: the
   SessionStart hook's brief is accepted, the slash commands are loaded, and the plugin adds
   no second MCP server;
2. `--resume` with the learner's answer to the tutor's probe, and a tutor reply that records
   nothing: the Stop hook's reminder reaches the model as Stop-hook context, the tutor
   continues once, and the second stop (stop_hook_active) adds nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmlab import api

CLAUDE = os.environ.get("LLMLAB_CLAUDE_BIN") or shutil.which("claude")
pytestmark = pytest.mark.skipif(not CLAUDE, reason="Claude Code (`claude`) is not installed")
ROOT = Path(__file__).resolve().parents[1]
MOCK = Path(__file__).parent / "fixtures" / "hooks" / "mock_messages_api.py"
PROBE = ("Before attention: your prompt has 1,000 tokens and you double it. How many times "
         "more work do the attention scores need, and why?")
ANSWER = "About 4 times: every token attends to every earlier token, so it grows with n squared."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hooks_in_the_real_claude_code(default_ws, tmp_path):
    ws = default_ws
    api.observe(ws, "tokenization", 0.6, "first exchange", at="2026-01-01T10:00:00Z")
    port, requests = free_port(), tmp_path / "requests.jsonl"
    replies = [PROBE, "Right: it grows with n squared.", "Recorded it now."]
    mock = subprocess.Popen([sys.executable, str(MOCK), str(port), json.dumps(replies),
                             str(requests)])
    env = dict(os.environ, HOME=str(tmp_path / "home"), ANTHROPIC_API_KEY="sk-test-offline",
               ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}", LLMLAB_HOME="",
               PATH=os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                    if Path(p).resolve() != Path(sys.executable).parent.resolve()))
    # no venv on PATH: the hooks find llmlab-hook through the workspace's .mcp.json
    base = [CLAUDE, "--plugin-dir", str(ROOT / "plugin"), "--output-format", "stream-json",
            "--verbose"]
    try:
        time.sleep(0.5)
        r1 = subprocess.run([*base, "-p", "Let's start."], cwd=ws.root, env=env,
                            capture_output=True, text=True, timeout=180)
        events = [json.loads(x) for x in r1.stdout.splitlines() if x.startswith("{")]
        init = next(e for e in events if e.get("subtype") == "init")
        assert {"llmlab:next", "llmlab:progress", "llmlab:predict", "llmlab:quiz",
                "llmlab:flashcards"} <= set(init["slash_commands"])
        # one server per workspace: the plugin brings none of its own
        assert not any(s["name"].startswith("plugin:llmlab") for s in init["mcp_servers"])
        started = next(e for e in events if e.get("subtype") == "hook_response"
                       and e.get("hook_event") == "SessionStart")
        assert started["exit_code"] == 0 and started["outcome"] == "success"
        assert "Current module: inference_loop" in json.loads(started["output"])[
            "hookSpecificOutput"]["additionalContext"]
        session = next(e for e in events if e.get("type") == "result")["session_id"]

        r2 = subprocess.run([*base, "-p", ANSWER, "--resume", session], cwd=ws.root, env=env,
                            capture_output=True, text=True, timeout=180)
        assert r2.returncode == 0, r2.stderr
        sent = [json.loads(x)["body"] for x in requests.read_text().splitlines()]
        turns = [b for b in sent if b.get("max_tokens", 0) > 1 and b.get("messages")]
        # probe; reply; one continuation after the reminder; then the stop hook is quiet
        reminded = [b for b in turns if "answers the tutor's probe" in json.dumps(b["messages"][-1])]
        assert len(reminded) == 1 and "Stop hook" in json.dumps(reminded[0]["messages"][-1])
        assert turns[-1] is reminded[0]
        assert ws.log_path.read_text().count("\n") == 1  # the hook recorded nothing
    finally:
        mock.terminate()
        mock.wait(10)


def test_the_plugin_validates_strictly():
    """`claude plugin validate --strict` on the plugin and on the repository's marketplace."""
    for target in (ROOT / "plugin", ROOT):
        r = subprocess.run([CLAUDE, "plugin", "validate", str(target), "--strict"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Validation passed" in r.stdout and "⚠" not in r.stdout, r.stdout


def test_claude_mcp_list_shows_one_connected_workspace_server(tmp_path, cli):
    """A workspace made by `llmlab init`, once the learner has trusted the folder and
    approved its server (what `claude` records in ~/.claude.json): exactly one llmlab server,
    connected, also when the venv is not on PATH (.mcp.json names the executable)."""
    root = tmp_path / "course"
    assert cli("init", str(root), "--name", "Ana").returncode == 0
    home = tmp_path / "home"
    home.mkdir()
    (home / ".claude.json").write_text(json.dumps({"projects": {str(root.resolve()): {
        "hasTrustDialogAccepted": True, "enabledMcpjsonServers": ["llmlab"]}}}))
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    r = subprocess.run([CLAUDE, "mcp", "list"], cwd=root, env=env, capture_output=True,
                       text=True, timeout=120)
    lines = [x for x in r.stdout.splitlines() if "llmlab" in x]
    assert len(lines) == 1 and "Connected" in lines[0], r.stdout + r.stderr
