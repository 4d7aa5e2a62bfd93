"""One learner's workspace: where it is, what it holds.

Found from `LLMLAB_HOME` or by walking up from the current directory to a folder that
holds `llmlab.toml`. Everything else (state/, site/) is derived from `evidence.jsonl`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from . import config as config_mod
from . import curriculum as curriculum_mod
from .errors import UserError

CONFIG_FILE = "llmlab.toml"
LOG_FILE = "evidence.jsonl"


def resolve_curriculum(root: Path, ref: str) -> Path:
    """The curriculum folder a workspace uses: `default` means `root/curriculum` when that
    holds a course (a local copy to edit), else the shipped default course."""
    if ref == "default":
        local = root / "curriculum"
        return local if (local / "course.toml").is_file() else curriculum_mod.default_path()
    p = Path(ref).expanduser()
    return p if p.is_absolute() else root / p


@dataclass(frozen=True)
class Workspace:
    root: Path

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def log_path(self) -> Path:
        return self.root / LOG_FILE

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def site_dir(self) -> Path:
        return self.root / "site"

    @property
    def runs_dir(self) -> Path:
        return self.root / "lab" / "runs"

    @cached_property
    def config(self) -> config_mod.Config:
        return config_mod.load(self.config_path)

    @property
    def curriculum_path(self) -> Path:
        return resolve_curriculum(self.root, self.config.settings.curriculum)

    @property
    def curriculum(self) -> curriculum_mod.Curriculum:
        return curriculum_mod.load_cached(self.curriculum_path)

    @classmethod
    def find(cls, start: Path | None = None) -> Workspace:
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
        here = (start or Path.cwd()).resolve()
        for d in (here, *here.parents):
            if (d / CONFIG_FILE).is_file():
                return cls(d)
        raise UserError(
            f"No llmlab workspace found in {here} or any folder above it. Create one with "
            "`llmlab init DIR` and run commands inside it, or set LLMLAB_HOME=DIR."
        )

    @classmethod
    def init(cls, root: Path, name: str | None = None, goal: str | None = None,
             curriculum: str | None = None) -> Workspace:
        """Create a new workspace. Refuses to touch an existing one."""
        root = root.expanduser().resolve()
        if (root / CONFIG_FILE).exists() or (root / LOG_FILE).exists():
            raise UserError(
                f"{root} is already an llmlab workspace; refusing to overwrite it. "
                "Choose another folder, or keep using this one."
            )
        learner = config_mod.Learner(
            **{k: v for k, v in (("name", name), ("goal", goal)) if v is not None}
        )
        if curriculum and curriculum != "default" and Path(curriculum).expanduser().is_dir():
            curriculum = str(Path(curriculum).expanduser().resolve())  # as the user meant it
        settings = config_mod.Settings(curriculum=curriculum or "default")
        cfg = config_mod.Config(learner=learner, settings=settings)
        ws = cls(root)
        if curriculum:  # fail before writing anything if it does not load
            curriculum_mod.load(resolve_curriculum(root, curriculum))
        root.mkdir(parents=True, exist_ok=True)
        for d in ("state", "site", "lab/runs", "notes"):
            (root / d).mkdir(parents=True, exist_ok=True)
        (root / CONFIG_FILE).write_text(cfg.to_toml(), encoding="utf-8")
        fd = os.open(root / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.chmod(root / LOG_FILE, 0o600)
        from . import clients, tutor  # .mcp.json for Claude Code; AGENTS.md and CLAUDE.md

        clients.setup(ws, "claude-code")
        tutor.write_instructions(ws, strict=False)  # keeps an AGENTS.md already there
        return ws
