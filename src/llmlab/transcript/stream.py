"""A Claude Code session published in bounded memory (issue 19).

The in-memory reader (`claude.LogReader`) keeps every record's scrubbed text until the page
is written: about 2.5 MB of memory per MB of log. A one-shot build streams instead, in
two passes over the file, and keeps only small indexes (a few ints per record):

1. **Index.** Read each line once, parse it without scrubbing, and keep its offset and
   length, its parent (as an index), whether it holds typed words, and 64-bit hashes of
   the keys that tie records together (`message.id`, tool-use and tool-result ids). The
   counts (records, duplicates, skipped, hidden), summaries, cwd and agent links are
   final after this pass; old in-file sidechains (small) are parsed and kept whole.
2. **Order.** Depth-first along parentUuid over the int arrays (`claude.order`'s rule),
   and for each position the last position that refers back to any of its keys.
3. **Stream.** Re-read the records in chain order by offset, parse and scrub each once,
   fold them with `claude.Assembler`, and once no later record refers back to what was
   folded, hand the finished exchanges to `emit`, then forget them.

The output is byte-identical to the in-memory publisher's (tests/test_transcript_stream.py).
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .claude import AGENT_TOOLS, Assembler, LogReader, _first_prompt, _groups, assemble
from .claude import order as chain_order
from .days import Exchange
from .harness import one_line
from .model import Conversation, Message, Session, Stats, Text, Thinking, ToolCall
from .records import parse
from .scrub import Scrubber

_MALFORMED = (TypeError, AttributeError, ValueError, KeyError)


def _raw(s, where: str = "") -> str:
    """The index pass parses without scrubbing (text is scrubbed once, in the stream pass)."""
    return s


@dataclass
class Index:
    """Pass 1: one entry per conversation record (not sidechain), in file order."""
    offsets: array = field(default_factory=lambda: array("q"))
    lengths: array = field(default_factory=lambda: array("l"))
    idx: array = field(default_factory=lambda: array("l"))  # the reader's record counter
    parents: array = field(default_factory=lambda: array("l"))  # entry index, -1: none
    typed: bytearray = field(default_factory=bytearray)
    keys: array = field(default_factory=lambda: array("q"))  # hashed ids, see _keys
    key_end: array = field(default_factory=lambda: array("l"))
    stats: Stats = field(default_factory=Stats)
    summaries: dict[str, str] = field(default_factory=dict)
    leaves: list[str] = field(default_factory=list)  # summaries of a record in this file
    cwd: str = ""
    session_id: str = ""
    links: dict[str, str] = field(default_factory=dict)  # agentId -> tool_use id
    agent_calls: list[tuple[int, str, str]] = field(default_factory=list)  # (entry, id, raw input)
    link_calls: set[str] = field(default_factory=set)  # link targets that are tool calls here
    side: dict = field(default_factory=dict)  # uuid -> Node, whole (older logs' sidechains)

    def __len__(self) -> int:
        return len(self.offsets)


def _keys(node) -> list[int]:
    out = [hash(("m", node.msg_id))] if node.type == "assistant" else []
    out += [hash(("c", b.id)) for b in node.blocks if isinstance(b, ToolCall)]
    out += [hash(("c", tid)) for tid, _ in node.results]
    return out


def index(path: Path, scrub: Scrubber) -> Index:
    """Pass 1 (see the module doc). `scrub` sees only summaries, cwd and sidechains."""
    ix = Index()
    st = ix.stats
    uuids: dict[str, int] = {}  # uuid -> entry index, -1 for a sidechain node
    forward: dict[int, str] = {}  # entry -> parent uuid not seen yet
    calls = bytearray()  # 1 where the entry holds a tool call (for the link targets)
    loads = json.loads
    n = 0  # the reader's counter of non-duplicate records
    off = 0
    with open(path, "rb") as f:
        for line in f:
            start, off = off, off + len(line)
            if not line.strip():
                continue
            try:
                rec = loads(line)
            except ValueError:
                if not line.endswith(b"\n"):  # torn last line: left for a later run
                    break
                st.torn += 1
                continue
            if not isinstance(rec, dict):
                continue
            st.records += 1
            uuid = rec.get("uuid")
            if isinstance(uuid, str) and uuid in uuids:
                st.duplicates += 1
                continue
            if rec.get("type") == "summary" and isinstance(rec.get("summary"), str):
                ix.summaries[str(rec.get("leafUuid", ""))] = scrub(rec["summary"], "summary")
            if not ix.cwd and isinstance(rec.get("cwd"), str):
                ix.cwd = scrub(rec["cwd"], "cwd")
            if not ix.session_id and isinstance(rec.get("sessionId"), str):
                ix.session_id = rec["sessionId"]
            try:
                node = parse(rec, n, _raw, st)
            except _MALFORMED:
                st.skip(f"malformed {rec.get('type')}")
                node = None
            n += 1
            if node is None:
                continue
            if node.agent_link:
                ix.links[node.agent_link[0]] = node.agent_link[1]
            if node.sidechain:
                uuids[node.uuid] = -1
                try:
                    ix.side[node.uuid] = parse(rec, node.idx, scrub, Stats())
                except _MALFORMED:
                    pass
                continue
            i = len(ix.offsets)
            uuids[node.uuid] = i
            ix.offsets.append(start)
            ix.lengths.append(len(line))
            ix.idx.append(node.idx)
            p = node.parent
            pi = uuids.get(p, -2) if isinstance(p, str) else -1
            if pi == -2:
                forward[i] = p
            ix.parents.append(pi if pi >= 0 and pi != i else -1)
            ix.typed.append(node.typed)
            ix.keys.extend(_keys(node))
            ix.key_end.append(len(ix.keys))
            calls.append(any(isinstance(b, ToolCall) for b in node.blocks))
            for b in node.blocks:
                if isinstance(b, ToolCall):
                    if b.name in AGENT_TOOLS:
                        ix.agent_calls.append((i, b.id, b.input))
    for i, p in forward.items():
        pi = uuids.get(p, -1)
        if pi >= 0 and pi != i:
            ix.parents[i] = pi
    ix.leaves = [ix.summaries[u] for u in ix.summaries if u in uuids]
    targets = {hash(("c", t)): t for t in ix.links.values()}
    if targets:  # which link targets are tool calls of the main conversation
        for i in (i for i, c in enumerate(calls) if c):
            for h in ix.keys[ix.key_end[i - 1] if i else 0:ix.key_end[i]]:
                if h in targets:
                    ix.link_calls.add(targets[h])
    return ix


def order(ix: Index) -> tuple[array, bytearray]:
    """Pass 2: entries depth-first along parents (siblings in file order, orphans start new
    roots, a cycle's rest in file order) and the branch flags, as `claude.order` does."""
    n = len(ix)
    first, nxt, last = array("l", [-1]) * n, array("l", [-1]) * n, array("l", [-1]) * n
    roots = array("l")
    for i, p in enumerate(ix.parents):
        if p < 0:
            roots.append(i)
        elif first[p] < 0:
            first[p] = last[p] = i
        else:
            nxt[last[p]] = i
            last[p] = i
    del last
    out = array("l")
    seen = bytearray(n)
    branch = bytearray(n)
    typed = ix.typed
    stack = list(reversed(roots))
    while stack:
        i = stack.pop()
        if seen[i]:
            continue
        seen[i] = 1
        out.append(i)
        k = first[i]
        if k >= 0:
            kids = []
            while k >= 0:
                kids.append(k)
                k = nxt[k]
            typed_kids = [k for k in kids if typed[k]]
            for k in typed_kids[1:]:
                branch[k] = 1
            stack.extend(reversed(kids))
    if len(out) < n:
        out.extend(i for i in range(n) if not seen[i])
    return out, branch


def holds(ix: Index, ordered: array) -> array:
    """For each position, the last position whose record shares a key with it (a merged
    message line, a tool result, a repeated call): what is folded there is not final
    before the stream passes that position. Hash collisions only make this later."""
    pos = array("l", [0]) * len(ordered)
    for j, i in enumerate(ordered):
        pos[i] = j
    keys, end = ix.keys, ix.key_end
    lastpos: dict[int, int] = {}
    for i in range(len(ordered)):
        p = pos[i]
        for h in keys[end[i - 1] if i else 0:end[i]]:
            if lastpos.get(h, -1) < p:
                lastpos[h] = p
    out = array("l", [0]) * len(ordered)
    for i in range(len(ordered)):
        p = pos[i]
        out[p] = max([p, *(lastpos[h] for h in keys[end[i - 1] if i else 0:end[i]])])
    return out


@dataclass
class Summary(Session):
    """What the page's header needs once the exchanges have streamed past."""
    count: int = 0  # learner messages
    thinking_signed: int = 0
    any_message: bool = False

    def exchanges(self) -> int:
        return self.count


class Grouper:
    """Finished messages in, exchanges out (`days.exchanges`' rule), with the running
    figures of the header."""

    def __init__(self, emit: Callable[[Exchange], None]):
        self.emit = emit
        self.cur: Exchange | None = None
        self.count = self.signed = self.messages = 0
        self.first: str | None = None
        self.started: datetime | None = None
        self.ended: datetime | None = None

    def add(self, m: Message) -> None:
        self.messages += 1
        if m.ts is not None:
            self.started = m.ts if self.started is None else min(self.started, m.ts)
            self.ended = m.ts if self.ended is None else max(self.ended, m.ts)
        self.signed += sum(1 for b in m.blocks if isinstance(b, Thinking) and not b.text and b.signed)
        learner = m.role == "learner"
        if learner:
            self.count += 1
            if self.first is None:
                self.first = next((b.text.strip() for b in m.blocks if isinstance(b, Text)), None)
        if learner or self.cur is None:
            last = self.cur
            if (last is not None and learner and not last.prompt
                    and all(x.role == "harness" for x in last.messages)):
                last.messages.append(m)  # harness preamble joins the first prompt
                last.prompt = True
                return
            if last is not None:
                self.emit(last)
            self.cur = Exchange(prompt=learner)
        self.cur.messages.append(m)

    def close(self) -> None:
        if self.cur is not None:
            self.emit(self.cur)
            self.cur = None


def _subagents(ix: Index, agents: dict[str, LogReader], stats: Stats,
               scratch: Scrubber) -> tuple[dict[str, Conversation], list[Conversation], int]:
    """Sub-agent conversations by the id of the call that spawned them, the unlinked
    ones, and the orphan tool results of in-file sidechains (`claude.build_session`'s rules)."""
    subs: list[tuple[str, Conversation]] = []
    for aid, reader in sorted(agents.items()):
        sconv, _ = assemble(chain_order(reader.nodes), reader.stats)
        subs.append((aid, sconv))
        stats.records += reader.stats.records
        stats.duplicates += reader.stats.duplicates
        stats.torn += reader.stats.torn
    side_orphans = Stats()
    if ix.side:
        for group in _groups(ix.side):
            sconv, _ = assemble(group, side_orphans)
            subs.append((group[0].agent_id, sconv))
    by_prompt: dict[str, str] = {}
    for _pos, cid, raw in ix.agent_calls:  # sorted into chain order by the caller
        try:
            p = json.loads(scratch(raw, "tool input")).get("prompt", "")
        except (ValueError, AttributeError):
            p = ""
        if p:
            by_prompt.setdefault(p.strip(), cid)
    linked: dict[str, Conversation] = {}
    unlinked: list[Conversation] = []
    for aid, sconv in subs:
        cid = ix.links.get(aid, "") if aid else None
        if cid is None or cid not in ix.link_calls:
            cid = by_prompt.get(_first_prompt(sconv))
        if cid is not None and cid not in linked:
            linked[cid] = sconv
            stats.subagents += 1
        else:
            unlinked.append(sconv)
    stats.subagents += len(unlinked)
    return linked, unlinked, side_orphans.hidden.get("orphan tool result", 0)


def stream(path: Path, agents: dict[str, Path], scrub: Scrubber, emit: Callable[[Exchange], None],
           what: Callable[[str], None] | None = None) -> Summary:
    """Publish one session's exchanges through `emit`, in chain order, in bounded memory;
    returns the header's figures. `what(session_id)` is called once the id is known."""
    scratch = scrub.fresh()  # for the sub-agent calls' prompts: scrubbed twice, counted once
    readers = {aid: LogReader(p, scrub) for aid, p in agents.items()}
    for r in readers.values():
        r.read()
    ix = index(path, scrub)
    if what is not None:
        what(ix.session_id or path.stem)
    ms = ix.stats
    stats = Stats(ms.records, ms.duplicates, ms.torn, dict(ms.skipped), dict(ms.hidden))
    ordered, branch = order(ix)
    hold = holds(ix, ordered)
    if ix.agent_calls:
        pos = {i: j for j, i in enumerate(ordered)}
        ix.agent_calls.sort(key=lambda c: pos[c[0]])
    linked, unlinked, side_orphans = _subagents(ix, readers, stats, scratch)
    group = Grouper(emit)
    asm = Assembler()
    frontier = -1
    loads = json.loads
    at = -1
    with open(path, "rb") as f:
        for j, i in enumerate(ordered):
            if ix.offsets[i] != at:
                f.seek(ix.offsets[i])
            line = f.read(ix.lengths[i])
            at = ix.offsets[i] + ix.lengths[i]
            try:
                node = parse(loads(line), ix.idx[i], scrub, Stats())
            except _MALFORMED:
                node = None
            if node is not None:
                node.branch = bool(branch[i])
                asm.feed((node,))
                for b in node.blocks:
                    if isinstance(b, ToolCall) and b.id in linked and asm.calls.get(b.id) is b:
                        b.subagent = linked[b.id]
            frontier = max(frontier, hold[j])
            if frontier <= j and len(asm.msgs) > 1:  # nothing later refers back: all but the last are final
                done = asm.msgs[:-1]
                del asm.msgs[:-1]
                asm.by_msg_id.clear()
                asm.calls.clear()
                for m in done:
                    if m.blocks:
                        group.add(m)
    for m in asm.msgs:
        if m.blocks:
            group.add(m)
    orphans = asm.orphans + side_orphans
    if orphans:
        stats.hidden["orphan tool result"] = orphans
    for sconv in unlinked:  # never a separate session: shown at the end, labelled
        note = Message("harness", [Text("A sub-agent conversation whose spawning tool call is not in this log.")],
                       None, "Sub-agent")
        note.blocks.append(ToolCall(id="", name="Sub-agent", input="", summary=one_line(_first_prompt(sconv), 120),
                                    subagent=sconv))
        group.add(note)
    group.close()
    title = ix.leaves[-1] if ix.leaves else one_line(group.first or "", 90) or "Untitled session"
    return Summary(id=ix.session_id or path.stem, source="claude-code", title=title, conversation=Conversation(),
                   stats=stats, cwd=ix.cwd, started=group.started, ended=group.ended,
                   files=[str(path), *(str(p) for p in agents.values())], count=group.count,
                   thinking_signed=group.signed, any_message=group.messages > 0)
