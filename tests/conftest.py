"""Shared test fixtures. Every test gets its own LLMLAB_HOME (no test touches real state)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from llmlab import curriculum
from llmlab.cli import app
from llmlab.create import create_workspace
from llmlab.workspace import Workspace

MINI = Path(__file__).parent / "fixtures" / "mini"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LLMLAB_HOME", str(home / "unset-workspace"))
    monkeypatch.delenv("LLMLAB_NO_SERVE", raising=False)
    yield


@pytest.fixture
def ws(tmp_path, monkeypatch) -> Workspace:
    """A fresh workspace on the small test curriculum, set as LLMLAB_HOME."""
    w = create_workspace(tmp_path / "ws", name="Test Learner", curriculum=str(MINI))
    monkeypatch.setenv("LLMLAB_HOME", str(w.root))
    return w


@pytest.fixture
def default_ws(tmp_path, monkeypatch) -> Workspace:
    """A fresh workspace on the shipped default course, set as LLMLAB_HOME."""
    w = create_workspace(tmp_path / "dws", name="Test Learner")
    monkeypatch.setenv("LLMLAB_HOME", str(w.root))
    return w


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
            input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `llmlab ARGS` as a subprocess, as a user would: for what needs a real process (the
    entry point itself, concurrency, signals, a fresh interpreter, the README's commands)."""
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-m", "llmlab", *args], cwd=cwd, env=e, input=input,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    """`llmlab ARGS` as a subprocess (see `run_cli`)."""
    return run_cli


@contextlib.contextmanager
def _as_a_fresh_process(runner: CliRunner, env: dict | None):
    """What a new `llmlab` process would start with, restored afterwards: module-level rich
    consoles made anew under the runner's streams and `env` (a Console fixes its colours and
    COLUMNS width when it is made, and the ones made at import saw pytest's streams) and an
    empty in-process curriculum cache."""
    saved = [(mod, name, value) for mod in list(sys.modules.values())
             if getattr(mod, "__name__", "").startswith("llmlab")
             for name, value in list(vars(mod).items()) if isinstance(value, Console)]
    with runner.isolation(env=env):
        fresh = [Console(stderr=value.stderr) for _, _, value in saved]
    for (mod, name, _), console in zip(saved, fresh):
        setattr(mod, name, console)
    curriculum._load_cached.cache_clear()
    try:
        yield
    finally:
        for mod, name, value in saved:
            setattr(mod, name, value)


def invoke_cli(*args: str, cwd: Path | None = None, env: dict | None = None,
               input: str | None = None) -> subprocess.CompletedProcess:
    """Run `llmlab ARGS` in this process, through the same root command as the real entry point
    (a UserError becomes one paragraph on stderr and exit 1), in `cwd` with `env` overrides, both
    restored afterwards. Returns what `run_cli` returns; an unexpected exception becomes exit 1
    and a traceback on stderr, as it would from a process."""
    runner = CliRunner()  # stdout and stderr kept apart
    with contextlib.chdir(cwd or Path.cwd()), _as_a_fresh_process(runner, env):
        result = runner.invoke(app, list(args), input=input, env=env, prog_name="llmlab")
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(*result.exc_info))
    return subprocess.CompletedProcess(["llmlab", *args], result.exit_code, result.stdout, stderr)


@pytest.fixture
def invoke():
    """`llmlab ARGS` in this process (see `invoke_cli`): for CLI tests where a process adds
    nothing but start-up time."""
    return invoke_cli
