"""Fault injection on the write path (issue 17): SIGKILL mid-append, a full disk, an I/O
error, a read-only folder and a lock held too long, through the CLI and the MCP server as
their users run them. The bar: 0 acknowledged events lost, 0 bytes changed by a rejected
write, 0 tracebacks, and the same message from both shells."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from mcp import Client, StdioServerParameters

from llmlab import api, integrity
from llmlab import log as log_mod

# A real `llmlab` process (CLI or MCP server) with one fault injected into the evidence
# log's file operations only (other files and the pipes work normally).
INJECT = r'''
import errno, os, sys
fault = os.environ["LLMLAB_FAULT"]
real_write, real_fsync, real_open = os.write, os.fsync, os.open

def is_log(fd):
    try:
        return os.readlink(f"/proc/self/fd/{fd}").endswith("evidence.jsonl")
    except OSError:
        return False

def write(fd, data):
    if fault == "enospc" and is_log(fd):
        real_write(fd, bytes(data[:9]))  # a partial write, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return real_write(fd, data)

def fsync(fd):
    if fault == "eio" and is_log(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    return real_fsync(fd)

def open_(path, flags, *a, **k):
    p = os.fspath(path)
    if fault == "readonly" and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and (
            p.endswith("evidence.jsonl") or p.endswith(".lock")):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), p)
    return real_open(path, flags, *a, **k)

os.write, os.fsync, os.open = write, fsync, open_
if fault == "lock":
    from llmlab import log
    log.LOCK_TIMEOUT_S = 0.5
if sys.argv[1] == "mcp":
    from llmlab.mcp_server import main
else:
    from llmlab.cli import main
main()
'''

FAULTS = {"enospc": "disk is full", "eio": "I/O error", "readonly": "read-only",
          "lock": "lock"}


@pytest.fixture
def inject(tmp_path):
    script = tmp_path / "inject.py"
    script.write_text(INJECT)
    return script


def _cli(inject, ws, fault, *args):
    env = {**os.environ, "LLMLAB_HOME": str(ws.root), "LLMLAB_FAULT": fault}
    return subprocess.run([sys.executable, str(inject), *args], env=env, capture_output=True,
                          text=True, timeout=120)


def _mcp_calls(inject, ws, fault, calls):
    params = StdioServerParameters(command=sys.executable, args=[str(inject), "mcp"], env={
        **os.environ, "LLMLAB_HOME": str(ws.root), "LLMLAB_FAULT": fault})

    async def go():
        async with Client(params, read_timeout_seconds=120) as c:
            return [await c.call_tool(name, args) for name, args in calls]

    return asyncio.run(go())


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_write_changes_nothing_and_says_so_in_both_shells(ws, inject, fault):
    for q in (0.3, 0.6):
        api.observe(ws, "softmax", q, "acknowledged")
    before = ws.log_path.read_bytes()
    holder = None
    if fault == "lock":  # another writer holds the lock for longer than the timeout
        holder = log_mod.lock_for(ws.log_path)
        holder.__enter__()
    try:
        r = _cli(inject, ws, fault, "log", "observe", "softmax", "-q", "0.9", "-e", "rejected")
        res = _mcp_calls(inject, ws, fault, [("record_observation", {
            "concept": "softmax", "quality": 0.9, "evidence": "rejected"})])[0]
    finally:
        if holder is not None:
            holder.__exit__(None, None, None)
    assert r.returncode == 1 and r.stderr.startswith("Error: "), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert FAULTS[fault] in r.stderr and "Nothing was recorded" in r.stderr
    assert ws.log_path.read_bytes() == before  # 0 bytes changed
    assert res.is_error
    cli_msg = " ".join(r.stderr[len("Error: "):].split())
    assert " ".join(res.content[0].text.split()) == cli_msg  # the same message
    assert log_mod.verify(ws.log_path).ok
    # the workspace still works once the fault is gone
    assert api.observe(ws, "softmax", 0.9, "after").id == "evt_000003"


WRITER = """
import sys
from llmlab import api
from llmlab.workspace import Workspace
ws = Workspace.find()
i = 0
while True:
    ev = api.observe(ws, "softmax", 0.5, "k" * int(sys.argv[1]) + str(i))
    print(ev.id, flush=True)
    i += 1
"""


def test_sigkill_during_append_loses_no_acknowledged_event(ws, tmp_path, cli):
    """30 writers killed at random moments (long lines widen the mid-write window)."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(17)
    acked: list[str] = []
    torn = 0
    for trial in range(30):
        p = subprocess.Popen([sys.executable, str(script), str(rng.choice([10, 4000, 19000]))],
                             stdout=subprocess.PIPE, text=True)
        first = p.stdout.readline().strip()  # the writer is in its loop
        time.sleep(rng.uniform(0, 0.05))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate()
        acked += [first] + out.split()
        rep = log_mod.verify(ws.log_path)
        if rep.torn_tail:
            torn += 1
        assert rep.chain_ok, rep.problems
        integrity.repair(ws.log_path, ws.state_dir)  # a torn tail goes to quarantine
        assert log_mod.verify(ws.log_path).ok
        ids = {json.loads(x)["id"] for x in ws.log_path.read_text().splitlines()}
        assert set(acked) <= ids, f"trial {trial}: acknowledged events lost"
    r = cli("state")
    assert r.returncode == 0 and "Traceback" not in r.stderr and "Warning" not in r.stderr
    assert cli("verify").returncode == 0


def test_repair_works_on_a_full_disk(ws, monkeypatch):
    import errno

    api.observe(ws, "softmax", 0.5, "x")
    good = ws.log_path.read_bytes()
    with open(ws.log_path, "ab") as f:
        f.write(b'{"id":"evt_000002","ts":')  # torn by a crash
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(integrity.os, "write", full)
    res = integrity.repair(ws.log_path, ws.state_dir)
    monkeypatch.setattr(integrity.os, "write", real_write)
    assert res["repaired"] and "evt_000002" in res["fragment"]  # shown, not lost
    assert ws.log_path.read_bytes() == good
    assert log_mod.verify(ws.log_path).ok
