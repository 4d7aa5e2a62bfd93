"""Regression tests of issue 17's findings: future times, the id grammar, damaged logs,
write failures, terminal escapes, and the smaller file conditions. Each fails on the code
before the issue."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta

import pytest

from llmlab import api
from llmlab.errors import UserError
from llmlab.events import Event, format_ts, line_hash, now_utc

from test_mcp import connect, error_text


def traceback_free(r) -> None:
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout, r.stderr


# ---------------------------------------------------------------- finding 1: future times

def test_future_at_is_refused_with_a_clear_error(ws, cli):
    before = ws.log_path.read_bytes()
    r = cli("log", "observe", "softmax", "-q", "0.5", "-e", "x", "--at", "9999-12-31T23:59:59Z")
    assert r.returncode == 1 and "in the future" in r.stderr
    traceback_free(r)
    assert ws.log_path.read_bytes() == before
    soon = format_ts(now_utc() + timedelta(minutes=2))  # within the allowed clock skew
    assert cli("log", "observe", "softmax", "-q", "0.5", "-e", "x", "--at", soon).returncode == 0


def _append_raw(ws, ts: str, data: dict | None = None, type_: str = "observation") -> None:
    """Write an event the way an old llmlab (or an editor) would have: past the checks."""
    lines = ws.log_path.read_bytes().splitlines(keepends=True)
    prev = line_hash(lines[-1]) if lines else "0" * 64
    ev = Event(id=f"evt_{len(lines) + 1:06d}", ts=ts, type=type_, actor="tutor", prev=prev,
               data=data or {"concept": "softmax", "quality": 0.5, "evidence": "x", "probe": ""})
    with open(ws.log_path, "ab") as f:
        f.write(ev.to_line())


def test_a_log_holding_a_future_event_is_readable_and_repairable(ws, cli):
    api.observe(ws, "softmax", 0.6, "before")
    _append_raw(ws, "9999-12-31T23:59:59.000000Z")
    for args in (("state",), ("state", "--json"), ("site", "build"), ("rebuild",),
                 ("concept", "show", "softmax"), ("next",)):
        r = cli(*args)
        traceback_free(r)
        assert "OverflowError" not in r.stderr
        assert r.returncode == 0, (args, r.stderr)
        assert "future" in r.stderr and "llmlab repair" in r.stderr, args
    assert json.loads(cli("state", "--json").stdout)["concepts"]["softmax"]["observations"] == 1
    before = ws.log_path.read_bytes()
    r = cli("log", "observe", "softmax", "-q", "0.5", "-e", "x")
    assert r.returncode == 1 and "llmlab repair" in r.stderr and "future" in r.stderr
    assert ws.log_path.read_bytes() == before
    r = cli("verify")
    assert r.returncode == 1 and "future" in r.stdout
    r = cli("repair", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["quarantined_bytes"] > 0
    q = (ws.root / "evidence.quarantine.jsonl").read_text()
    assert "9999-12-31" in q  # moved, never dropped
    assert cli("verify").returncode == 0
    assert cli("log", "observe", "softmax", "-q", "0.5", "-e", "after").returncode == 0


# ---------------------------------------------------------------- finding 4: id grammar

@pytest.mark.parametrize("bad", ["evt_000001\n", "evt_0000001", "evt_٠٠٠٠٠١", "evt_000001 ",
                                 "evt_00001"])
def test_event_ids_follow_one_strict_grammar(ws, cli, bad):
    api.observe(ws, "softmax", 0.5, "x")
    before = ws.log_path.read_bytes()
    for args in (("undo", bad, "--reason", "r"), ("log", "resolve", bad)):
        r = cli(*args)
        assert r.returncode == 1, (args, r.stdout)
        traceback_free(r)
    with pytest.raises(UserError):
        api.retract(ws, bad, "r")
    assert ws.log_path.read_bytes() == before
    assert cli("verify").returncode == 0


def test_mcp_arguments_have_strict_types(ws):
    async def go():
        async with connect(ws.root) as c:
            out = []
            for q in ("0.5", True, "1"):
                out.append(await c.call_tool("record_observation", {
                    "concept": "softmax", "quality": q, "evidence": "x"}))
            out.append(await c.call_tool("record_exit_attempt", {"item": "build_sampler",
                                                                 "passed": "true"}))
            out.append(await c.call_tool("retract_event", {"event": "evt_000001\n",
                                                           "reason": "r"}))
            ok = await c.call_tool("record_observation", {"concept": "softmax", "quality": 1,
                                                          "evidence": "x"})
            return out, ok

    out, ok = asyncio.run(go())
    for r in out:
        assert r.is_error
    assert "quality" in error_text(out[0]) and "passed" in error_text(out[3])
    assert not ok.is_error
    assert len(ws.log_path.read_bytes().splitlines()) == 1


def test_mcp_replies_to_a_lone_surrogate(ws):
    """JSON allows "\\ud800" in a string; the SDK's client cannot send one, so raw JSON-RPC."""
    import subprocess
    import sys

    msgs = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
    ]
    call = ('{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":'
            '"record_observation","arguments":{"concept":"softmax","quality":0.5,'
            '"evidence":"x\\ud800y"}}}')
    stdin = "".join(json.dumps(m) + "\n" for m in msgs) + call + "\n"
    p = subprocess.Popen([sys.executable, "-m", "llmlab", "mcp"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "LLMLAB_HOME": str(ws.root)})
    p.stdin.write(stdin.encode())
    p.stdin.flush()
    import threading

    watchdog = threading.Timer(90, p.kill)  # no reply must fail the test, not hang it
    watchdog.start()
    replies = {}
    while 2 not in replies:
        line = p.stdout.readline()
        assert line, p.stderr.read().decode()[-2000:]
        msg = json.loads(line)
        if "id" in msg:
            replies[msg["id"]] = msg
    watchdog.cancel()
    p.stdin.close()
    p.wait(timeout=30)
    res = replies[2]["result"]
    assert res["isError"] and "surrogate" in res["content"][0]["text"]
    assert ws.log_path.read_bytes() == b""


@pytest.mark.parametrize("damage", ["delete_middle", "blank", "garbage", "bom", "array",
                                    "no_data", "torn"])
def test_writes_refuse_a_damaged_log_and_reads_use_the_prefix(ws, cli, damage):
    for q in (0.2, 0.4, 0.6, 0.8):
        api.observe(ws, "softmax", q, "x")
    lines = ws.log_path.read_bytes().splitlines(keepends=True)
    if damage == "delete_middle":
        del lines[1]
    elif damage == "blank":
        lines.insert(2, b"\n")
    elif damage == "garbage":
        lines.insert(2, b"not json at all\n")
    elif damage == "bom":
        lines[2] = b"\xef\xbb\xbf" + lines[2]
    elif damage == "array":
        lines.insert(2, b"[1, 2, 3]\n")
    elif damage == "no_data":
        ev = json.loads(lines[2])
        del ev["data"]
        lines[2] = (json.dumps(ev, separators=(",", ":")) + "\n").encode()
    elif damage == "torn":
        lines.append(b'{"id":"evt_00000')
    ws.log_path.write_bytes(b"".join(lines))
    before = ws.log_path.read_bytes()
    r = cli("log", "observe", "softmax", "-q", "0.5", "-e", "y")
    assert r.returncode == 1 and "llmlab repair" in r.stderr and "llmlab verify" in r.stderr
    traceback_free(r)
    assert ws.log_path.read_bytes() == before  # no id reused, nothing written after damage
    for args in (("state", "--json"), ("rebuild",), ("site", "build"), ("next",)):
        r = cli(*args)
        traceback_free(r)
        assert r.returncode == 0 and "Warning" in r.stderr, (args, r.stderr)
    n = json.loads(cli("state", "--json").stdout)["concepts"]["softmax"]["observations"]
    assert n == (1 if damage == "delete_middle" else 4 if damage == "torn" else 2)
    r = cli("verify")
    assert r.returncode == 1
    traceback_free(r)
    r = cli("repair")
    assert r.returncode == 0, r.stderr
    assert cli("verify").returncode == 0
    assert cli("log", "observe", "softmax", "-q", "0.5", "-e", "after repair").returncode == 0


# ---------------------------------------------------------------- tail anchor

@pytest.mark.parametrize("change", ["remove_last", "edit_last"])
def test_tail_changes_are_caught_by_the_anchor(ws, cli, change):
    for q in (0.2, 0.4, 0.6):
        api.observe(ws, "softmax", q, "x")
    lines = ws.log_path.read_bytes().splitlines(keepends=True)
    if change == "remove_last":
        lines.pop()
    else:  # edit the last event and keep its prev (the chain cannot see it)
        ev = json.loads(lines[-1])
        ev["data"]["quality"] = 1.0
        lines[-1] = (json.dumps(ev, separators=(",", ":")) + "\n").encode()
    ws.log_path.write_bytes(b"".join(lines))
    r = cli("verify")
    assert r.returncode == 1 and "anchor" in r.stdout
    r = cli("state")
    assert r.returncode == 0 and r.stderr.count("Warning") == 1 and "anchor" in r.stderr
    r = cli("log", "observe", "softmax", "-q", "0.5", "-e", "y")
    assert r.returncode == 1 and "anchor" in r.stderr
    assert cli("repair").returncode == 0
    assert cli("verify").returncode == 0
    assert "Warning" not in cli("state").stderr


# ---------------------------------------------------------------- finding 3: escapes

def test_control_characters_are_shown_escaped_in_the_terminal(ws, cli):
    evil = "x\x1b]52;c;ZXZpbA==\x07\x1b]0;pwned\x07\x1b[2J\x9bX"
    api.observe(ws, "softmax", 0.5, evil)
    mid = api.open_misconception(ws, "softmax", claim="claim\x1b[2J")
    for args in (("state",), ("concept", "show", "softmax")):
        r = cli(*args, env={"COLUMNS": "300"})
        assert r.returncode == 0
        assert "\x1b" not in r.stdout and "\x9b" not in r.stdout and "\x07" not in r.stdout
    assert "\\x1b" in cli("concept", "show", "softmax", env={"COLUMNS": "300"}).stdout
    assert mid.id in cli("state", env={"COLUMNS": "300"}).stdout
    r = cli("log", "observe", "no\x1b[2Jsuch", "-q", "0.5", "-e", "x")
    assert r.returncode == 1 and "\x1b" not in r.stderr


# ---------------------------------------------------------------- finding 5: write failures

def test_disk_full_leaves_the_log_byte_identical(ws, monkeypatch):
    import errno

    from llmlab import log as log_mod

    api.observe(ws, "softmax", 0.5, "x")
    before = ws.log_path.read_bytes()
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data[:7]))  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(log_mod.os, "write", full)
    with pytest.raises(UserError, match="disk is full"):
        api.observe(ws, "softmax", 0.9, "y")
    monkeypatch.setattr(log_mod.os, "write", real_write)
    assert ws.log_path.read_bytes() == before
    assert api.observe(ws, "softmax", 0.9, "y").id == "evt_000002"


def test_read_only_folder_and_lock_timeout_are_clear_errors(ws, cli, monkeypatch):
    api.observe(ws, "softmax", 0.5, "x")
    before = ws.log_path.read_bytes()
    if os.geteuid() != 0:  # root ignores permissions
        ws.log_path.chmod(0o400)
        os.chmod(ws.root, 0o500)
        try:
            r = cli("log", "observe", "softmax", "-q", "0.5", "-e", "y")
        finally:
            os.chmod(ws.root, 0o700)
            ws.log_path.chmod(0o600)
        assert r.returncode == 1 and "Nothing was recorded" in r.stderr
        traceback_free(r)
    from llmlab import log as log_mod

    monkeypatch.setattr(log_mod, "LOCK_TIMEOUT_S", 0.2)
    with log_mod.lock_for(ws.log_path):
        with pytest.raises(UserError, match="lock"):
            api.observe(ws, "softmax", 0.5, "y")
    assert ws.log_path.read_bytes() == before
