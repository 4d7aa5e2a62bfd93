"""Run folders: naming them, finding them by id or path, writing their result.json.

A run lives in `lab/runs/<run-id>/` of a workspace (or `--out DIR/<run-id>/`):
`result.json` plus figures and any files the experiment wrote. Run ids look like
`20261123-004512-sampling-1a2b` (UTC time, experiment, random suffix), so sorting by name
sorts by start time.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ..errors import UserError
from ..files import atomic_write
from ..workspace import Workspace

RESULT = "result.json"
RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,120}\Z")


def new_id(experiment: str) -> str:
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{experiment}-{secrets.token_hex(2)}"


def folder(ws: Workspace | None, out: Path | None, run_id: str) -> Path:
    """Where a new run goes: `out/<id>`, else the workspace's runs folder, else a temp dir."""
    if out is not None:
        return out / run_id
    if ws is not None:
        return ws.runs_dir / run_id
    import tempfile

    return Path(tempfile.mkdtemp(prefix="llmlab-run-")) / run_id


def write_result(run_dir: Path, result: dict) -> None:
    atomic_write(run_dir / RESULT, json.dumps(result, indent=2, ensure_ascii=False, default=str))


def iter_runs(ws: Workspace, holding: str = RESULT) -> Iterator[tuple[str, Path]]:
    """(run id, folder) of every run in the workspace that holds the file `holding`,
    oldest first."""
    if not ws.runs_dir.is_dir():
        return
    for f in sorted(ws.runs_dir.glob(f"*/{holding}")):
        if RUN_ID.match(f.parent.name):
            yield f.parent.name, f.parent


def find(ws: Workspace | None, given: str, holding: str = RESULT, what: str = "run") -> Path:
    """A run folder from the path of a folder or a run id in the workspace; a user error,
    listing the latest runs, when there is none."""
    p = Path(given).expanduser()
    if given and (p / holding).is_file():
        return p
    if ws is not None and RUN_ID.match(given) and (ws.runs_dir / given / holding).is_file():
        return ws.runs_dir / given
    latest = [rid for rid, _ in iter_runs(ws, holding)][-5:] if ws is not None else []
    where = f" in {ws.runs_dir}" if ws is not None else ""
    raise UserError(f"No {what} '{given}'{where}: give a run id or the path of a run folder "
                    f"(it holds {holding}). Latest: {', '.join(latest) or 'none yet'}.")


def newest(ws: Workspace | None, experiment: str, holding: str = RESULT) -> Path | None:
    """The newest run folder of `experiment` in the workspace that holds `holding`."""
    found = [d for rid, d in iter_runs(ws, holding) if f"-{experiment}-" in rid] if ws else []
    return found[-1] if found else None


def read_result(run_dir: Path) -> dict:
    try:
        r = json.loads((run_dir / RESULT).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{run_dir / RESULT} could not be read ({e}). Run the experiment again "
                        "to replace it.") from None
    if not isinstance(r, dict):
        raise UserError(f"{run_dir / RESULT} does not hold a run result. Run the experiment "
                        "again to replace it.")
    return r
