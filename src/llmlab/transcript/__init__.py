"""Transcript publisher: agent session logs (Claude Code JSONL, ChatGPT exports) to
verbatim, scrubbed, self-contained HTML and markdown. See `llmlab transcript --help`."""

from __future__ import annotations

from pathlib import Path

_LAZY = {"Options": "days", "Publisher": "publish", "Settings": "publish",
         "load_known": "publish"}


def __getattr__(name: str):
    """The publisher's classes, imported on first use: `llmlab --help` and the hooks
    should not pay for jinja2 and the page renderer (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)


def output_dir(out: Path | None = None) -> tuple[Path, Path | None]:
    """Where pages go: `out`, else `<workspace>/site/transcripts`, else ./transcripts.
    Returns (folder, workspace root or None)."""
    from ..errors import UserError
    from ..workspace import Workspace

    try:
        root: Path | None = Workspace.find().root
    except UserError:
        root = None
    if out is not None:
        return out.expanduser().resolve(), root
    if root is not None:
        return root / "site" / "transcripts", root
    return Path.cwd() / "transcripts", None


def refresh_from_hook(transcript_path: Path, root: Path) -> dict:
    """Re-render one session's page into `<root>/site/transcripts` (used by hooks)."""
    from .publish import Publisher, Settings, load_known

    out = root / "site" / "transcripts"
    pub = Publisher(Settings(out=out, known=load_known(None, root), in_workspace=True,
                             afterthoughts=root / "notes" / "afterthoughts"))
    return pub.build([Path(transcript_path)])


__all__ = ["Options", "Publisher", "Settings", "load_known", "output_dir", "refresh_from_hook"]
