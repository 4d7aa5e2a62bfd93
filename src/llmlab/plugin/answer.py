"""Did the learner just answer a probe? The Stop hook's test, from two texts alone.

A reminder that "your last answer was not recorded" is only useful after a substantive
answer to a content question. It is noise after an acknowledgement ("Yes, let's go" to
"Shall we start there?"), small talk, a request about the session ("can we take a
break?") or a question of the learner's own ("what's a logit?"). The rules are few and
general: the tutor asked a wh-question or a yes/no question with substance (a short one is a
check on the learner), not an offer; the reply is not a request or an interruption (in any
clause), not a question that proposes nothing, not a short run of acknowledgement words.
Measured on labelled tutor/learner turn pairs (tests/fixtures/hooks/turn_pairs*.jsonl;
precision and recall, in-sample and held out, in BENCHMARKS.md). Standard library only: the
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
    r"\bhappy with\b|\bhow (did|does|is|are|was|were) (the|your) [^?]{0,40}\b(go|going|went)\b|"
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
maybe why not
""".split())
DUNNO = re.compile(r"\b(don'?t (really )?know|no idea|not sure|no clue|pass)\b", re.IGNORECASE)
# A reply about the session rather than the material is a request or an announcement, in
# any clause: "..., can we resume after lunch?", "skip this one please", "I have to go".
# ("let's say", "let me think" preface an answer and do not count.)
REQUEST = re.compile(
    r"(?:^|[.,;:!?]\s*|\b(?:and|but|so|actually|ok|okay|wait)\s+)"
    r"(?:can we|could we|can you|could you|would you|let'?s(?! say| see| think| assume)|"
    r"let me(?! think| see| guess| try)|please|i'?d (?:rather|like to|prefer)|i (?:need|have|want) to|"
    r"i wanna|i'?m done|skip|stop|go back|take a break|pick (?:this|it) up|come back to)\b",
    re.IGNORECASE)
PLEASE = re.compile(r"\bplease\b", re.IGNORECASE)
# Interruptions: idioms for stepping away, whatever the sentence around them.
AWAY = re.compile(r"\b(brb|back in \d+|one sec|one minute|hold on|gotta go|got to go|have to go|"
                  r"next time|tomorrow|whatever you think)\b", re.IGNORECASE)
# A question back is a question that proposes nothing; a hedged answer proposes something
# ("is it because...?", "maybe they share style?").
HEDGE = re.compile(r"^\W*((hmm+|um+|uh+|well|ok|so),?\s+)?(is it|maybe|because|so|i think|"
                   r"i guess|probably|perhaps|it's|it is|would it|does it|could it)\b|"
                   r"\bbecause\b", re.IGNORECASE)
HELP = re.compile(r"\b(give me a hint|what do you mean|what exactly|explain what|remind me|"
                  r"the formula again|what's the difference|what is the difference|"
                  r"stand for)\b", re.IGNORECASE)
WH = re.compile(r"^\W*(?:\w+,?\s+)?(why|how|what|what's|which|where|when|who)\b", re.IGNORECASE)
SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")  # not the point in "0.6"; a colon introduces
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
    """The tutor asked for an answer about the material, not for permission or chat.

    A content question is a wh-question, or a yes/no question with substance (six words or
    more: "Does chunk size matter for retrieval quality?"); a short yes/no question ("Would a
    diagram help here?", "Ready?") is a check on the learner, and OFFER names the longer
    offers and social questions."""
    q = last_question(probe)
    if q:
        if OFFER.search(q):
            return False
        if WH.search(q) or ASKS.search(q) and len(WORD.findall(q)) >= 6:
            return True
        return len(WORD.findall(q)) >= 6
    tail = probe.strip()[-TAIL:]
    return bool(IMPERATIVE.search(tail[-300:])) and not OFFER.search(tail[-300:])


def kind_of_reply(reply: str) -> str:
    """`answer`, `acknowledgement`, `meta` (about the session) or `question`.

    In order: an "I don't know" is an answer (evidence too, quality 0); a short reply with a
    request or an interruption is about the session; a reply that asks without proposing
    anything is a question back; a short reply of acknowledgement words is an
    acknowledgement; anything else answers."""
    text = " ".join(reply.split())
    words = [w.lower() for w in WORD.findall(text)]
    if not words:
        return "acknowledgement"
    if DUNNO.search(text) and len(words) <= 8:
        return "answer"
    if len(words) <= 16 and (REQUEST.search(text) or AWAY.search(text)):
        return "meta"
    asks = text.rstrip().endswith("?") and not HEDGE.search(text) and not (
        len(words) <= 3 and any(c.isdigit() for c in text))  # "0.8?" is a tentative answer
    if HELP.search(text) or asks:
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
