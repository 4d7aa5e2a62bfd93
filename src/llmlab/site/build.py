"""`llmlab site build`: render the whole site from derived state (never hand-edited).

Reads the state and the site's aggregates of the log (`data.collect`: both fold only the
lines added since the last build), renders with Jinja2 only the pages whose data changed
(`pages`: what changes with every build is in `build.js`, not in the pages; autoescape on:
every text from a log, learner or tutor is escaped; only the curriculum's own markdown
may contain HTML), writes each file atomically and only when its bytes changed. The
pages work opened as files: relative links, no network, no inline script or style.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

from markupsafe import Markup, escape

from ..files import atomic_write
from ..workspace import Workspace
from . import data as data_mod
from . import svg
from .pages import Pages, code_fingerprint, data_key

STATIC = ("site.css", "live.js")
WRITERS = 16


@cache
def _env():
    """The Jinja2 environment (imported only when a page is rendered)."""
    from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, StrictUndefined

    class _BytecodeCache(FileSystemBytecodeCache):
        """Compiled templates kept in `$LLMLAB_CACHE/templates` (default ~/.cache/llmlab): a
        fresh `llmlab site build` then skips compiling them (~0.1 s). Jinja checks each entry
        against the template's source; a cache that cannot be read or written is skipped."""

        def load_bytecode(self, bucket) -> None:
            try:
                super().load_bytecode(bucket)
            except (OSError, ValueError, EOFError, pickle.UnpicklingError):
                bucket.reset()

        def dump_bytecode(self, bucket) -> None:
            try:
                Path(self.directory).mkdir(parents=True, exist_ok=True)
                super().dump_bytecode(bucket)
            except OSError:
                pass

    env = Environment(loader=PackageLoader("llmlab", "templates/site"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      bytecode_cache=_BytecodeCache(str(_cache_dir() / "templates")))
    env.globals.update(bar=svg.bar, sparkline=svg.sparkline, history_chart=svg.history_chart,
                       activity_svg=svg.activity, calibration_chart=svg.calibration)
    env.filters["pct"] = lambda x: f"{100 * (x or 0):.0f}%"
    env.filters["num"] = _num
    env.filters["when"] = _when
    env.filters["ago"] = _ago
    env.filters["day"] = lambda ts: (ts or "")[:10]
    env.filters["reason"] = lambda r: r.replace("_", " ")
    env.filters["reference"] = reference
    env.globals["csp"] = CSP_META
    return env


ARXIV = re.compile(r"\barXiv:(\d{4}\.\d{4,5})(v\d+)?\b")


def reference(text: str) -> Markup:
    """A curriculum reference as HTML: URLs and arXiv ids become links (all text escaped)."""
    if text.startswith(("https://", "http://")) and " " not in text:
        return Markup('<a href="{0}" rel="noopener noreferrer">{0}</a>').format(text)
    m = ARXIV.search(text)
    if m:
        url = f"https://arxiv.org/abs/{m.group(1)}"
        return Markup('{0}<a href="{1}" rel="noopener noreferrer">{2}</a>{3}').format(
            text[:m.start()], url, m.group(0), text[m.end():])
    return Markup.escape(text)


def _num(x) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if x == 0 or 1e-3 <= abs(x) < 1e6:
            return f"{x:.4g}"
        return f"{x:.3e}"
    return str(x)


# The only raw HTML curriculum markdown may carry: bare, attribute-less tags for
# collapsible exercise answers. Anything else (a custom curriculum's <script>, <img
# onerror=...>, <a href="javascript:...">) is shown as text: raw HTML is disabled.
_ALLOWED_TAG = re.compile(r"&lt;(/?)(details|summary|code|kbd|sub|sup|br)&gt;")

# The pages' Content-Security-Policy, also as a <meta> for pages opened from disk
# (frame-ancestors only works as a header; the server sends that one).
CSP_META = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'")


def _html_as_text(self, tokens, idx, options, env) -> str:
    from markdown_it.common.utils import escapeHtml

    return _ALLOWED_TAG.sub(r"<\1\2>", escapeHtml(tokens[idx].content))


@cache
def _markdown():
    from markdown_it import MarkdownIt  # imported only when a study page is not cached

    md = MarkdownIt("commonmark", {"html": True, "typographer": False}).enable("table")
    md.add_render_rule("html_block", _html_as_text)
    md.add_render_rule("html_inline", _html_as_text)
    return md


def _cache_dir() -> Path:
    return Path(os.environ.get("LLMLAB_CACHE", Path.home() / ".cache" / "llmlab")).expanduser()


@lru_cache(maxsize=64)
def render_study(md: str) -> tuple[Markup, list[dict]]:
    """Study page HTML with ids on h2/h3 headings, and the table of contents.

    Kept in `$LLMLAB_CACHE/study/`, addressed by the markdown and the markdown-it version,
    so a fresh `llmlab site build` does not parse the same pages again."""
    key = hashlib.sha256(f"{STUDY_FORMAT}\0{_markdown_it_version()}\0{md}".encode())
    path = _cache_dir() / "study" / f"{key.hexdigest()[:32]}.json"
    try:
        html, toc = json.loads(path.read_bytes())
        return Markup(html), toc
    except (OSError, ValueError, TypeError):
        pass
    html, toc = _render_study(md)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps([str(html), toc]))
    except OSError:
        pass
    return html, toc


STUDY_FORMAT = 1  # bump when `_render_study` or its HTML rules change


@cache
def _markdown_it_version() -> str:
    from importlib.metadata import version

    return version("markdown-it-py")


def _render_study(md: str) -> tuple[Markup, list[dict]]:
    parser = _markdown()
    tokens = parser.parse(md)
    toc, used = [], set()
    for i, t in enumerate(tokens):
        if t.type == "heading_open" and t.tag in ("h2", "h3"):
            text = tokens[i + 1].content
            slug = "".join(ch if ch.isalnum() else "-" for ch in text.lower()).strip("-")
            slug = "-".join(filter(None, slug.split("-")))[:60] or "section"
            base, n = slug, 2
            while slug in used:
                slug, n = f"{base}-{n}", n + 1
            used.add(slug)
            t.attrSet("id", slug)
            toc.append({"id": slug, "text": text, "level": int(t.tag[1])})
    return Markup(parser.renderer.render(tokens, parser.options, {})), toc


class _Writer:
    """Collects the rendered files, then writes each one that changed, atomically.

    Writes run on a small thread pool: each atomic write ends with an fsync, which
    releases the GIL, so a cold build of ~120 files is not 120 sequential disk flushes.
    """

    def __init__(self, root: Path):
        self.root, self.pending, self.written, self.unchanged = root, [], 0, 0

    def put(self, rel: str, payload: bytes) -> None:
        self.pending.append((self.root / rel, payload))

    @staticmethod
    def _write(item: tuple[Path, bytes]) -> bool:
        path, payload = item
        try:
            if path.stat().st_size == len(payload) and path.read_bytes() == payload:
                return False
        except OSError:
            pass
        atomic_write(path, payload)
        return True

    def flush(self) -> None:
        for d in {p.parent for p, _ in self.pending}:
            d.mkdir(parents=True, exist_ok=True)
        workers = min(WRITERS, len(self.pending) // 4)  # threads cost ~1-3 ms each to start
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                changed = list(pool.map(self._write, self.pending))
        else:
            changed = [self._write(item) for item in self.pending]
        self.written, self.unchanged = sum(changed), len(changed) - sum(changed)
        self.pending = []


def _dump(obj) -> bytes:
    # compact: the C encoder (indent= falls back to the pure-Python one, 10x slower)
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
            + "\n").encode("utf-8")


def _prune(site: Path, keep: dict[str, set[str]]) -> int:
    """Remove pages of concepts or modules the curriculum no longer has."""
    n = 0
    for folder, ids in keep.items():
        for f in (site / folder).glob("*"):
            if f.is_file() and f.suffix in (".html", ".json") and f.stem not in ids:
                f.unlink(missing_ok=True)
                n += 1
    return n


def _ago(ts: str | None) -> Markup:
    """An event time as the page shows it: the absolute UTC time, which `live.js` turns
    into "3 d ago" as of the build (so that the page does not change with the clock)."""
    if not ts:
        return Markup("never")
    ts = escape(ts)
    return Markup(f'<time datetime="{ts}" data-ago>{_when(ts)}</time>')


def _when(ts: str | None) -> str:
    return (ts or "")[:16].replace("T", " ") + (" UTC" if ts else "")


def _study(md: str | None) -> dict:
    body, toc = render_study(md) if md else (Markup(""), [])
    return {"body": body, "toc": toc}


def build_js(info: dict) -> bytes:
    """`build.js`: what changes with every build, loaded by every page (see live.js)."""
    return b"window.llmlabBuild = " + _dump(info)[:-1] + b";\n"


def build(ws: Workspace, now: datetime | None = None, force: bool = False) -> dict:
    """Render index, concept, study and ladder pages plus JSON twins into `ws.site_dir`.

    Reads only what the log gained since the last build (the state's snapshot and the
    site's aggregates, `aggregate.current`), and renders only the pages whose data changed
    (`pages`: each keyed by a hash of its twin and the shared values); `force` folds the
    whole log again and renders every page. Either way the files are the same, and only
    those whose bytes changed are written."""
    t0 = time.perf_counter()
    site = ws.site_dir
    site.mkdir(parents=True, exist_ok=True)
    d = data_mod.collect(ws, now, force)
    now = d["now"]
    dash = d["dashboard"]
    cur = ws.curriculum
    # the build id changes whenever what the pages say changes (the live server uses it)
    rest = _dump({k: v for k, v in dash.items() if k != "generated_at"})
    build_id = hashlib.sha256(rest + _dump(d["ladder"]) + cur.path.encode()).hexdigest()[:16]
    out = _Writer(site)
    common = {
        "learner": dash["learner"], "course": dash["course"], "modules_nav": d["modules"],
        "transcripts": (site / "transcripts" / "index.html").is_file(),
        "bar_threshold": dash["params"]["bar"], "params": dash["params"],
    }
    keys = Pages(ws.state_dir, site, _dump(common), code_fingerprint(_markdown_it_version()),
                 force)

    def page(rel: str, template: str, root: str, data, twin=None, ctx=dict) -> None:
        """Render `template` with what `ctx()` returns to `rel`, and `twin` (the JSON of
        `data`, if any) beside it, unless the key of `data` says the files on disk
        already hold exactly this."""
        files = (rel,) if twin is None else (rel, rel[:-5] + ".json")
        key = keys.key(rel, data_key(data))
        if keys.fresh(key, files):
            return
        html = _env().get_template(template).render(**common, root=root, page=rel,
                                                     **ctx())
        out.put(rel, html.encode("utf-8"))
        if twin is not None:
            out.put(files[1], _dump(twin))
        keys.rendering(key, files)

    static = resources.files("llmlab") / "static"
    for name in STATIC:
        out.put(f"static/{name}", (static / name).read_bytes())
    for src, dest in data_mod.figure_sources(d["runs"]):
        try:
            out.put(dest, src.read_bytes())
        except OSError:
            pass
    out.put("build.js", build_js({"build": build_id, "events": dash["events"],
                                  "last_event": dash["last_event"],
                                  "generated_at": dash["generated_at"]}))
    graph = d["graph"]
    page("index.html", "index.html", "", [rest, graph],
         ctx=lambda: {"d": dash, "graph": svg.graph(graph)})
    # dash | {"build": build_id}, from the bytes already dumped for the build id
    out.put("index.json", _dump({"generated_at": dash["generated_at"]})[:-2] + b"," + rest[1:-2]
            + f',"build":"{build_id}"}}\n'.encode())
    for cid, c in d["concepts"].items():
        page(f"concepts/{cid}.html", "concept.html", "../", c, c,
             ctx=lambda c=c: {"c": c, "evidence": c["evidence"]})
    by_module = {m["id"]: m for m in dash["modules"]}
    for i, m in enumerate(cur.modules):
        md = cur.study_page(m.id)
        nav = {"prev": cur.modules[i - 1] if i > 0 else None,
               "next": cur.modules[i + 1] if i + 1 < len(cur.modules) else None}
        twin = {"module": by_module[m.id], "markdown": md or ""}
        page(f"study/{m.id}.html", "study.html", "../", twin, twin,
             ctx=lambda m=by_module[m.id], md=md, nav=nav: {"m": m, "nav": nav, **_study(md)})
    page("ladder.html", "ladder.html", "", d["ladder"], {"ladder": d["ladder"]},
         ctx=lambda: {"ladder": d["ladder"]})
    page("model.html", "model.html", "", d["model"], d["model"], ctx=lambda: {"m": d["model"]})
    reports = 0
    for r in d["runs"]:
        if r.get("report_page"):
            rep = data_mod.concept_report(r)
            raw = rep.pop("raw", None)
            page(r["report_page"], "concept_report.html", "../../", [rep, raw], raw,
                 ctx=lambda rep=rep: {"rep": rep})
            reports += 1
    out.flush()
    keys.save()
    pruned = _prune(site, {"concepts": set(cur.concepts), "study": {m.id for m in cur.modules}})
    pages = 3 + len(d["concepts"]) + len(cur.modules) + reports
    return {"site": str(site), "index": str(site / "index.html"), "build": build_id,
            "pages": pages, "rendered": pages - keys.skipped, "written": out.written,
            "unchanged": out.unchanged, "pruned": pruned,
            "events": dash["events"], "source": d["source"],
            "seconds": round(time.perf_counter() - t0, 3),
            "warnings": d["warnings"]}
