"""Which pages a build may skip: each page is keyed by a hash of what it is rendered from.

A page (its HTML and its JSON twin) is rendered from exactly the data of its twin, the
values every page shares (learner, course, module menu, parameters, whether transcripts
exist) and the code, templates and static files that render it. Nothing else: what changes
with every build (build id, event count, build time, "3 d ago") lives in `build.js`, not in
the pages. So a page whose key is unchanged would render to the same bytes, and is neither
rendered nor written.

`state/site-pages.json` keeps, per output file, the key it was rendered with and the size
and mtime the file had after the build; a page is rendered again when its key changed or
one of its files is not as that build left it (deleted, edited by hand). Like every cache
under `state/`, it is derived and safe to delete; `--force` ignores it.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from functools import cache
from importlib import resources
from pathlib import Path

from ..files import atomic_write

FORMAT = 1
CACHE = "site-pages.json"
_CODE = ("templates/site", "static", "site")  # under the llmlab package


@cache
def code_fingerprint(extra: str = "") -> bytes:
    """A hash of the templates, static files and site code (and `extra`: versions of the
    libraries that render), so that an upgrade or an edited template re-renders every page."""
    h = hashlib.sha256(f"{FORMAT}\0{extra}".encode())
    pkg = resources.files("llmlab")
    for folder in _CODE:
        for f in sorted(Path(str(pkg / folder)).iterdir()):
            if f.is_file() and f.suffix in (".html", ".css", ".js", ".py"):
                h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.digest()


def data_key(data) -> bytes:
    """`data` (plain JSON-like values) as bytes for a key: pickled without the memo, so that
    equal values give equal bytes however their objects are shared. 5x faster than
    json.dumps, which matters for ~3 MB of concept data at 100k events. Values that pickle
    differently but dump to the same JSON (a tuple and a list) only cost a render."""
    f = io.BytesIO()
    p = pickle.Pickler(f, protocol=pickle.HIGHEST_PROTOCOL)
    p.fast = True  # no memo: the bytes depend on the values alone
    p.dump(data)
    return f.getvalue()


class Pages:
    """The keys of the last build, and those of this one (saved by `save`)."""

    def __init__(self, state_dir: Path, site: Path, common: bytes, code: bytes,
                 force: bool = False):
        self.path, self.site = state_dir / CACHE, site
        self.base = hashlib.sha256(code + common).digest()
        self.old: dict[str, list] = {}
        if not force:
            try:
                doc = json.loads(self.path.read_bytes())
                if doc.get("format") == FORMAT and isinstance(doc.get("files"), dict):
                    self.old = doc["files"]
            except (OSError, ValueError):
                pass
        self.new: dict[str, list] = {}
        self.rendered: list[tuple[str, tuple[str, ...]]] = []
        self.skipped = 0

    def key(self, rel: str, data: bytes) -> str:
        return hashlib.sha256(self.base + rel.encode() + b"\0" + data).hexdigest()[:32]

    def fresh(self, key: str, files: tuple[str, ...]) -> bool:
        """True when each file was written by a build with this key and is as it left it."""
        for rel in files:
            entry = self.old.get(rel)
            if not entry or entry[0] != key:
                return False
            try:
                st = (self.site / rel).stat()
            except OSError:
                return False
            if [st.st_size, st.st_mtime_ns] != entry[1:]:
                return False
        for rel in files:
            self.new[rel] = self.old[rel]
        self.skipped += 1
        return True

    def rendering(self, key: str, files: tuple[str, ...]) -> None:
        self.rendered.append((key, files))

    def save(self) -> None:
        """Record the files rendered by this build (call once they are written)."""
        for key, files in self.rendered:
            for rel in files:
                try:
                    st = (self.site / rel).stat()
                except OSError:
                    continue
                self.new[rel] = [key, st.st_size, st.st_mtime_ns]
        doc = {"format": FORMAT, "files": self.new}
        try:
            atomic_write(self.path, json.dumps(doc, separators=(",", ":")), mode=0o600)
        except OSError:
            pass  # a cache that cannot be written only costs a full render next time
