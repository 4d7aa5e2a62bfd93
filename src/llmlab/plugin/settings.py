"""The `[plugin]` table of `llmlab.toml`, read tolerantly and cheaply (for hook start-up time).

`config.Plugin` is the validated model the rest of llmlab uses; this reader accepts the
same keys, ignores anything it does not know and falls back to the defaults, so a hook
never fails because of a settings typo (the CLI reports those).
"""

from __future__ import annotations

import tomllib
from pathlib import Path


class PluginSettings:
    """A plain class, not a dataclass: `dataclasses` imports `inspect`, which costs the
    hook several milliseconds of start-up."""

    __slots__ = ("remind", "transcript", "brief_probes", "curriculum")

    def __init__(self, remind: bool = True, transcript: bool = False, brief_probes: int = 5,
                 curriculum: str = "default") -> None:
        self.remind = remind  # stop hook: remind the tutor when an answered probe went unrecorded
        self.transcript = transcript  # stop hook: refresh the session transcript page each turn
        self.brief_probes = brief_probes  # session start: how many next probes to list
        self.curriculum = curriculum  # from [settings]: which curriculum the workspace uses


def read(config_path: Path) -> PluginSettings:
    try:
        doc = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return PluginSettings()
    table = doc.get("plugin", {})
    if not isinstance(table, dict):
        table = {}
    settings = doc.get("settings", {})
    ref = settings.get("curriculum", "default") if isinstance(settings, dict) else "default"
    d = PluginSettings()
    remind = table.get("remind", d.remind)
    transcript = table.get("transcript", d.transcript)
    probes = table.get("brief_probes", d.brief_probes)
    return PluginSettings(
        remind=remind if isinstance(remind, bool) else d.remind,
        transcript=transcript if isinstance(transcript, bool) else d.transcript,
        brief_probes=probes if isinstance(probes, int) and 0 < probes <= 20 else d.brief_probes,
        curriculum=ref if isinstance(ref, str) else d.curriculum,
    )
