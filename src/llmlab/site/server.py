"""`llmlab serve`: the dashboard over HTTP on 127.0.0.1, rebuilt live.

A watcher thread polls the evidence log and the curriculum; on change it rebuilds the
site and tells every open page to reload (server-sent events on /__events). Only files
under site/ are served: the request path is decoded, normalised and resolved, and must
stay inside site/ (no `..`, encoded or not, no absolute paths, no symlink escape).
GET and HEAD only.
"""

from __future__ import annotations

import mimetypes
import posixpath
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ..workspace import Workspace
from .build import build

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "Cache-Control": "no-cache"}


def safe_path(root: Path, raw: str) -> Path | None:
    """The file under `root` that request path `raw` names, or None if it leaves root."""
    path = unquote(urlsplit(raw).path)
    if "\x00" in path or "\\" in path:
        return None
    parts = [p for p in posixpath.normpath("/" + path).split("/") if p]
    if any(p in ("..", ".") for p in parts) or ".." in path.split("/"):
        return None
    target = root.joinpath(*parts) if parts else root
    if target.is_dir():
        target = target / "index.html"
    try:
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(root.resolve()) or not resolved.is_file():
        return None
    return resolved


class Hub:
    """Rebuild-on-change and the list of open event streams."""

    def __init__(self, ws: Workspace, interval: float = 0.25):
        self.ws, self.interval = ws, interval
        self.version = 0
        self.cond = threading.Condition()
        self.stop = threading.Event()

    def _signature(self):
        files = [self.ws.log_path, self.ws.config_path,
                 *sorted(self.ws.curriculum_path.rglob("*.toml")),
                 *sorted(self.ws.curriculum_path.rglob("*.md"))]
        sig = []
        for f in files:
            try:
                st = f.stat()
                sig.append((str(f), st.st_size, st.st_mtime_ns))
            except OSError:
                sig.append((str(f), None, None))
        return tuple(sig)

    def watch(self) -> None:
        last = self._signature()
        while not self.stop.wait(self.interval):
            sig = self._signature()
            if sig == last:
                continue
            last = sig
            try:
                build(Workspace(self.ws.root))
            except Exception as e:  # a bad edit must not kill the server; keep the last site
                print(f"llmlab serve: rebuild failed: {e}", flush=True)
                continue
            with self.cond:
                self.version += 1
                self.cond.notify_all()


def make_handler(root: Path, hub: Hub):
    class Handler(BaseHTTPRequestHandler):
        server_version = "llmlab"
        sys_version = ""

        def log_message(self, fmt, *args):  # quiet: no access log on the console
            pass

        def _headers(self, status, ctype=None, length=None):
            self.send_response(status)
            for k, v in HEADERS.items():
                self.send_header(k, v)
            if ctype:
                self.send_header("Content-Type", ctype)
            if length is not None:
                self.send_header("Content-Length", str(length))
            self.end_headers()

        def _not_found(self):
            body = b"Not found"
            self._headers(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", len(body))
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self):
            if self.path == "/__events":
                return self._events()
            target = safe_path(root, self.path)
            if target is None:
                return self._not_found()
            data = target.read_bytes()
            ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            if ctype.startswith("text/") or ctype in ("application/json", "application/javascript"):
                ctype += "; charset=utf-8"
            self._headers(HTTPStatus.OK, ctype, len(data))
            if self.command != "HEAD":
                self.wfile.write(data)

        def do_HEAD(self):
            self.do_GET()

        def _method_not_allowed(self):
            self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
            self.send_header("Allow", "GET, HEAD")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

        def _events(self):
            self._headers(HTTPStatus.OK, "text/event-stream")
            seen = hub.version
            try:
                self.wfile.write(b"retry: 500\n\n")
                self.wfile.flush()
                while not hub.stop.is_set():
                    with hub.cond:
                        hub.cond.wait(timeout=15)
                        now = hub.version
                    if now != seen:
                        seen = now
                        self.wfile.write(f"event: reload\ndata: {now}\n\n".encode())
                    else:
                        self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, OSError):
                return

    return Handler


class Server:
    """The live site server; `start()` returns at once, `close()` stops everything."""

    def __init__(self, ws: Workspace, host: str = "127.0.0.1", port: int = 0):
        build(ws)
        self.hub = Hub(ws)
        self.httpd = ThreadingHTTPServer((host, port), make_handler(ws.site_dir, self.hub))
        self.httpd.daemon_threads = True
        self.threads = [threading.Thread(target=self.hub.watch, daemon=True),
                        threading.Thread(target=self.httpd.serve_forever, daemon=True)]

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> Server:
        for t in self.threads:
            t.start()
        return self

    def close(self) -> None:
        self.hub.stop.set()
        with self.hub.cond:
            self.hub.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait(self) -> None:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()
