"""The Claude Code plugin: its files against the documented schemas, and the hooks run as
Claude Code runs them (a subprocess, the recorded event JSON on stdin, JSON on stdout).

Schemas written from https://code.claude.com/docs/en/plugins-reference (plugin manifest
schema), https://code.claude.com/docs/en/plugin-marketplaces (marketplace schema) and
https://code.claude.com/docs/en/hooks (configuration, hook handler fields).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import jsonschema
import pytest

from llmlab import api

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugin"
FIX = Path(__file__).parent / "fixtures" / "hooks"

KEBAB = r"^[a-z0-9]+(-[a-z0-9]+)*$"
REL_PATH = r"^\./"
PATHS = {"oneOf": [{"type": "string", "pattern": REL_PATH},
                   {"type": "array", "items": {"type": "string", "pattern": REL_PATH}}]}
PATHS_OR_INLINE = {"oneOf": [PATHS["oneOf"][0], PATHS["oneOf"][1], {"type": "object"}]}
AUTHOR = {"type": "object", "required": ["name"], "additionalProperties": False,
          "properties": {"name": {"type": "string", "minLength": 1}, "email": {"type": "string"},
                         "url": {"type": "string"}}}
MANIFEST_FIELDS = {
    "$schema": {"type": "string"},
    "name": {"type": "string", "pattern": KEBAB},
    "displayName": {"type": "string"},
    "version": {"type": "string", "pattern": r"^\d+\.\d+\.\d+([-+].+)?$"},
    "description": {"type": "string"},
    "author": AUTHOR,
    "homepage": {"type": "string"}, "repository": {"type": "string"},
    "license": {"type": "string"},
    "keywords": {"type": "array", "items": {"type": "string"}},
    "metadata": {"type": "object"},
    "defaultEnabled": {"type": "boolean"},
    "skills": PATHS, "commands": PATHS, "agents": PATHS, "outputStyles": PATHS,
    "hooks": PATHS_OR_INLINE, "mcpServers": PATHS_OR_INLINE, "lspServers": PATHS_OR_INLINE,
    "userConfig": {"type": "object"}, "dependencies": {"type": "array"},
}
# Unknown top-level fields only warn in Claude Code; the schema is stricter, to catch typos.
PLUGIN_SCHEMA = {"type": "object", "required": ["name"], "additionalProperties": False,
                 "properties": MANIFEST_FIELDS}
SOURCE = {"oneOf": [
    {"type": "string", "pattern": REL_PATH},
    {"type": "object", "required": ["source"], "properties": {
        "source": {"enum": ["github", "url", "git-subdir", "npm", "archive", "command"]}}},
]}
MARKETPLACE_SCHEMA = {
    "type": "object", "required": ["name", "owner", "plugins"], "additionalProperties": False,
    "properties": {
        "$schema": {"type": "string"},
        "name": {"type": "string", "pattern": KEBAB,
                 "not": {"enum": ["claude-code-marketplace", "claude-code-plugins",
                                  "claude-plugins-official", "anthropic-marketplace",
                                  "anthropic-plugins", "agent-skills"]}},
        "owner": AUTHOR, "description": {"type": "string"}, "version": {"type": "string"},
        "metadata": {"type": "object"},
        "plugins": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "source"], "additionalProperties": False,
            "properties": MANIFEST_FIELDS | {"source": SOURCE, "category": {"type": "string"},
                                             "tags": {"type": "array", "items": {"type": "string"}},
                                             "strict": {"type": "boolean"}}}},
    },
}
EVENTS = ["SessionStart", "Setup", "UserPromptSubmit", "UserPromptExpansion", "PreToolUse",
          "PermissionRequest", "PermissionDenied", "PostToolUse", "PostToolUseFailure",
          "PostToolBatch", "Notification", "MessageDisplay", "SubagentStart", "SubagentStop",
          "TaskCreated", "TaskCompleted", "Stop", "StopFailure", "TeammateIdle",
          "InstructionsLoaded", "ConfigChange", "CwdChanged", "DirectoryAdded", "FileChanged",
          "WorktreeCreate", "WorktreeRemove", "PreCompact", "PostCompact", "Elicitation",
          "ElicitationResult", "SessionEnd"]
COMMAND_HANDLER = {
    "type": "object", "required": ["type", "command"], "additionalProperties": False,
    "properties": {"type": {"const": "command"}, "command": {"type": "string", "minLength": 1},
                   "args": {"type": "array", "items": {"type": "string"}},
                   "timeout": {"type": "number", "exclusiveMinimum": 0},
                   "statusMessage": {"type": "string"}, "async": {"type": "boolean"},
                   "shell": {"enum": ["bash", "powershell"]}}}
HOOKS_SCHEMA = {
    "type": "object", "required": ["hooks"], "additionalProperties": False,
    "properties": {
        "description": {"type": "string"},
        "hooks": {"type": "object", "additionalProperties": False, "minProperties": 1,
                  "properties": {e: {"type": "array", "minItems": 1, "items": {
                      "type": "object", "required": ["hooks"], "additionalProperties": False,
                      "properties": {"matcher": {"type": "string"},
                                     "hooks": {"type": "array", "minItems": 1,
                                               "items": COMMAND_HANDLER}}}} for e in EVENTS}},
    },
}
MCP_SCHEMA = {"type": "object", "required": ["mcpServers"], "properties": {"mcpServers": {
    "type": "object", "minProperties": 1, "additionalProperties": {
        "type": "object", "required": ["command"],
        "properties": {"command": {"type": "string"}, "args": {"type": "array"},
                       "env": {"type": "object"}}}}}}
COMMANDS = ["next", "progress", "predict", "quiz", "flashcards"]


def load(p: Path) -> dict:
    return json.loads(p.read_text(encoding="utf-8"))


# ---------------------------------------------------------------- the plugin's files

def test_manifest_matches_the_documented_schema():
    m = load(PLUGIN / ".claude-plugin" / "plugin.json")
    jsonschema.validate(m, PLUGIN_SCHEMA)
    assert m["name"] == "llmlab"
    assert m["version"] == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    # components sit in their default locations at the plugin root, not in .claude-plugin/
    assert sorted(p.name for p in (PLUGIN / ".claude-plugin").iterdir()) == ["icon.png",
                                                                            "plugin.json"]
    assert (PLUGIN / "hooks" / "hooks.json").is_file()
    assert not (PLUGIN / ".mcp.json").exists()  # one server per workspace: its own .mcp.json


def test_schema_has_teeth():
    bad = [{"name": "LLM Lab"}, {"name": "llmlab", "keywords": "llm"},
           {"name": "llmlab", "commands": "commands/"}, {"name": "llmlab", "nmae": "x"}]
    for m in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(m, PLUGIN_SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"hooks": {"OnStop": [{"hooks": [{"type": "command",
                                                               "command": "x"}]}]}}, HOOKS_SCHEMA)


def test_marketplace_lists_the_plugin():
    mk = load(ROOT / ".claude-plugin" / "marketplace.json")
    jsonschema.validate(mk, MARKETPLACE_SCHEMA)
    (entry,) = mk["plugins"]
    assert entry["name"] == "llmlab" == load(PLUGIN / ".claude-plugin" / "plugin.json")["name"]
    # relative sources resolve against the marketplace root (the folder holding .claude-plugin/)
    assert (ROOT / entry["source"]).resolve() == PLUGIN


def test_hooks_json_runs_the_hook_entry_point():
    h = load(PLUGIN / "hooks" / "hooks.json")
    jsonschema.validate(h, HOOKS_SCHEMA)
    assert set(h["hooks"]) == {"SessionStart", "Stop", "UserPromptSubmit"}
    (ss,) = h["hooks"]["SessionStart"]
    assert set(ss["matcher"].split("|")) == {"startup", "resume", "clear", "compact"}
    commands = {e: g["hooks"][0]["command"] for e, gs in h["hooks"].items() for g in gs}
    assert commands == {"SessionStart": 'sh "${CLAUDE_PLUGIN_ROOT}/hooks/run.sh" session-start',
                        "Stop": 'sh "${CLAUDE_PLUGIN_ROOT}/hooks/run.sh" stop',
                        "UserPromptSubmit":
                            'sh "${CLAUDE_PLUGIN_ROOT}/hooks/run.sh" user-prompt-submit'}
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["llmlab-hook"] == "llmlab.plugin.hooks:main"


def run_sh(event: str, project: Path, path: str, stdin: str = "{}") -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(PLUGIN / "hooks" / "run.sh"), event], input=stdin,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": path, "HOME": str(project), "CLAUDE_PROJECT_DIR": str(project)})


def test_hook_launcher_needs_no_venv_on_path(ws, tmp_path):
    """run.sh finds llmlab-hook beside the llmlab that .mcp.json names; outside a workspace
    it is silent; in a workspace without any llmlab-hook it says so in one line."""
    bare = "/usr/bin:/bin"
    payload = json.dumps({"cwd": str(ws.root), "hook_event_name": "SessionStart",
                          "source": "startup"})
    r = run_sh("session-start", ws.root / "notes", bare, payload)
    assert r.returncode == 0, r.stderr
    assert "additionalContext" in json.loads(r.stdout)["hookSpecificOutput"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = run_sh("stop", elsewhere, bare)
    assert (r.returncode, r.stdout) == (0, "")
    (ws.root / ".mcp.json").unlink()
    r = run_sh("stop", ws.root, bare)
    assert r.returncode == 0 and "found no llmlab-hook" in json.loads(r.stdout)["systemMessage"]


def test_write_tool_names_match_the_mcp_server():
    """The stop hook counts exactly the MCP server's write tools as recorded evidence."""
    from llmlab.plugin.turn import is_write_call

    writes = ["record_observation", "open_misconception", "resolve_misconception",
              "record_exit_attempt", "record_prediction", "retract_event", "run_experiment"]
    reads = ["get_state", "next_probes", "get_concept", "get_curriculum", "list_experiments"]
    for server in ("mcp__llmlab__", "mcp__plugin_llmlab_llmlab__"):
        for name in writes:
            assert is_write_call({"type": "tool_use", "name": server + name}), name
        for name in reads:
            assert not is_write_call({"type": "tool_use", "name": server + name}), name
    bash = lambda c: is_write_call({"type": "tool_use", "name": "Bash", "input": {"command": c}})
    assert bash("cd ~/course && llmlab log observe softmax -q 0.7 -e 'x'")
    assert bash("python -m llmlab predict tokens n_tokens 4")
    assert not bash("llmlab next --json") and not bash("llmlab state")


def test_plugin_setup_enables_the_plugin_for_the_workspace(ws):
    from llmlab.plugin import setup

    settings = ws.root / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"permissions": {"allow": ["Bash(ls:*)"]}}))
    res = setup.setup(ws)
    assert res["change"] == "updated"
    data = json.loads(settings.read_text())
    assert data["permissions"] == {"allow": ["Bash(ls:*)"]}  # kept
    assert data["enabledPlugins"] == {"llmlab@llmlab": True}
    src = data["extraKnownMarketplaces"]["llmlab"]["source"]
    assert src["source"] == "directory" and Path(src["path"]) == ROOT
    assert setup.setup(ws)["change"] == "unchanged"
    settings.write_text("{not json")
    with pytest.raises(Exception, match="not valid JSON"):
        setup.setup(ws)
    assert settings.read_text() == "{not json"


def _frontmatter(p: Path) -> tuple[dict, str]:
    text = p.read_text(encoding="utf-8")
    m = re.match(r"^---\n(.*?)\n---\n(.*)$", text, re.DOTALL)
    assert m, f"{p.name} has no frontmatter"
    fm = {}
    for line in m.group(1).splitlines():
        k, _, v = line.partition(":")
        fm[k.strip()] = v.strip()
    return fm, m.group(2)


@pytest.mark.parametrize("name", COMMANDS)
def test_slash_commands(name):
    fm, body = _frontmatter(PLUGIN / "commands" / f"{name}.md")
    assert set(fm) <= {"description", "argument-hint", "allowed-tools", "model"}
    assert len(fm["description"]) > 20
    tools = fm["allowed-tools"].split(", ")
    for t in tools:
        assert re.fullmatch(r"Bash\(llmlab [a-z ]+:\*\)|mcp__llmlab|mcp__plugin_llmlab_llmlab", t), t
    # every CLI command the body tells the tutor to run is pre-approved and exists
    for cmd in re.findall(r"`(llmlab [a-z -]+?)(?: [A-Z\-\$]|`)", body):
        words = cmd.split()
        if words[1] in ("init", "serve"):  # for the learner to run, not the tutor
            continue
        assert any(t.startswith(f"Bash({' '.join(words[:3])}") or
                   t.startswith(f"Bash({' '.join(words[:2])}") for t in tools), cmd
    if name in ("next", "progress", "quiz", "predict"):
        assert "mcp__llmlab" in tools and not any("plugin_llmlab" in t for t in tools)
    assert "never" in body.lower() or name in ("flashcards", "predict")


def test_command_bodies_name_real_cli_commands(invoke):
    """The CLI commands the slash commands rely on exist (help exits 0)."""
    for args in (["next", "--help"], ["state", "--help"], ["flashcards", "export", "--help"],
                 ["log", "observe", "--help"], ["predict", "--help"], ["site", "build", "--help"]):
        r = invoke(*args)
        assert r.returncode == 0, (args, r.stderr)


# ---------------------------------------------------------------- running the hooks

def payload(name: str, cwd: Path, transcript: Path | str = "", **extra) -> str:
    text = (FIX / name).read_text(encoding="utf-8")
    text = text.replace("__CWD__", str(cwd)).replace("__TRANSCRIPT__", str(transcript))
    return json.dumps(json.loads(text) | extra)


def run_hook(event: str, stdin: str, tmp_path: Path, cwd: Path | None = None, env=None):
    e = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), **(env or {}))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "llmlab.plugin.hooks", event], input=stdin,
                       capture_output=True, text=True, cwd=cwd or tmp_path, env=e, timeout=60)
    r.wall = time.perf_counter() - t
    return r


def seed(ws) -> None:
    api.observe(ws, "tokenization", 0.7, "explained BPE merges", at="2026-03-01T09:00:00Z")
    api.observe(ws, "softmax", 0.4, "thought softmax picks the max", at="2026-03-01T09:05:00Z")
    api.open_misconception(ws, "tokenization", catalog="tokens_are_words",
                           quote="each word is one token", at="2026-03-01T09:10:00Z")


def hook_log(ws) -> list[dict]:
    p = ws.root / "state" / "hooks.log"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def test_session_start_injects_the_learner_brief(ws, tmp_path):
    seed(ws)
    r = run_hook("session-start", payload("session_start.json", ws.root), tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    out = json.loads(r.stdout)
    assert set(out) == {"hookSpecificOutput"}
    hso = out["hookSpecificOutput"]
    assert hso["hookEventName"] == "SessionStart"
    text = hso["additionalContext"]
    assert "3 evidence events; last evt_000003" in text
    assert "Current module: basics (Basics)." in text
    assert "[resolve_misconception] tokenization" in text
    assert "evt_000003 on tokenization: \"A token is a word.\"" in text
    assert "mastered 0/4" in text
    assert len(text) < 4000
    assert hook_log(ws) == []


def test_session_start_from_a_subfolder_lists_ready_exit_items(ws, tmp_path):
    sub = ws.root / "notes"
    r = run_hook("session-start", payload("session_start.json", sub), tmp_path)
    text = json.loads(r.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "0 evidence events; last none" in text and "[frontier] tokenization" in text


def test_silent_outside_a_workspace(ws, tmp_path):
    """LLMLAB_HOME alone does not switch the hooks on in an unrelated project."""
    elsewhere = tmp_path / "some-project"
    elsewhere.mkdir()
    for event, fx in (("session-start", "session_start.json"), ("stop", "stop.json")):
        r = run_hook(event, payload(fx, elsewhere, FIX / "answered_unrecorded.jsonl"), tmp_path,
                     cwd=elsewhere, env={"LLMLAB_HOME": str(ws.root)})
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert not (tmp_path / "cache").exists() and hook_log(ws) == []


def test_stop_reminds_when_an_answered_probe_went_unrecorded(ws, tmp_path):
    seed(ws)
    log_before = ws.log_path.read_bytes()
    r = run_hook("stop", payload("stop.json", ws.root, FIX / "answered_unrecorded.jsonl"), tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    out = json.loads(r.stdout)
    assert set(out) == {"hookSpecificOutput", "systemMessage"}
    assert "decision" not in out  # feedback, not a blocking error
    hso = out["hookSpecificOutput"]
    assert hso["hookEventName"] == "Stop"
    assert "About 4 times: every token attends" in hso["additionalContext"]
    assert "evt_000003, predates it" in hso["additionalContext"]
    assert "llmlab log observe" in hso["additionalContext"]
    assert "not recorded" in out["systemMessage"]
    assert ws.log_path.read_bytes() == log_before  # the hook never writes evidence


@pytest.mark.parametrize("fixture", ["answered_recorded_mcp.jsonl", "answered_recorded_bash.jsonl",
                                     "slash_command.jsonl", "small_talk.jsonl"])
def test_stop_is_silent_when_nothing_is_missing(ws, tmp_path, fixture):
    seed(ws)
    r = run_hook("stop", payload("stop.json", ws.root, FIX / fixture), tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_stop_counts_evidence_logged_after_the_answer(ws, tmp_path):
    """The session log may lag, or the learner recorded in another terminal: an event
    newer than the learner's message counts."""
    seed(ws)
    api.observe(ws, "attention", 0.8, "n squared", at="2026-03-02T10:01:30Z")
    r = run_hook("stop", payload("stop.json", ws.root, FIX / "answered_unrecorded.jsonl"), tmp_path)
    assert (r.returncode, r.stdout) == (0, "")


def test_stop_never_loops_and_respects_the_setting(ws, tmp_path):
    seed(ws)
    stdin = payload("stop.json", ws.root, FIX / "answered_unrecorded.jsonl", stop_hook_active=True)
    assert run_hook("stop", stdin, tmp_path).stdout == ""
    cfg = ws.config_path.read_text()
    assert "[plugin]\nremind = true\n" in cfg  # `llmlab init` writes the defaults
    ws.config_path.write_text(cfg.replace("remind = true", "remind = false"))
    stdin = payload("stop.json", ws.root, FIX / "answered_unrecorded.jsonl")
    assert run_hook("stop", stdin, tmp_path).stdout == ""


def test_stop_with_a_missing_transcript_is_silent(ws, tmp_path):
    r = run_hook("stop", payload("stop.json", ws.root, tmp_path / "gone.jsonl"), tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


# ---------------------------------------------------------------- a corrupt workspace

def test_torn_log(ws, tmp_path):
    seed(ws)
    with open(ws.log_path, "ab") as f:
        f.write(b'{"id":"evt_000004","ts":"2026-03-0')
    before = ws.log_path.read_bytes()
    r = run_hook("session-start", payload("session_start.json", ws.root), tmp_path)
    assert r.returncode == 0 and r.stderr == "" and r.wall < 10
    text = json.loads(r.stdout)["hookSpecificOutput"]["additionalContext"]
    assert "torn, incomplete line" in text and "llmlab repair" in text
    assert "3 evidence events" in text  # every complete event still counts
    r2 = run_hook("stop", payload("stop.json", ws.root, FIX / "answered_unrecorded.jsonl"), tmp_path)
    assert r2.returncode == 0 and "evt_000003" in r2.stdout  # the last complete event
    assert ws.log_path.read_bytes() == before
    (entry,) = hook_log(ws)
    assert entry["event"] == "session-start" and "torn line" in entry["error"]


def test_garbage_state_cache(ws, tmp_path):
    seed(ws)
    before = ws.log_path.read_bytes()
    (ws.state_dir / "snapshot.json").write_bytes(b"\x00garbage{")
    r = run_hook("session-start", payload("session_start.json", ws.root), tmp_path)
    assert r.returncode == 0 and r.stderr == "" and r.wall < 10
    assert "Current module: basics" in json.loads(r.stdout)["hookSpecificOutput"]["additionalContext"]
    assert ws.log_path.read_bytes() == before
    (entry,) = hook_log(ws)
    assert "snapshot.json" in entry["error"]


def test_unreadable_state_cache_on_a_big_log_is_not_refolded_in_the_hook(ws, tmp_path, monkeypatch):
    """Re-deriving 10,000 events would blow the time budget: the hook answers at once and
    leaves the rebuild to a background `llmlab rebuild`."""
    import io

    from llmlab.plugin import hooks

    seed(ws)
    (ws.state_dir / "snapshot.json").write_text("[]")  # valid JSON, wrong shape
    spawned = []
    monkeypatch.setattr(hooks, "REBUILD_LIMIT", 0)
    monkeypatch.setattr(hooks, "spawn", lambda args, cwd: spawned.append(args))
    monkeypatch.setattr(sys, "stdin", io.StringIO(payload("session_start.json", ws.root)))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert hooks.main(["session-start"]) == 0
    text = json.loads(out.getvalue())["hookSpecificOutput"]["additionalContext"]
    assert "being rebuilt in the background" in text
    assert spawned and spawned[0][-2:] == ["llmlab", "rebuild"]


def test_broken_config_and_bad_input_exit_zero_and_are_logged(ws, tmp_path):
    before = ws.log_path.read_bytes()
    ws.config_path.write_text("[mastery\nalpha = ")
    r = run_hook("session-start", payload("session_start.json", ws.root), tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert "not valid TOML" in hook_log(ws)[0]["error"]
    r = run_hook("stop", "this is not json", tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = run_hook("no-such-event", "{}", tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    cached = (tmp_path / "cache" / "llmlab" / "hooks.log").read_text().splitlines()
    assert [json.loads(x)["event"] for x in cached] == ["stop", "no-such-event"]
    assert ws.log_path.read_bytes() == before


def test_hook_imports_stay_light(ws, tmp_path):
    """No typer, rich or torch on the hook path (python -X importtime)."""
    seed(ws)
    e = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    for event, fx in (("session-start", "session_start.json"), ("stop", "stop.json")):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "llmlab.plugin.hooks", event],
                           input=payload(fx, ws.root, FIX / "answered_unrecorded.jsonl"),
                           capture_output=True, text=True, env=e, timeout=60)
        mods = {ln.split("|")[-1].strip() for ln in r.stderr.splitlines() if "|" in ln}
        assert mods and not {m for m in mods if m.split(".")[0] in {"typer", "rich", "torch",
                                                                     "transformers", "click"}}
        if event == "stop":  # the stop path needs no pydantic at all
            assert "pydantic" not in mods


# ---------------------------------------------------------------- the cached brief

def test_brief_is_cached_until_the_log_changes(ws, tmp_path):
    seed(ws)
    stdin = payload("session_start.json", ws.root)
    first = json.loads(run_hook("session-start", stdin, tmp_path).stdout)
    assert (ws.state_dir / "brief.json").is_file()
    e = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "llmlab.plugin.hooks",
                        "session-start"], input=stdin, capture_output=True, text=True, env=e)
    assert json.loads(r.stdout) == first
    mods = {ln.split("|")[-1].strip() for ln in r.stderr.splitlines() if "|" in ln}
    assert "pydantic" not in mods and "llmlab.snapshot" not in mods  # served from the cache
    api.observe(ws, "softmax", 0.9, "now explains the exponent")
    # the log changed: the previous brief, marked outdated, while a background process
    # refreshes it (computing it here would cost the state engine's import)
    text = json.loads(run_hook("session-start", stdin, tmp_path).stdout)[
        "hookSpecificOutput"]["additionalContext"]
    assert "3 evidence events; last evt_000003" in text and "Newer evidence was recorded" in text
    deadline = time.time() + 30
    while time.time() < deadline and "4 evidence events" not in (
            ws.state_dir / "brief.json").read_text():
        time.sleep(0.2)
    text = json.loads(run_hook("session-start", stdin, tmp_path).stdout)[
        "hookSpecificOutput"]["additionalContext"]
    assert "4 evidence events; last evt_000004" in text and "Newer evidence" not in text


def test_stop_refreshes_the_brief_in_the_background(ws, tmp_path):
    seed(ws)
    run_hook("session-start", payload("session_start.json", ws.root), tmp_path)
    before = json.loads((ws.state_dir / "brief.json").read_text())
    api.observe(ws, "attention", 0.8, "n squared", at="2026-03-02T10:01:30Z")
    run_hook("stop", payload("stop.json", ws.root, FIX / "answered_unrecorded.jsonl"), tmp_path)
    deadline = time.time() + 30
    while time.time() < deadline:
        after = json.loads((ws.state_dir / "brief.json").read_text())
        if after["key"] != before["key"]:
            break
        time.sleep(0.2)
    assert "4 evidence events" in after["segments"][0]["text"]


def test_brief_segments_are_cut_where_a_concept_turns_stale():
    from datetime import datetime, timedelta, timezone

    from llmlab.plugin import briefcache

    now = datetime(2026, 3, 2, tzinfo=timezone.utc)
    due = {"a": now + timedelta(hours=30), "b": now + timedelta(days=2), "c": now - timedelta(1)}
    stale = lambda cid, t: cid in due and t >= due[cid]  # noqa: E731
    horizon = now + briefcache.HORIZON
    flips = briefcache.flip_times(stale, ["a", "b", "c", "d"], now, horizon)
    assert len(flips) == 2  # c is already stale, d never turns
    for f, d in zip(flips, (due["a"], due["b"])):
        assert d <= f < d + briefcache.TOLERANCE
    segs = briefcache.segments(flips, now, horizon, lambda t: f"as of {t}", full=True)
    assert [s[0] for s in segs] == [now, *flips] and segs[-1][1] == horizon
    assert all(s[2] == f"as of {s[0]}" for s in segs)
    assert len(briefcache.segments(flips, now, horizon, str, full=False)) == 1


def test_background_brief_covers_the_coming_week(ws, tmp_path):
    """A concept built up, then due in the coming days: the cached segments switch its
    status at the right time, without recomputing."""
    from datetime import datetime, timedelta, timezone

    from llmlab.plugin import briefcache, hooks
    from llmlab.plugin.settings import read

    cfg = ws.config_path.read_text()
    assert 'retention = "fsrs"' in cfg and "stale_days = 14" in cfg
    ws.config_path.write_text(cfg.replace('retention = "fsrs"', 'retention = "fixed"')
                              .replace("stale_days = 14", "stale_days = 3"))
    t0 = datetime.now(timezone.utc) - timedelta(days=3)  # last seen a day ago: due in 2 days
    for i, q in enumerate((0.9, 0.95, 0.95)):
        api.observe(ws, "tokenization", q, "explained BPE", at=(t0 + timedelta(days=i)).isoformat())
    ps = read(ws.config_path)
    now = datetime.now(timezone.utc)
    k = briefcache.key(ws.root, ps.curriculum, ps.brief_probes)
    hooks.compute_brief(ws.root, ps, k, now, time.perf_counter(), full=True)
    doc = json.loads((ws.state_dir / "brief.json").read_text())
    assert len(doc["segments"]) >= 2
    first, second = doc["segments"][0]["text"], doc["segments"][1]["text"]
    assert "Due for review" not in first and "Due for review: tokenization" in second
    later = datetime.fromisoformat(doc["segments"][1]["from"]) + timedelta(minutes=5)
    assert briefcache.read(ws.root, k, later) == second
    assert briefcache.read(ws.root, k, now + briefcache.HORIZON) is None


def test_stop_refreshes_the_transcript_page_when_turned_on(ws, tmp_path):
    cfg = ws.config_path.read_text()
    ws.config_path.write_text(cfg.replace("transcript = false", "transcript = true"))
    session = tmp_path / "6f1c2a7e-3b4d-4c1e-9a55-0d8e2f4b7c19.jsonl"
    session.write_text((FIX / "answered_recorded_mcp.jsonl").read_text())
    r = run_hook("stop", payload("stop.json", ws.root, session), tmp_path)
    assert (r.returncode, r.stdout) == (0, "")
    pages = ws.root / "site" / "transcripts"
    deadline = time.time() + 60
    while time.time() < deadline and not list(pages.glob("**/*.html")):
        time.sleep(0.3)
    html_pages = list(pages.glob("**/*.html"))
    assert html_pages, hook_log(ws)
    assert any("About 4 times" in p.read_text() for p in html_pages)


def test_tutor_setup_for_claude_code_enables_the_plugin(ws, invoke):
    r = invoke("tutor", "setup", "--client", "claude-code", "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["plugin"]["change"] == "created"
    settings = json.loads((ws.root / ".claude" / "settings.json").read_text())
    assert settings["enabledPlugins"] == {"llmlab@llmlab": True}
    r = invoke("tutor", "setup", "--client", "claude-code", "--json")
    assert json.loads(r.stdout)["plugin"]["change"] == "unchanged"


def test_lost_state_cache_on_a_big_log_answers_without_the_state_engine(ws, tmp_path, monkeypatch):
    import io

    from llmlab.plugin import hooks

    seed(ws)
    (ws.state_dir / "snapshot.json").write_bytes(b"\xff\xfe not json")
    spawned = []
    monkeypatch.setattr(hooks, "REBUILD_LIMIT", 0)
    monkeypatch.setattr(hooks, "spawn", lambda args, cwd: spawned.append(args))
    monkeypatch.setattr(hooks, "compute_brief", lambda *a: pytest.fail("state engine used"))
    monkeypatch.setattr(sys, "stdin", io.StringIO(payload("session_start.json", ws.root)))
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    assert hooks.main(["session-start"]) == 0
    assert "being rebuilt" in json.loads(out.getvalue())["hookSpecificOutput"]["additionalContext"]
    assert spawned[0][-2:] == ["llmlab", "rebuild"]
    (entry,) = hook_log(ws)
    assert "unreadable" in entry["error"]


def test_outdated_brief_on_a_big_log_is_shown_marked_and_refreshed_in_the_background(
        ws, tmp_path, monkeypatch):
    """The hook does not compute an outdated brief (importing the state engine alone takes
    ~100 ms): after evidence recorded outside the session it shows the previous brief,
    says it is outdated, and refreshes it in the background; on a big log with no brief at
    all it says one is being computed. The refresh it starts brings the brief up to date."""
    import io

    from llmlab.plugin import hooks

    seed(ws)
    run_hook("session-start", payload("session_start.json", ws.root), tmp_path)  # the brief
    api.observe(ws, "softmax", 0.9, "now explains the exponent")  # recorded outside
    spawned = []
    monkeypatch.setattr(hooks, "REBUILD_LIMIT", 0)
    monkeypatch.setattr(hooks, "spawn", lambda args, cwd: spawned.append(args))
    monkeypatch.setattr(hooks, "compute_brief", lambda *a: pytest.fail("state engine used"))

    def start() -> str:
        monkeypatch.setattr(sys, "stdin", io.StringIO(payload("session_start.json", ws.root)))
        out = io.StringIO()
        monkeypatch.setattr(sys, "stdout", out)
        assert hooks.main(["session-start"]) == 0
        return json.loads(out.getvalue())["hookSpecificOutput"]["additionalContext"]

    text = start()
    assert "3 evidence events; last evt_000003" in text  # the brief before the new event
    assert text.endswith(hooks.NEWER)
    assert spawned[-1][-2:] == ["refresh-brief", str(ws.root)]
    r = subprocess.run([sys.executable, "-m", "llmlab.plugin.hooks", *spawned[-1][-2:]],
                       capture_output=True, text=True)  # what the background process does
    assert r.returncode == 0, r.stderr
    text = start()
    assert "4 evidence events; last evt_000004" in text and hooks.NEWER not in text
    (ws.state_dir / "brief.json").unlink()
    assert start() == hooks.COMPUTING
    assert hook_log(ws) == []


def test_commands_name_real_mcp_tools():
    """Tool names in the command bodies exist in the MCP server (`llmlab mcp`)."""
    known = {"get_state", "next_probes", "get_concept", "get_curriculum", "list_experiments",
             "record_observation", "open_misconception", "resolve_misconception",
             "record_exit_attempt", "record_prediction", "retract_event", "run_experiment"}
    src = (ROOT / "src" / "llmlab" / "mcp_server.py").read_text()
    for name in known:
        assert f"def {name}(" in src, name
    used = set()
    for p in (PLUGIN / "commands").glob("*.md"):
        used |= {t for t in re.findall(r"`([a-z]+_[a-z_]+)`", p.read_text()) if t in known
                 or t.startswith(("get_", "record_", "list_", "run_", "open_", "resolve_"))}
    assert used and used <= known, used - known


def test_session_log_is_read_backwards_across_blocks(tmp_path):
    from llmlab.plugin.turn import BLOCK, records_backwards

    p = tmp_path / "s.jsonl"
    recs = [{"i": i, "pad": "x" * (i % 977)} for i in range(600)]
    p.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"torn": ')
    assert p.stat().st_size > 2 * BLOCK
    got = [r["i"] for r in records_backwards(p)]
    assert got == list(range(599, -1, -1))
    limited = [r["i"] for r in records_backwards(p, max_bytes=BLOCK)]
    assert limited and limited[0] == 599 and len(limited) < 600


def test_hook_log_rotates(tmp_path):
    from llmlab.plugin import hooks

    (tmp_path / "state").mkdir()
    log = tmp_path / "state" / "hooks.log"
    log.write_text("x" * (hooks.HOOK_LOG_MAX + 1))
    hooks.log_error(tmp_path, "stop", ValueError("boom"), time.perf_counter())
    assert (tmp_path / "state" / "hooks.log.1").stat().st_size > hooks.HOOK_LOG_MAX
    (entry,) = [json.loads(x) for x in log.read_text().splitlines()]
    assert entry["error"] == "ValueError: boom" and entry["event"] == "stop"


def _session(path: Path, prompts: int, write_after: int | None = None) -> None:
    """A Claude Code log: the tutor asks, the learner answers, `prompts` times; a record
    tool call after the answer number `write_after`."""
    recs = []
    for i in range(1, prompts + 1):
        recs.append({"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "text", "text": f"Question {i}: why does softmax sum to one?"}]}})
        recs.append({"type": "user", "message": {"role": "user", "content": f"answer {i}"},
                     "timestamp": "2026-03-02T10:00:00.000Z"})
        if i == write_after:
            recs.append({"type": "assistant", "message": {"role": "assistant", "content": [
                {"type": "tool_use", "id": f"t{i}", "name": "mcp__llmlab__record_observation",
                 "input": {"concept": "softmax"}}]}})
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_user_prompt_submit_reminds_only_after_unrecorded_messages(ws, tmp_path):
    log = tmp_path / "session.jsonl"

    def submit(prompts: int, write_after: int | None = None) -> str:
        _session(log, prompts, write_after)
        r = run_hook("user-prompt-submit", json.dumps({
            "hook_event_name": "UserPromptSubmit", "cwd": str(ws.root), "prompt": "next",
            "transcript_path": str(log)}), tmp_path)
        assert r.returncode == 0 and r.stderr == "", r.stderr
        return r.stdout

    assert submit(2) == ""  # the 3rd message: nothing to say yet
    out = json.loads(submit(3))["hookSpecificOutput"]  # the 4th unrecorded one
    assert out["hookEventName"] == "UserPromptSubmit"
    text = out["additionalContext"]
    assert len(text) <= 300 and "4 learner messages" in text and "Never claim mastery" in text
    assert submit(4) == ""  # not on every message after that
    assert "8 learner messages" in submit(7)
    assert submit(7, write_after=5) == ""  # a record resets the count
    assert hook_log(ws) == []


def test_prompt_count_reads_only_the_lines_it_needs(tmp_path):
    """The prompt hook's count parses only lines that can be a typed message or a tool call,
    and counts exactly what a full parse counts (compact or spaced JSON alike)."""
    from llmlab.plugin import turn

    for fx in ("answered_unrecorded.jsonl", "answered_recorded_mcp.jsonl",
               "answered_recorded_bash.jsonl", "small_talk.jsonl", "slash_command.jsonl"):
        recs = [r for r in map(turn._parse, (FIX / fx).read_bytes().splitlines()) if r]
        for sep in ((", ", ": "), (",", ":")):
            p = tmp_path / fx
            p.write_text("".join(json.dumps(r, separators=sep) + "\n" for r in recs * 3))
            parsed = []
            real = turn._parse
            try:
                turn._parse = lambda line: parsed.append(line) or real(line)
                n = turn.prompts_since_write(p)
            finally:
                turn._parse = real
            full = 0
            for rec in turn.records_backwards(p):
                if rec.get("type") == "assistant" and any(
                        turn.is_write_call(b) for b in turn._blocks(rec)):
                    break
                t = turn.typed_text(rec) if rec.get("type") == "user" else None
                full += t is not None and not t.startswith(turn.HARNESS_PREFIXES)
            assert n == full, (fx, sep)
            assert len(parsed) < len(recs) * 3 or fx == "slash_command.jsonl"
