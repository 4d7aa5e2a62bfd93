"""Regenerate the shipped tuning data: `python -m llmlab.lab.data.generate`.

Writes, next to this file (deterministic; the files are committed, this is how they were made):

  json_task_train.jsonl    160 {"prompt", "response"} items; every response is the fixed
  json_task_heldout.jsonl   40 JSON format {"answer": ...}; the prompts never ask for JSON,
                            so the format can only come from fine-tuning
  preferences_train.jsonl   96 {"prompt", "chosen", "rejected"} pairs: a concise answer
  preferences_heldout.jsonl 32 vs a rambling one that says the same thing
(general_text.txt, the forgetting text, is written by hand and not generated.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Spain", "Madrid"),
            ("Germany", "Berlin"), ("Canada", "Ottawa"), ("Australia", "Canberra"),
            ("Egypt", "Cairo"), ("Kenya", "Nairobi"), ("Brazil", "Brasília"), ("Peru", "Lima"),
            ("Norway", "Oslo"), ("Sweden", "Stockholm"), ("Greece", "Athens"),
            ("Portugal", "Lisbon"), ("Ireland", "Dublin"), ("Poland", "Warsaw"),
            ("Austria", "Vienna"), ("Mexico", "Mexico City"), ("India", "New Delhi"),
            ("China", "Beijing"), ("Russia", "Moscow"), ("Argentina", "Buenos Aires"),
            ("Chile", "Santiago"), ("Thailand", "Bangkok"), ("Vietnam", "Hanoi"),
            ("Turkey", "Ankara"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"),
            ("Hungary", "Budapest")]
OPPOSITES = [("hot", "cold"), ("big", "small"), ("fast", "slow"), ("up", "down"),
             ("early", "late"), ("happy", "sad"), ("light", "dark"), ("open", "closed"),
             ("full", "empty"), ("strong", "weak"), ("rich", "poor"), ("hard", "soft"),
             ("wet", "dry"), ("old", "young"), ("loud", "quiet"), ("high", "low"),
             ("thick", "thin"), ("clean", "dirty"), ("first", "last"), ("true", "false")]
PLURALS = [("mouse", "mice"), ("child", "children"), ("tooth", "teeth"), ("foot", "feet"),
           ("person", "people"), ("box", "boxes"), ("city", "cities"), ("knife", "knives"),
           ("leaf", "leaves"), ("woman", "women"), ("goose", "geese"), ("bus", "buses"),
           ("baby", "babies"), ("wolf", "wolves"), ("cactus", "cacti"), ("sheep", "sheep"),
           ("fish", "fish"), ("glass", "glasses"), ("hero", "heroes"), ("man", "men")]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


def sft_items(rng: random.Random) -> list[dict]:
    items = []
    for country, city in CAPITALS:
        q = rng.choice(["What is the capital of {}?", "Which city is the capital of {}?",
                        "Name the capital of {}."]).format(country)
        items.append((q, city))
    for w, o in OPPOSITES:
        q = rng.choice(["What is the opposite of '{}'?", "Give the opposite of the word '{}'.",
                        "Which word means the opposite of '{}'?"]).format(w)
        items.append((q, o))
    for w, p in PLURALS:
        q = rng.choice(["What is the plural of '{}'?", "Write the plural form of '{}'."]).format(w)
        items.append((q, p))
    for i, d in enumerate(DAYS):
        items.append((f"Which day comes after {d}?", DAYS[(i + 1) % 7]))
        items.append((f"Which day comes before {d}?", DAYS[(i - 1) % 7]))
    for i, m in enumerate(MONTHS):
        items.append((f"Which month comes after {m}?", MONTHS[(i + 1) % 12]))
    seen = {q for q, _ in items}
    while len(items) < 200:
        kind = rng.randrange(4)
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        if kind == 0:
            q, ans = f"What is {a} + {b}?", a + b
        elif kind == 1:
            q, ans = f"What is {a} minus {b}?", a - b
        elif kind == 2:
            a, b = rng.randint(2, 12), rng.randint(2, 12)
            q, ans = f"What is {a} times {b}?", a * b
        else:
            h = rng.randint(2, 9)
            q, ans = f"How many minutes are in {h} hours?", 60 * h
        if q not in seen:
            seen.add(q)
            items.append((q, ans))
    rng.shuffle(items)
    return [{"prompt": q, "response": json.dumps({"answer": a}, ensure_ascii=False)}
            for q, a in items]


OPENERS = ["What a great question! There are many interesting things to say about this, and "
           "it is worth taking a moment to think it through carefully before answering.",
           "Thank you so much for asking. This is something a lot of people wonder about, and "
           "I am happy to walk you through it step by step so that everything is clear.",
           "Well, let me think about this for a moment, because it is always important to "
           "consider the question from several different angles before giving an answer.",
           "That is a really interesting thing to ask about! Before I answer, I want to say "
           "that questions like this one are a wonderful way to learn something new."]
CLOSERS = ["I hope this helps, and please do not hesitate to ask if you have any other "
           "questions at all!", "Let me know if you would like me to explain any part of "
           "this in more detail, because I am always happy to help.", "I hope that answers "
           "your question, and I wish you the very best with everything you are working on!",
           "Feel free to reach out again any time if anything else comes up, since learning "
           "is a journey and every question matters."]
BRIDGES = ["After considering all of this carefully,", "So, to put it simply and directly,",
           "Taking everything into account,", "With all of that in mind,"]


def pref_items(rng: random.Random) -> list[dict]:
    qa = []
    for country, city in CAPITALS:
        qa.append((f"What is the capital of {country}?", f"The capital of {country} is {city}."))
    for w, o in OPPOSITES:
        qa.append((f"What is the opposite of '{w}'?", f"The opposite of '{w}' is '{o}'."))
    for w, p in PLURALS:
        qa.append((f"What is the plural of '{w}'?", f"The plural of '{w}' is '{p}'."))
    for i, m in enumerate(MONTHS):
        qa.append((f"Which month comes after {m}?", f"{MONTHS[(i + 1) % 12]} comes after {m}."))
    for i, d in enumerate(DAYS):
        qa.append((f"Which day comes after {d}?", f"{DAYS[(i + 1) % 7]} comes after {d}."))
    seen = {q for q, _ in qa}
    while len(qa) < 128:
        a, b = rng.randint(2, 60), rng.randint(2, 40)
        q = f"What is {a} + {b}?"
        if q not in seen:
            seen.add(q)
            qa.append((q, f"{a} + {b} = {a + b}."))
    rng.shuffle(qa)
    out = []
    for q, short in qa:
        long = " ".join([rng.choice(OPENERS), rng.choice(BRIDGES),
                         short[0].lower() + short[1:] if short[0].isupper() and not
                         short.split()[0] in DAYS + MONTHS else short, rng.choice(CLOSERS)])
        out.append({"prompt": q, "chosen": short, "rejected": long})
    return out


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")


def main() -> None:
    sft = sft_items(random.Random(14))
    _write(HERE / "json_task_train.jsonl", sft[:160])
    _write(HERE / "json_task_heldout.jsonl", sft[160:])
    pref = pref_items(random.Random(41))
    _write(HERE / "preferences_train.jsonl", pref[:96])
    _write(HERE / "preferences_heldout.jsonl", pref[96:])


if __name__ == "__main__":
    main()
