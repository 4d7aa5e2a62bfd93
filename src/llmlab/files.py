"""Writing files safely: atomic replacement, and merging an entry into someone else's config.

`atomic_write` is the only way llmlab writes a derived or configuration file: a temp file
in the same folder, fsync, rename. `edit_config` merges our entry into an agent client's
JSON, JSONC or TOML configuration and keeps everything else in it; a file it cannot parse
is never overwritten, and a JSONC file with comments is not rewritten (the comments would
be lost): the error gives the exact entry to paste instead.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from .errors import UserError

Format = Literal["json", "jsonc", "toml"]


def _umask_mode() -> int:
    """The mode a new file gets from `open()` under the current umask (0644 under 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: Path, data: bytes | str | Iterable[bytes | str],
                 mode: int | None = None, durable: bool = True) -> int:
    """Replace `path` with `data` atomically (temp file beside it, fsync, rename); returns
    the bytes written. An existing file keeps its mode; a new one gets `mode`, or what the
    umask gives. Nothing is left behind on error, and the old file stays until the rename.
    `durable=False` skips the fsync: for caches that are checked on read and rebuilt when a
    crash leaves them empty (it costs milliseconds on every `llmlab log observe`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    keep = path.stat().st_mode & 0o777 if path.exists() else None
    chunks = [data] if isinstance(data, (bytes, str)) else data
    while True:  # what tempfile.mkstemp does, without importing tempfile (start-up time)
        tmp = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            continue
    size = 0
    try:
        with os.fdopen(fd, "wb") as f:
            for c in chunks:
                b = c.encode("utf-8") if isinstance(c, str) else c
                f.write(b)
                size += len(b)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, keep if keep is not None else mode if mode is not None else _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size


# ---------------------------------------------------------------- config files

def _parse(text: str, fmt: Format) -> tuple[dict, bool]:
    """The document and whether it carries comments that a rewrite would lose."""
    if fmt == "toml":
        import tomlkit

        return tomlkit.parse(text), False
    try:
        return json.loads(text), False
    except ValueError:
        if fmt != "jsonc":
            raise
    import json5  # JSON with comments and trailing commas (VS Code's mcp.json)

    return json5.loads(text), True


def _dump(doc: dict, fmt: Format) -> str:
    if fmt == "toml":
        import tomlkit

        return tomlkit.dumps(doc)
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def load_config(path: Path, fmt: Format = "json", fix: str = "") -> tuple[dict, bool]:
    """A config file's document ({} when missing or empty) and whether it has comments.
    A file that cannot be read or parsed, or is not a table/object, is a user error."""
    if not path.exists():
        return {}, False
    try:
        text = path.read_text(encoding="utf-8")
        doc, commented = _parse(text, fmt) if text.strip() else ({}, False)
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path} could not be read ({e}), so llmlab will not touch it. "
                        f"Nothing was changed. {fix}".strip()) from None
    except ValueError as e:
        raise UserError(f"{path} is not valid {fmt.upper()} ({e}), so llmlab will not touch "
                        f"it. Nothing was changed. {fix}".strip()) from None
    if not isinstance(doc, dict):
        raise UserError(f"{path} does not hold a {'table' if fmt == 'toml' else 'JSON object'}, "
                        f"so llmlab will not touch it. Nothing was changed. {fix}".strip())
    return doc, commented


def edit_config(path: Path, edit: Callable[[dict], None], fmt: Format = "json",
                write: bool = True, fix: str = "") -> tuple[dict, str]:
    """Apply `edit` (which changes the document in place) to the config at `path`.

    Returns the new document and the change: `created`, `updated` or `unchanged`. `fix`
    ends every error message (what the user can do instead). Everything `edit` does not
    touch is kept; TOML keeps its formatting and comments (tomlkit)."""
    old, commented = load_config(path, fmt, fix)
    new = copy.deepcopy(old)
    edit(new)
    if new == old:
        return new, "unchanged"
    change = "updated" if path.exists() else "created"
    if write:
        if commented:
            snippet = json.dumps(_changed(old, new), indent=2, ensure_ascii=False)
            raise UserError(f"{path} has comments, which rewriting it would lose, so llmlab "
                            f"did not change it. Add this to it by hand:\n{snippet}")
        atomic_write(path, _dump(new, fmt))
    return new, change


def _changed(old: dict, new: dict) -> dict:
    """What `new` adds to or changes in `old`, nested objects narrowed to their changed keys
    (the snippet to paste: our entry, not the servers already there)."""
    out = {}
    for k, v in new.items():
        if old.get(k) == v:
            continue
        out[k] = _changed(old[k], v) if isinstance(v, dict) and isinstance(old.get(k), dict) else v
    return out


def section(doc: dict, key: str, where: Path) -> dict:
    """`doc[key]` as a table/object, created when missing; a user error when it is another
    kind of value (llmlab never replaces what it did not write)."""
    value = doc.setdefault(key, {})
    if not isinstance(value, dict):
        raise UserError(f"In {where}, '{key}' is not an object; llmlab will not replace it. "
                        "Fix it by hand, then run this again. Nothing was changed.")
    return value
