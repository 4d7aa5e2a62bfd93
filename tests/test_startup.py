"""CLI start-up: each command imports only what its path needs (issue 19). The times are
measured by bench/startup_bench.py; this pins the import set, which decides them."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

from llmlab import api
from llmlab.cli import LAZY_GROUPS, command_tree

NEVER = ("llmlab.transcript", "llmlab.lab.runner", "llmlab.lab.cli", "llmlab.site", "torch",
         "transformers", "llmlab.mcp_server")


def modules_after(args: list[str], home, tmp_path) -> tuple[int, set[str]]:
    """Run `llmlab ARGS` in a fresh interpreter as the console script does; the modules
    loaded when it exits."""
    out = tmp_path / "modules.json"
    code = ("import atexit, json, sys\n"
            f"atexit.register(lambda: open({str(out)!r}, 'w').write(json.dumps(sorted(sys.modules))))\n"
            f"sys.argv = ['llmlab', *{args!r}]\n"
            "from llmlab.cli import main\n"
            "main()\n")
    env = dict(os.environ, LLMLAB_HOME=str(home))
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    return r.returncode, set(json.loads(out.read_text()))


def loaded(mods: set[str], prefix: str) -> bool:
    return any(m == prefix or m.startswith(prefix + ".") for m in mods)


def test_help_imports_no_command_module_no_pydantic_no_rich_markdown(ws, tmp_path):
    rc, mods = modules_after(["--help"], ws.root, tmp_path)
    assert rc == 0
    for name in (*NEVER, "pydantic", "rich.markdown", "rich.traceback", "llmlab.api",
                 "llmlab.events", "llmlab.lab"):
        assert not loaded(mods, name), name


@pytest.mark.parametrize("args", [["state"], ["next"], ["verify"],
                                  ["log", "observe", "softmax", "-q", "0.6", "-e", "x"]])
def test_read_and_write_commands_import_neither_the_lab_nor_the_transcript_publisher(
        ws, tmp_path, args):
    api.observe(ws, "softmax", 0.7, "explained it")
    rc, mods = modules_after(args, ws.root, tmp_path)
    assert rc == 0
    for name in NEVER:
        assert not loaded(mods, name), name
    assert "llmlab.cli" in mods  # the probe saw the real dispatch
    if args[0] == "log":  # the write path still validates with the event schemas, and locks
        assert "llmlab.events" in mods and "pydantic" in mods and "filelock" in mods
    else:  # the reads take no lock and write no TOML
        assert "filelock" not in mods and "tomli_w" not in mods


def test_a_lazy_group_loads_when_used_and_lists_its_own_help(invoke):
    for name, (module, help_) in LAZY_GROUPS.items():
        assert importlib.import_module(module).app.info.help == help_, name
    root = command_tree()
    assert all(name in root.commands for name in LAZY_GROUPS)
    r = invoke("transcript", "--help")
    assert r.returncode == 0 and "build" in r.stdout
    r = invoke("--help")
    for name in LAZY_GROUPS:
        assert f"  {name} " in r.stdout


def test_a_mistyped_lazy_group_is_suggested_before_it_is_loaded(cli):
    r = cli("trnscript")
    assert r.returncode == 2 and "No such command 'trnscript'. Did you mean 'transcript'?" in r.stderr
    r = cli("stat")
    assert r.returncode == 2 and "Did you mean 'state'?" in r.stderr
