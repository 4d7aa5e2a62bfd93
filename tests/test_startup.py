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
            "from llmlab.entry import main\n"
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
    assert "llmlab.commands" in mods  # the probe saw the real dispatch: the fast path,
    for name in ("llmlab.cli", "typer", "click", "rich", "pydantic"):  # not the framework
        assert not loaded(mods, name), name
    if args[0] == "log":  # the write path still validates with the event schemas, and locks
        assert "llmlab.events" in mods and "msgspec" in mods and "fcntl" in mods
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


# ---------------------------------------------------------------- the fast path

HOT_CASES = [
    ["state"], ["state", "--json"], ["next"], ["next", "--limit", "2"], ["next", "--limit=1", "--json"],
    ["verify"], ["verify", "--json"],
    ["log", "observe", "softmax", "-q", "0.6", "-e", "said exp then normalise", "--at", "{at}"],
    ["log", "observe", "--json", "logits", "--quality=0.4", "--evidence", "mixed them up", "-p",
     "what is a logit?", "--actor", "learner", "--at", "{at}"],
    # user errors: one paragraph from either path, log unchanged
    ["log", "observe", "softmax", "-q", "1.5", "-e", "x", "--at", "{at}"],
    ["log", "observe", "sofmax", "-q", "0.5", "-e", "x", "--at", "{at}"],
    ["log", "observe", "softmax", "-q", "0.5", "-e", "", "--at", "{at}"],
    ["log", "observe", "softmax", "-q", "0.5", "-e", "x", "--actor", "robot", "--at", "{at}"],
    ["log", "observe", "softmax", "-q", "0.5", "-e", "x", "--at", "yesterday"],
]


def _run(args: list[str], home, full: bool) -> subprocess.CompletedProcess:
    entry = "llmlab.cli" if full else "llmlab.entry"
    code = f"import sys; sys.argv = ['llmlab', *{args!r}]; from {entry} import main; main()"
    env = dict(os.environ, LLMLAB_HOME=str(home), COLUMNS="100")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)


def _clock(text: str) -> str:
    """`text` without what depends on the moment it ran: the reading time and the
    fractional days since each concept was seen (the two runs are a second apart)."""
    import re

    text = re.sub(r'"now": "[^"]*"', '"now": "-"', text)
    return re.sub(r"\d+\.\d{4,}", "-", text)


def test_the_fast_path_prints_and_records_what_the_full_cli_does(ws, tmp_path):
    """Each hot command, valid or not, through the fast path and through typer, on two copies
    of one workspace: the same stdout, stderr, exit status and log bytes."""
    import shutil

    api.observe(ws, "softmax", 0.7, "explained it", at="2026-01-05T10:00:00Z")
    api.open_misconception(ws, "softmax", "softmax picks the max", at="2026-01-05T10:01:00Z")
    api.note(ws, "Learns best from a worked example", ["softmax"], ["preference"])
    twin = tmp_path / "twin"
    shutil.copytree(ws.root, twin)
    at = "2026-11-30T09:00:00Z"
    for i, case in enumerate(HOT_CASES):
        args = [a.replace("{at}", at.replace("09:00", f"09:{i:02d}")) for a in case]
        from llmlab.commands import parse
        assert parse(args) is not None, args  # the fast path takes every one of these
        fast, full = _run(args, ws.root, full=False), _run(args, twin, full=True)
        assert (fast.returncode, _clock(fast.stdout), fast.stderr) == \
            (full.returncode, _clock(full.stdout), full.stderr), args
        assert "Traceback" not in fast.stderr
        assert ws.log_path.read_bytes() == (twin / "evidence.jsonl").read_bytes(), args
    assert "Error:" in fast.stderr and fast.returncode == 1  # the cases do reach the errors


@pytest.mark.parametrize("args, rc", [
    (["state", "--help"], 0), (["state", "--json", "--json"], 0), (["state", "extra"], 2),
    (["next", "--limit", "many"], 2), (["next", "--limit"], 2), (["verify", "--json=yes"], 2),
    (["log", "observe", "softmax", "-q", "0.5"], 2),
    (["log", "observe", "softmax", "-q", "x", "-e", "y"], 2),
    (["log", "observe", "softmax", "-q0.5", "-e", "y"], 0), (["log", "observe", "--", "-q"], 2),
    (["log", "misconception", "softmax"], 1),
])
def test_what_the_fast_path_does_not_fully_understand_goes_to_the_full_cli(ws, args, rc):
    """Help, repeated or attached options, bad values, other commands: typer takes them (and
    words the error), so the fast path never answers differently from the full CLI."""
    from llmlab.commands import parse

    assert parse(args) is None
    r = _run(args, ws.root, full=False)
    assert r.returncode == rc and "Traceback" not in r.stderr, r.stderr
    if rc == 2:  # click's usage error
        assert "Error" in r.stderr and not r.stdout
    if "--help" in args:
        assert r.stdout.startswith("Usage: llmlab state")


def test_the_fast_path_declares_exactly_the_full_clis_options():
    """`commands.HOT` repeats each hot command's arguments (names, type, default, required):
    they must be the typer command's own, so the two paths cannot drift apart."""
    from llmlab.commands import HOT

    root = command_tree()
    for path, hot in HOT.items():
        cmd = root
        for name in path:
            cmd = cmd.get_command(None, name)
        args = [p for p in cmd.params if p.param_type_name == "argument"]
        opts = [p for p in cmd.params if p.param_type_name == "option"]
        assert tuple(p.name for p in args) == hot.args, path
        assert all(p.required for p in args), path
        declared = {o.dest: o for o in hot.opts}
        assert set(declared) == {p.name for p in opts}, path
        for p in opts:
            o = declared[p.name]
            assert set(o.names) == set(p.opts) | set(p.secondary_opts), (path, p.name)
            assert o.required == p.required and (o.required or o.default == p.default), \
                (path, p.name, p.default)
            kind = p.type_descriptor.annotation  # what typer converts the value to
            assert (o.kind is None) if kind is bool else (o.kind is kind), (path, p.name, kind)
