"""`llmlab flashcards export`: the Anki file parsed back as Anki's text importer reads it
(https://docs.ankiweb.net/importing/text-files.html), and the card selection."""

from __future__ import annotations

import html
import json
from pathlib import Path

from llmlab import api, flashcards

HEADERS = ["#separator:tab", "#html:true", "#notetype:Basic",
           "#deck:LLM Learning Lab::Mini course for tests", "#columns:GUID\tFront\tBack\tTags",
           "#guid column:1", "#tags column:4"]
NASTY = 'Softmax "just" picks <b>the max</b>\tand\nthat\'s it & done'
TOK = "llmlab:misconception:tokenization.tokens_are_words"  # the catalog entry's one id
FREE = "llmlab:misconception:" + flashcards._claim_ref("softmax", None, NASTY)


def parse_anki(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header lines and rows, split the way Anki splits a tab-separated file with HTML."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and "\r" not in text
    lines = text.split("\n")[:-1]
    head = [ln for ln in lines if ln.startswith("#")]
    assert lines[: len(head)] == head  # headers come first
    rows = [ln.split("\t") for ln in lines[len(head):]]
    return head, rows


def seed(ws) -> None:
    api.observe(ws, "softmax", 0.5, "half right", at="2026-03-01T09:00:00Z")
    api.open_misconception(ws, "tokenization", catalog="tokens_are_words",
                           quote="each word is one token", at="2026-03-01T09:05:00Z")
    api.open_misconception(ws, "softmax", claim=NASTY, at="2026-03-01T09:10:00Z")


def export(invoke, *args, out: Path) -> dict:
    r = invoke("flashcards", "export", "--json", "--out", str(out), *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_anki_file_imports_cleanly(ws, invoke, tmp_path):
    seed(ws)
    res = export(invoke, out=tmp_path / "cards")
    head, rows = parse_anki(Path(res["anki"]))
    assert head == HEADERS
    assert len(rows) == res["cards"] == 3
    for row in rows:
        assert len(row) == 4, row  # GUID, Front, Back, Tags: no stray separator in a field
        guid, front, back, tags = row
        assert front and back and guid.startswith("llmlab:")
        assert not front.startswith('"') and not back.startswith('"')  # no CSV quoting
        for f in (front, back):
            # only our <br> and escaped entities: no raw markup from the curriculum or log
            assert "<" not in f.replace("<br>", "")
        assert all(" " not in t for t in tags.split(" ")) and "llmlab" in tags.split()
    assert len({r[0] for r in rows}) == len(rows)  # stable, unique GUIDs
    kinds = {r[0].split(":")[1] for r in rows}
    assert kinds == {"concept", "misconception"}


def test_misconception_cards_carry_the_correction(ws, invoke, tmp_path):
    seed(ws)
    res = export(invoke, out=tmp_path / "cards")
    _, rows = parse_anki(Path(res["anki"]))
    cur = ws.curriculum
    by_guid = {r[0]: r for r in rows}
    tok = by_guid[TOK]
    assert html.escape("A token is a word.", quote=True) in tok[1]
    correction = cur.misconception("tokenization", "tokens_are_words").correction
    assert html.escape(flashcards.short(correction), quote=True) in tok[2]
    assert len(tok[2]) < 400  # short answers
    assert "concept::tokenization" in tok[3].split() and "open" in tok[3].split()
    # a free-text claim: escaped, one line, refuted with the concept's mechanism
    free = by_guid[FREE]
    assert "&quot;just&quot; picks &lt;b&gt;the max&lt;/b&gt; and<br>that&#x27;s it &amp; done" \
        in free[1]
    assert html.escape(flashcards.short(cur.concepts["softmax"].summary), quote=True) in free[2]
    md = Path(res["markdown"]).read_text()
    assert cur.misconception("tokenization", "tokens_are_words").correction in md
    assert "&lt;b&gt;the max&lt;/b&gt;" in md and "<b>the max" not in md


def test_concept_card_is_behaviour_to_mechanism(ws, invoke, tmp_path):
    seed(ws)
    res = export(invoke, out=tmp_path / "cards")
    _, rows = parse_anki(Path(res["anki"]))
    (card,) = [r for r in rows if r[0] == "llmlab:concept:softmax"]
    c = ws.curriculum.concepts["softmax"]
    assert c.behaviours[0] in card[1] and flashcards.short(c.summary) in card[2]
    assert "weak" in card[3].split()
    assert res["concept_cards"] == 1 and res["misconception_cards"] == 2
    assert [c["guid"] for c in res["cards_written"]] == [r[0] for r in rows]


def test_selection_options(ws, invoke, tmp_path):
    seed(ws)
    res = export(invoke, "--concept", "kv_cache", out=tmp_path / "a")
    assert [c["guid"] for c in res["cards_written"]] == ["llmlab:concept:kv_cache"]
    res = export(invoke, "--module", "basics", out=tmp_path / "b")
    guids = [c["guid"] for c in res["cards_written"]]
    assert guids[:2] == ["llmlab:concept:tokenization", "llmlab:concept:softmax"]
    # the logged misconceptions of those concepts, and no duplicate of the logged catalog one
    assert set(guids[2:]) == {TOK, FREE}
    res = export(invoke, "--all", out=tmp_path / "c")
    n_concepts = len(ws.curriculum.concepts)
    assert res["concept_cards"] == n_concepts and res["misconception_cards"] == 2
    r = invoke("flashcards", "export", "--concept", "softmx")
    assert r.returncode == 1 and "Did you mean 'softmax'" in r.stderr
    r = invoke("flashcards", "export", "--module", "nope")
    assert r.returncode == 1 and "Unknown module 'nope'" in r.stderr


def test_default_out_dir_and_empty_selection(ws, invoke):
    r = invoke("flashcards", "export")
    assert r.returncode == 0 and "Nothing is due or weak yet" in r.stdout
    head, rows = parse_anki(ws.root / "flashcards" / "llmlab-flashcards.txt")
    assert head == HEADERS and rows == []


def test_resolved_misconceptions_age_out(ws):
    from datetime import timedelta

    from llmlab.core import parse_ts

    seed(ws)
    api.resolve_misconception(ws, "evt_000002", "now says tokens are byte sequences",
                              at="2026-03-02T09:00:00Z")
    t = parse_ts("2026-03-02T09:00:00Z")
    soon = [c.guid for c in flashcards.select(ws, now=t + timedelta(days=3))]
    later = [c.guid for c in flashcards.select(ws, now=t + timedelta(days=45))]
    assert TOK in soon
    assert TOK not in later
    assert FREE in later  # still open


def test_field_escaping():
    assert flashcards.field("a\tb\r\nc <x> & \"q\"") == "a b<br>c &lt;x&gt; &amp; &quot;q&quot;"


def test_short_answers_and_varied_forms(ws):
    assert flashcards.short("One. Two. " + "x" * 400 + ".") == "One. Two."
    assert len(flashcards.short("y" * 500)) == 280
    seed(ws)
    fronts = {c.front.split("\n")[0] for c in flashcards.select(ws, all_=True)
              if c.kind == "misconception"}
    fronts |= {flashcards._misconception_card(ws.curriculum, "softmax", f"softmax:{i}", "c",
                                              "d", "open").front.split("\n")[0]
               for i in range(12)}
    assert len({f.split(" ")[0] for f in fronts}) == len(flashcards.FORMS)  # every form is used


def test_anki_imports_the_file_and_a_reimport_updates(ws, invoke, tmp_path):
    """The real Anki library imports the export: every card once, and importing a later
    export (a misconception resolved since) updates the notes instead of adding copies."""
    import pytest

    anki = pytest.importorskip("anki.collection")
    from anki.import_export_pb2 import ImportCsvRequest

    seed(ws)
    api.observe(ws, "kv_cache", 0.4, "unsure", at="2026-03-01T09:20:00Z")
    first = export(invoke, "--all", out=tmp_path / "a")
    col = anki.Collection(str(tmp_path / "c.anki2"))
    try:
        def load(path: str):
            meta = col.get_csv_metadata(path, None)
            return col.import_csv(ImportCsvRequest(path=path, metadata=meta)).log

        log = load(first["anki"])
        assert len(log.new) == first["cards"] == col.note_count()
        guids = {col.get_note(n).guid for n in col.find_notes("")}
        assert guids == {c["guid"] for c in first["cards_written"]}
        api.resolve_misconception(ws, "evt_000002", "tokens are byte sequences",
                                  at="2026-03-02T09:00:00Z")
        second = export(invoke, "--all", out=tmp_path / "b")
        log = load(second["anki"])
        assert len(log.new) == 0 and len(log.updated) >= 1
        assert col.note_count() == first["cards"]
        (nid,) = col.find_notes(f'"guid:{TOK}"') or [n for n in col.find_notes("")
                                                        if col.get_note(n).guid == TOK]
        assert "resolved" in col.get_note(nid).tags
    finally:
        col.close()
