"""A Claude Code session: read its JSONL (incrementally), then assemble the conversation.

Reading keeps slim scrubbed `Node`s keyed by uuid (duplicates dropped) and the byte
offset of the last complete line, so a watcher can feed only what was appended and a
torn last line is retried when it is complete. Assembly orders nodes by the
`parentUuid` chain (not timestamps), merges the lines of one streamed assistant message
(`message.id`), pairs tool results with their calls, and hangs sub-agent conversations
under the tool call that spawned them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .harness import one_line
from .model import Conversation, Message, Session, Stats, Text, ToolCall
from .records import Node, parse
from .scrub import Scrubber

AGENT_TOOLS = {"Task", "Agent"}


class LogReader:
    """Nodes of one JSONL file, read incrementally from `offset`."""

    def __init__(self, path: Path, scrub: Scrubber, stats: Stats | None = None):
        self.path = Path(path)
        self.scrub = scrub
        self.stats = stats or Stats()
        self.nodes: dict[str, Node] = {}
        self.summaries: dict[str, str] = {}  # leafUuid -> summary text (scrubbed)
        self.cwd = ""
        self.session_id = ""
        self.offset = 0
        self.idx = 0
        self.size_seen = -1
        self.mtime_seen = -1
        self.pending = False  # a torn (incomplete) last line is waiting

    def changed(self) -> bool:
        """Growth is detected by size as well as mtime (coarse clocks miss quick appends)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return st.st_size != self.size_seen or st.st_mtime_ns != self.mtime_seen

    def read(self) -> int:
        """Read complete lines appended since the last call. Returns records added."""
        st = os.stat(self.path)
        if st.st_size < self.offset:  # truncated or replaced: start over
            self.__init__(self.path, self.scrub, Stats())
        self.size_seen, self.mtime_seen = st.st_size, st.st_mtime_ns
        added = 0
        self.pending = False
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        pos = 0
        end = len(data)
        loads = json.loads
        while pos < end:
            nl = data.find(b"\n", pos)
            line = data[pos:] if nl < 0 else data[pos:nl]
            nxt = end if nl < 0 else nl + 1
            if line.strip():
                try:
                    rec = loads(line)
                except ValueError:
                    if nl < 0:  # torn last line: leave it for the next read
                        self.pending = True
                        break
                    self.stats.torn += 1
                    pos = nxt
                    continue
                if isinstance(rec, dict):
                    added += self._add(rec)
            pos = nxt
        self.offset += pos
        return added

    def _add(self, rec: dict) -> int:
        st = self.stats
        st.records += 1
        uuid = rec.get("uuid")
        if isinstance(uuid, str) and uuid in self.nodes:
            st.duplicates += 1
            return 0
        if rec.get("type") == "summary" and isinstance(rec.get("summary"), str):
            self.summaries[str(rec.get("leafUuid", ""))] = self.scrub(rec["summary"], "summary")
        if not self.cwd and isinstance(rec.get("cwd"), str):
            self.cwd = self.scrub(rec["cwd"], "cwd")
        if not self.session_id and isinstance(rec.get("sessionId"), str):
            self.session_id = rec["sessionId"]
        node = parse(rec, self.idx, self.scrub, st)
        self.idx += 1
        if node is None:
            return 1
        self.nodes[node.uuid] = node
        return 1


def order(nodes: dict[str, Node]) -> list[Node]:
    """Depth-first along parentUuid, siblings in file order; orphans start new roots."""
    children: dict[str, list[Node]] = {}
    roots: list[Node] = []
    for n in nodes.values():
        if n.parent and n.parent in nodes and n.parent != n.uuid:
            children.setdefault(n.parent, []).append(n)
        else:
            roots.append(n)
    out: list[Node] = []
    seen: set[str] = set()
    stack = sorted(roots, key=lambda n: n.idx, reverse=True)
    while stack:
        n = stack.pop()
        if n.uuid in seen:
            continue
        seen.add(n.uuid)
        out.append(n)
        kids = children.get(n.uuid)
        if kids:
            stack.extend(sorted(kids, key=lambda k: k.idx, reverse=True))
    if len(out) < len(nodes):  # a parent cycle: keep the rest in file order
        out.extend(sorted((n for n in nodes.values() if n.uuid not in seen), key=lambda n: n.idx))
    return out


def assemble(nodes: list[Node], stats: Stats) -> tuple[Conversation, dict[str, ToolCall]]:
    """Messages in chain order, with streamed lines merged and results paired."""
    msgs: list[Message] = []
    by_msg_id: dict[str, Message] = {}
    calls: dict[str, ToolCall] = {}
    for n in nodes:
        if n.type == "assistant":
            m = by_msg_id.get(n.msg_id)
            if m is None:
                m = Message("assistant", [], n.ts, model=n.model)
                m.key = n.uuid
                by_msg_id[n.msg_id] = m
                msgs.append(m)
            for b in n.blocks:
                if isinstance(b, ToolCall):
                    if b.id in calls:
                        continue
                    b.result = None
                    b.subagent = None
                    calls[b.id] = b
                elif b in m.blocks:  # the same block written twice while streaming
                    continue
                m.blocks.append(b)
        else:
            for tid, res in n.results:
                call = calls.get(tid)
                if call is not None:
                    call.result = res
                else:
                    stats.hide("orphan tool result")
            for m in n.messages:
                m.key = n.uuid
                prev = msgs[-1] if msgs else None
                if (prev is not None and prev.role == "harness" and m.role == "harness"
                        and prev.label == m.label == "Command" and m.blocks[0].text.startswith("→")):
                    prev.blocks = [Text(prev.blocks[0].text + " " + m.blocks[0].text)]
                    continue
                msgs.append(m)
    return Conversation([m for m in msgs if m.blocks]), calls


def _first_prompt(conv: Conversation) -> str:
    for m in conv.messages:
        if m.role == "learner":
            for b in m.blocks:
                if isinstance(b, Text):
                    return b.text.strip()
    return ""


def build_session(main: LogReader, agents: dict[str, LogReader] | None = None) -> Session:
    """The session from a main log reader and its sub-agent readers (by agent id)."""
    stats = main.stats
    main_nodes = {u: n for u, n in main.nodes.items() if not n.sidechain}
    side_nodes = {u: n for u, n in main.nodes.items() if n.sidechain}
    conv, calls = assemble(order(main_nodes), stats)

    links = {n.agent_link[0]: n.agent_link[1] for n in main.nodes.values() if n.agent_link}
    by_prompt: dict[str, ToolCall] = {}
    for c in calls.values():
        if c.name in AGENT_TOOLS:
            try:
                p = json.loads(c.input).get("prompt", "")
            except (ValueError, AttributeError):
                p = ""
            if p:
                by_prompt.setdefault(p.strip(), c)

    subs: list[tuple[str, Conversation]] = []
    for aid, reader in sorted((agents or {}).items()):
        sconv, _ = assemble(order(reader.nodes), reader.stats)
        subs.append((aid, sconv))
        stats.records += reader.stats.records
        stats.duplicates += reader.stats.duplicates
        stats.torn += reader.stats.torn
    if side_nodes:  # older logs kept sidechains in the main file: one conversation per root
        for group in _groups(side_nodes):
            sconv, _ = assemble(group, stats)
            subs.append((group[0].agent_id, sconv))

    unlinked: list[Conversation] = []
    for aid, sconv in subs:
        call = calls.get(links.get(aid, "")) if aid else None
        if call is None:
            call = by_prompt.get(_first_prompt(sconv))
        if call is not None and call.subagent is None:
            call.subagent = sconv
            stats.subagents += 1
        else:
            unlinked.append(sconv)
    for sconv in unlinked:  # never a separate session: shown at the end, labelled
        stats.subagents += 1
        note = Message("harness", [Text("A sub-agent conversation whose spawning tool call is not in this log.")],
                       None, "Sub-agent")
        call = ToolCall(id="", name="Sub-agent", input="", summary=one_line(_first_prompt(sconv), 120),
                        subagent=sconv)
        note.blocks.append(call)
        conv.messages.append(note)

    title = ""
    leaves = [main.summaries[u] for u in main.summaries if u in main.nodes]
    if leaves:
        title = leaves[-1]
    elif main.summaries:
        title = list(main.summaries.values())[-1]
    if not title:
        title = one_line(_first_prompt(conv), 90) or "Untitled session"
    times = [m.ts for m in conv.messages if m.ts is not None]
    sid = main.session_id or main.path.stem
    return Session(id=sid, source="claude-code", title=title, conversation=conv, stats=stats,
                   cwd=main.cwd, started=min(times) if times else None, ended=max(times) if times else None,
                   files=[str(main.path), *(str(r.path) for r in (agents or {}).values())])


def _groups(nodes: dict[str, Node]) -> list[list[Node]]:
    ordered = order(nodes)
    groups: list[list[Node]] = []
    for n in ordered:
        if not groups or not (n.parent and n.parent in nodes):
            groups.append([])
        groups[-1].append(n)
    return groups
