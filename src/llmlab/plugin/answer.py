"""Did the learner just answer a probe? The Stop hook's test, from two texts alone.

A reminder that "your last answer was not recorded" is only useful after a substantive
answer to a content question. It is noise after an acknowledgement ("Yes, let's go" to
"Shall we start there?"), small talk, a request about the session ("can we take a
break?") or a question of the learner's own ("what's a logit?"). The rules below are
measured on a labelled set of tutor/learner turn pairs (tests/fixtures/hooks/
turn_pairs.jsonl; precision and recall in BENCHMARKS.md). Standard library only: the
hook runs on every turn.
"""

from __future__ import annotations

import re

TAIL = 600  # the end of the tutor's message holds the question it asked

# The tutor asked for content: a question, or an imperative to explain/predict.
ASKS = re.compile(
    r"\b(why|how|what|which|where|when|predict|estimate|guess|explain|describe|compute|"
    r"calculate|expect|think|tell me|walk me through|give me|name|would you|can you|is it|"
    r"does|do you|will)\b", re.IGNORECASE)
IMPERATIVE = re.compile(r"(?:^|[.!:]\s+)(explain|describe|predict|estimate|compute|calculate|"
                        r"tell me|walk me through|give me|name|write down|work out)\b",
                        re.IGNORECASE)
# ...or asked permission, offered something, or made conversation.
OFFER = re.compile(
    r"^\W*(shall|should) (we|i)\b|\bready\b|\b(do|would) you (want|like|prefer)\b|"
    r"\bwant to (try|start|continue|do|go|look)\b|\bdoes that make sense\b|"
    r"\bany (questions|thoughts)\b|(^|,\s*)(ok|okay|alright|all good|good)\?\s*$|"
    r"\bhappy with\b|"
    r"\bsound(s)? good\b|\bhow are you\b|\bhow was (your|the)\b|\bhow's (the|your|it)\b|"
    r"\bdid you have\b|\bhow much time\b|\bwelcome back\b|\bcoffee\b|\bwhen you('ve| have) "
    r"(read|finished|done)\b|\bmove on\b|\bnext thing you want\b|\bwould you like\b|"
    r"\bhow are things\b|\bdid you (manage|sleep|get some|have a)\b|\bsame time\b",
    re.IGNORECASE)

ACK_WORDS = frozenset("""
yes yeah yep yup ya ok okay k sure ready done thanks thank you thx please go ahead lets let's
let us do it sounds sound good great nice cool alright right fine perfect got makes make
sense all clear no nope continue start go on absolutely definitely of course course
that would help an example session today awesome excellent love to i am i'm a the and
""".split())
DUNNO = re.compile(r"\b(don'?t know|no idea|not sure|no clue|pass)\b", re.IGNORECASE)
# A request about the session rather than an answer: strong words alone, or a request
# opener with a word about the plan.
META_STRONG = re.compile(
    r"\b(break|dashboard|progress|tomorrow|next time|stop here|have to go|got to go|gotta go|"
    r"brb|back in \d+|pick this up|hold on|one sec|undo|whatever you think)\b", re.IGNORECASE)
REQUEST = re.compile(r"^\W*(actually,? |ok,? |so,? )?(can we|could we|let'?s|please|wait|can you|"
                     r"could you|i'?d rather|i would rather|i want to|i wanna)\b", re.IGNORECASE)
PLAN = re.compile(r"\b(skip|instead|switch|record|module|lab|continue|move on|shorter|longer|"
                  r"today|open|show|slower|faster|again)\b", re.IGNORECASE)
ASKING = re.compile(
    r"^\W*(sorry|wait|what|what's|whats|where|who|how (do|does|did|would|should|can) "
    r"(i|you|we|people|other|one)|how (many|much) .* (should|do|would|can) (i|we)|can you|"
    r"could you|would you|should i|do i|is this|is there|are there|are we|which one|"
    r"why is that|why would)\b", re.IGNORECASE)
HELP = re.compile(r"\b(give me a hint|what do you mean|what exactly|explain what|"
                  r"the formula again|what's the difference|what is the difference)\b",
                  re.IGNORECASE)
HEDGE = re.compile(r"^\W*((hmm+|um+|uh+|well|ok|so),?\s+)?(is it|maybe|because|so|i think|"
                   r"i guess|probably|perhaps|it's|it is|would it|does it|could it)\b",
                   re.IGNORECASE)
SENTENCE_END = re.compile(r"[.!?:](?=\s)|\n")  # not the point in "0.6"
WORD = re.compile(r"[a-z0-9']+", re.IGNORECASE)


def last_question(probe: str) -> str:
    """The tutor's last question (the sentence ending in its last '?'), or ''."""
    tail = probe.strip()[-TAIL:]
    end = tail.rfind("?")
    if end < 0:
        return ""
    bounds = list(SENTENCE_END.finditer(tail, 0, end))
    return tail[bounds[-1].end() if bounds else 0:end + 1].strip()


def content_probe(probe: str) -> bool:
    """The tutor asked for an answer about the material, not for permission or chat."""
    q = last_question(probe)
    if q:
        return not OFFER.search(q) and bool(ASKS.search(q) or len(WORD.findall(q)) >= 4)
    tail = probe.strip()[-TAIL:]
    return bool(IMPERATIVE.search(tail[-300:])) and not OFFER.search(tail[-300:])


def kind_of_reply(reply: str) -> str:
    """`answer`, `acknowledgement`, `meta` (about the session) or `question`."""
    text = " ".join(reply.split())
    words = [w.lower() for w in WORD.findall(text)]
    if not words:
        return "acknowledgement"
    if DUNNO.search(text) and len(words) <= 8:
        return "answer"  # "no idea" to a probe is evidence too (quality 0)
    if len(words) <= 16 and (META_STRONG.search(text)
                             or (REQUEST.search(text) and PLAN.search(text))):
        return "meta"
    if HELP.search(text) or (text.rstrip().endswith("?") and ASKING.search(text)
                             and not HEDGE.search(text)):
        return "question"
    if len(words) <= 8 and not any(c.isdigit() for c in text) \
            and sum(w in ACK_WORDS for w in words) >= 0.7 * len(words):
        return "acknowledgement"
    return "answer"


def is_answer(probe: str | None, reply: str | None) -> bool:
    """The learner's `reply` is a substantive answer to a content question in `probe`."""
    if not probe or not reply:
        return False
    return content_probe(probe) and kind_of_reply(reply) == "answer"
