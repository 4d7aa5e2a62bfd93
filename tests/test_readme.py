"""Docs that fail when stale: every `llmlab` command in a ```sh block of README.md and
docs/*.md runs as written, every ```python block runs, every link resolves, and every
command of the CLI is documented.

A section runs here in a fresh HOME, inside a fresh workspace ~/llm-course unless it creates
one itself (`llmlab init`). Sections that need more (agent logs to publish, a server to
stop, the language model, a hook fed on stdin) are run by the test named in OWNERS."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from doctext import (DOCS, README, ROOT, anchors, commands, doc_files, links, python_blocks,
                     rel, section, sections)

__all__ = ["README", "commands", "section"]  # the parser other docs tests import from here

LAB = "test_readme.py::test_lab_commands_run_as_written"
# (file, section title) -> the test that runs its commands; a title of None: the whole file.
OWNERS = {
    ("README.md", "Start learning"): "test_tutor_readme.py::test_start_learning_runs_as_written",
    ("README.md", "Lab"): LAB,
    ("docs/lab.md", None): LAB,
    ("docs/concept-vectors.md", None): LAB,
    ("docs/retrieval-and-evaluation.md", None): "test_rag.py::test_readme_rag_section_commands_are_valid",
    ("docs/fine-tuning.md", None): LAB,
    ("docs/tutor-and-clients.md", "Learning inside Claude Code"):
        "test_plugin_readme.py::test_section_runs_as_written",
    ("docs/dashboard.md", None): "test_site.py::test_readme_dashboard_commands_run_as_written",
    ("docs/transcripts.md", "Commands"):
        "test_transcript.py::test_readme_transcript_commands_run_as_written",
}
# Commands that do not return: the owning tests start and stop them.
LONG_RUNNING = ("llmlab serve", "llmlab mcp", "llmlab demo", "llmlab lab run")


def owner(path: Path, title: str) -> str | None:
    return OWNERS.get((rel(path), title)) or OWNERS.get((rel(path), None))


def _generic_sections() -> list:
    return [pytest.param(path, title, id=f"{rel(path)}::{title or 'top'}")
            for path in doc_files() for title, text in sections(path).items()
            if commands(text, ("llmlab ",)) and not owner(path, title)]


def _env(home: Path) -> dict[str, str]:
    return {"LLMLAB_HOME": "", "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "APPDATA": str(home / "AppData")}


def run_lines(cli, cmds: list[str], home: Path, cwd: Path, env: dict, timeout: float = 120):
    """Run `llmlab ...` and `cd DIR` lines in order as a user types them (`~` is `home`)."""
    for line in cmds:
        line = line.replace("~", str(home))
        if line.startswith("cd "):
            cwd = Path(line[3:])
            continue
        r = cli(*shlex.split(line)[1:], cwd=cwd, env=env, timeout=timeout)
        assert r.returncode == 0, f"`{line}` failed:\n{r.stdout}\n{r.stderr}"
    return cwd


@pytest.mark.parametrize("path, title", _generic_sections())
def test_section_commands_run_as_written(path, title, tmp_path, cli):
    cmds = commands(section(title, path))
    slow = [c for c in cmds if c.startswith(LONG_RUNNING)]
    assert not slow, (f"{slow} in {rel(path)} '## {title}' do not return or need the model: "
                      "move them to a section a dedicated test runs, and name it in OWNERS")
    env = _env(tmp_path)
    cwd = tmp_path
    if not any(c.startswith("llmlab init ") for c in cmds):
        from llmlab.create import create_workspace

        cwd = create_workspace(tmp_path / "llm-course").root
    run_lines(cli, cmds, tmp_path, cwd, env)


def test_the_readme_commands_section_is_a_walkthrough():
    cmds = commands(section("Commands"))
    assert len(cmds) >= 15 and cmds[0].startswith("llmlab init ")


def test_every_owned_section_exists_and_has_commands():
    for (name, title), test in OWNERS.items():
        path = ROOT / name
        text = path.read_text(encoding="utf-8") if title is None else section(title, path)
        assert commands(text, ("llmlab ",)), f"{name} '{title}' (run by {test}) has no commands"
        assert (ROOT / "tests" / test.split("::")[0]).read_text().count(
            f"def {test.split('::')[1]}(") == 1, test


def _lab_files() -> list[Path]:
    return [ROOT / name for (name, title), test in OWNERS.items() if test == LAB and title is None]


@pytest.mark.model
def test_lab_commands_run_as_written(tmp_path, cli, invoke):
    """README's Lab section, then docs/lab.md and docs/concept-vectors.md, in one workspace:
    each distinct command once, then the lab pages' Python blocks in that workspace.

    The first `llmlab lab run` runs in a fresh process, as a user types it; the others run
    in this one through the same root command (`invoke`), so torch is imported and the
    model loaded once, not once per command (about 6 s of CPU each)."""
    pytest.importorskip("torch")
    cmds = commands(section("Lab"), ("llmlab ",))
    for path in _lab_files():
        cmds += [c for c in commands(path.read_text(), ("llmlab ",)) if c not in cmds]
    assert any(c.startswith("llmlab lab run") for c in cmds)
    ws = tmp_path / "w"
    env = {"LLMLAB_HOME": str(ws)}
    assert cli("init", str(ws)).returncode == 0
    fresh = []

    def run(*args, timeout, **kw):
        if args[:2] == ("lab", "run") and not fresh:
            fresh.append(args)
            return cli(*args, timeout=timeout, **kw)
        return invoke(*args, **kw)

    run_lines(run, cmds, tmp_path, ws, env, timeout=600)
    assert fresh
    d = json.loads(cli("state", "--json", env=env).stdout)
    assert d["predictions"]["compared"] == 2  # the docs' predictions were compared by their runs
    for path in _lab_files():
        code = "\n".join(python_blocks(path.read_text()))
        if code:
            _run_python(code, ws, rel(path))


def _run_python(code: str, cwd: Path, name: str) -> str:
    env = {**os.environ, "LLMLAB_HOME": ""}  # HOME kept: the model cache is there
    r = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, f"the Python blocks of {name} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def _python_pages() -> list:
    lab = set(_lab_files())
    out = []
    for path in doc_files():
        code = "\n".join(python_blocks(path.read_text()))
        if code and path not in lab:
            marks = [pytest.mark.model] if "run_experiment" in code else []
            out.append(pytest.param(path, code, id=rel(path), marks=marks))
    return out


@pytest.mark.parametrize("path, code", _python_pages())
def test_python_blocks_run_as_written(path, code, tmp_path):
    """A page's ```python blocks, in order as one script, in an empty folder."""
    if "run_experiment" in code:
        pytest.importorskip("torch")
    out = _run_python(code, tmp_path, rel(path))
    if path.name == "python-api.md":
        assert "evt_000001" in out and "Did you mean 'softmax'" in out


def test_the_python_api_page_has_blocks():
    assert len(python_blocks((DOCS / "python-api.md").read_text())) >= 3


def test_every_command_is_documented():
    from llmlab.cli import command_tree

    text = "\n".join(p.read_text(encoding="utf-8") for p in doc_files())
    missing = []

    def walk(group, prefix):
        for name, cmd in group.commands.items():
            if not cmd.hidden and f"{prefix} {name}" not in text:
                missing.append(f"{prefix} {name}")
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix} {name}")
    walk(command_tree(), "llmlab")
    assert not missing, f"not in README.md or docs/*.md: {missing}"


def test_links_resolve_and_every_docs_page_is_linked_from_the_readme():
    for path in [*doc_files(), ROOT / "plugin" / "README.md"]:
        for target in links(path):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file, _, anchor = target.partition("#")
            dest = (path.parent / file).resolve() if file else path
            assert dest.exists(), f"{rel(path)} links to {target}, which does not exist"
            if anchor and dest.suffix == ".md":
                assert anchor in anchors(dest), f"{rel(path)}: no heading for #{anchor} in {file}"
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README)}
    for page in DOCS.glob("*.md"):
        assert page.resolve() in linked, f"README.md does not link to {rel(page)}"


def test_the_configuration_reference_lists_every_setting_with_its_default():
    from llmlab import config
    from llmlab.schema import dump

    blocks = re.findall(r"```toml\n(.*?)```", (DOCS / "file-formats.md").read_text(), re.S)
    assert len(blocks) == 1
    documented = tomllib.loads(blocks[0])
    assert documented == dump(config.Config())
