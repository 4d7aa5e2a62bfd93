"""`llmlab mcp`: the MCP server (stdio), a thin shell over `llmlab.api`.

Every tool is one library call plus formatting; validation and the write path live in
`api.record`. A rejected call (`UserError`) comes back as a tool error whose text is the
same message the CLI prints, and nothing is written. Tool names and their CLI twins are
listed once, in `tutor.TOOLS`, which the generated AGENTS.md presents to the tutor.

The workspace is looked up on every call (LLMLAB_HOME, else the folder the client started
the server in), so edits to llmlab.toml or the curriculum take effect without a restart.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
import time
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from . import api, compact, tutor
from . import log as log_mod
from .errors import UserError
from .schema import dump
from .workspace import Workspace

INSTRUCTIONS = """\
llmlab keeps the evidence log of a learner studying how LLMs work, with you as their \
Socratic tutor. Start every session with get_state (it includes `next`, what to probe and \
why). After every substantive exchange call record_observation with the quality of that \
exchange alone (0..1). Open and resolve misconceptions with their tools. Never claim \
mastery: it is derived from the log. Before a lab run, ask the learner for a number and \
record it with record_prediction, then run_experiment. A rejected call wrote nothing; its \
message names the fix. The full tutor instructions are the start_session prompt and the \
llmlab://instructions resource (AGENTS.md in the workspace)."""

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False,
                        open_world_hint=False)


def _lab_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))


def _ws() -> Workspace:
    return Workspace.find()


def _utf8(text: str) -> str:
    """`text` that can be sent as UTF-8: a lone surrogate (from a client's string) is
    written as its escape, so the reply is never lost on the way out."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _error(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=_utf8(message))], is_error=True)


def _result(data: dict) -> CallToolResult:
    """Structured content, plus the same JSON compact as text (tokens are the tutor's budget)."""
    text = _utf8(json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str))
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=json.loads(text))


def _shell(fn):
    """Run a tool body; a UserError becomes a tool error carrying its message verbatim, and
    so does a file condition (OSError), in the CLI's words."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return _result(fn(*args, **kwargs))
        except UserError as e:
            return _error(e.render("mcp"))
        except OSError as e:
            return _error(log_mod.os_message(e, e.filename or "a workspace file", "use"))
    wrapper.__doc__ = " ".join((fn.__doc__ or "").split())  # the description, one paragraph
    return wrapper


def _pretty_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


# ---------------------------------------------------------------- argument types

ConceptId = Annotated[str, Field(description="A concept id of this workspace's curriculum, e.g. "
                                 "'tokenization' (get_curriculum lists them).")]
EventId = Annotated[str, Field(description="An event id from the log, e.g. 'evt_000012'.")]
# Strict types (`strict=True`): "0.5" or true is not a quality, "true" not a boolean. The
# same rule as the CLI's typed options; the tool says what it expected.
Quality = Annotated[float, Field(
    strict=True,
    description="How well THIS exchange went, from 0 to 1: 0-0.2 wrong model or no answer; "
                "0.3-0.5 right words, missing mechanism, or heavy hints; 0.6-0.7 right mechanism "
                "with a hint; 0.8-0.9 right and unaided on a concrete case; 1.0 also transfers "
                "to a new case. Never the learner's overall level.",
    json_schema_extra={"minimum": 0, "maximum": 1})]
Evidence = Annotated[str, Field(description="A short factual note of what the learner said or "
                                "did, quoting their key words.")]


def build_server() -> MCPServer:
    server = MCPServer(name="llmlab", title="LLM Learning Lab", instructions=INSTRUCTIONS,
                       version=_version(), log_level="WARNING")
    tool = server.tool

    # ------------------------------------------------------------ reads

    @tool(annotations=READ)
    @_shell
    def get_state(
        detail: Annotated[Literal["compact", "full"], Field(
            description="'compact' (default): headline numbers, current module, open "
                        "misconceptions, next probes, one short line per probed concept. "
                        "'full': every field (per-concept details, exit items, prediction "
                        "record, recent events); long for an active learner.")] = "compact",
        history: Annotated[bool, Field(strict=True, description="With detail='full': include each "
                                       "concept's mastery history (one point per "
                                       "observation).")] = False,
    ) -> dict[str, Any]:
        """The learner's state, derived from the evidence log: overall mastery, mastered
        count, the current module, open misconceptions (resolved ones as a count), `next`
        (what to probe next, with reasons) and one line per probed concept (mastery,
        observations/days, mastered, stale, open misconceptions, prerequisite gaps). Call
        this at the start of every session; quote its numbers, never round them up. `low`
        in a concept line is the lower end of the skill estimate's interval: mastered needs
        it at the bar (plus the gates); 'full' has `skill`, `skill_low`, `skill_high`.
        get_concept has one concept in detail."""
        ws = _ws()
        if detail == "compact":
            return api.state_compact(ws)
        s = api.state(ws)
        if not history:
            s["concepts"] = {k: {f: v for f, v in c.items() if f != "history"}
                             for k, c in s["concepts"].items()}
        return s

    @tool(annotations=READ)
    @_shell
    def next_probes(
        limit: Annotated[int, Field(description="How many items to return.", ge=1,
                                    le=compact.MAX_NEXT, strict=True)] = compact.NEXT_SHOWN,
    ) -> dict[str, Any]:
        """What to do next with the learner, most urgent first. Each item has a `reason`
        (resolve_misconception, shore_up_prerequisite, reprobe_due, frontier, exit_ready), a
        `target` (concept or exit item id) and `why`."""
        return {"next": api.next_compact(_ws(), limit=limit)}

    @tool(annotations=READ)
    @_shell
    def get_concept(
        concept: ConceptId,
        limit: Annotated[int, Field(description="How many of its latest events to return.",
                                    ge=1, le=compact.MAX_EVENTS_PAGE)] = compact.EVENTS_SHOWN,
        cursor: Annotated[str | None, Field(
            description="`page.older` of a previous answer: the events before it. Leave "
                        "out for the latest.")] = None,
    ) -> dict[str, Any]:
        """One concept: its curriculum entry (summary, behaviours to open a probe with,
        known misconceptions with corrections and catalog ids, prerequisites, experiments),
        its derived state, prerequisites' state, exit items that need it, its open
        misconceptions, and its latest events in time order (`page.older` is the cursor for
        earlier ones)."""
        return api.concept_compact(_ws(), concept, limit, cursor)

    @tool(annotations=READ)
    @_shell
    def get_curriculum() -> dict[str, Any]:
        """The course: modules in order, every concept (ids, prerequisites, behaviours,
        misconceptions) and the exit items (mechanism questions and build milestones)."""
        return dump(_ws().curriculum)

    # ------------------------------------------------------------ writes

    @tool(annotations=WRITE)
    @_shell
    def record_observation(
        concept: ConceptId, quality: Quality, evidence: Evidence,
        probe: Annotated[str, Field(description="The question or task you posed.")] = "",
    ) -> dict[str, Any]:
        """Record one substantive exchange on one concept: how well it went (quality of this
        exchange alone) and what the learner said. Mastery is derived from many of these over
        several days; no single observation makes a concept mastered. Returns the event."""
        return api.observe(_ws(), concept, quality, evidence, probe).to_dict()

    @tool(annotations=WRITE)
    @_shell
    def open_misconception(
        concept: ConceptId,
        catalog: Annotated[str | None, Field(
            description="Id of one of the concept's known misconceptions (get_concept lists "
                        "them) when it matches; the claim is then taken from the catalog.")] = None,
        claim: Annotated[str | None, Field(
            description="The wrong claim in plain words, when no catalog id fits.")] = None,
        quote: Annotated[str, Field(description="The learner's own words that showed it.")] = "",
        reopens: Annotated[str | None, Field(
            description="Id of a resolved misconception that came back (a relapse); a catalog "
                        "misconception is linked to its last resolved instance "
                        "automatically.")] = None,
    ) -> dict[str, Any]:
        """Record that the learner showed a wrong mental model. It stays open (and blocks
        mastery of the concept) until resolved; a catalog misconception can be open only
        once at a time. Give `catalog` or `claim`. Returns the event; its id is what
        resolve_misconception needs."""
        return api.open_misconception(_ws(), concept, claim, catalog, quote,
                                      reopens=reopens).to_dict()

    @tool(annotations=WRITE)
    @_shell
    def resolve_misconception(
        misconception: Annotated[str, Field(
            description="Id of the misconception_opened event, e.g. 'evt_000012' (open ones are "
                        "in get_state under misconceptions.open).")],
        evidence: Annotated[str, Field(
            description="How the learner, unprompted and in a new case, applied the correct "
                        "model (required).")] = "",
    ) -> dict[str, Any]:
        """Record that an open misconception is resolved: only when the learner later applied
        the correct model to a case you did not just explain, not when they repeat your
        correction. Returns the event."""
        return api.resolve_misconception(_ws(), misconception, evidence).to_dict()

    @tool(annotations=WRITE)
    @_shell
    def record_exit_attempt(
        item: Annotated[str, Field(description="Exit item id (mechanism question or build "
                                   "milestone; get_curriculum lists them).")],
        passed: Annotated[bool, Field(strict=True, description="True only if every required part was "
                                      "covered without help, or the build produced the "
                                      "numbers the milestone asks for.")],
        notes: Annotated[str, Field(description="What was covered, missing or wrong.")] = "",
    ) -> dict[str, Any]:
        """Record an attempt at an exit-test question or a build milestone, passed or failed.
        Returns the event."""
        return api.exit_attempt(_ws(), item, passed, notes).to_dict()

    @tool(annotations=WRITE)
    @_shell
    def record_prediction(
        experiment: Annotated[str, Field(description="Experiment name (list_experiments).")],
        quantity: Annotated[str, Field(description="A predictable quantity of that "
                                       "experiment (list_experiments).")],
        value: Annotated[float, Field(strict=True, description="The learner's predicted number.")],
        concept: Annotated[str | None, Field(description="Concept id the prediction "
                                             "tests.")] = None,
        tolerance: Annotated[float | None, Field(strict=True, description="Relative error that counts as "
                                                 "right (default from llmlab.toml).")] = None,
        note: Annotated[str, Field(description="The learner's reasoning, in a sentence.")] = "",
        params: Annotated[dict[str, Any] | None, Field(
            description="The run the prediction is for, as run_experiment params (e.g. "
                        "{\"config\": PATH}); omitted: the experiment's defaults.")] = None,
    ) -> dict[str, Any]:
        """Record the learner's numeric prediction BEFORE the lab run that measures it (actor:
        learner). The next run under the same conditions (model or config, and the
        parameters the quantity depends on) compares it; without `concept` it counts against
        the concept the quantity measures. Returns the event."""
        return api.predict(_ws(), experiment, quantity, value, concept, tolerance, note,
                           "learner", params=params).to_dict()

    @tool(annotations=WRITE)
    @_shell
    def retract_event(
        event: EventId,
        reason: Annotated[str, Field(description="Why it should stop counting.")],
    ) -> dict[str, Any]:
        """Retract an event you recorded by mistake: it stays in the log, marked, and stops
        counting. Then record the right event. Never add a compensating observation
        instead. Returns the retraction event."""
        return api.retract(_ws(), event, reason).to_dict()

    @tool(annotations=WRITE)
    @_shell
    def log_note(
        text: Annotated[str, Field(description="One short text (at most 1,000 characters) about "
                                   "the learner: background, a reflex you saw, what lands.")],
        concepts: Annotated[list[str] | None, Field(
            description="Concept ids the note is about (at most 10), if any.")] = None,
        tags: Annotated[list[str] | None, Field(
            description="Any of: background, reflex, strength, gap, preference.")] = None,
    ) -> dict[str, Any]:
        """Keep your running picture of the learner: a note about who they are and how they
        learn (e.g. "reaches for analogies to databases", "numbers land better than
        diagrams"). get_state shows the latest notes at session start. A note is never
        evidence: it changes no mastery; record answers with record_observation. Returns the
        event."""
        return api.note(_ws(), text, concepts, tags).to_dict()

    @tool(annotations=READ)
    @_shell
    def list_experiments() -> dict[str, Any]:
        """The lab's experiments on a real small model: the question each answers, the concepts
        it exercises, its parameters (type, default) and the quantities a learner can predict
        (use those names in record_prediction). `lab_installed` says whether run_experiment
        can run here."""
        from .lab import catalog

        return {"lab_installed": _lab_installed(), "experiments": catalog.declarations()}

    @tool(annotations=READ)
    @_shell
    def scan_notes(
        path: Annotated[str, Field(description="The learner's notes file (absolute, or "
                                   "relative to the workspace or its notes/ folder).")] = "",
        text: Annotated[str, Field(description="Or the notes' text itself.")] = "",
        top: Annotated[int, Field(description="How many candidates.", ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        """Claims in the learner's notes ranked by closeness (MiniLM cosine) to the course's
        catalogued misconceptions, each with the concept it is about, the catalog's claim and
        correction. Candidates only: judge each yourself, confirm with the learner, then
        open_misconception for the ones that hold. Needs the lab extra."""
        from .lab.rag.notes import scan_file

        res = scan_file(_ws(), path or None, text or None, top)
        return {k: v for k, v in res.items() if k != "all"}

    lab_note = ("" if _lab_installed() else
                " The lab extra is not installed here: this tool will say how to install it.")

    @tool(annotations=WRITE, description=(
        "Run a lab experiment on the real model (takes seconds to a few minutes; reports "
        "progress). Record the learner's prediction first with record_prediction: the run "
        "compares pending predictions with the measurement and appends an experiment_run "
        "event. Returns metrics, the prediction comparisons, a summary and where the full "
        "result and figures were written." + lab_note))
    async def run_experiment(
        name: Annotated[str, Field(description="Experiment name (list_experiments).")],
        ctx: Context,
        params: Annotated[dict[str, Any] | None, Field(
            description="Parameters by name (list_experiments gives types and defaults); "
                        "omitted ones take their defaults.")] = None,
        record: Annotated[bool, Field(strict=True, description="Append the experiment_run event "
                                      "(default true).")] = True,
    ) -> dict[str, Any]:
        from .lab import catalog, runner

        try:
            ws = _ws()
            spec = catalog.spec(name)
        except UserError as e:
            return _error(e.render("mcp"))
        done = anyio.Event()

        async def heartbeat() -> None:
            t0 = time.monotonic()
            while not done.is_set():
                elapsed = time.monotonic() - t0
                await ctx.report_progress(
                    round(elapsed, 1), None,
                    f"{name}: {elapsed:.0f} s elapsed (typically about {spec.seconds:.0f} s)")
                with anyio.move_on_after(2):
                    await done.wait()

        result: dict = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(heartbeat)
            try:
                result = await anyio.to_thread.run_sync(functools.partial(
                    runner.run_experiment, ws, name, params, record=record, show_progress=False))
            except UserError as e:
                return _error(e.render("mcp"))
            finally:
                done.set()
        tables = result.get("tables") or {}
        return _result({k: v for k, v in result.items() if k != "tables"} | {
            "tables": sorted(tables), "note": "Full tables and figures are in result.json in "
                                              "`dir`; `llmlab lab show RUN_ID` prints them."})

    # ------------------------------------------------------------ resources

    def _resource(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except UserError as e:
                raise ResourceError(e.render("mcp")) from None
        return wrapper

    @server.resource("llmlab://curriculum", name="curriculum", mime_type="application/json",
                     description="The workspace's curriculum: modules, concepts, exit items.")
    @_resource
    def curriculum_resource() -> str:
        return _pretty_json(dump(_ws().curriculum))

    @server.resource("llmlab://state", name="state", mime_type="application/json",
                     description="The learner state derived from the evidence log, with next "
                                 "probes (same as get_state and `llmlab state --json`).")
    @_resource
    def state_resource() -> str:
        return _pretty_json(api.state(_ws()))

    @server.resource("llmlab://instructions", name="instructions", mime_type="text/markdown",
                     description="The tutor instructions (AGENTS.md) for this workspace.")
    @_resource
    def instructions_resource() -> str:
        return tutor.render(_ws())[tutor.AGENTS]

    @server.resource("llmlab://concept/{concept_id}", name="concept",
                     mime_type="application/json",
                     description="One concept with its derived state and evidence.")
    @_resource
    def concept_resource(concept_id: str) -> str:
        return _pretty_json(api.concept(_ws(), concept_id))

    # ------------------------------------------------------------ prompt

    @server.prompt(name="start_session", title="Start a tutoring session",
                   description="Open a Socratic tutoring session: the tutor instructions, the "
                               "learner's current state and what to probe first.")
    def start_session(
        focus: Annotated[str, Field(description="Optional: a concept id or topic the learner "
                                    "wants to work on today.")] = "",
    ) -> list[UserMessage]:
        try:
            ws = _ws()
            instructions = tutor.render(ws)[tutor.AGENTS]
            s = api.state_compact(ws)
        except UserError as e:
            return [UserMessage(f"llmlab could not open the workspace: {e}")]
        brief = {"learner": s["learner"], "overall": s["overall"],
                 "current_module": s["current_module"],
                 "open_misconceptions": s["misconceptions"]["open"], "next": s["next"]}
        wish = (f"The learner wants to work on: {focus}. Start there unless an open "
                "misconception comes first." if focus else
                "Start with the first item of `next`.")
        return [UserMessage(
            f"{instructions}\n\n---\n\nYou are now starting a tutoring session. The learner's "
            f"current state (from get_state):\n\n```json\n{_pretty_json(brief)}\n```\n\n{wish} "
            "Greet the learner by name, tell them in two sentences where they stand (the "
            "numbers as derived), then ask your first question and wait for the answer.")]

    return server


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("llmlab")
    except metadata.PackageNotFoundError:
        return "0"


def main() -> None:
    """Run the server on stdio. Refreshes outdated tutor instructions first (cheap; never
    fails the start; hand-edited files are kept)."""
    try:
        ws = Workspace.find()
    except UserError as e:
        print(f"llmlab mcp: {e} The server starts anyway; every tool will say this until "
              "a workspace is found.", file=sys.stderr)
    else:
        res = tutor.refresh(ws)
        if res and res["written"]:
            print(f"llmlab mcp: regenerated {', '.join(res['written'])} in {ws.root}.",
                  file=sys.stderr)
    anyio.run(_serve_stdio, build_server())


# ---------------------------------------------------------------- stdio with a safe reader

BAD_UNICODE = ("Invalid input: a string argument holds an unpaired UTF-16 surrogate (such as "
               "\\ud800), which is not valid Unicode, so nothing was done. Send the text as "
               "valid Unicode")


def _lone_surrogate(obj: Any) -> bool:
    if isinstance(obj, str):
        return any("\ud800" <= ch <= "\udfff" for ch in obj)
    if isinstance(obj, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_lone_surrogate(v) for v in obj)
    return False


def safe_line(line: str) -> str:
    """A JSON-RPC line the SDK can answer. JSON allows a lone surrogate escape in a string;
    the SDK's parser rejects the whole line and, with no id to answer, stays silent. Such a
    request is rewritten into one whose reply is an error naming the problem."""
    if "\\u" not in line:
        return line
    try:
        msg = json.loads(line)
    except ValueError:
        return line
    if not isinstance(msg, dict) or "id" not in msg or not _lone_surrogate(msg):
        return line
    if msg.get("method") == "tools/call":  # the reply is a tool error carrying the name
        return json.dumps({"jsonrpc": "2.0", "id": msg["id"], "method": "tools/call",
                           "params": {"name": BAD_UNICODE, "arguments": {}}}) + "\n"
    return json.dumps({"jsonrpc": "2.0", "id": msg["id"], "method": BAD_UNICODE,
                       "params": {}}) + "\n"


class _SafeStdin:
    def __init__(self):
        import io

        self._file = anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8",
                                                      errors="replace"))

    async def __aiter__(self):
        async for line in self._file:
            yield safe_line(line)


async def _serve_stdio(server: MCPServer) -> None:
    from mcp.server.stdio import stdio_server

    low = server._lowlevel_server  # what MCPServer.run_stdio_async does, with our reader
    async with stdio_server(stdin=_SafeStdin()) as (read_stream, write_stream):
        await low.run(read_stream, write_stream, low.create_initialization_options())
