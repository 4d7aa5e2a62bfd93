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
from collections.abc import Iterable
from pathlib import Path

from .harness import one_line
from .model import Conversation, Message, Session, Stats, Text, ToolCall
from .records import Node, parse
from .scrub import Scrubber

AGENT_TOOLS = {"Task", "Agent"}
REWIND = ("The learner went back to an earlier point here (a rewind or an edited prompt); "
          "the conversation continues from there, and the branch above was left behind.")


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
        self.new: list[Node] = []  # nodes read since the last assembly
        self.assembler = None  # kept by build_session for incremental assembly

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
        try:
            node = parse(rec, self.idx, self.scrub, st)
        except (TypeError, AttributeError, ValueError, KeyError):  # a shape no version wrote
            st.skip(f"malformed {rec.get('type')}")
            node = None
        self.idx += 1
        if node is None:
            return 1
        self.nodes[node.uuid] = node
        self.new.append(node)
        return 1


def order(nodes: dict[str, Node]) -> list[Node]:
    """Depth-first along parentUuid, siblings in file order; orphans start new roots.

    `nodes` is in file order (insertion order), so no sorting is needed."""
    children: dict[str, list[Node]] = {}
    roots: list[Node] = []
    for n in nodes.values():
        p = n.parent
        if p and p in nodes and p != n.uuid:
            kids = children.get(p)
            if kids is None:
                children[p] = [n]
            else:
                kids.append(n)
        else:
            roots.append(n)
    out: list[Node] = []
    seen: set[str] = set()
    stack = roots[::-1]
    while stack:
        n = stack.pop()
        if n.uuid in seen:
            continue
        seen.add(n.uuid)
        out.append(n)
        kids = children.get(n.uuid)
        if kids:
            typed = [k for k in kids if k.typed]
            for k in kids:
                k.branch = len(typed) > 1 and k.typed and k is not typed[0]
            stack.extend(reversed(kids))
    if len(out) < len(nodes):  # a parent cycle: keep the rest in file order
        out.extend(n for n in nodes.values() if n.uuid not in seen)
    return out


class Assembler:
    """Folds ordered nodes into messages: streamed lines merged by `message.id`, tool
    results paired with their calls, command echoes joined with their output.

    It keeps its state, so a watcher can feed only the nodes appended since the last
    call when they extend the end of the chain (`extends`), instead of starting over."""

    def __init__(self):
        self.orphans = 0  # tool results whose call is not in the log
        self.msgs: list[Message] = []
        self.by_msg_id: dict[str, Message] = {}
        self.calls: dict[str, ToolCall] = {}
        self.path: list[str] = []  # the chain from the last root to the last node
        self.where: dict[str, int] = {}  # uuid -> index in path

    def feed(self, nodes: Iterable[Node]) -> None:
        msgs, by_msg_id, calls = self.msgs, self.by_msg_id, self.calls
        for n in nodes:
            if n.type == "assistant":
                m = by_msg_id.get(n.msg_id)
                fresh = m is None
                if fresh:
                    m = Message("assistant", [], n.ts, model=n.model, key=n.uuid)
                    by_msg_id[n.msg_id] = m
                    msgs.append(m)
                for b in n.blocks:
                    if isinstance(b, ToolCall):
                        if b.id in calls:
                            continue
                        b.result = None
                        b.subagent = None
                        calls[b.id] = b
                    elif not fresh and b in m.blocks:  # the same block written twice
                        continue
                    m.blocks.append(b)
            else:
                if n.branch:
                    msgs.append(Message("harness", [Text(REWIND)], n.ts, "Rewind"))
                for tid, res in n.results:
                    call = calls.get(tid)
                    if call is not None:
                        call.result = res
                    else:
                        self.orphans += 1
                for m in n.messages:
                    m.key = n.uuid
                    prev = msgs[-1] if msgs else None
                    if (prev is not None and prev.role == "harness" and m.role == "harness"
                            and prev.label == m.label == "Command" and m.blocks[0].text.startswith("→")):
                        # a new Message: the node's own stays as read (it is reused)
                        msgs[-1] = Message("harness", [Text(prev.blocks[0].text + " " + m.blocks[0].text)],
                                           prev.ts, "Command", key=prev.key)
                        continue
                    msgs.append(m)

    def set_path(self, nodes: dict[str, Node], last: Node | None) -> None:
        chain: list[str] = []
        seen: set[str] = set()
        n = last
        while n is not None and n.uuid not in seen:
            seen.add(n.uuid)
            chain.append(n.uuid)
            n = nodes.get(n.parent) if n.parent and n.parent != n.uuid else None
        self.path = chain[::-1]
        self.where = {u: i for i, u in enumerate(self.path)}

    def extends(self, new: list[Node], nodes: dict[str, Node]) -> bool:
        """True when depth-first order over all nodes is the old order plus `new`: each new
        node hangs off the rightmost chain (or starts a root). Updates the chain if so."""
        path, where = list(self.path), dict(self.where)
        for n in new:
            if n.sidechain:
                return False
            p = n.parent
            if p and p in nodes and p != n.uuid:
                i = where.get(p)
                if i is None:
                    return False
                if i + 1 < len(path):
                    nxt = nodes.get(path[i + 1])
                    n.branch = n.typed and nxt is not None and nxt.typed
                for u in path[i + 1:]:
                    del where[u]
                del path[i + 1:]
            else:
                path, where = [], {}
            where[n.uuid] = len(path)
            path.append(n.uuid)
        self.path, self.where = path, where
        return True

    def conversation(self) -> Conversation:
        return Conversation([m for m in self.msgs if m.blocks])


def assemble(nodes: list[Node], stats: Stats) -> tuple[Conversation, dict[str, ToolCall]]:
    """Messages in chain order (one-shot; see `Assembler`)."""
    a = Assembler()
    a.feed(nodes)
    if a.orphans:
        stats.hidden["orphan tool result"] = stats.hidden.get("orphan tool result", 0) + a.orphans
    return a.conversation(), a.calls


def _main_conversation(main: LogReader, nodes: dict[str, Node], has_side: bool) -> Assembler:
    """The main chain's assembler: fed only the new nodes when they extend the chain."""
    new, main.new = main.new, []
    asm = main.assembler
    if asm is not None and not has_side and asm.extends(new, nodes):
        asm.feed(new)
        return asm
    ordered = order(nodes)
    asm = Assembler()
    asm.feed(ordered)
    asm.set_path(nodes, ordered[-1] if ordered else None)
    main.assembler = asm
    return asm


def _first_prompt(conv: Conversation) -> str:
    for m in conv.messages:
        if m.role == "learner":
            for b in m.blocks:
                if isinstance(b, Text):
                    return b.text.strip()
    return ""


def build_session(main: LogReader, agents: dict[str, LogReader] | None = None) -> Session:
    """The session from a main log reader and its sub-agent readers (by agent id)."""
    ms = main.stats
    stats = Stats(ms.records, ms.duplicates, ms.torn, dict(ms.skipped), dict(ms.hidden))
    side_nodes = {u: n for u, n in main.nodes.items() if n.sidechain}
    main_nodes = {u: n for u, n in main.nodes.items() if not n.sidechain} if side_nodes else main.nodes
    asm = _main_conversation(main, main_nodes, bool(side_nodes))
    conv, calls = asm.conversation(), asm.calls
    if asm.orphans:
        stats.hidden["orphan tool result"] = asm.orphans
    for c in calls.values():  # links are made afresh below
        c.subagent = None

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

    # A summary names the session whose last message is its leafUuid; Claude Code also
    # copies summaries of earlier sessions into a resumed session's file: not ours.
    leaves = [main.summaries[u] for u in main.summaries if u in main.nodes]
    title = leaves[-1] if leaves else one_line(_first_prompt(conv), 90) or "Untitled session"
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
