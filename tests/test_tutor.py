"""Generated tutor instructions and MCP client set-up, through the CLI a learner runs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import tomli_w
import tomllib

from llmlab import tutor
from llmlab.create import create_workspace
from llmlab.workspace import Workspace

MINI = Path(__file__).parent / "fixtures" / "mini"


class _Any:
    def __init__(self, kind):
        self.kind = kind

    def __eq__(self, other):
        return isinstance(other, self.kind)


ANY_STR, ANY_LIST = _Any(str), _Any(list)


def agents(ws) -> str:
    return (ws.root / "AGENTS.md").read_text()


# ---------------------------------------------------------------- content

@pytest.mark.parametrize("fixture", ["ws", "default_ws"])
def test_agents_md_names_the_real_ids_tools_and_cli_twins(fixture, request):
    ws = request.getfixturevalue(fixture)
    text = agents(ws)
    cur = ws.curriculum
    for cid in cur.concepts:
        assert f"`{cid}`" in text, cid
    for item in cur.exit_items.values():
        assert f"`{item.id}`" in text and item.title in text
    for c in cur.concepts.values():  # the compact map: ids, titles that add to the id
        assert c.title in text or not tutor._says_more(c.title, c.id), c.id
    for m in cur.modules:
        assert f"`{m.id}`" in text and m.title in text
    assert "get_curriculum" in text and "llmlab://curriculum" in text  # the full map
    for t in tutor.TOOLS:
        assert f"`{t.name}`" in text and f"`{t.cli}`" in text
    assert "Test Learner" in text and ws.config.learner.goal in text
    for section in ("## Teaching method", "## Memory protocol", "## Failure patterns to name",
                    "Depth as procrastination", "Completion-seeking", "Theory over shipping",
                    "### Mechanism questions", "### Build milestones", "Never claim mastery"):
        assert section in text, section
    p = ws.config.mastery
    assert (f"at least {p.bar}," in text and f"at least {p.min_observations} observations on at "
            f"least {p.min_days} different days" in text)
    # no clock, no machine paths: the same inputs give the same bytes anywhere
    assert str(ws.root) not in text and not re.search(r"20\d\d-\d\d-\d\dT", text)


def test_instructions_fit_the_context_budget(default_ws):
    """AGENTS.md + CLAUDE.md <= 16,000 characters on the default course; the course map is
    compact (no behaviours or misconceptions; those are in get_concept)."""
    texts = tutor.render(default_ws)
    assert sum(len(t) for t in texts.values()) <= 16_000, {k: len(v) for k, v in texts.items()}
    text = texts[tutor.AGENTS]
    cur = default_ws.curriculum
    some = [c for c in cur.concepts.values() if c.misconceptions and c.behaviours]
    assert some and not any(c.behaviours[0] in text or c.misconceptions[0].id in text
                            for c in some)
    assert "mcp__" not in text  # no client's tool prefix: the plugin's differs


def test_the_cli_twins_in_agents_md_are_real_commands():
    """Every CLI equivalent the instructions name is a real command with those options."""
    from llmlab.cli import command_tree

    root = command_tree()
    for t in tutor.TOOLS:
        words = t.cli.split()[1:]
        cmd = root
        while hasattr(cmd, "commands") and words and words[0] in cmd.commands:
            cmd = cmd.commands[words.pop(0)]
        assert not hasattr(cmd, "commands"), f"{t.cli}: not a command"
        opts = {o for p in cmd.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
        for w in words:
            if w.startswith("-"):
                assert w.strip("()") in opts, f"{t.cli}: no option {w}"


def test_claude_md_imports_agents_md(ws):
    text = (ws.root / "CLAUDE.md").read_text()
    assert "\n@AGENTS.md\n" in text


def test_tool_docs_match_the_server():
    from llmlab.mcp_server import build_server

    tools = asyncio.run(build_server().list_tools())
    assert [t.name for t in tools] == list(tutor.TOOL_NAMES)


def test_learner_notes_are_included(ws, invoke):
    (ws.root / "notes" / "tutor.md").write_text("Prefers examples in Go.\n")
    r = invoke("tutor", "instructions")
    assert r.returncode == 0 and "Wrote AGENTS.md" in r.stdout
    assert "## The learner's notes for you" in agents(ws) and "Prefers examples in Go." in agents(ws)


# ---------------------------------------------------------------- writing and idempotence

def test_init_writes_instructions_and_mcp_json(tmp_path, invoke):
    r = invoke("init", str(tmp_path / "w"), "--name", "Ana", "--goal", "ship a RAG feature")
    assert r.returncode == 0, r.stderr
    w = tmp_path / "w"
    assert "**Name:** Ana" in (w / "AGENTS.md").read_text()
    entry = json.loads((w / ".mcp.json").read_text())["mcpServers"]["llmlab"]
    assert entry["args"][-1] == "mcp" and entry["env"] == {"LLMLAB_HOME": str(w)}
    assert Path(entry["command"]).is_file() and os.access(entry["command"], os.X_OK)


def test_init_keeps_an_agents_md_it_did_not_write(tmp_path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "AGENTS.md").write_text("# my repo's own agent rules\n")
    (root / ".mcp.json").write_text(json.dumps({"mcpServers": {"other": {"command": "x"}}}))
    create_workspace(root)
    assert (root / "AGENTS.md").read_text() == "# my repo's own agent rules\n"
    servers = json.loads((root / ".mcp.json").read_text())["mcpServers"]
    assert set(servers) == {"other", "llmlab"}


def test_regenerating_is_idempotent(ws, invoke):
    before = {n: (ws.root / n).read_bytes() for n in ("AGENTS.md", "CLAUDE.md")}
    mtimes = {n: (ws.root / n).stat().st_mtime_ns for n in before}
    for _ in range(2):
        r = invoke("tutor", "instructions", "--json")
        assert r.returncode == 0, r.stderr
        res = json.loads(r.stdout)
        assert res["written"] == [] and res["unchanged"] == ["AGENTS.md", "CLAUDE.md"]
    assert {n: (ws.root / n).read_bytes() for n in before} == before
    assert {n: (ws.root / n).stat().st_mtime_ns for n in before} == mtimes
    # deleting and regenerating gives the same bytes
    (ws.root / "AGENTS.md").unlink()
    assert invoke("tutor", "instructions").returncode == 0
    assert (ws.root / "AGENTS.md").read_bytes() == before["AGENTS.md"]
    assert invoke("tutor", "instructions", "--check").returncode == 0
    assert invoke("tutor", "instructions", "--print").stdout == before["AGENTS.md"].decode()


@pytest.fixture
def own_ws(tmp_path, monkeypatch) -> Workspace:
    """A workspace with its own editable copy of the mini curriculum."""
    cur = tmp_path / "course"
    shutil.copytree(MINI, cur)
    w = create_workspace(tmp_path / "ws", name="Test Learner", curriculum=str(cur))
    monkeypatch.setenv("LLMLAB_HOME", str(w.root))
    return w


def _edit_curriculum(ws: Workspace) -> None:
    f = Path(ws.curriculum.path) / "modules" / "01_basics.toml"
    f.write_text(f.read_text().replace('title = "Softmax"', 'title = "Softmax, renamed"'))


def test_curriculum_change_is_detected_and_regenerated(own_ws, invoke):
    _edit_curriculum(own_ws)
    r = invoke("tutor", "instructions", "--check", "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["AGENTS.md"] == "outdated"
    assert invoke("tutor", "instructions").returncode == 0
    assert "Softmax, renamed" in agents(own_ws)
    assert invoke("tutor", "instructions", "--check").returncode == 0


def test_learner_profile_change_is_regenerated(ws, invoke):
    cfg = tomllib.loads(ws.config_path.read_text())
    cfg["learner"]["name"] = "Bo"
    ws.config_path.write_text(tomli_w.dumps(cfg))
    assert invoke("tutor", "instructions").returncode == 0
    assert "**Name:** Bo" in agents(ws)


def test_mcp_start_refreshes_outdated_instructions(own_ws):
    from mcp import Client, StdioServerParameters

    _edit_curriculum(own_ws)

    async def go():
        async with Client(StdioServerParameters(
                command=sys.executable, args=["-m", "llmlab", "mcp"],
                env={**os.environ, "LLMLAB_HOME": str(own_ws.root)})) as c:
            await c.list_tools()

    asyncio.run(go())
    assert "Softmax, renamed" in agents(own_ws)
    assert tutor.check(own_ws) == {"AGENTS.md": "current", "CLAUDE.md": "current"}


def test_hand_edits_are_never_overwritten_silently(own_ws, invoke):
    path = own_ws.root / "AGENTS.md"
    path.write_text(path.read_text() + "\nMy own rule.\n")
    _edit_curriculum(own_ws)
    r = invoke("tutor", "instructions")
    assert r.returncode == 1
    assert "edited by hand" in r.stderr and "notes/tutor.md" in r.stderr and "--force" in r.stderr
    assert path.read_text().endswith("My own rule.\n")
    assert tutor.refresh(own_ws)["kept"] == ["AGENTS.md"]  # the automatic refresh keeps it too
    assert path.read_text().endswith("My own rule.\n")
    assert invoke("tutor", "instructions", "--force").returncode == 0
    assert "My own rule." not in path.read_text() and "Softmax, renamed" in path.read_text()


# ---------------------------------------------------------------- client set-up

def test_claude_desktop_setup_merges_without_clobbering(ws, invoke, tmp_path):
    cfg = tmp_path / "claude_desktop_config.json"
    other = {"mcpServers": {"github": {"command": "gh-mcp", "env": {"TOKEN": "s3cret"}}},
             "globalShortcut": "Ctrl+Space"}
    cfg.write_text(json.dumps(other, indent=4))
    r = invoke("tutor", "setup", "--client", "claude-desktop", "--config", str(cfg), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["change"] == "added"
    merged = json.loads(cfg.read_text())
    assert merged["globalShortcut"] == "Ctrl+Space"
    assert merged["mcpServers"]["github"] == other["mcpServers"]["github"]
    assert merged["mcpServers"]["llmlab"]["env"] == {"LLMLAB_HOME": str(ws.root)}
    first = cfg.read_bytes()
    r = invoke("tutor", "setup", "--client", "claude-desktop", "--config", str(cfg), "--json")
    assert json.loads(r.stdout)["change"] == "unchanged" and cfg.read_bytes() == first
    r = invoke("tutor", "setup", "--client", "claude-desktop", "--config", str(cfg),
               "--name", "llmlab-2")
    assert r.returncode == 0
    assert set(json.loads(cfg.read_text())["mcpServers"]) == {"github", "llmlab", "llmlab-2"}


def test_setup_refuses_to_touch_a_file_it_cannot_parse(ws, invoke, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text("{ // a comment\n}")
    r = invoke("tutor", "setup", "--client", "claude-desktop", "--config", str(cfg))
    assert r.returncode == 1 and "not valid JSON" in r.stderr and "--print" in r.stderr
    assert cfg.read_text() == "{ // a comment\n}"


def test_setup_print_writes_nothing_and_shows_only_our_entry(ws, invoke, tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"mcpServers": {"github": {"env": {"TOKEN": "s3cret"}}}}))
    before = cfg.read_bytes()
    r = invoke("tutor", "setup", "--client", "claude-desktop", "--config", str(cfg), "--print")
    assert r.returncode == 0 and cfg.read_bytes() == before
    printed = json.loads(r.stdout)
    assert list(printed["mcpServers"]) == ["llmlab"] and "s3cret" not in r.stdout
    assert str(cfg) in r.stderr


def test_cursor_and_claude_code_write_project_files(ws, invoke):
    assert invoke("tutor", "setup", "--client", "cursor").returncode == 0
    entry = json.loads((ws.root / ".cursor" / "mcp.json").read_text())["mcpServers"]["llmlab"]
    assert entry["args"][-1] == "mcp" and entry["env"]["LLMLAB_HOME"] == str(ws.root)
    r = invoke("tutor", "setup", "--client", "claude-code", "--json")
    assert json.loads(r.stdout)["change"] == "unchanged"  # init already wrote it
    r = invoke("tutor", "setup", "--client", "vscode")
    assert "llmlab" in json.loads((ws.root / ".vscode" / "mcp.json").read_text())["servers"]


CLIENTS = Path(__file__).parent / "fixtures" / "clients"


def setup_client(invoke, client: str, cfg: Path, *extra: str):
    return invoke("tutor", "setup", "--client", client, "--config", str(cfg), *extra)


def test_vscode_jsonc_with_comments_is_read_and_kept_with_the_snippet_to_paste(ws, invoke,
                                                                               tmp_path):
    cfg = tmp_path / "mcp.json"
    shutil.copy(CLIENTS / "vscode_mcp.jsonc", cfg)
    before = cfg.read_bytes()
    r = setup_client(invoke, "vscode", cfg)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert cfg.read_bytes() == before  # the comments (and everything else) are intact
    assert "has comments" in r.stderr and "Add this to it by hand" in r.stderr
    snippet = json.loads(r.stderr[r.stderr.index("{"):])
    assert snippet == {"servers": {"llmlab": {"type": "stdio", "command": ANY_STR,
                                              "args": ANY_LIST, "env": {"LLMLAB_HOME": str(ws.root)}}}}
    # once the learner pasted it, the commented file is read and left as it is
    text = before.decode().replace('"servers": {', '"servers": {\n    "llmlab": '
                                   + json.dumps(snippet["servers"]["llmlab"]) + ",", 1)
    cfg.write_text(text)
    r = setup_client(invoke, "vscode", cfg, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["change"] == "unchanged" and cfg.read_text() == text


def test_vscode_plain_json_is_merged_keeping_inputs_and_servers(ws, invoke, tmp_path):
    cfg = tmp_path / "mcp.json"
    shutil.copy(CLIENTS / "vscode_mcp.json", cfg)
    old = json.loads(cfg.read_text())
    r = setup_client(invoke, "vscode", cfg, "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["change"] == "added", r.stderr
    new = json.loads(cfg.read_text())
    assert new["inputs"] == old["inputs"]
    assert {k: v for k, v in new["servers"].items() if k != "llmlab"} == old["servers"]
    assert new["servers"]["llmlab"]["type"] == "stdio"
    assert new["servers"]["llmlab"]["env"] == {"LLMLAB_HOME": str(ws.root)}


def test_codex_toml_is_merged_keeping_comments_and_formatting(ws, invoke, tmp_path, monkeypatch):
    home = tmp_path / "codex-home"
    home.mkdir()
    shutil.copy(CLIENTS / "codex_config.toml", home / "config.toml")
    before = (home / "config.toml").read_text()
    r = invoke("tutor", "setup", "--client", "codex", "--json", env={"CODEX_HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["path"] == str(home / "config.toml")
    after = (home / "config.toml").read_text()
    lines = iter(after.splitlines())  # every line, comment and blank line kept, in order
    assert all(line in lines for line in before.splitlines()), after
    doc, old = tomllib.loads(after), tomllib.loads(before)
    assert {k: v for k, v in doc.items() if k != "mcp_servers"} == \
        {k: v for k, v in old.items() if k != "mcp_servers"}
    assert doc["mcp_servers"]["context7"] == old["mcp_servers"]["context7"]
    entry = doc["mcp_servers"]["llmlab"]
    assert set(entry) == {"command", "args", "env"} and entry["args"][-1] == "mcp"
    assert entry["env"] == {"LLMLAB_HOME": str(ws.root)}
    r = invoke("tutor", "setup", "--client", "codex", "--json", env={"CODEX_HOME": str(home)})
    assert json.loads(r.stdout)["change"] == "unchanged"
    assert (home / "config.toml").read_text() == after
    r = invoke("tutor", "setup", "--client", "codex", "--print", env={"CODEX_HOME": str(home)})
    assert tomllib.loads(r.stdout) == {"mcp_servers": {"llmlab": entry}}
    assert "ctx7-secret" not in r.stdout
    fresh = tmp_path / "new" / "config.toml"  # no config yet: created, valid TOML
    assert setup_client(invoke, "codex", fresh).returncode == 0
    assert tomllib.loads(fresh.read_text()) == {"mcp_servers": {"llmlab": entry}}


def test_gemini_gets_the_server_and_agents_md_as_context_file(ws, invoke, tmp_path):
    cfg = tmp_path / "settings.json"
    shutil.copy(CLIENTS / "gemini_settings.json", cfg)
    old = json.loads(cfg.read_text())
    r = setup_client(invoke, "gemini", cfg)
    assert r.returncode == 0, r.stderr
    new = json.loads(cfg.read_text())
    assert new["contextFileName"] == ["GEMINI.md", "AGENTS.md"]  # theirs kept, ours added
    assert new["mcpServers"]["playwright"] == old["mcpServers"]["playwright"]
    assert new["mcpServers"]["llmlab"]["env"] == {"LLMLAB_HOME": str(ws.root)}
    for k in ("theme", "general", "telemetry"):
        assert new[k] == old[k]
    assert json.loads(setup_client(invoke, "gemini", cfg, "--json").stdout)["change"] == "unchanged"
    fresh = tmp_path / "fresh.json"
    assert setup_client(invoke, "gemini", fresh).returncode == 0
    assert json.loads(fresh.read_text())["contextFileName"] == "AGENTS.md"


def test_unknown_client_names_the_supported_ones(ws, invoke):
    r = invoke("tutor", "setup", "--client", "cursr")
    assert r.returncode == 1 and "Did you mean 'cursor'" in r.stderr and "claude-desktop" in r.stderr


def test_the_configured_command_starts_a_working_server(ws, tmp_path):
    """The entry `tutor setup` writes is runnable as a client would run it: from another
    folder, with a bare environment plus what the entry sets."""
    from mcp import Client, StdioServerParameters

    from llmlab import clients

    entry = clients.setup(ws, "claude-desktop", tmp_path / "c.json")["entry"]["mcpServers"]["llmlab"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **entry["env"]}

    async def go():
        async with Client(StdioServerParameters(command=entry["command"], args=entry["args"],
                                                env=env, cwd=str(tmp_path))) as c:
            return await c.call_tool("get_state", {})

    res = asyncio.run(go())
    assert not res.is_error and res.structured_content["overall"]["total"] == 4
