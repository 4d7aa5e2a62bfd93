"""A full rebuild of a sound log in one checked pass (issue 19).

`snapshot.from_scratch` reads the log twice: `log.scan` checks the hash chain line by line
and collects the retractions, then `log.iter_checked` parses and checks every event for
the fold. On a sound log (the usual case) this module does the same work with one pass
over the lines:

1. `find_retractions`: the retractions, found with a byte search for a retraction's type
   as llmlab writes it over the whole file in large blocks, not a Python loop per line.
2. `verified`: each line parsed once and checked as both passes check it (newline, JSON
   object with nothing after it, the next id, `prev` the hash of the line before, then
   the event checks of `iter_checked`), hashed, and handed to the fold.

Nothing here words a problem. At the first line that fails any check (a torn tail, an
edited line, a bad payload), or when the two reads disagree on the number of lines or of
retractions (a retraction spelled some other way, which the search missed), `one_pass`
returns None and `from_scratch` runs the two-pass rebuild, which finds the same damage and
says what it is: a damaged log costs one partial pass more and gets exactly the answer it
got before.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from .chain import Damaged, Tip, _plain_observation, check_event, future_limit
from .config import MasteryParams
from .curriculum import Curriculum
from .errors import UserError
from .events import ACTORS, GENESIS, SCHEMA_VERSION, Event
from .state import State, derive

BLOCK = 1 << 20  # bytes read at a time by `find_retractions`
BATCH = 256  # events handed to the fold at a time by `verified`
_RETRACTION = b'"type":"retraction"'  # how llmlab writes a retraction's type


def find_retractions(log_path: Path) -> tuple[dict[str, str], int, int, bool]:
    """target id -> retraction id over the complete lines of the log that hold a
    retraction as llmlab writes it (unchecked: `verified` checks every line, and counts
    the retractions it checks), how many such lines, how many complete lines, and whether
    the file ends with a newline (no torn tail)."""
    retracted: dict[str, str] = {}
    found = lines = 0
    rest = b""
    with open(log_path, "rb") as f:
        while block := f.read(BLOCK):
            buf = rest + block
            cut = buf.rfind(b"\n") + 1
            buf, rest = buf[:cut], buf[cut:]
            i = buf.find(_RETRACTION)
            while i >= 0:
                start, end = buf.rfind(b"\n", 0, i) + 1, buf.find(b"\n", i) + 1
                try:
                    ev = json.loads(buf[start:end])
                    if type(ev) is dict and ev.get("type") == "retraction":
                        found += 1
                        retracted[ev["data"]["target"]] = ev["id"]
                except (ValueError, KeyError, TypeError, RecursionError):
                    pass  # not an event `verified` accepts: the two-pass rebuild words it
                i = buf.find(_RETRACTION, end)
            lines += buf.count(b"\n")
    return retracted, found, lines, not rest


class Verified:
    """What `verified` saw: `ok` once all `count` lines passed, and the tip's numbers."""

    def __init__(self) -> None:
        self.ok = False
        self.offset = self.count = self.last_len = self.retractions = 0
        self.last_hash = GENESIS


def verified(log_path: Path, count: int, seen: Verified, now: datetime | None = None
             ) -> Iterator[list[dict]]:
    """The first `count` lines as parsed events, in lists of up to `BATCH`, each checked
    as `log.scan` and `log.iter_checked` check it; stops at the first that fails
    (`seen.ok` stays False). (Once per event of a rebuild: the checks of an observation as
    llmlab writes it are inline, as in `iter_checked`; any other event goes through
    `check_event`. Lists, not one event at a time: resuming the generator for each event
    cost about 7% of a rebuild.)"""
    scan_once = json.JSONDecoder().scan_once
    sha256 = hashlib.sha256
    future = future_limit(now)
    fromiso, plain, actors = datetime.fromisoformat, _plain_observation, ACTORS
    last, last_t, offset, last_len, n = GENESIS, None, 0, 0, 0
    batch: list[dict] = []
    with open(log_path, "rb", buffering=1 << 20) as f:
        for n, line in enumerate(itertools.islice(f, count), 1):
            try:  # a key missing, a list for an object: not as llmlab writes it
                text = line.decode("utf-8")
                raw, end = scan_once(text, 0)
                if text[end:] != "\n" or raw["id"] != "evt_%06d" % n or raw["prev"] != last:
                    return
                t = None
                if (raw["type"] == "observation" and raw["v"] == SCHEMA_VERSION
                        and raw["actor"] in actors):
                    ts, data = raw["ts"], raw["data"]
                    if type(ts) is str and ts[-1:] == "Z" and type(data) is dict \
                            and plain(data):
                        t = fromiso(ts)
            except (ValueError, StopIteration, RecursionError, KeyError, TypeError):
                return  # (UnicodeDecodeError is a ValueError)
            if t is not None:
                if t > future or last_t is not None and t < last_t:
                    return
                last_t = t
            else:
                if raw.get("v") != SCHEMA_VERSION:
                    raw = Event.from_dict(raw).to_dict()
                problem, last_t = check_event(raw, n, last_t, future)
                if problem:
                    return
                seen.retractions += raw["type"] == "retraction"
            last = sha256(line[:-1]).hexdigest()  # `line_hash`
            offset += len(line)
            last_len = len(line)
            batch.append(raw)
            if len(batch) == BATCH:
                yield batch
                batch = []
    seen.ok = n == count
    seen.offset, seen.count, seen.last_hash, seen.last_len = offset, n, last, last_len
    yield batch


def one_pass(log_path: Path, cur: Curriculum, p: MasteryParams, now: datetime | None = None,
             errors: tuple = ()) -> tuple[State, Tip] | None:
    """The state and tip of a sound log, or None when any line fails a check (or the fold
    raises one of `errors`): then the two-pass rebuild finds and words the damage."""
    retracted, found, count, whole = find_retractions(log_path)
    if not whole or count == 0:
        return None
    seen = Verified()
    try:
        events = itertools.chain.from_iterable(verified(log_path, count, seen, now))
        state = derive(cur, events, p, retracted)
    except (Damaged, UnicodeDecodeError, UserError) + errors:
        return None
    if not seen.ok or seen.retractions != found:
        return None
    return state, Tip(seen.offset, seen.count, seen.last_hash, f"evt_{seen.count:06d}",
                      state.last_ts, seen.last_len)
