"""Claude Code hook handlers: `llmlab-hook session-start` and `llmlab-hook stop`.

Claude Code runs a command hook with the event's JSON on stdin and reads JSON from stdout
(https://code.claude.com/docs/en/hooks#hook-input-and-output). These handlers:

- act only when the session's `cwd` is inside an llmlab workspace (a folder with
  `llmlab.toml`, or below one); anywhere else they print nothing and exit 0;
- never write evidence: the only writes are derived caches and `state/hooks.log`;
- always exit 0. Exit 2 would block (Stop) or show stderr to the user (SessionStart), and
  any other non-zero code shows a "hook error" notice
  (https://code.claude.com/docs/en/hooks#exit-code-output). Errors go to
  `<workspace>/state/hooks.log` (or `~/.cache/llmlab/hooks.log` outside a workspace);
- start fast: only the standard library is imported before the workspace is found, and
  never typer, rich or torch (budget: 300 ms on a 10,000-event workspace; see
  `bench/hooks_bench.py`).

SessionStart output: `hookSpecificOutput.additionalContext`, added to Claude's context
before the first prompt (https://code.claude.com/docs/en/hooks#sessionstart-decision-control).

Stop output, only when the learner's last message answered a probe and the turn recorded
no evidence: `hookSpecificOutput.additionalContext`, "non-error feedback" after which the
conversation continues so the tutor can record the exchange now, shown in the transcript as
"Stop hook feedback"; plus `systemMessage`, shown to the learner
(https://code.claude.com/docs/en/hooks#stop-decision-control). Not `decision: "block"`,
which is reported as a hook error. When `stop_hook_active` is true (the tutor is already
continuing because of a stop hook) nothing is added, so the hook can never loop.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ..core import CONFIG_FILE, LOG_FILE, find_root, last_event, parse_ts_or_none, torn_tail

HOOK_LOG = "hooks.log"
HOOK_LOG_MAX = 512 * 1024  # rotate to hooks.log.1 beyond this
# On a log bigger than this the hook never imports the state engine: with an unusable state
# cache it does not re-fold the log (10,000 events take ~200 ms; a background `llmlab
# rebuild` repairs the cache), and a missing or outdated brief is computed in the background.
REBUILD_LIMIT = 1 << 20


# ---------------------------------------------------------------- plumbing

def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llmlab"


def hook_log_path(root: Path | None) -> Path:
    if root is not None and (root / "state").is_dir():
        return root / "state" / HOOK_LOG
    return _cache_dir() / HOOK_LOG


def log_error(root: Path | None, event: str, err: BaseException | str, started: float) -> None:
    """Append one JSON line describing the error; never raises."""
    try:
        if isinstance(err, BaseException):
            import traceback  # only on the error path: it costs start-up time

            tb = traceback.extract_tb(err.__traceback__)
            where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
            msg = f"{type(err).__name__}: {err}"
        else:
            where, msg = "", err
        entry = {"ts": datetime.now().astimezone().isoformat(timespec="seconds"),
                 "event": event, "workspace": str(root) if root else None, "error": msg[:2000],
                 "where": where, "ms": round((time.perf_counter() - started) * 1000, 1)}
        path = hook_log_path(root)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.stat().st_size > HOOK_LOG_MAX:
                os.replace(path, path.with_name(HOOK_LOG + ".1"))
        except OSError:
            pass
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    except Exception:
        pass


def spawn(args: list[str], cwd: Path) -> None:
    """Start a detached background process (its own session; no pipes to the hook)."""
    import subprocess

    env = dict(os.environ, LLMLAB_HOME=str(cwd))
    subprocess.Popen(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)


def _context(event: str, text: str) -> dict:
    return {"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}}


# ---------------------------------------------------------------- session start

REBUILDING = ("llmlab: the learner-state cache is being rebuilt in the background, so no "
              "summary is available at this moment; `llmlab next` lists what to probe.")


NEWER = ("- Newer evidence was recorded since this brief was computed (outside this session); "
         "the brief is being refreshed in the background. `get_state` (or `llmlab state`) has "
         "the current state.")
COMPUTING = ("llmlab: the learner brief is being computed in the background (first session "
             "start with this log); `get_state` (or `llmlab next`) has the state now.")


def session_start(payload: dict, root: Path, started: float) -> dict | None:
    from . import briefcache
    from .settings import read

    ps = read(root / CONFIG_FILE)
    notes = []
    torn = torn_tail(root / LOG_FILE)
    if torn:
        log_error(root, "session-start", f"evidence.jsonl ends with a torn line ({torn} bytes)",
                  started)
        notes.append(f"- The evidence log ends with a torn, incomplete line ({torn} bytes, a "
                     "crash mid-write), so recording fails until `llmlab repair` quarantines "
                     "it; `llmlab verify` shows the details.")
    now = datetime.now(timezone.utc)
    k = briefcache.key(root, ps.curriculum, ps.brief_probes)  # before reading the log
    text = briefcache.read(root, k, now)
    problem = cache_problem(root) if text is None else None
    big = _size(root / LOG_FILE) > REBUILD_LIMIT
    if problem and big:
        # decided before importing the state engine: nothing to summarize quickly
        if problem != "missing":
            log_error(root, "session-start", f"state/snapshot.json is {problem}; rebuilding it "
                      "in the background", started)
        spawn([sys.executable, "-m", "llmlab", "rebuild"], root)
        text = REBUILDING
    elif text is None:
        # Computing the brief imports the state engine and may fold the log's tail: when
        # the log changed since the cached brief
        # (evidence recorded outside this session), that brief is shown, marked as outdated,
        # and a background process refreshes it; with no brief at all, a big log's is
        # computed in the background too, a small log's here.
        old = briefcache.read_stale(root, k, now)
        if old is not None or big:
            spawn([sys.executable, "-m", "llmlab.plugin.hooks", "refresh-brief", str(root)],
                  root)
            text = f"{old}\n{NEWER}" if old else COMPUTING
    text = text or compute_brief(root, ps, k, now, started)
    return _context("SessionStart", "\n".join([text, *notes]))


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def cache_problem(root: Path) -> str | None:
    """Why the state cache is certainly unusable, checked cheaply (no state engine): "missing",
    "unreadable" or "not a JSON object"; None when it may be fine."""
    try:
        doc = json.loads((root / "state" / "snapshot.json").read_bytes())
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError):
        return "unreadable"
    return None if isinstance(doc, dict) else "not a JSON object"


def compute_brief(root: Path, ps, k: list, now: datetime, started: float,
                  full: bool = False) -> str:
    """The brief from the derived state (the reads of `api.state`, without its import cost
    and without re-folding a big log inside the hook); cached in state/brief.json, for the
    current segment only or (`full`, in the background) for the coming week."""
    from .. import snapshot, view
    from ..workspace import Workspace
    from . import briefcache
    from .brief import brief

    ws = Workspace(root)
    cur, params = ws.curriculum, ws.config.mastery
    log_path, cache = root / LOG_FILE, ws.state_dir / "snapshot.json"
    try:
        usable = snapshot.load(cache, snapshot.fingerprint(cur, params)) is not None
    except Exception:  # e.g. valid JSON of the wrong shape
        usable = False
    if not usable:
        if cache.exists():
            log_error(root, "session-start", "state/snapshot.json is unreadable or out of date; "
                      "the state is re-derived from the log", started)
        if _size(log_path) > REBUILD_LIMIT:
            spawn([sys.executable, "-m", "llmlab", "rebuild"], root)
            return REBUILDING
    state, _tip = snapshot.current(log_path, cache, cur, params, use_cache=usable)
    titles = {c.id: c.title for c in cur.concepts.values()} | {m.id: m.title for m in cur.modules}

    def text_at(t: datetime) -> str:
        summary = view.summarize(cur, state, params, t)
        summary["next"] = view.next_probes(cur, summary, ps.brief_probes)
        return brief(summary, titles, ps.brief_probes, as_of=t)

    def stale(cid: str, t: datetime) -> bool:
        return view.staleness(state.concepts[cid], params, t)[0]

    horizon = now + briefcache.HORIZON
    flips = briefcache.flip_times(stale, list(cur.concepts), now, horizon)
    segs = briefcache.segments(flips, now, horizon, text_at, full)
    briefcache.write(root, k, segs)
    return segs[0][2]


# ---------------------------------------------------------------- stop

def stop(payload: dict, root: Path, started: float) -> dict | None:
    from .settings import read

    ps = read(root / CONFIG_FILE)
    tpath = payload.get("transcript_path")
    if ps.transcript and isinstance(tpath, str) and tpath:
        spawn([sys.executable, "-m", "llmlab.plugin.hooks", "transcript-refresh",
               str(Path(tpath).expanduser()), str(root)], root)
    refresh_brief_if_stale(root, ps)
    if not ps.remind or payload.get("stop_hook_active") or not isinstance(tpath, str):
        return None
    from .turn import last_turn

    path = Path(tpath).expanduser()
    if not path.is_file():
        return None
    turn = last_turn(path)
    if not turn.answered_probe or turn.write_calls:
        return None
    # The session log may lag (and the learner may record from another terminal): any
    # event appended since the learner's message counts as recorded.
    last = last_event(root / LOG_FILE)
    said = parse_ts_or_none(turn.prompt_ts)
    if last is not None:
        logged = parse_ts_or_none(last.get("ts"))
        if said is None or (logged is not None and logged >= said):
            return None
    quote = " ".join(turn.prompt.split())
    quote = quote if len(quote) <= 140 else quote[:139] + "…"
    last_txt = (f"the log's last event, {last.get('id')}, predates it"
                if last else "the evidence log is empty")
    text = (
        f"llmlab: the learner's last message (\"{quote}\") answers the tutor's probe, and no "
        f"evidence was recorded for it in this turn: no llmlab record tool call or "
        f"`llmlab log` command ran, and {last_txt}. In this workspace every substantive "
        "exchange is recorded once through the validated write path (the llmlab MCP record "
        "tools, or `llmlab log observe CONCEPT --quality Q --evidence TEXT --probe TEXT`), "
        "rated on this exchange alone; a misconception seen is opened with `llmlab log "
        "misconception`. If the message was not an answer to a probe, nothing needs recording.")
    return {"hookSpecificOutput": {"hookEventName": "Stop", "additionalContext": text},
            "systemMessage": "llmlab: your last answer was not recorded yet; the tutor was "
                             "reminded to record it."}


# UserPromptSubmit: a short reminder of the teaching rules, only when the session has run
# several learner messages without recording anything (long sessions drift from them).
REMIND_AFTER = 4
RULES = ("llmlab: {n} learner messages since anything was recorded. Ask, don't tell: one "
         "question at a time. Record each answered probe (record_observation: this exchange "
         "alone). Never claim mastery; the log decides.")


def user_prompt_submit(payload: dict, root: Path, started: float) -> dict | None:
    from .settings import read

    tpath = payload.get("transcript_path")
    if not read(root / CONFIG_FILE).remind or not isinstance(tpath, str) or not tpath:
        return None
    from .turn import prompts_since_write

    path = Path(tpath).expanduser()
    n = prompts_since_write(path) + 1 if path.is_file() else 0  # + the one being submitted
    if n < REMIND_AFTER or (n - REMIND_AFTER) % REMIND_AFTER:  # at 4, 8, 12... silent prompts
        return None
    return _context("UserPromptSubmit", RULES.format(n=n))


def refresh_brief_if_stale(root: Path, ps) -> None:
    """After a turn that recorded evidence, re-compute the cached brief in the background,
    so that the next session start (or /clear, resume, compaction) finds it ready."""
    from . import briefcache

    k = briefcache.key(root, ps.curriculum, ps.brief_probes)
    if briefcache.read(root, k, datetime.now(timezone.utc)) is None:
        spawn([sys.executable, "-m", "llmlab.plugin.hooks", "refresh-brief", str(root)], root)


# ---------------------------------------------------------------- transcript refresh

def transcript_refresh(transcript_path: str, root: Path) -> None:
    """Background job of the stop hook: re-render this session's transcript page with the
    transcript publisher's library function, when that publisher is installed."""
    try:
        from .. import transcript
    except ImportError:
        return
    fn = getattr(transcript, "refresh_from_hook", None)
    if callable(fn):
        fn(Path(transcript_path), root)


HANDLERS = {"session-start": session_start, "stop": stop,
            "user-prompt-submit": user_prompt_submit}


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    argv = sys.argv[1:] if argv is None else argv
    event = argv[0] if argv else ""
    root: Path | None = None
    try:
        if event == "transcript-refresh" and len(argv) >= 3:  # background jobs
            root = Path(argv[2])
            transcript_refresh(argv[1], root)
            return 0
        if event == "refresh-brief" and len(argv) >= 2:
            from . import briefcache
            from .settings import read

            root = Path(argv[1])
            ps = read(root / CONFIG_FILE)
            now = datetime.now(timezone.utc)
            compute_brief(root, ps, briefcache.key(root, ps.curriculum, ps.brief_probes), now,
                          started, full=True)
            return 0
        handler = HANDLERS.get(event)
        if handler is None:
            raise ValueError(f"unknown hook event {event!r}; expected one of "
                             f"{', '.join(HANDLERS)}")
        raw = sys.stdin.read()
        payload = json.loads(raw) if raw.strip() else {}
        if not isinstance(payload, dict):
            raise ValueError("hook input is not a JSON object")
        cwd = payload.get("cwd")
        root = find_root(Path(cwd) if isinstance(cwd, str) and cwd else Path.cwd())
        if root is None:
            return 0
        out = handler(payload, root, started)
        if out:
            sys.stdout.write(json.dumps(out))  # ASCII: valid whatever the locale
            sys.stdout.flush()
    except BaseException as e:  # a hook must never fail the session: log, exit 0
        log_error(root, event, e, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
