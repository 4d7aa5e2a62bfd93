"""Enable the llmlab Claude Code plugin for one workspace.

Writes the workspace's `.claude/settings.json` (merging, never clobbering: other keys are
kept, a file that is not valid JSON is left alone and reported) with
- `extraKnownMarketplaces.llmlab`: this repository's marketplace
  (`.claude-plugin/marketplace.json`) as a local `directory` source, and
- `enabledPlugins["llmlab@llmlab"] = true`,
so Claude Code offers the marketplace and enables the plugin once the learner trusts the
folder, for this project only
(https://code.claude.com/docs/en/plugin-marketplaces#require-marketplaces-for-your-team;
source types: https://code.claude.com/docs/en/settings-reference).

    python -m llmlab.plugin.setup            # in (or below) the workspace
    python -m llmlab.plugin.setup --print    # show the change, write nothing
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .. import files
from ..errors import UserError
from ..workspace import Workspace

MARKETPLACE = "llmlab"
PLUGIN = "llmlab"


def marketplace_root() -> Path:
    """The folder holding `.claude-plugin/marketplace.json`: the llmlab source checkout."""
    env = os.environ.get("LLMLAB_PLUGIN_MARKETPLACE")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(Path(__file__).resolve().parents[3])  # <repo>/src/llmlab/plugin/
    for c in candidates:
        if (c / ".claude-plugin" / "marketplace.json").is_file() and (c / "plugin").is_dir():
            return c.resolve()
    raise UserError(
        "The llmlab Claude Code plugin ships in the llmlab source repository (folders "
        "`.claude-plugin/` and `plugin/`), which this installation does not include. Clone the "
        "repository and set LLMLAB_PLUGIN_MARKETPLACE=/path/to/clone, or add it inside Claude "
        "Code with `/plugin marketplace add /path/to/clone` then `/plugin install llmlab@llmlab`.")


def setup(ws: Workspace, write: bool = True) -> dict:
    root = marketplace_root()
    path = ws.root / ".claude" / "settings.json"

    def enable(doc: dict) -> None:
        files.section(doc, "extraKnownMarketplaces", path)[MARKETPLACE] = {
            "source": {"source": "directory", "path": str(root)}}
        files.section(doc, "enabledPlugins", path)[f"{PLUGIN}@{MARKETPLACE}"] = True

    new, change = files.edit_config(path, enable, write=write,
                                    fix="Fix it by hand, then run this again.")
    return {"path": str(path), "change": change, "written": write and change != "unchanged",
            "marketplace": str(root), "settings": new,
            "next": f"Start Claude Code in {ws.root} (`cd {ws.root} && claude`), trust the folder "
                    "and accept the llmlab marketplace and plugin when asked; `/plugin` lists "
                    "it, and the slash commands are /llmlab:next, /llmlab:progress, "
                    "/llmlab:predict, /llmlab:quiz and /llmlab:flashcards."}


def best_effort(ws: Workspace, write: bool = True) -> dict:
    """`setup`, for `llmlab tutor setup --client claude-code`: a plugin that cannot be set up
    (no source checkout, an unreadable settings file) is reported, never an error."""
    try:
        return setup(ws, write)
    except UserError as e:
        return {"change": "skipped", "written": False, "error": str(e)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        res = setup(Workspace.find(), write="--print" not in argv)
    except UserError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    if "--json" in argv:
        print(json.dumps(res, indent=2))
    elif "--print" in argv:
        print(json.dumps(res["settings"], indent=2))
    else:
        print(f"{res['change'].capitalize()} {res['path']}. {res['next']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
