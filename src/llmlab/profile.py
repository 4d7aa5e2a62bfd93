"""The learner profile in llmlab.toml ([learner]): read it, change it, keep the tutor
instructions in step.

Edits go through `files.edit_config`, so the rest of llmlab.toml (comments, other tables)
is kept; the new profile is validated before anything is written, and AGENTS.md is
regenerated from it (a hand-edited AGENTS.md is kept and reported).
"""

from __future__ import annotations

from . import files, tutor
from .config import Learner
from .errors import UserError
from .schema import Invalid, convert, dump, fields
from .workspace import Workspace

FIELDS = fields(Learner)  # name, goal, background, scope, exclude, depth


def show(ws: Workspace) -> dict:
    return dump(ws.config.learner)


def update(ws: Workspace, **changes: str | None) -> dict:
    """Set the given profile fields (None: leave as is); returns the new profile and what
    happened to the tutor instructions."""
    changes = {k: v for k, v in changes.items() if v is not None}
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise UserError(f"Unknown profile field(s) {', '.join(unknown)}. Fields: "
                        f"{', '.join(FIELDS)}.")
    try:
        learner = convert(show(ws) | {k: " ".join(str(v).split()) for k, v in changes.items()},
                          Learner)
    except Invalid as e:
        raise UserError(f"The profile was not changed: {e}. Depth is one of overview, "
                        "working, deep; texts are at most 300 characters.") from None

    def edit(doc: dict) -> None:
        table = files.section(doc, "learner", ws.config_path)
        for k, v in dump(learner).items():
            if table.get(k) != v and (k in changes or k in table):
                table[k] = v

    _, change = files.edit_config(ws.config_path, edit, fmt="toml",
                                  fix="Fix llmlab.toml by hand, then run this again.")
    fresh = Workspace(ws.root)  # the config is read again
    res = tutor.write_instructions(fresh, strict=False)
    return {"profile": dump(learner), "change": change,
            "instructions": {k: res[k] for k in ("written", "unchanged", "kept")}}
