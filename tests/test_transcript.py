"""Transcript publisher: real-format fixtures in, pages out; assertions on what a reader sees.

Fixtures: tests/fixtures/transcript/ (written by make_fixtures.py in the real Claude Code
and ChatGPT export formats; every hard case of issue 6 is in the main session).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import pytest

from llmlab.transcript import Options, Publisher, Settings
from llmlab.transcript.scrub import Known, Scrubber

from conftest import invoke_cli

FIX = Path(__file__).parent / "fixtures" / "transcript"
PROJECT = FIX / "claude" / "-home-alice-llm-course"
SID = "0b6f6f0e-1c1a-4b7e-9a51-3c2b8d9e0a11"
SID2 = "7d2e9c41-55aa-4f0e-8b3c-2a9f1e6d4c02"
CHATGPT = FIX / "chatgpt" / "conversations.json"
SECRETS = ["sk-proj-T3stFakeKey0000000000000000000000000001",
           "sk-ant-api03-FakeFakeFakeFakeFake0000000000000000-TestOnly",
           "AKIAIOSFODNN7EXAMPLE", "ghp_FakeGithubToken000000000000000000000001",
           "hf_FakeHuggingFaceToken00000000000000001", "alice@example.com", "bob@example.org", "/home/alice"]


def transcript(*args: str, cwd: Path | None = None, env: dict | None = None):
    """`llmlab transcript ARGS` in this process (conftest `invoke_cli`)."""
    return invoke_cli("transcript", *args, cwd=cwd, env=env)


def run(*args: str, cwd: Path | None = None, env: dict | None = None, input: str | None = None):
    """`llmlab transcript ARGS` as a process, for the README's commands."""
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "llmlab", "transcript", *args], cwd=cwd, env=e, input=input,
                          capture_output=True, text=True, timeout=120)


class Blocks(HTMLParser):
    """Text of every element whose class list includes all of `classes`, in document order."""

    VOID = {"br", "img", "meta", "link", "input", "hr"}

    def __init__(self, html: str, classes: str):
        super().__init__(convert_charrefs=True)
        self.want = set(classes.split())
        self.stack: list[bool] = []
        self.open: list[list[str]] = []
        self.found: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        cls = set((dict(attrs).get("class") or "").split())
        hit = self.want <= cls
        self.stack.append(hit)
        if hit:
            self.open.append([])

    def handle_endtag(self, tag):
        if tag in self.VOID or not self.stack:
            return
        if self.stack.pop():
            self.found.append("".join(self.open.pop()))

    def handle_data(self, data):
        for buf in self.open:
            buf.append(data)


def blocks(html: str, classes: str) -> list[str]:
    return Blocks(html, classes).found


def visible_text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def build(out: Path, paths, **kw) -> dict:
    kw.setdefault("tz", "UTC")
    opts = Options(**{k: kw.pop(k) for k in ("tools", "thinking", "images", "tz") if k in kw})
    return Publisher(Settings(out=out, opts=opts, **kw)).build(list(paths))


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    build(out, [PROJECT, CHATGPT], formats=("html", "md"), afterthought=FIX / "afterthought.md")
    return out


@pytest.fixture(scope="module")
def page(site) -> str:
    return (site / f"{SID}.html").read_text()


# ------------------------------------------------------------------ Claude Code format


def test_learner_prompts_are_only_what_the_learner_typed(page):
    learner = [" ".join(t.split()) for t in blocks(page, "msg learner")]
    # the sub-agent's prompt is labelled separately, inside its tool call
    mine = [t for t in learner if not t.startswith("Prompt to the sub-agent")]
    assert [re.sub(r"^Learner \d\d:\d\d ", "", t) for t in mine] == [
        "What does temperature do to softmax? I tried <script>window.pwned=1</script> in my notes.",
        "Can you find where softmax is implemented?",
        "Here is my plot of the distribution. Why is it so peaked? "
        "[image: image/png, 70 B — not embedded; rebuild with --images embed to include it]",
        "So T → 0 is greedy decoding?",
    ]


def test_harness_noise_is_removed_or_collapsed(page):
    text = visible_text(page)
    assert "The user opened the file" not in text  # <system-reminder> embedded in typed text
    assert "Caveat:" not in text and "DO NOT respond" not in text
    assert "Base directory for this skill" not in text  # isMeta
    assert "\x1b" not in page and "[1m" not in page  # ANSI codes stripped
    harness = [" ".join(t.split()) for t in blocks(page, "msg harness")]
    assert "COMMAND /model opus → Set model to opus (claude-opus-4-1)".lower() in [h.lower() for h in harness]
    assert "<command-name>" not in text and "local-command-stdout" not in text
    assert any(h.startswith("Interrupted") for h in harness)


def test_compaction_summary_is_a_labelled_harness_note_not_the_learner(page):
    harness = blocks(page, "msg harness")
    summary = [h for h in harness if "This session is being continued" in h]
    assert len(summary) == 1 and "not the learner's words" in summary[0]
    assert not any("This session is being continued" in t for t in blocks(page, "msg learner"))
    assert any("Context compacted (auto, 155,321 tokens before)" in h for h in harness)


def test_streamed_lines_merge_and_duplicates_drop(page):
    first = blocks(page, "msg assistant")[0]
    assert "Temperature divides the logits" in first and "Bash" in first  # one message.id, three lines
    assert "stored only its signature" in first
    assert page.count("python softmax.py --T 0.5</code>") == 1  # uuid duplicate dropped


def test_order_follows_the_parent_chain_not_timestamps(page):
    # The reply's timestamp is earlier than the tool result it answers.
    assert page.index("T=0.5 -&gt; [0.88, 0.12]") < page.index("SECOND_REPLY")
    assert page.index("SECOND_REPLY") < page.index("Can you find where softmax")


def test_subagents_hang_under_the_tool_call_that_spawned_them(site, page):
    tools = blocks(page, "tool")
    task1 = next(t for t in tools if t.lstrip().startswith("Task") and "Find softmax" in t)
    task2 = next(t for t in tools if t.lstrip().startswith("Task") and "Check tests" in t)
    assert "SUBAGENT_ONE_REPLY" in task1 and "def softmax(x)" in task1  # <session>/subagents/ layout
    assert "SUBAGENT_TWO_REPLY" in task2 and "SUBAGENT_ONE_REPLY" not in task2  # flat agent-*.jsonl
    files = sorted(p.name for p in site.glob("*.html"))
    assert not any("agent" in f for f in files)  # never a session of their own
    index = (site / "index.html").read_text()
    assert index.count("<tr>") == 1 + 4  # header + 2 Claude Code sessions + 2 ChatGPT conversations


def test_thinking_is_handled_honestly(tmp_path, page):
    assert "Reasoning happened here, but Claude Code stored only its signature" in page
    assert "The learner&#39;s plot shows T=0.2" in page  # stored text shown (collapsed) by default
    build(tmp_path, [PROJECT / f"{SID}.jsonl"], thinking="hide")
    hidden = (tmp_path / f"{SID}.html").read_text()
    assert "plot shows T=0.2" not in hidden and "hidden by --thinking hide" in hidden
    assert "stored only its signature" in hidden


def test_tool_modes(tmp_path, page):
    assert len(blocks(page, "tool")) >= 5 and "<details class=\"tool" in page
    build(tmp_path / "b", [PROJECT / f"{SID}.jsonl"], tools="brief")
    brief = (tmp_path / "b" / f"{SID}.html").read_text()
    assert "Bash ×1" in brief and "Task ×1" in brief and "python softmax.py" not in brief
    build(tmp_path / "p", [PROJECT / f"{SID}.jsonl"], tools="prompts")
    prompts = (tmp_path / "p" / f"{SID}.html").read_text()
    assert "Bash" not in prompts and "tool-input" not in prompts
    assert "So T → 0 is greedy decoding?" in prompts and "collapses onto the argmax" in prompts


def test_images_are_placeholders_unless_embedded(tmp_path, page):
    assert "data:image" not in page and "[image: image/png" in page
    build(tmp_path, [PROJECT / f"{SID}.jsonl"], images="embed")
    embedded = (tmp_path / f"{SID}.html").read_text()
    assert 'src="data:image/png;base64,iVBORw0KGgo' in embedded


def test_record_types_are_counted_and_never_fatal(site):
    manifest = json.loads((site / ".transcripts.json").read_text())
    stats = next(e["stats"] for v in manifest["sources"].values() for e in v["sessions"] if e["id"] == SID)
    assert stats["skipped"] == {"file-history-snapshot": 1, "progress": 2, "queue-operation": 1,
                                "attachment": 1, "future-record-kind": 1}
    assert stats["duplicates"] == 1 and stats["torn_lines"] == 1 and stats["subagents"] == 2
    assert stats["hidden"]["system-reminder"] == 1 and stats["hidden"]["caveat"] == 1


def test_old_in_file_sidechains_and_broken_parents(tmp_path):
    recs = [
        {"type": "user", "uuid": "u1", "parentUuid": None, "sessionId": "s", "timestamp": "2025-01-01T10:00:00Z",
         "message": {"role": "user", "content": "Start"}},
        {"type": "assistant", "uuid": "a1", "parentUuid": "u1", "sessionId": "s", "timestamp": "2025-01-01T10:00:01Z",
         "message": {"id": "m1", "role": "assistant", "content": [
             {"type": "tool_use", "id": "t1", "name": "Task", "input": {"prompt": "Count the files", "description": "count"}}]}},
        {"type": "user", "uuid": "x1", "parentUuid": None, "isSidechain": True, "sessionId": "s",
         "timestamp": "2025-01-01T10:00:02Z", "message": {"role": "user", "content": "Count the files"}},
        {"type": "assistant", "uuid": "x2", "parentUuid": "x1", "isSidechain": True, "sessionId": "s",
         "timestamp": "2025-01-01T10:00:03Z", "message": {"id": "m2", "role": "assistant",
                                                          "content": [{"type": "text", "text": "INFILE_SIDECHAIN 12 files"}]}},
        {"type": "user", "uuid": "u2", "parentUuid": "a1", "sessionId": "s", "timestamp": "2025-01-01T10:00:04Z",
         "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "12"}]}},
        {"type": "assistant", "uuid": "a2", "parentUuid": "missing-parent", "sessionId": "s",
         "timestamp": "2025-01-01T10:00:05Z", "message": {"id": "m3", "role": "assistant",
                                                          "content": [{"type": "text", "text": "ORPHAN_STILL_SHOWN"}]}},
        {"type": "assistant", "uuid": "c1", "parentUuid": "c2", "sessionId": "s", "message": {"id": "m4",
         "content": [{"type": "text", "text": "CYCLE_ONE"}]}},
        {"type": "assistant", "uuid": "c2", "parentUuid": "c1", "sessionId": "s", "message": {"id": "m5",
         "content": [{"type": "text", "text": "CYCLE_TWO"}]}},
    ]
    log = tmp_path / "s.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    build(tmp_path / "out", [log])
    html = (tmp_path / "out" / "s.html").read_text()
    task = next(t for t in blocks(html, "tool") if "count" in t)
    assert "INFILE_SIDECHAIN" in task
    assert "ORPHAN_STILL_SHOWN" in html and "CYCLE_ONE" in html and "CYCLE_TWO" in html
    assert [t.split()[0] for t in blocks(html, "msg learner")] == ["Learner", "Prompt"]  # sub-agent prompt labelled


# ------------------------------------------------------------------ output


def test_page_is_self_contained_and_escaped(page):
    assert "<script" not in page  # no script tags at all; log text is escaped
    assert page.count("&lt;script&gt;window.pwned=1&lt;/script&gt;") >= 3  # prompt, reply, tool result
    assert "default-src 'none'" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page


def test_days_are_collapsible_sections_with_exchange_counts(page, tmp_path):
    days = re.findall(r'<details class="day" open id="(day-[\d-]+)"><summary><span class="day-date">([^<]+)</span> '
                      r'<span class="day-count">([^<]+)</span>', page)
    assert days == [("day-2025-06-01", "Sunday 1 June 2025", "2 exchanges"),
                    ("day-2025-06-02", "Monday 2 June 2025", "2 exchanges")]
    build(tmp_path, [PROJECT / f"{SID}.jsonl"], tz="Asia/Tokyo")
    tokyo = (tmp_path / f"{SID}.html").read_text()
    assert re.findall(r'<span class="day-date">([^<]+)</span>', tokyo) == ["Sunday 1 June 2025", "Tuesday 3 June 2025"]
    assert "08:30" in tokyo and "23:30" not in visible_text(tokyo)


def test_index_and_afterthought(site, page):
    index = (site / "index.html").read_text()
    for sid in (SID, SID2, "6650a1b2-0000-4000-8000-000000000001"):
        assert f'href="{sid}.html"' in index
    assert "Quick one: what is a logit?" in index  # title from the first prompt when no summary
    after = blocks(page, "afterthought")[0]
    assert "temperature finally clicked" in after and "<strong>temperature</strong>" in page
    assert "Raw HTML stays text: <script>window.pwned=1</script>" in " ".join(after.split())


def test_markdown_output(site):
    md = (site / f"{SID}.md").read_text()
    assert md.startswith("# Softmax temperature lesson")
    assert "## Sunday 1 June 2025 (2 exchanges)" in md
    assert "### Learner · 09:00\n\nWhat does temperature do to softmax? I tried &lt;script>" in md
    assert "> **Command:** /model opus → Set model to opus (claude-opus-4-1)" in md
    assert "SUBAGENT_ONE_REPLY" in md and "stored only its signature" in md
    assert (site / "index.md").is_file()


# ------------------------------------------------------------------ ChatGPT


def test_chatgpt_current_branch_verbatim(site):
    html = (site / "6650a1b2-0000-4000-8000-000000000001.html").read_text()
    text = visible_text(html)
    assert "CURRENT_BRANCH" in text and "ABANDONED_BRANCH" not in text
    assert [" ".join(t.split()) for t in blocks(html, "msg learner")][0].endswith(
        "Why is attention quadratic? <script>window.pwned=1</script>")
    code = next(t for t in blocks(html, "tool") if "print(n*n)" in t)
    assert "16777216" in code  # tool output paired with the code call
    assert "Every token attends to every token." in text  # thoughts shown as thinking
    assert "ChatGPT" in text and "[image: image" in text and "[EMAIL]" in text


# ------------------------------------------------------------------ scrubbing


def test_planted_secrets_never_reach_any_output(site):
    for f in site.iterdir():
        body = f.read_text()
        for secret in SECRETS:
            assert secret not in body, f"{secret} leaked into {f.name}"
    page = (site / f"{SID}.html").read_text()
    for marker in ("[REDACTED:openai-key]", "[REDACTED:anthropic-key]", "[REDACTED:aws-access-key]",
                   "[REDACTED:github-token]", "[REDACTED:huggingface-token]", "[EMAIL]", "~/llm-course"):
        assert marker in page


def test_scrub_report_counts_by_rule_and_field_without_echoing(tmp_path):
    r = transcript("build", str(PROJECT), "--out", str(tmp_path / "o"), "--tz", "UTC", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)["scrub"]
    assert report["by_field"]["openai-key"] == {"tool input": 2}  # the command and its summary line
    assert report["by_field"]["anthropic-key"] == {"tool result": 1}
    assert report["by_field"]["aws-access-key"] == {"cwd": 1}
    assert report["by_field"]["github-token"] == {"summary": 1}
    assert report["by_field"]["huggingface-token"] == {"summary": 1}
    for secret in SECRETS[:5]:
        assert secret not in r.stdout
    human = transcript("build", str(PROJECT), "--out", str(tmp_path / "h"), "--tz", "UTC")
    assert "anthropic-key 1 (tool result 1)" in " ".join(human.stdout.split())
    assert not any(s in human.stdout for s in SECRETS[:5])


def test_known_values_from_config_are_scrubbed_in_any_case(tmp_path):
    log = tmp_path / "n.jsonl"
    log.write_text(json.dumps({"type": "user", "uuid": "u", "parentUuid": None, "sessionId": "n",
                               "timestamp": "2025-01-01T10:00:00Z", "message": {"role": "user", "content":
                               "I am Ana Lopez (ANA LOPEZ on forms), repo at /srv/acme-secret/x"}}) + "\n")
    cfg = tmp_path / "transcript.toml"
    cfg.write_text('[scrub]\nnames = ["Ana Lopez"]\npaths = ["/srv/acme-secret"]\n')
    r = transcript("build", str(log), "--out", str(tmp_path / "o"), "--scrub-config", str(cfg), "--tz", "UTC")
    assert r.returncode == 0, r.stderr
    html = (tmp_path / "o" / "n.html").read_text()
    assert "Ana" not in html and "ANA" not in html and "acme-secret" not in html
    assert "I am [NAME] ([NAME] on forms), repo at [PATH]/x" in html


def test_final_rescan_refuses_to_write_a_leak(tmp_path):
    cfg = tmp_path / "transcript.toml"
    cfg.write_text('[scrub]\nnames = ["Ana"]\n')
    out = tmp_path / "o"
    # The index title comes from the command line, not a log: only the re-scan can catch it.
    r = transcript("build", str(PROJECT / f"{SID2}.jsonl"), "--out", str(out), "--scrub-config", str(cfg),
                   "--title", "Ana's course")
    assert r.returncode == 1
    assert "Refusing to write the transcript index" in r.stderr and "known-name" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (out / "index.html").exists()
    assert not list(out.glob(".*.tmp"))  # no temp files left behind


def test_secret_patterns_leave_ordinary_llm_talk_alone():
    s = Scrubber(Known())
    prose = ("token = tokenizer.decode(ids[0]); max_tokens=1024; the secret to softmax is exp; "
             "@property; pass password=... here; see /home/ on Linux")
    assert s(prose) == prose
    assert s("API_TOKEN=abc123def456ghi789") == "API_TOKEN=[REDACTED:secret]"
    assert s("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----") == "[REDACTED:key-block]"
    assert s("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345") == \
        "Authorization: Bearer [REDACTED:bearer-token]"
    assert s(r"C:\Users\alice\proj") == r"~\proj"


# ------------------------------------------------------------------ CLI, workspace, incremental


def test_cli_incremental_rebuild_and_errors(tmp_path):
    out = tmp_path / "o"
    first = transcript("build", str(PROJECT), "--out", str(out), "--json")
    assert first.returncode == 0, first.stderr
    assert all(s["rebuilt"] for s in json.loads(first.stdout)["sessions"])
    second = json.loads(transcript("build", str(PROJECT), "--out", str(out), "--json").stdout)
    assert not any(s["rebuilt"] for s in second["sessions"])
    copy = tmp_path / "proj"
    shutil.copytree(PROJECT, copy)
    with open(copy / f"{SID2}.jsonl", "a") as f:
        f.write(json.dumps({"type": "user", "uuid": "b-003", "parentUuid": "b-002", "sessionId": SID2,
                            "timestamp": "2025-06-05T14:01:00Z",
                            "message": {"role": "user", "content": "APPENDED_PROMPT"}}) + "\n")
    third = json.loads(transcript("build", str(copy), "--out", str(out), "--json").stdout)
    assert {s["id"]: s["rebuilt"] for s in third["sessions"]} == {SID: True, SID2: True}  # new source path
    assert "APPENDED_PROMPT" in (out / f"{SID2}.html").read_text()

    missing = transcript("build", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    agent = transcript("build", str(PROJECT / "agent-e5f6a7b.jsonl"))
    assert agent.returncode == 1 and "sub-agent log" in agent.stderr
    tz = transcript("build", str(PROJECT), "--tz", "Mars/Olympus")
    assert tz.returncode == 1 and "Unknown timezone" in tz.stderr


def test_default_input_is_this_folders_claude_code_project(tmp_path):
    home = tmp_path / "home"
    proj = tmp_path / "work" / "llm-course"
    proj.mkdir(parents=True)
    enc = re.sub(r"[^A-Za-z0-9]", "-", str(proj.resolve()))
    shutil.copytree(PROJECT, home / ".claude" / "projects" / enc)
    r = transcript("list", "--json", cwd=proj, env={"HOME": str(home)})
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert sorted((Path(x["path"]).name, x["subagents"]) for x in rows) == [(f"{SID}.jsonl", 2), (f"{SID2}.jsonl", 0)]
    r = transcript("build", cwd=proj, env={"HOME": str(home)})
    assert r.returncode == 0, r.stderr
    assert (proj / "transcripts" / "index.html").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = transcript("build", cwd=empty, env={"HOME": str(home)})
    assert r.returncode == 1 and "No Claude Code sessions for this folder" in r.stderr


def test_in_a_workspace_pages_go_to_the_site_and_link_the_dashboard(tmp_path):
    ws = tmp_path / "ws"
    r = invoke_cli("init", str(ws), "--name", "Ana Lopez", env={"LLMLAB_HOME": ""})
    assert r.returncode == 0, r.stderr
    (ws / "notes" / "afterthoughts").mkdir(parents=True)
    (ws / "notes" / "afterthoughts" / f"{SID2}.md").write_text("PER_SESSION_AFTERTHOUGHT by Ana Lopez")
    log = tmp_path / f"{SID2}.jsonl"
    log.write_text((PROJECT / f"{SID2}.jsonl").read_text().replace("what is a logit?", "what is a logit, Ana Lopez?"))
    r = transcript("build", str(log), cwd=ws, env={"LLMLAB_HOME": ""})
    assert r.returncode == 0, r.stderr
    site = ws / "site" / "transcripts"
    index = (site / "index.html").read_text()
    assert 'href="../index.html"' in index  # back to the dashboard
    page = (site / f"{SID2}.html").read_text()
    assert "PER_SESSION_AFTERTHOUGHT by [NAME]" in page and "what is a logit, [NAME]?" in page  # learner name
    assert "Ana" not in page
    r = invoke_cli("site", "build", cwd=ws, env={"LLMLAB_HOME": ""})
    assert r.returncode == 0, r.stderr
    assert 'href="transcripts/index.html"' in (ws / "site" / "index.html").read_text()  # the dashboard links here


def test_hook_install_merges_and_run_refreshes(tmp_path):
    proj = tmp_path / "proj"
    (proj / ".claude").mkdir(parents=True)
    settings = proj / ".claude" / "settings.json"
    existing = {"permissions": {"allow": ["Bash(ls:*)"]}, "hooks": {"Stop": [
        {"hooks": [{"type": "command", "command": "echo done"}]}], "PreToolUse": []}}
    settings.write_text(json.dumps(existing))
    out = tmp_path / "pages"
    r = transcript("hook", "install", "--project", str(proj), "--out", str(out), "--tools", "brief", "--tz", "UTC", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"]
    data = json.loads(settings.read_text())
    assert data["permissions"] == existing["permissions"] and data["hooks"]["PreToolUse"] == []
    cmds = [h["command"] for g in data["hooks"]["Stop"] for h in g["hooks"]]
    assert cmds[0] == "echo done" and f"{sys.executable} -m llmlab transcript hook run --out " in cmds[1]
    assert cmds[1].endswith("--tools brief --tz UTC")  # render options ride along
    again = transcript("hook", "install", "--project", str(proj), "--out", str(out), "--tools", "brief", "--tz", "UTC",
                       "--json")
    assert json.loads(again.stdout)["changed"] is False
    assert json.loads(settings.read_text()) == data  # idempotent

    payload = json.dumps({"session_id": SID2, "transcript_path": str(PROJECT / f"{SID2}.jsonl"),
                          "hook_event_name": "Stop", "stop_hook_active": False})
    r = subprocess.run(cmds[1], shell=True, input=payload, capture_output=True, text=True)  # as Claude Code does
    assert r.returncode == 0, r.stderr
    assert "A logit is the raw score" in (out / f"{SID2}.html").read_text()
    r = subprocess.run(cmds[1], shell=True, capture_output=True, text=True, input=json.dumps(
        {"transcript_path": str(PROJECT / f"{SID}.jsonl")}))
    assert r.returncode == 0, r.stderr
    brief = (out / f"{SID}.html").read_text()
    assert "Bash ×1" in brief and "tool-input" not in brief

    removed = transcript("hook", "remove", "--project", str(proj), "--json")
    assert json.loads(removed.stdout)["removed"] == 1
    assert json.loads(settings.read_text())["hooks"]["Stop"] == existing["hooks"]["Stop"]

    settings.write_text("{not json")
    bad = transcript("hook", "install", "--project", str(proj))
    assert bad.returncode == 1 and "not valid JSON" in bad.stderr
    assert settings.read_text() == "{not json"  # never clobbered


def test_refresh_from_hook_library_entry_point(tmp_path):
    from llmlab.transcript import refresh_from_hook

    r = refresh_from_hook(PROJECT / f"{SID}.jsonl", tmp_path)
    assert r["sessions"][0]["id"] == SID
    assert (tmp_path / "site" / "transcripts" / f"{SID}.html").is_file()


def test_every_command_has_help():
    import typer.main

    from llmlab.transcript.cli import app

    group = typer.main.get_command(app)
    names = []

    def walk(g, prefix):
        for name, cmd in g.commands.items():
            assert cmd.help, f"{prefix} {name} has no help"
            names.append(f"{prefix} {name}")
            if hasattr(cmd, "commands"):
                walk(cmd, f"{prefix} {name}")
    walk(group, "transcript")
    assert {"transcript build", "transcript list", "transcript hook install", "transcript hook run"} <= set(names)


def test_readme_transcript_commands_run_as_written(tmp_path):
    from doctext import DOCS, section, sh_lines

    cmds = sh_lines(section("Commands", DOCS / "transcripts.md"))
    assert sum(c.startswith("llmlab transcript") for c in cmds) >= 7
    home = tmp_path
    ws = home / "llm-course"
    env = {"HOME": str(home), "LLMLAB_HOME": ""}
    r = subprocess.run([sys.executable, "-m", "llmlab", "init", str(ws)], capture_output=True, text=True,
                       env={**os.environ, **env})
    assert r.returncode == 0, r.stderr
    enc = re.sub(r"[^A-Za-z0-9]", "-", str(ws.resolve()))
    shutil.copytree(PROJECT, home / ".claude" / "projects" / enc)
    shutil.copy(CHATGPT, ws / "conversations.json")
    (ws / "notes" / "afterthought.md").write_text("What I would tell myself on day one.")
    cwd = home
    for line in cmds:
        line = line.replace("~", str(home))
        if line.startswith("cd "):
            cwd = Path(line[3:])
            continue
        args = line.split()[2:]  # after `llmlab transcript`
        if "--watch" in args:
            proc = subprocess.Popen([sys.executable, "-m", "llmlab", "transcript", *args], cwd=cwd,
                                    env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(3)
            assert proc.poll() is None, proc.stderr.read()  # still watching
            proc.terminate()
            proc.wait(timeout=10)
            continue
        r = run(*args, cwd=cwd, env=env)
        assert r.returncode == 0, f"`{line}` failed:\n{r.stdout}\n{r.stderr}"
        if "--afterthought" in args:
            page = ws / "site" / "transcripts" / f"{SID}.html"
            assert "What I would tell myself on day one." in page.read_text()
    site = ws / "site" / "transcripts"
    assert (site / "index.html").is_file() and (site / f"{SID}.html").is_file()
    assert (site / "6650a1b2-0000-4000-8000-000000000001.md").is_file()
    assert "llmlab transcript hook run" in (ws / ".claude" / "settings.json").read_text()


def test_summaries_of_other_sessions_are_not_titles_and_empty_sessions_are_skipped(tmp_path, page):
    assert "OTHER_SESSION_SUMMARY" not in page
    assert "<title>Softmax temperature lesson" in page  # the summary whose leafUuid is in this session
    only = tmp_path / "only-summaries.jsonl"
    only.write_text(json.dumps({"type": "summary", "summary": "Old", "leafUuid": "x"}) + "\n" +
                    json.dumps({"type": "file-history-snapshot", "messageId": "m", "snapshot": {}}) + "\n")
    r = build(tmp_path / "o", [only, PROJECT / f"{SID2}.jsonl"])
    assert [s["id"] for s in r["sessions"]] == [SID2]
    assert not (tmp_path / "o" / "only-summaries.html").exists()


@pytest.mark.parametrize("text, meta, compact, expected", [
    ("Why does softmax use exp?", False, False, [("learner", "Why does softmax use exp?", "")]),
    ("<system-reminder>todo list empty</system-reminder>\nWhy exp?", False, False, [("learner", "Why exp?", "")]),
    ("<system-reminder>only a reminder</system-reminder>", False, False, []),
    ("<local-command-caveat>Caveat: The messages below were generated by the user</local-command-caveat>",
     False, False, []),
    ("Caveat: The messages below were generated by the user while running local commands.", True, False, []),
    ("<command-name>/clear</command-name>\n<command-message>clear</command-message>\n<command-args></command-args>",
     False, False, [("harness", "/clear", "Command")]),
    ("<bash-input>ls</bash-input><bash-stdout>\x1b[34mnotes.md\x1b[0m</bash-stdout><bash-stderr></bash-stderr>",
     False, False, [("harness", "! ls → notes.md", "Command")]),
    ("[Request interrupted by user for tool use]", False, False, [("harness", "Request interrupted by user for tool use",
                                                                   "Interrupted")]),
    ("This session is being continued from a previous conversation that ran out of context.", False, False,
     [("harness", "This session is being continued from a previous conversation that ran out of context.",
       "Compaction summary (written by the harness when the context filled up; not the learner's words)")]),
])
def test_user_text_is_sorted_into_learner_words_and_harness_notes(text, meta, compact, expected):
    from llmlab.transcript.harness import split_user_text

    got = [(p.role, p.text, p.label) for p in split_user_text(text, is_meta=meta, is_compact=compact)]
    assert got == expected


WEIRD_RECORDS = [
    {"type": "user", "uuid": "w1", "parentUuid": None, "message": None},
    {"type": "user", "uuid": "w2", "parentUuid": "w1", "message": {"content": 42}},
    {"type": "user", "uuid": "w3", "parentUuid": "w2", "timestamp": "not a time",
     "message": {"content": ["a string block", {"type": "text"}, {"type": "image", "source": None}]}},
    {"type": "assistant", "uuid": "w4", "parentUuid": "w3", "message": {"content": [
        {"type": "tool_use", "name": "Bash", "input": "not a dict"}, {"type": "thinking"}, 7, None]}},
    {"type": "user", "uuid": "w5", "parentUuid": "w4", "message": {"content": [
        {"type": "tool_result", "tool_use_id": None, "content": [{"type": "weird"}, "x", None]}]}},
    {"type": "assistant", "uuid": 12, "message": {"content": "x"}},
    {"type": "system", "uuid": "w6", "parentUuid": "w5", "subtype": "compact_boundary", "compactMetadata": None},
    {"type": None},
    ["not", "an", "object"],
    {"type": "user", "uuid": "w7", "parentUuid": "w6", "timestamp": "2025-01-01T10:00:00Z",
     "message": {"role": "user", "content": "STILL_HERE"}},
]


def test_malformed_records_are_never_fatal(tmp_path):
    weird = WEIRD_RECORDS
    log = tmp_path / "weird.jsonl"
    log.write_text("\n".join(json.dumps(r) for r in weird) + "\n\n   \n{broken\n")
    build(tmp_path / "o", [log], formats=("html", "md"))
    assert "STILL_HERE" in (tmp_path / "o" / "weird.html").read_text()
    assert "STILL_HERE" in (tmp_path / "o" / "weird.md").read_text()


def test_a_refused_rebuild_leaves_the_previous_pages_untouched(tmp_path):
    out = tmp_path / "o"
    assert transcript("build", str(PROJECT / f"{SID2}.jsonl"), "--out", str(out), "--title", "Ana's course").returncode == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    cfg = tmp_path / "t.toml"
    cfg.write_text('[scrub]\nnames = ["Ana"]\n')
    r = transcript("build", str(PROJECT / f"{SID2}.jsonl"), "--out", str(out), "--title", "Ana's course",
                   "--scrub-config", str(cfg), "--force")
    assert r.returncode == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
