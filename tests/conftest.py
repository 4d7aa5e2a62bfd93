"""Shared test fixtures. Every test gets its own LLMLAB_HOME (no test touches real state)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
    """Run `llmlab ARGS` as a subprocess, as a user would."""
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-m", "llmlab", *args], cwd=cwd, env=e, input=input,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def cli():
    return run_cli
