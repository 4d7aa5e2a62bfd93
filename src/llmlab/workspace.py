"""One learner's workspace: where it is, what it holds (paths and configuration only).

Found from `LLMLAB_HOME` or by walking up from the current directory to a folder that
holds `llmlab.toml`. Everything else (state/, site/) is derived from `evidence.jsonl`.
Creating one is `llmlab.create.create_workspace`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from . import config as config_mod
from . import curriculum as curriculum_mod
from .core import (CONFIG_FILE, LOG_FILE, RUNS_DIR, SITE_DIR, STATE_DIR, find_root,
                   resolve_curriculum)
from .errors import UserError



@dataclass(frozen=True)
class Workspace:
    """A workspace folder; `Workspace("~/course")` and `Workspace(Path(...))` both work."""

    root: Path

    def __post_init__(self) -> None:
        if not isinstance(self.root, Path):  # the Python API accepts str paths too
            object.__setattr__(self, "root", Path(self.root).expanduser())

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def log_path(self) -> Path:
        return self.root / LOG_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def site_dir(self) -> Path:
        return self.root / SITE_DIR

    @property
    def runs_dir(self) -> Path:
        return self.root / RUNS_DIR

    @cached_property
    def config(self) -> config_mod.Config:
        return config_mod.load(self.config_path)

    @property
    def curriculum_path(self) -> Path:
        return resolve_curriculum(self.root, self.config.settings.curriculum)

    @property
    def curriculum(self) -> curriculum_mod.Curriculum:
        return curriculum_mod.load_cached(self.curriculum_path, self.state_dir / "curriculum.json")

    @classmethod
    def find(cls, start: Path | str | None = None) -> Workspace:
        """The workspace from LLMLAB_HOME, or the nearest folder above `start` with llmlab.toml."""
        home = os.environ.get("LLMLAB_HOME")
        if home and start is None:
            root = Path(home).expanduser().resolve()
            if not (root / CONFIG_FILE).is_file():
                raise UserError(
                    f"LLMLAB_HOME points at {root}, which is not an llmlab workspace "
                    f"(no {CONFIG_FILE}). Run `llmlab init {root}` or unset LLMLAB_HOME."
                )
            return cls(root)
        here = (Path(start).expanduser() if start else Path.cwd()).resolve()
        root = find_root(here)
        if root is not None:
            return cls(root)
        raise UserError(
            f"No llmlab workspace found in {here} or any folder above it. Create one with "
            "`llmlab init DIR` and run commands inside it, or set LLMLAB_HOME=DIR."
        )
