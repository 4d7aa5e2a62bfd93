"""Flashcards from the curriculum and the derived state, for Anki and as markdown.

Cards:
- one per chosen concept: a behaviour it explains as the prompt, its mechanism (the
  curriculum `summary`) as the answer;
- one per chosen misconception: the wrong claim to refute, with the correction (the
  catalog's correction; for a free-text misconception, the concept's mechanism).

Which cards: by default the concepts that are due for review (stale) or weak (observed,
not mastered), and the misconceptions that are open or were resolved in the last
`RECENT_DAYS` days. `concepts`/`modules` choose concepts explicitly (all of them, with
their catalogued misconceptions too); `all_` takes the whole course.

The Anki file follows Anki's text import format (https://docs.ankiweb.net/importing/text-files.html):
header lines `#separator:tab`, `#html:true`, `#notetype:Basic`, `#deck:...`,
`#columns:...`, `#guid column:1` (a stable id per card, so re-importing updates the
notes instead of duplicating them) and `#tags column:4`; then one note per line, fields
separated by tabs, each field HTML-escaped with line breaks as `<br>` and never a raw tab,
newline or leading quote.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from .errors import UserError, unknown
from .core import parse_ts
from .events import now_utc
from .files import atomic_write
from .workspace import Workspace

RECENT_DAYS = 30
DECK = "LLM Learning Lab"
COLUMNS = ("GUID", "Front", "Back", "Tags")
ANKI_FILE = "llmlab-flashcards.txt"
MARKDOWN_FILE = "llmlab-flashcards.md"


@dataclass(frozen=True)
class Card:
    guid: str
    kind: str  # "concept" or "misconception"
    concept: str
    module: str
    front: str  # plain text; lines separated by "\n"
    back: str
    tags: tuple[str, ...]


def field(text: str) -> str:
    """One Anki field: HTML-escaped, line breaks as <br>, no tabs or raw newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    return "<br>".join(html.escape(line, quote=True) for line in text.split("\n"))


def _tag(s: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-:" else "_" for ch in s)


def select(ws: Workspace, concepts: list[str] | None = None, modules: list[str] | None = None,
           all_: bool = False, now: datetime | None = None) -> list[Card]:
    """The cards to export, concept cards first, in curriculum order."""
    from . import api

    cur = ws.curriculum
    for cid in concepts or []:
        if cid not in cur.concepts:
            raise unknown("concept", cid, cur.concepts, api.CONCEPT_HINT)
    module_ids = [m.id for m in cur.modules]
    for mid in modules or []:
        if mid not in module_ids:
            raise unknown("module", mid, module_ids, "See `llmlab curriculum show` for the modules.")
    now = now or now_utc()
    st = api.state(ws, now)
    views = st["concepts"]
    explicit = bool(concepts or modules)
    if explicit:
        chosen = [c for c in cur.concepts if c in (concepts or [])
                  or cur.concepts[c].module in (modules or [])]
    elif all_:
        chosen = list(cur.concepts)
    else:
        chosen = [c for c, v in views.items()
                  if v["stale"] or (v["observed"] and not v["mastered"])]
    order = {c: i for i, c in enumerate(cur.concepts)}
    chosen.sort(key=order.__getitem__)
    chosen_set = set(chosen)

    cards: list[Card] = []
    for cid in chosen:
        c, v = cur.concepts[cid], views[cid]
        status = "due" if v["stale"] else ("weak" if v["observed"] and not v["mastered"]
                                           else "mastered" if v["mastered"] else "new")
        if c.behaviours:
            front = "Which mechanism explains this behaviour of a language model?\n" + \
                "\n".join(f"• {b}" for b in c.behaviours)
        else:
            front = f"Explain the mechanism: {c.title}"
        back = f"{c.title}\n{short(c.summary)}"
        cards.append(Card(f"llmlab:concept:{cid}", "concept", cid, c.module, front, back,
                          ("llmlab", "concept", f"module::{c.module}", f"concept::{cid}", status)))

    cutoff = now - timedelta(days=RECENT_DAYS)
    seen_catalog: set[tuple[str, str]] = set()
    logged = st["misconceptions"]["open"] + st["misconceptions"]["resolved"]
    # newest first: a misconception logged again (a relapse) gives one card, in its latest state
    for m in sorted(logged, key=lambda m: m["opened_at"], reverse=True):
        cid = m["concept"]
        if cid not in cur.concepts:
            continue
        resolved = m["resolved_at"] is not None
        if explicit and cid not in chosen_set:
            continue
        if resolved and not (explicit or all_) and parse_ts(m["resolved_at"]) < cutoff:
            continue
        cat = cur.misconception(cid, m["catalog"]) if m.get("catalog") else None
        correction = cat.correction if cat else f"The mechanism: {cur.concepts[cid].summary}"
        if cat:
            seen_catalog.add((cid, cat.id))
        cards.append(_misconception_card(cur, cid, _claim_ref(cid, cat.id if cat else None,
                                                              m["claim"]), m["claim"],
                                         correction, "resolved" if resolved else "open"))
    if explicit or all_:
        for cid in chosen:
            for cat in cur.concepts[cid].misconceptions:
                if (cid, cat.id) not in seen_catalog:
                    cards.append(_misconception_card(cur, cid, _claim_ref(cid, cat.id, cat.claim),
                                                     cat.claim, cat.correction, "catalog"))
    unique: dict[str, Card] = {}
    for card in cards:  # one card per GUID, whatever the number of times it was logged
        unique.setdefault(card.guid, card)
    return list(unique.values())


def _claim_ref(cid: str, catalog: str | None, claim: str) -> str:
    """A misconception card's stable id: the catalog entry's, whether it came from the
    catalog or from a logged event that cites it; else a hash of the normalised claim."""
    if catalog:
        return f"{cid}.{catalog}"
    norm = " ".join(claim.lower().split())
    return f"{cid}:{hashlib.sha256(norm.encode()).hexdigest()[:12]}"


def short(text: str, limit: int = 280) -> str:
    """The first sentences of `text` that fit in `limit` characters (at least one)."""
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    out = sentences[0]
    for s in sentences[1:]:
        if len(out) + 1 + len(s) > limit:
            break
        out += " " + s
    return out if len(out) <= limit else out[:limit - 1].rstrip() + "…"


# Misconception cards vary their form, chosen by the card's id (so it is stable).
FORMS = (
    ("True or false? If false, refute it.\n\"{claim}\"\n({title})", "False. {correction}"),
    ("A colleague says: \"{claim}\"\nWhat do you answer? ({title})", "{correction}"),
    ("What is wrong with this claim?\n\"{claim}\"\n({title})", "{correction}"),
)


def _misconception_card(cur, cid: str, ref: str, claim: str, correction: str,
                        status: str) -> Card:
    c = cur.concepts[cid]
    guid = f"llmlab:misconception:{ref}"
    front, back = FORMS[int(hashlib.sha256(guid.encode()).hexdigest(), 16) % len(FORMS)]
    front = front.format(claim=claim, title=c.title)
    back = back.format(correction=short(correction))
    return Card(guid, "misconception", cid, c.module, front, back,
                ("llmlab", "misconception", f"module::{c.module}", f"concept::{cid}", status))


def anki_text(cards: list[Card], deck: str = DECK) -> str:
    head = ["#separator:tab", "#html:true", "#notetype:Basic", f"#deck:{deck}",
            "#columns:" + "\t".join(COLUMNS), "#guid column:1", "#tags column:4"]
    rows = ["\t".join([field(c.guid), field(c.front), field(c.back),
                       " ".join(_tag(t) for t in c.tags)]) for c in cards]
    return "\n".join(head + rows) + "\n"


def _md(text: str) -> str:
    """Markdown text with raw HTML neutralised (renderers pass HTML through)."""
    return html.escape(text, quote=False).replace("\n", "  \n")


def markdown(cards: list[Card], title: str) -> str:
    out = [f"# Flashcards: {_md(title)}", "",
           f"{len(cards)} cards. Import `{ANKI_FILE}` into Anki (File > Import); "
           "its header lines set every import option.", ""]
    for i, c in enumerate(cards, 1):
        out += [f"## {i}. {c.kind}: `{c.concept}` ({c.tags[-1]})", ""]
        out += ["**Q:** " + _md(c.front), ""]
        out += ["**A:** " + _md(c.back), ""]
    return "\n".join(out)


def export(ws: Workspace, out: Path | None = None, concepts: list[str] | None = None,
           modules: list[str] | None = None, all_: bool = False,
           now: datetime | None = None) -> dict:
    """Write the Anki text file and the markdown file; say what was written."""
    cards = select(ws, concepts, modules, all_, now)
    out_dir = (out or ws.root / "flashcards").expanduser()
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"{out_dir} is a file; give --out a folder for the flashcard files.")
    cur = ws.curriculum
    anki_path, md_path = out_dir / ANKI_FILE, out_dir / MARKDOWN_FILE
    deck = f"{DECK}::{' '.join(cur.title.split())}"  # one line: it is a header
    atomic_write(anki_path, anki_text(cards, deck).encode("utf-8"))
    atomic_write(md_path, markdown(cards, cur.title).encode("utf-8"))
    return {
        "anki": str(anki_path), "markdown": str(md_path), "cards": len(cards),
        "concept_cards": sum(c.kind == "concept" for c in cards),
        "misconception_cards": sum(c.kind == "misconception" for c in cards),
        "selection": ("concepts/modules" if concepts or modules else
                      "all" if all_ else "due or weak concepts; open or recently resolved "
                      "misconceptions"),
        "list": [asdict(c) | {"tags": list(c.tags)} for c in cards],
    }
