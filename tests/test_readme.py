"""Docs that fail when stale: the README's core command walkthrough runs as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def section(title: str) -> str:
    text = README.read_text()
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert m, f"README has no '## {title}' section"
    return m.group(1)


def commands(block: str, prefixes: tuple[str, ...] = ("llmlab ", "cd ")) -> list[str]:
    """The lines of a section's ```sh blocks that start with one of `prefixes`, comments cut."""
    lines = []
    for code in re.findall(r"```sh\n(.*?)```", block, re.S):
        for line in code.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(prefixes):
                lines.append(line)
    return lines


def test_readme_command_walkthrough_runs_as_written(tmp_path, cli):
    cmds = commands(section("Commands"))
    assert len(cmds) >= 15
    cwd = tmp_path
    home = {"LLMLAB_HOME": "", "HOME": str(tmp_path)}
    for line in cmds:
        line = line.replace("~", str(tmp_path))
        if line.startswith("cd "):
            cwd = Path(line[3:])
            continue
        args = shlex.split(line)[1:]
        r = cli(*args, cwd=cwd, env=home)
        assert r.returncode == 0, f"`{line}` failed:\n{r.stdout}\n{r.stderr}"


def test_every_top_level_command_is_documented():
    text = README.read_text()
    from llmlab.cli import app
    import typer.main
    group = typer.main.get_command(app)
    for name in group.commands:
        assert f"llmlab {name}" in text, f"`llmlab {name}` is not in the README"


def test_readme_lab_commands_run_as_written(tmp_path, cli):
    import pytest

    pytest.importorskip("torch")
    cmds = commands(section("Lab"))
    assert any(c.startswith("llmlab lab run") for c in cmds)
    r = cli("init", str(tmp_path / "w"))
    assert r.returncode == 0
    env = {"LLMLAB_HOME": str(tmp_path / "w")}
    for line in cmds:
        r = cli(*shlex.split(line)[1:], env=env, timeout=300)
        assert r.returncode == 0, f"`{line}` failed:\n{r.stdout}\n{r.stderr}"
    import json
    d = json.loads(cli("state", "--json", env=env).stdout)
    assert d["predictions"]["compared"] == 2  # the README's predictions were compared by their runs
