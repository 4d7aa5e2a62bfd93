"""`llmlab mcp` driven by the MCP SDK's own client over stdio, as an agent client would."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from llmlab import compact, tutor
from llmlab.errors import COMMANDS

TIME_KEYS = {"now", "days_since_seen", "recall"}  # depend on the wall clock, not the log


def params(ws_root: Path, extra_env: dict | None = None) -> StdioServerParameters:
    env = {**os.environ, "LLMLAB_HOME": str(ws_root), **(extra_env or {})}
    return StdioServerParameters(command=sys.executable, args=["-m", "llmlab", "mcp"], env=env)


@asynccontextmanager
async def connect(ws_root: Path, extra_env: dict | None = None):
    async with Client(params(ws_root, extra_env), read_timeout_seconds=120) as c:
        yield c


def run(coro):
    return asyncio.run(coro)


def data(result) -> dict:
    assert not result.is_error, result.content[0].text
    return result.structured_content


def error_text(result) -> str:
    assert result.is_error, f"expected a tool error, got {result.structured_content}"
    return result.content[0].text


def timeless(obj):
    """`obj` without the fields that depend on the current time."""
    if isinstance(obj, dict):
        return {k: timeless(v) for k, v in obj.items() if k not in TIME_KEYS}
    if isinstance(obj, list):
        return [timeless(v) for v in obj]
    return obj


def cli_error(invoke, *args) -> str:
    r = invoke(*args)
    assert r.returncode == 1, r.stdout
    assert r.stderr.startswith("Error: ")
    return " ".join(r.stderr[len("Error: "):].split())


# ---------------------------------------------------------------- discovery

def test_lists_tools_resources_and_the_session_prompt(ws):
    async def go():
        async with connect(ws.root) as c:
            tools = (await c.list_tools()).tools
            resources = (await c.list_resources()).resources
            templates = (await c.list_resource_templates()).resource_templates
            prompts = (await c.list_prompts()).prompts
            return tools, resources, templates, prompts, c.instructions

    tools, resources, templates, prompts, instructions = run(go())
    assert [t.name for t in tools] == list(tutor.TOOL_NAMES)
    for t in tools:
        assert len(t.description) > 60, t.name  # written for a tutor model
        for name, prop in t.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{t.name}.{name} has no description"
        assert t.annotations.read_only_hint is (t.name not in
                                                 {x.name for x in tutor.TOOLS if x.writes})
    obs = next(t for t in tools if t.name == "record_observation").input_schema
    assert obs["required"] == ["concept", "quality", "evidence"]
    assert obs["properties"]["quality"]["minimum"] == 0 and obs["properties"]["quality"]["maximum"] == 1
    assert {str(r.uri) for r in resources} == {"llmlab://curriculum", "llmlab://state",
                                               "llmlab://instructions"}
    assert [t.uri_template for t in templates] == ["llmlab://concept/{concept_id}"]
    assert [p.name for p in prompts] == ["start_session"]
    assert "record_observation" in instructions and "Never claim" in instructions


def test_resources_and_prompt_read_the_workspace(ws):
    async def go():
        async with connect(ws.root) as c:
            await c.call_tool("record_observation", {"concept": "softmax", "quality": 0.7,
                                                     "evidence": "computed 0.95 for logits 4, 1"})
            cur = json.loads((await c.read_resource("llmlab://curriculum")).contents[0].text)
            concept = json.loads(
                (await c.read_resource("llmlab://concept/softmax")).contents[0].text)
            instr = (await c.read_resource("llmlab://instructions")).contents[0].text
            prompt = await c.get_prompt("start_session", {"focus": "softmax"})
            return cur, concept, instr, prompt

    cur, concept, instr, prompt = run(go())
    assert list(cur["concepts"]) == ["tokenization", "softmax", "attention", "kv_cache"]
    assert concept["state"]["observations"] == 1 and concept["evidence"][0]["id"] == "evt_000001"
    assert instr == (ws.root / "AGENTS.md").read_text()
    text = prompt.messages[0].content.text
    assert text.startswith(instr) and "softmax" in text and "Test Learner" in text


# ---------------------------------------------------------------- a session, end to end

def test_session_round_trip_equals_cli_state(ws, invoke):
    async def go():
        async with connect(ws.root) as c:
            out = {}
            out["o1"] = data(await c.call_tool("record_observation", {
                "concept": "tokenization", "quality": 0.5, "evidence": "said a token is a word",
                "probe": "What does the model receive?"}))
            out["m"] = data(await c.call_tool("open_misconception", {
                "concept": "tokenization", "catalog": "tokens_are_words",
                "quote": "a token is a word"}))
            out["o2"] = data(await c.call_tool("record_observation", {
                "concept": "tokenization", "quality": 0.9,
                "evidence": "split 'unbelievable' into 3 pieces unprompted"}))
            out["r"] = data(await c.call_tool("resolve_misconception", {
                "misconception": out["m"]["id"], "evidence": "applied it to German compounds"}))
            out["p"] = data(await c.call_tool("record_prediction", {
                "experiment": "tokens", "quantity": "strawberry_tokens", "value": 3,
                "concept": "tokenization", "note": "straw + berry + space"}))
            out["x"] = data(await c.call_tool("record_exit_attempt", {
                "item": "explain_sampling", "passed": False, "notes": "skipped softmax"}))
            out["bad"] = data(await c.call_tool("record_observation", {
                "concept": "softmax", "quality": 0.2, "evidence": "logged on the wrong concept"}))
            out["u"] = data(await c.call_tool("retract_event", {
                "event": out["bad"]["id"], "reason": "meant attention"}))
            out["state"] = data(await c.call_tool("get_state", {"detail": "full",
                                                                 "history": True}))
            out["brief"] = data(await c.call_tool("get_state", {"detail": "full"}))
            out["compact"] = data(await c.call_tool("get_state", {}))
            out["resource"] = json.loads(
                (await c.read_resource("llmlab://state")).contents[0].text)
            out["next"] = data(await c.call_tool("next_probes", {"limit": 3}))
            out["concept"] = data(await c.call_tool("get_concept", {"concept": "tokenization"}))
            return out

    out = run(go())
    assert [out[k]["id"] for k in ("o1", "m", "o2", "r", "p", "x", "bad", "u")] == \
        [f"evt_{i:06d}" for i in range(1, 9)]
    assert out["p"]["actor"] == "learner" and out["o1"]["actor"] == "tutor"
    r = invoke("state", "--json")
    assert r.returncode == 0, r.stderr
    cli_state = json.loads(r.stdout)
    assert timeless(out["state"]) == timeless(cli_state)
    assert timeless(out["resource"]) == timeless(cli_state)
    for c in cli_state["concepts"].values():  # the default leaves out only the histories
        del c["history"]
    assert timeless(out["brief"]) == timeless(cli_state)
    assert timeless(out["compact"]) == timeless(compact.state(cli_state))  # the default
    s = out["state"]
    assert s["events"] == 8
    assert s["misconceptions"]["open"] == [] and len(s["misconceptions"]["resolved"]) == 1
    assert s["concepts"]["softmax"]["observations"] == 0  # the retracted one stops counting
    assert s["concepts"]["tokenization"]["observations"] == 2
    assert not s["concepts"]["tokenization"]["mastered"]  # one day: the gates hold
    t = s["concepts"]["tokenization"]  # the skill estimate and its interval, as in the CLI
    assert t["skill_low"] < t["skill"] < t["skill_high"] and t["history"][-1]["skill"] == t["skill"]
    assert out["next"]["next"] == timeless(cli_state["next"][:3])
    assert [e["id"] for e in out["concept"]["evidence"]][:2] == ["evt_000001", "evt_000002"]
    assert invoke("verify").returncode == 0


# ---------------------------------------------------------------- rejected calls

def test_rejected_calls_give_the_cli_message_and_write_nothing(ws, invoke):
    before_setup = ws.log_path.read_bytes()
    assert before_setup == b""

    async def setup():
        async with connect(ws.root) as c:
            m = data(await c.call_tool("open_misconception", {
                "concept": "softmax", "claim": "softmax is linear"}))
            await c.call_tool("resolve_misconception", {"misconception": m["id"],
                                                        "evidence": "applied it unprompted"})
            return m["id"]

    closed = run(setup())
    before = ws.log_path.read_bytes()

    calls = [
        (("record_observation", {"concept": "atention", "quality": 0.5, "evidence": "x"}),
         ("log", "observe", "atention", "-q", "0.5", "-e", "x"), "Did you mean 'attention'"),
        (("record_observation", {"concept": "softmax", "quality": 2.0, "evidence": "x"}),
         ("log", "observe", "softmax", "-q", "2.0", "-e", "x"), "less than or equal to 1"),
        (("resolve_misconception", {"misconception": closed}),
         ("log", "resolve", closed), "already resolved"),
        (("record_exit_attempt", {"item": "explain_sampler", "passed": True}),
         ("log", "exit", "explain_sampler", "--passed"), "Did you mean 'explain_sampling'"),
        (("open_misconception", {"concept": "softmax", "catalog": "nope"}),
         ("log", "misconception", "softmax", "--catalog", "nope"), "Unknown misconception"),
        (("retract_event", {"event": "evt_000099", "reason": "x"}),
         ("undo", "evt_000099", "--reason", "x"), "no event evt_000099"),
        (("record_prediction", {"experiment": "tokens", "quantity": "strawbery_tokens",
                                "value": 3}),
         ("predict", "tokens", "strawbery_tokens", "3"), "Did you mean 'strawberry_tokens'"),
    ]

    async def go():
        async with connect(ws.root) as c:
            return [error_text(await c.call_tool(name, args)) for (name, args), _, _ in calls]

    messages = run(go())
    assert ws.log_path.read_bytes() == before  # byte-identical after every rejection
    for msg, (_, cli_args, needle) in zip(messages, calls):
        assert needle in msg, msg
        assert "--" not in msg  # an agent has arguments, not flags
        # the CLI's very message, each shell naming inputs its own way
        cli_msg = cli_error(invoke, *cli_args)
        for flag in ("catalog", "claim"):
            cli_msg = cli_msg.replace(f"--{flag}", f"the `{flag}` argument")
        for command, tool in COMMANDS.values():
            cli_msg = cli_msg.replace(command, tool)
        assert " ".join(msg.split()) == cli_msg
    assert ws.log_path.read_bytes() == before


def test_schema_violations_are_tool_errors_too(ws):
    async def go():
        async with connect(ws.root) as c:
            a = await c.call_tool("record_observation", {"concept": "softmax",
                                                         "quality": "high", "evidence": "x"})
            b = await c.call_tool("record_observation", {"concept": "softmax"})
            return a, b

    a, b = run(go())
    assert a.is_error and "quality" in a.content[0].text
    assert b.is_error and "evidence" in b.content[0].text
    assert ws.log_path.read_bytes() == b""


def test_no_workspace_is_a_tool_error_not_a_crash(tmp_path):
    async def go():
        async with Client(StdioServerParameters(
                command=sys.executable, args=["-m", "llmlab", "mcp"], cwd=str(tmp_path),
                env={**os.environ, "LLMLAB_HOME": str(tmp_path / "nowhere")})) as c:
            return await c.call_tool("get_state", {})

    msg = error_text(run(go()))
    assert "not an llmlab workspace" in msg and "llmlab init" in msg


# ---------------------------------------------------------------- concurrency

def test_two_clients_writing_at_once_lose_nothing(ws, invoke):
    n = 50

    async def writer(tag: str):
        async with connect(ws.root) as c:
            for i in range(n):
                data(await c.call_tool("record_observation", {
                    "concept": "tokenization", "quality": 0.5, "evidence": f"{tag} {i}"}))

    async def both():
        await asyncio.gather(writer("a"), writer("b"))

    run(both())
    lines = ws.log_path.read_bytes().splitlines()
    assert len(lines) == 2 * n
    events = [json.loads(x) for x in lines]
    assert [e["id"] for e in events] == [f"evt_{i:06d}" for i in range(1, 2 * n + 1)]
    for tag in "ab":
        assert sorted(int(e["data"]["evidence"].split()[1]) for e in events
                      if e["data"]["evidence"].startswith(tag)) == list(range(n))
    r = invoke("verify", "--json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["ok"] is True


# ---------------------------------------------------------------- the lab

def test_run_without_the_lab_extra_says_how_to_install_it(ws, tmp_path):
    fake = tmp_path / "nolab"
    (fake / "torch").mkdir(parents=True)
    (fake / "torch" / "__init__.py").write_text("raise ImportError('torch hidden by the test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(fake), os.environ.get("PYTHONPATH", "")])}

    async def go():
        async with connect(ws.root, env) as c:
            listed = data(await c.call_tool("list_experiments", {}))
            bad = await c.call_tool("run_experiment", {"name": "tokns"})
            ran = await c.call_tool("run_experiment", {"name": "tokens"})
            return listed, bad, ran

    listed, bad, ran = run(go())
    assert [x["name"] for x in listed["experiments"]][:2] == ["tokens", "sampling"]
    assert "strawberry_tokens" in [q["name"] for q in listed["experiments"][0]["quantities"]]
    assert "Did you mean 'tokens'" in error_text(bad)
    assert "pip install -e '.[lab]'" in error_text(ran)
    assert ws.log_path.read_bytes() == b""


@pytest.mark.model
def test_prediction_then_a_small_run_through_mcp(ws, invoke):
    pytest.importorskip("torch")
    progress: list[tuple] = []

    async def on_progress(p, total, message):
        progress.append((p, total, message))

    async def go():
        async with connect(ws.root) as c:
            p = data(await c.call_tool("record_prediction", {
                "experiment": "sampling", "quantity": "calc_top_prob_t1", "value": 0.95,
                "concept": "softmax", "note": "e^3/(e^3+1)"}))
            r = data(await c.call_tool("run_experiment", {
                "name": "sampling",
                "params": {"draws": 200, "greedy_runs": 2, "greedy_tokens": 2,
                           "temperatures": "1.0", "top_k": 3}},
                progress_callback=on_progress))
            s = data(await c.call_tool("get_state", {}))
            return p, r, s

    p, r, s = run(go())
    assert r["event"] == "evt_000002" and r["experiment"] == "sampling"
    (cmp,) = r["comparisons"]
    assert cmp["prediction"] == p["id"] and cmp["within"] is True
    assert abs(cmp["measured"] - 0.9526) < 1e-3
    assert Path(r["dir"], "result.json").is_file()
    assert progress and "sampling" in progress[0][2]
    assert s["predictions"]["compared"] == 1
    assert invoke("verify").returncode == 0


def test_list_experiments_equals_lab_list_json(ws, invoke):
    """One description of an experiment: the MCP tool and `llmlab lab list --json` agree."""
    async def go():
        async with connect(ws.root) as c:
            return data(await c.call_tool("list_experiments", {}))

    listed = run(go())
    r = invoke("lab", "list", "--json")
    assert r.returncode == 0, r.stderr
    assert listed["experiments"] == json.loads(r.stdout)
    sampling = next(x for x in listed["experiments"] if x["name"] == "sampling")
    draws = next(p for p in sampling["params"] if p["name"] == "draws")
    assert draws["low"] == 1 and "high" in draws  # ranges are not dropped
