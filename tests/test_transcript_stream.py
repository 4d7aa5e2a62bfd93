"""The streamed publisher (issue 19): pages byte-identical to the in-memory publisher's, and
memory that does not grow with the log.

`tests/fixtures/transcript/golden.json` holds the SHA-256 of every file the publisher wrote
for each case below, recorded with the in-memory publisher (commit fb905ab) before the
streamed one replaced it. A change that alters a page on purpose regenerates it:

    LLMLAB_REGEN_GOLDEN=1 PYTHONPATH=src python -m pytest tests/test_transcript_stream.py -k golden
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from llmlab.transcript import Options, Publisher, Settings

FIX = Path(__file__).parent / "fixtures" / "transcript"
PROJECT = FIX / "claude" / "-home-alice-llm-course"
CHATGPT = FIX / "chatgpt" / "conversations.json"
GOLDEN = FIX / "golden.json"
GEN = Path(__file__).resolve().parent.parent / "bench" / "transcript_gen.py"


def gen():
    spec = importlib.util.spec_from_file_location("transcript_gen", GEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sidechains(d: Path) -> list[Path]:
    """Old logs with in-file sidechains, a missing parent, a parent cycle, an unlinked sub-agent."""
    recs = [
        {"type": "user", "uuid": "u1", "parentUuid": None, "sessionId": "s", "timestamp": "2025-01-01T10:00:00Z",
         "message": {"role": "user", "content": "Start"}},
        {"type": "assistant", "uuid": "a1", "parentUuid": "u1", "sessionId": "s", "timestamp": "2025-01-01T10:00:01Z",
         "message": {"id": "m1", "role": "assistant", "content": [
             {"type": "tool_use", "id": "t1", "name": "Task", "input": {"prompt": "Count the files"}}]}},
        {"type": "user", "uuid": "x1", "parentUuid": None, "isSidechain": True, "sessionId": "s",
         "timestamp": "2025-01-01T10:00:02Z", "message": {"role": "user", "content": "Count the files"}},
        {"type": "assistant", "uuid": "x2", "parentUuid": "x1", "isSidechain": True, "sessionId": "s",
         "timestamp": "2025-01-01T10:00:03Z", "message": {"id": "m2", "role": "assistant",
                                                          "content": [{"type": "text", "text": "12 files"}]}},
        {"type": "user", "uuid": "y1", "parentUuid": None, "isSidechain": True, "sessionId": "s",
         "timestamp": "2025-01-01T10:00:02Z", "message": {"role": "user", "content": "A task nobody spawned"}},
        {"type": "user", "uuid": "u2", "parentUuid": "a1", "sessionId": "s", "timestamp": "2025-01-01T10:00:04Z",
         "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "12"}]}},
        {"type": "assistant", "uuid": "a2", "parentUuid": "missing-parent", "sessionId": "s",
         "timestamp": "2025-01-02T10:00:05Z", "message": {"id": "m3", "role": "assistant",
                                                          "content": [{"type": "text", "text": "orphan"}]}},
        {"type": "user", "uuid": "u3", "parentUuid": "a2", "sessionId": "s", "timestamp": "2025-01-02T10:00:06Z",
         "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t9", "content": "late"}]}},
        {"type": "assistant", "uuid": "a3", "parentUuid": "u3", "sessionId": "s", "timestamp": "2025-01-02T10:00:07Z",
         "message": {"id": "m1", "role": "assistant", "content": [{"type": "text", "text": "same message id, later"}]}},
        {"type": "assistant", "uuid": "c1", "parentUuid": "c2", "sessionId": "s", "message": {"id": "m4",
         "content": [{"type": "text", "text": "CYCLE_ONE"}]}},
        {"type": "assistant", "uuid": "c2", "parentUuid": "c1", "sessionId": "s", "message": {"id": "m5",
         "content": [{"type": "text", "text": "CYCLE_TWO"}]}},
        {"type": "user", "uuid": "f1", "parentUuid": "later", "sessionId": "s", "timestamp": "2025-01-03T10:00:00Z",
         "message": {"role": "user", "content": "child written before its parent"}},
        {"type": "user", "uuid": "later", "parentUuid": "u3", "sessionId": "s", "timestamp": "2025-01-03T09:00:00Z",
         "message": {"role": "user", "content": "parent written after its child"}},
    ]
    log = d / "s.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    return [log]


def _malformed(d: Path) -> list[Path]:
    from test_transcript import WEIRD_RECORDS as weird

    log = d / "weird.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in weird) + "\n\n   \n{broken\n")
    return [log]


def _generated(d: Path) -> list[Path]:
    log = d / "gen.jsonl"
    gen().generate(log, 1_500_000, seed=7, hard=10)  # many rewinds, compactions, duplicates
    return [log]


def _fixtures(d: Path) -> list[Path]:
    shutil.copytree(PROJECT, d / PROJECT.name)
    return [d / PROJECT.name, CHATGPT]


CASES = {
    "fixtures": (_fixtures, dict(formats=("html", "md"), afterthought=FIX / "afterthought.md")),
    "fixtures-brief": (_fixtures, dict(tools="brief", thinking="hide", images="embed", formats=("html", "md"))),
    "fixtures-prompts": (_fixtures, dict(tools="prompts")),
    "sidechains": (_sidechains, dict(formats=("html", "md"))),
    "malformed": (_malformed, dict(formats=("html", "md"))),
    "generated": (_generated, dict(formats=("html", "md"))),
    "generated-noscrub": (_generated, dict(scrub=False)),
}


def outputs(case: str, tmp: Path) -> dict:
    make, kw = CASES[case]
    kw = dict(kw)
    src = tmp / "in"
    src.mkdir()
    paths = make(src)
    opts = Options(**{k: kw.pop(k) for k in ("tools", "thinking", "images") if k in kw}, tz="UTC")
    out = tmp / "out"
    report = Publisher(Settings(out=out, opts=opts, **kw)).build(paths)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())
             if p.name != ".transcripts.json"}
    sessions = [{k: v for k, v in s.items()} for s in report["sessions"]]
    return {"files": files, "sessions": sessions, "scrub": report["scrub"]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_streamed_pages_match_the_golden_pages(case, tmp_path):
    got = outputs(case, tmp_path)
    golden = json.loads(GOLDEN.read_text()) if GOLDEN.is_file() else {}
    if os.environ.get("LLMLAB_REGEN_GOLDEN"):
        golden[case] = got
        GOLDEN.write_text(json.dumps(golden, indent=1, sort_keys=True) + "\n")
    assert got == golden[case]


def test_memory_does_not_grow_with_the_log(tmp_path):
    """tracemalloc's peak over a build of a generated 6 MB log stays under half the log's
    size. The in-memory publisher peaked at about 2.2x the log (13 MB here); the streamed
    one keeps small indexes plus one exchange at a time (about 1.5 MB). Not timed."""
    import tracemalloc

    log = tmp_path / "big.jsonl"
    size = gen().generate(log, 6_000_000, seed=5)["bytes"]
    pub = Publisher(Settings(out=tmp_path / "out", opts=Options(tz="UTC"), scrub=False))
    tracemalloc.start()
    try:
        report = pub.build([log])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report["sessions"][0]["exchanges"] > 150
    assert peak < size / 2, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB log"
