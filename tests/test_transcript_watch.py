"""Watch mode: appended records update the page; a torn last line waits until complete."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from llmlab.transcript import Options, Publisher, Settings

FIX = Path(__file__).parent / "fixtures" / "transcript" / "claude" / "-home-alice-llm-course"
SID2 = "7d2e9c41-55aa-4f0e-8b3c-2a9f1e6d4c02"


def rec(i: int, parent: str, text: str, typ: str = "user") -> dict:
    r = {"type": typ, "uuid": f"w-{i:03d}", "parentUuid": parent, "sessionId": SID2, "isSidechain": False,
         "cwd": "/home/alice/llm-course", "timestamp": f"2025-06-05T15:{i:02d}:00.000Z"}
    if typ == "user":
        r["message"] = {"role": "user", "content": text}
    else:
        r["message"] = {"id": f"msg_w{i}", "role": "assistant", "content": [{"type": "text", "text": text}]}
    return r


def line(r: dict) -> str:
    return json.dumps(r) + "\n"


def test_poll_reads_appends_and_waits_for_a_torn_line(tmp_path):
    log = tmp_path / f"{SID2}.jsonl"
    shutil.copy(FIX / f"{SID2}.jsonl", log)
    out = tmp_path / "out"
    pub = Publisher(Settings(out=out, opts=Options(tz="UTC"), force=True), keep=True)
    pub.build([log])
    page = out / f"{SID2}.html"
    assert "A logit is the raw score" in page.read_text()
    assert pub.poll() == []  # nothing changed, nothing written

    parent = "b-002"
    with open(log, "a") as f:
        for i in range(10):  # ten records: five exchanges
            r = rec(i, parent, f"WATCHED_{i} secret sk-ant-api03-WatchFake00000000000000000000",
                    "user" if i % 2 == 0 else "assistant")
            f.write(line(r))
            parent = r["uuid"]
        torn = line(rec(10, parent, "TORN_PROMPT arrives in two writes"))
        f.write(torn[:40])  # half a line
    t0 = time.perf_counter()
    changed = pub.poll()
    elapsed = time.perf_counter() - t0
    assert [e["id"] for e in changed] == [SID2] and elapsed < 1.0
    html = page.read_text()
    assert all(f"WATCHED_{i}" in html for i in range(10))
    assert "TORN_PROMPT" not in html and "sk-ant-api03-WatchFake" not in html
    assert "6 exchanges" in html  # 1 + 5 appended

    with open(log, "a") as f:
        f.write(torn[40:])  # the rest of the line
    assert [e["id"] for e in pub.poll()] == [SID2]
    assert "TORN_PROMPT arrives in two writes" in page.read_text()


def test_same_size_rewrite_is_noticed_by_mtime_and_growth_by_size(tmp_path):
    log = tmp_path / f"{SID2}.jsonl"
    shutil.copy(FIX / f"{SID2}.jsonl", log)
    pub = Publisher(Settings(out=tmp_path / "o", opts=Options(tz="UTC"), force=True), keep=True)
    pub.build([log])
    st = os.stat(log)
    with open(log, "a") as f:
        f.write(line(rec(1, "b-002", "GROWN")))
    os.utime(log, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime, larger file (coarse clocks)
    assert [e["id"] for e in pub.poll()] == [SID2]
    assert "GROWN" in (tmp_path / "o" / f"{SID2}.html").read_text()


def test_cli_watch_updates_the_page(tmp_path):
    log = tmp_path / f"{SID2}.jsonl"
    shutil.copy(FIX / f"{SID2}.jsonl", log)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "llmlab", "transcript", "build", str(log), "--out", str(out),
                             "--tz", "UTC", "--watch", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        page = out / f"{SID2}.html"
        deadline = time.time() + 30
        while not page.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert page.exists()
        with open(log, "a") as f:
            f.write(line(rec(1, "b-002", "LIVE_APPEND")))
        deadline = time.time() + 15
        while "LIVE_APPEND" not in page.read_text() and time.time() < deadline:
            time.sleep(0.1)
        assert "LIVE_APPEND" in page.read_text()
        assert not list(out.glob(".*.tmp"))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_incremental_page_equals_a_fresh_build(tmp_path):
    """Fed line by line (torn halves included), the watched page ends byte-identical to a
    build from scratch: incremental assembly and the exchange cache change nothing."""
    main = FIX / "0b6f6f0e-1c1a-4b7e-9a51-3c2b8d9e0a11.jsonl"
    lines = main.read_text().splitlines(keepends=True)
    proj = tmp_path / "proj"
    proj.mkdir()
    log = proj / main.name
    log.write_text("")
    pub = Publisher(Settings(out=tmp_path / "inc", opts=Options(tz="UTC"), force=True), keep=True)
    pub.build([log])
    for ln in lines:
        half = len(ln) // 2
        with open(log, "a") as f:
            f.write(ln[:half])
        pub.poll(rediscover=False)
        with open(log, "a") as f:
            f.write(ln[half:])
        pub.poll(rediscover=False)
    fresh = tmp_path / "fresh"
    Publisher(Settings(out=fresh, opts=Options(tz="UTC"))).build([log])
    name = main.stem + ".html"
    assert (tmp_path / "inc" / name).read_bytes() == (fresh / name).read_bytes()


def test_a_rewound_prompt_is_marked_in_a_build_and_while_watching(tmp_path):
    def u(uid, parent, text, minute):
        return {"type": "user", "uuid": uid, "parentUuid": parent, "sessionId": "r",
                "timestamp": f"2025-01-01T10:{minute:02d}:00Z", "message": {"role": "user", "content": text}}

    def a(uid, parent, text, minute):
        return {"type": "assistant", "uuid": uid, "parentUuid": parent, "sessionId": "r",
                "timestamp": f"2025-01-01T10:{minute:02d}:30Z",
                "message": {"id": "m" + uid, "role": "assistant", "content": [{"type": "text", "text": text}]}}

    first = [u("u1", None, "Explain softmax", 0), a("a1", "u1", "Softmax turns logits into probabilities.", 0),
             u("u2", "a1", "FIRST_TRY what about temperature?", 1), a("a2", "u2", "OLD_ANSWER", 1)]
    rewind = [u("u3", "a1", "SECOND_TRY and what does top-p do?", 2), a("a3", "u3", "NEW_ANSWER", 2)]
    log = tmp_path / "r.jsonl"
    log.write_text("".join(line(r) for r in first))
    pub = Publisher(Settings(out=tmp_path / "w", opts=Options(tz="UTC"), force=True), keep=True)
    pub.build([log])
    with open(log, "a") as f:
        f.write("".join(line(r) for r in rewind))
    pub.poll(rediscover=False)
    watched = (tmp_path / "w" / "r.html").read_text()
    Publisher(Settings(out=tmp_path / "b", opts=Options(tz="UTC"))).build([log])
    built = (tmp_path / "b" / "r.html").read_text()
    assert watched == built
    for page in (watched, built):
        assert page.index("OLD_ANSWER") < page.index("The learner went back to an earlier point") \
            < page.index("SECOND_TRY") < page.index("NEW_ANSWER")
        assert page.count("The learner went back") == 1


def test_watching_a_folder_picks_up_new_sessions_and_subagent_logs(tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(FIX / f"{SID2}.jsonl", proj / f"{SID2}.jsonl")
    pub = Publisher(Settings(out=tmp_path / "o", opts=Options(tz="UTC"), force=True), keep=True)
    pub.build([proj])
    new = "9a9a9a9a-0000-4000-8000-00000000000b"
    (proj / f"{new}.jsonl").write_text(json.dumps({
        "type": "user", "uuid": "n1", "parentUuid": None, "sessionId": new, "timestamp": "2025-06-06T09:00:00Z",
        "message": {"role": "user", "content": "A_NEW_SESSION_STARTED"}}) + "\n")
    assert [e["id"] for e in pub.poll(rediscover=True)] == [new]
    assert "A_NEW_SESSION_STARTED" in (tmp_path / "o" / f"{new}.html").read_text()
    assert f'href="{new}.html"' in (tmp_path / "o" / "index.html").read_text()
