"""Creating a workspace: the folders, llmlab.toml, an empty evidence log, the Claude Code
server entry (`.mcp.json`) and the tutor instructions (AGENTS.md, CLAUDE.md).

Above `workspace` (which only says where things are), `clients` and `tutor`, so none of
them needs to import the others to set a workspace up.
"""

from __future__ import annotations

import os
from pathlib import Path


from . import clients, tutor
from . import config as config_mod
from . import curriculum as curriculum_mod
from .core import CONFIG_FILE, LOG_FILE, resolve_curriculum
from .errors import UserError
from .files import atomic_write
from .schema import Invalid, convert
from .workspace import Workspace


def create_workspace(root: Path | str, name: str | None = None, goal: str | None = None,
                     curriculum: str | None = None, **profile: str | None) -> Workspace:
    """Create a new workspace in `root`. Refuses to touch an existing one; a curriculum
    that does not load fails before anything is written. `profile` takes the other learner
    fields (background, scope, exclude, depth; see `config.Learner`)."""
    root = Path(root).expanduser().resolve()
    if (root / CONFIG_FILE).exists() or (root / LOG_FILE).exists():
        raise UserError(f"{root} is already an llmlab workspace; refusing to overwrite it. "
                        "Choose another folder, or keep using this one.")
    given = {"name": name, "goal": goal, **profile}
    try:
        learner = convert({k: v for k, v in given.items() if v is not None}, config_mod.Learner)
    except Invalid as e:
        raise UserError(f"The learner profile is not valid: {e}. Depth is one of overview, working, deep; "
                        "texts are at most 300 characters. Nothing was written.") from None
    if curriculum and curriculum != "default" and Path(curriculum).expanduser().is_dir():
        curriculum = str(Path(curriculum).expanduser().resolve())  # as the user meant it
    cfg = config_mod.Config(learner=learner,
                            settings=config_mod.Settings(curriculum=curriculum or "default"))
    if curriculum:
        curriculum_mod.load(resolve_curriculum(root, curriculum))
    for d in ("state", "site", "lab/runs", "notes"):
        (root / d).mkdir(parents=True, exist_ok=True)
    atomic_write(root / CONFIG_FILE, cfg.to_toml())
    fd = os.open(root / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.chmod(root / LOG_FILE, 0o600)
    ws = Workspace(root)
    clients.setup(ws, "claude-code", plugin=False)  # .mcp.json: the server, for this folder
    tutor.write_instructions(ws, strict=False)  # keeps an AGENTS.md already there
    return ws
