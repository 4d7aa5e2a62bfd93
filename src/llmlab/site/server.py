"""`llmlab serve`: the site over HTTP (stdlib only), rebuilt and pushed live.

- A watcher thread polls the evidence log (every 0.2 s), `llmlab.toml` and the curriculum
  (every second); on a change it rebuilds the site (incrementally: `build` reads only the
  lines the log gained since the last build) and tells every open page to reload
  over server-sent events (`/__events`). A failed rebuild keeps the last good site and
  shows a banner on open pages.
- Only regular files inside `site/` are served: the raw request path must be a plain
  origin-form path; it is percent-decoded once and may not contain `.`/`..`/hidden
  segments, empty segments, backslashes or NUL; the joined path is resolved (following
  symlinks) and must still lie inside `site/`. Everything else is a bare 404.
- GET and HEAD only (405 otherwise). Security headers on every response, including a
  content security policy without 'unsafe-inline'. On a loopback address the Host header
  must name the loopback (a guard against DNS rebinding).
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from email.utils import formatdate
from urllib.parse import parse_qs, unquote

from ..errors import UserError
from ..workspace import Workspace
from .build import build

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
)
TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".svg": "image/svg+xml", ".png": "image/png", ".jpg": "image/jpeg",
         ".jpeg": "image/jpeg", ".txt": "text/plain; charset=utf-8", ".md": "text/plain; charset=utf-8",
         ".ico": "image/x-icon"}
EVENTS_PATH = "/__events"
LOG_POLL_S = 0.2
SLOW_POLL_S = 1.0
REFRESH_S = 600  # rebuild anyway now and then: staleness depends on the clock


def resolve_request(root: Path, raw: str) -> Path | None:
    """The regular file under `root` (already resolved) that the raw request target names,
    or None. Never normalises a path into something it did not say."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/") or path.startswith("//"):
        return None  # absolute-form, authority tricks, //etc/passwd
    try:
        decoded = unquote(path, errors="strict") if "%" in path else path
    except UnicodeDecodeError:
        return None
    if "\x00" in decoded or "\\" in decoded:
        return None
    parts = decoded.split("/")[1:]
    for i, p in enumerate(parts):
        if p == "" and i < len(parts) - 1:
            return None  # empty segment in the middle: a//b
        if p.startswith("."):
            return None  # ., .., hidden files, atomic-write temp files
    target = root.joinpath(*[p for p in parts if p])
    try:
        if target.is_dir():
            target = target / "index.html"
        resolved = target.resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not resolved.is_relative_to(root) or not resolved.is_file():
        return None
    return resolved


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LiveSite:
    """The workspace's site: rebuilds on change and wakes the event streams."""

    def __init__(self, root: Path):
        self.root = root
        self.site_dir = Workspace(root).site_dir
        self.build_id = ""
        self.error: str | None = None
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.rebuilds = 0
        self.source = ""  # how the last build read the log: full, incremental or cached
        self.sigs: tuple = ((), ())

    def rebuild(self) -> None:
        # taken before reading anything: a change during the build triggers another one
        self.sigs = (self._log_sig(), self._curriculum_sig())
        try:
            res = build(Workspace(self.root))  # fresh: llmlab.toml may have changed
        except Exception as e:  # keep serving the last good site, say why on open pages
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f"llmlab serve: rebuild failed: {e}", file=sys.stderr, flush=True)
            with self.cond:
                self.error = msg[:300]
                self.cond.notify_all()
            return
        with self.cond:
            self.build_id, self.error, self.source = res["build"], None, res["source"]
            self.rebuilds += 1
            self.cond.notify_all()

    def _log_sig(self) -> tuple:
        ws = Workspace(self.root)
        out = []
        for f in (ws.log_path, ws.config_path, ws.site_dir / "transcripts" / "index.html"):
            try:
                st = f.stat()
                out.append((st.st_size, st.st_mtime_ns, st.st_ino))
            except OSError:
                out.append(None)
        return tuple(out)

    def _curriculum_sig(self) -> tuple:
        try:
            p = Workspace(self.root).curriculum_path
            return tuple(sorted((str(f), f.stat().st_mtime_ns, f.stat().st_size)
                                for f in p.rglob("*") if f.suffix in (".toml", ".md", ".yaml")))
        except (OSError, UserError):
            return ()

    def watch(self) -> None:
        """Poll until stopped; rebuild when what the last build read has changed."""
        last_build = last_slow = time.monotonic()
        while not self.stop.wait(LOG_POLL_S):
            now = time.monotonic()
            changed = self._log_sig() != self.sigs[0]
            if now - last_slow >= SLOW_POLL_S:
                last_slow = now
                changed = changed or self._curriculum_sig() != self.sigs[1]
            if changed or now - last_build >= REFRESH_S:
                last_build = now
                self.rebuild()


class _Cache:
    """Per file: its bytes, ETag and ready-made response head, revalidated by
    (mtime, size, inode) on every request."""

    def __init__(self):
        self.files: dict[Path, tuple[tuple, bytes, str, bytes]] = {}

    def get(self, path: Path) -> tuple[bytes, str, bytes]:
        st = path.stat()
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        hit = self.files.get(path)
        if hit is not None and hit[0] == key:
            return hit[1], hit[2], hit[3]
        data = path.read_bytes()
        etag = '"' + hashlib.blake2b(data, digest_size=10).hexdigest() + '"'
        ctype = TYPES.get(path.suffix.lower(), "application/octet-stream")
        head = "".join(f"{k}: {v}\r\n" for k, v in (
            *SECURITY_HEADERS, ("Content-Type", ctype), ("Content-Length", str(len(data))),
            ("Cache-Control", "no-cache"), ("ETag", etag))).encode("latin-1")
        self.files[path] = (key, data, etag, head)
        return data, etag, head


_date_cache: list = [0, b""]


def _date_header() -> bytes:
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[:] = [now, f"Date: {formatdate(now, usegmt=True)}\r\n".encode()]
    return _date_cache[1]


class Handler(BaseHTTPRequestHandler):
    server_version = "llmlab"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections
    server: SiteHTTPServer

    def log_message(self, fmt, *args):  # no access log on the console
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body are separate writes: without this, Nagle + delayed ACK stall
        # every keep-alive response by ~40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _start(self, status: int, ctype: str | None = None, length: int | None = None,
               extra: tuple = ()) -> None:
        self.send_response(status)
        for k, v in SECURITY_HEADERS:
            self.send_header(k, v)
        if ctype:
            self.send_header("Content-Type", ctype)
        if length is not None:
            self.send_header("Content-Length", str(length))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()

    def _plain(self, status: int, text: str, extra: tuple = ()) -> None:
        body = text.encode()
        self._start(status, "text/plain; charset=utf-8", len(body), extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _host_ok(self) -> bool:
        allowed = self.server.allowed_hosts
        if allowed is None:
            return True
        host = (self.headers.get("Host") or "").strip().lower()
        return host in allowed

    def do_GET(self) -> None:
        if not self._host_ok():
            return self._plain(HTTPStatus.MISDIRECTED_REQUEST, "Unknown host\n")
        if self.path.split("?", 1)[0] == EVENTS_PATH:
            return self._events()
        target = resolve_request(self.server.site_root, self.path)
        if target is None:
            return self._plain(HTTPStatus.NOT_FOUND, "Not found\n")
        try:
            data, etag, head = self.server.cache.get(target)
        except OSError:
            return self._plain(HTTPStatus.NOT_FOUND, "Not found\n")
        if self.headers.get("If-None-Match") == etag:
            return self._start(HTTPStatus.NOT_MODIFIED,
                               extra=(("Cache-Control", "no-cache"), ("ETag", etag)))
        # the hot path: one ready-made head, one write
        self.wfile.write(b"HTTP/1.1 200 OK\r\nServer: llmlab\r\n" + _date_header() + head
                         + b"\r\n" + (data if self.command != "HEAD" else b""))

    def do_HEAD(self) -> None:
        self.do_GET()

    def _not_allowed(self) -> None:
        self._plain(HTTPStatus.METHOD_NOT_ALLOWED, "Only GET and HEAD\n", (("Allow", "GET, HEAD"),))

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def _events(self) -> None:
        """Server-sent events: `reload` with the new build id, `build-error` with a reason."""
        live: LiveSite = self.server.live
        if self.command == "HEAD":
            return self._start(HTTPStatus.OK, "text/event-stream", 0)
        if not self.server.streams.acquire(blocking=False):  # keep slots for page loads
            self.close_connection = True
            return self._plain(HTTPStatus.SERVICE_UNAVAILABLE, "Too many live pages open\n",
                               (("Retry-After", "5"),))
        try:
            self._stream(live)
        finally:
            self.server.streams.release()

    def _stream(self, live: LiveSite) -> None:
        seen = parse_qs(self.path.split("?", 1)[1] if "?" in self.path else "").get("build", [""])[0]
        self.close_connection = True
        self._start(HTTPStatus.OK, "text/event-stream; charset=utf-8",
                    extra=(("Cache-Control", "no-store"), ("Connection", "close")))
        shown_error = None
        try:
            self.wfile.write(b"retry: 1000\n\n")
            self.wfile.flush()
            while not live.stop.is_set():
                with live.cond:
                    if live.build_id == seen and live.error == shown_error:
                        live.cond.wait(timeout=15)
                    build_id, error = live.build_id, live.error
                if live.stop.is_set():
                    break
                if build_id and build_id != seen:
                    seen = build_id
                    self.wfile.write(f"event: reload\ndata: {build_id}\n\n".encode())
                elif error != shown_error:
                    shown_error = error
                    if error:
                        self.wfile.write(f"event: build-error\ndata: {error}\n\n".encode())
                    else:  # fixed, and the same build as shown: take the banner down
                        self.wfile.write(b"event: build-ok\ndata: \n\n")
                else:
                    self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except OSError:  # the page went away
            return


class SiteHTTPServer(ThreadingHTTPServer):
    """One thread per connection, at most MAX_CONNECTIONS at once (of which at most
    MAX_STREAMS live-reload streams): past the cap a connection gets an immediate 503 and
    is closed, so 2,000 clients cannot make 2,000 threads. Idle connections are dropped
    after `Handler.timeout`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default 5 drops SYNs when a few pages open at once
    MAX_CONNECTIONS = 64
    MAX_STREAMS = 48

    def __init__(self, addr, live: LiveSite, allowed_hosts: set[str] | None):
        self.live = live
        self.site_root = live.site_dir.resolve()
        self.cache = _Cache()
        self.allowed_hosts = allowed_hosts
        self.slots = threading.BoundedSemaphore(self.MAX_CONNECTIONS)
        self.streams = threading.BoundedSemaphore(self.MAX_STREAMS)
        super().__init__(addr, Handler)

    def process_request(self, request, client_address) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _V6Server(SiteHTTPServer):
    address_family = socket.AF_INET6


class Server:
    """Build, bind, watch. `start()` returns at once; `close()` stops everything."""

    def __init__(self, ws: Workspace, host: str = "127.0.0.1", port: int = 0):
        self.live = LiveSite(ws.root)
        ws.site_dir.mkdir(parents=True, exist_ok=True)
        self.live.rebuild()
        if self.live.error:
            raise UserError(f"Cannot build the site: {self.live.error} Fix what it names "
                            "(`llmlab site build` shows the same message), then start "
                            "`llmlab serve` again.")
        cls = _V6Server if ":" in host else SiteHTTPServer
        try:
            self.httpd = cls((host, port), self.live, None)
        except OSError as e:
            raise UserError(f"Cannot listen on {host}:{port} ({e.strerror}). Choose another port "
                            "with --port N, or --port 0 for any free port.") from None
        real_port = self.httpd.server_address[1]
        if _is_loopback(host):
            names = {"127.0.0.1", "localhost", "[::1]", host if ":" not in host else f"[{host}]"}
            self.httpd.allowed_hosts = {f"{n}:{real_port}" for n in names} | (
                names if real_port == 80 else set())
        self.host = host
        self.threads = [threading.Thread(target=self.live.watch, name="llmlab-watch", daemon=True),
                        threading.Thread(target=self.httpd.serve_forever, name="llmlab-http",
                                         daemon=True)]

    @property
    def url(self) -> str:
        port = self.httpd.server_address[1]
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"http://{host}:{port}/"

    def start(self) -> Server:
        for t in self.threads:
            t.start()
        return self

    def close(self) -> None:
        self.live.stop.set()
        with self.live.cond:
            self.live.cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    def wait(self) -> None:
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()


def serve(ws: Workspace, host: str, port: int, echo=print) -> None:
    """The `llmlab serve` command: warn about a non-loopback address, print the URL, block."""
    if not _is_loopback(host):
        print(f"Warning: serving on {host} makes this learner's dashboard (evidence, quotes, "
              "misconceptions) readable by anyone who can reach this machine on that "
              "network. Use the default 127.0.0.1 unless you mean it.", file=sys.stderr,
              flush=True)
    srv = Server(ws, host, port).start()
    echo(f"Serving the dashboard at {srv.url}")
    echo("It rebuilds and reloads open pages whenever the evidence log or curriculum changes. "
         "Ctrl-C to stop.")
    sys.stdout.flush()
    srv.wait()
