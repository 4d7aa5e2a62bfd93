"""tokens: how text becomes tokens, what that costs per language, and letter counting."""

from __future__ import annotations

import re
from functools import cache

from ..experiment import Outcome, Param, Quantity, Spec, common

# One sentence, in several languages, plus source code: the same content, different bills.
SAMPLES = {
    "English": "The weather is nice today and I would like to go for a walk in the park.",
    "German": "Das Wetter ist heute schön und ich würde gern im Park spazieren gehen.",
    "French": "Il fait beau aujourd'hui et j'aimerais me promener dans le parc.",
    "Spanish": "Hoy hace buen tiempo y me gustaría dar un paseo por el parque.",
    "Hindi": "आज मौसम अच्छा है और मैं पार्क में टहलना चाहूँगा।",
    "Japanese": "今日は天気が良いので、公園を散歩したいです。",
    "Python": "def mean(xs: list[float]) -> float:\n    return sum(xs) / len(xs) if xs else 0.0",
}
# (word, letter): the counting trials, in order; the true count is word.count(letter).
WORDS = [("strawberry", "r"), ("banana", "a"), ("mississippi", "s"), ("bookkeeper", "e"),
         ("committee", "t"), ("occurrence", "c"), ("parallel", "l"), ("assessment", "s"),
         ("cucumber", "u"), ("referee", "e"), ("lemon", "m"), ("pepper", "p"),
         ("success", "s"), ("tomorrow", "o"), ("engineer", "e"), ("elephant", "e"),
         ("raspberry", "r"), ("possession", "s"), ("bubble", "b"), ("giraffe", "f"),
         ("planet", "a"), ("grammar", "m"), ("kangaroo", "a"), ("rocket", "k"),
         ("umbrella", "l"), ("dinner", "n"), ("hippopotamus", "p"), ("balloon", "o"),
         ("necessary", "s"), ("window", "w"), ("butter", "t"), ("cherry", "r"),
         ("coffee", "e"), ("pizza", "z"), ("address", "d"), ("millennium", "n")]
NUMBER_WORDS = {"zero": 0, "none": 0, "once": 1, "one": 1, "twice": 2, "two": 2, "three": 3,
                "thrice": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
                "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
                "eighteen": 18, "nineteen": 19, "twenty": 20}
ANSWER_TOKENS = 32  # room for "The letter 'r' appears 12 times in ..." written digit by digit

SPEC = Spec(
    name="tokens",
    question="How does text split into tokens, what does that cost across languages, and why "
             "do models miscount letters?",
    concepts=("tokenization", "token_economics", "context_window"),
    params=(
        Param("text", str, "", "Extra text to tokenize and show piece by piece"),
        Param("trials", int, 24, "Letter-counting trials (words) per condition; more words "
              "give narrower intervals", low=1, high=len(WORDS)),
        *common(),
    ),
    quantities=(
        Quantity("tokens_per_word_english", "tokens/word", "Tokens per word of the English sentence", concept='token_economics'),
        Quantity("hindi_vs_english_cost", "ratio", "Tokens of the Hindi sentence / tokens of the English one", concept='token_economics'),
        Quantity("strawberry_tokens", "tokens", "Tokens in ' strawberry' (with its leading space)", concept='tokenization'),
        Quantity("plain_accuracy", "fraction", "Letter counts right when asked plainly", concept='tokenization', depends_on=("trials",)),
        Quantity("spelled_accuracy", "fraction", "Letter counts right after the model spells the word out (over the "
                 "trials where it spelled the word correctly)", concept='tokenization',
                 depends_on=("trials",)),
        Quantity("given_spelling_accuracy", "fraction", "Letter counts right when the prompt spells the word one letter per line", concept='tokenization', depends_on=("trials",)),
    ),
    seconds=40,
)


@cache
def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's bytes_to_unicode table used by byte-level BPE tokenizers."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def split(tok, text: str) -> dict:
    """Token ids, their exact bytes and readable pieces. The bytes join back to the text."""
    ids = tok(text, add_special_tokens=False).input_ids
    dec = _byte_decoder()
    toks = tok.convert_ids_to_tokens(ids)
    if all(ch in dec for t in toks for ch in t):  # byte-level BPE (GPT-2, Llama 3, SmolLM2)
        raw = [bytes(dec[ch] for ch in t) for t in toks]
    else:  # other tokenizers (e.g. SentencePiece): each token decoded on its own
        raw = [tok.decode([i]).encode("utf-8") for i in ids]
    pieces = [b.decode("utf-8", errors="replace") for b in raw]
    return {"ids": ids, "bytes": raw, "pieces": pieces}


_NUM = r"\d+|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True))


def parse_count(text: str) -> int | None:
    """The count an answer gives: a number before "time(s)" if any, else the first number
    (digits or a word) that is not a list index; None when there is none."""
    t = text.lower()
    m = re.search(rf"\b({_NUM})\s+times?\b", t) or re.search(r"\b(once|twice|thrice)\b", t)
    if not m:
        t = re.sub(r"(?m)^\s*\d+[.)]\s", " ", t)  # "1. s" numbers a list; it is no answer
        m = re.search(rf"\b({_NUM})\b", t)
    if not m:
        return None
    g = m.group(1)
    return int(g) if g.isdigit() else NUMBER_WORDS[g]


def spelled_word(text: str) -> str:
    """The letters a spelling-out answer lists, joined and lowercased ("" if it lists none).

    One letter per line (optionally numbered or bulleted), or letters joined by hyphens,
    commas or spaces ("B-A-N-A-N-A")."""
    letters = []
    for line in text.splitlines():
        item = re.sub(r"^\s*(\d+[.):]|[-*\u2022])\s*", "", line).strip().strip("'\"`.,*")
        if len(item) == 1 and item.isalpha():
            letters.append(item.lower())
    if len(letters) >= 2:
        return "".join(letters)
    m = re.search(r"(?<![a-z])[a-z](?:[\s,\-]+[a-z](?![a-z]))+", text.lower())
    return re.sub(r"[^a-z]", "", m.group(0)) if m else ""


def _chat(tok, model, conversations: list[list[dict]], max_new_tokens: int) -> list[str]:
    """Greedy replies to several chats at once (left-padded batch)."""
    import torch

    prompts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False)
               for m in conversations]
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    side, tok.padding_side = tok.padding_side, "left"
    try:
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        enc = tok(prompts, return_tensors="pt", add_special_tokens=False,
                  padding=True).to(model.device)  # (batch, seq)
    finally:
        tok.padding_side = side
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=pad)  # (batch, seq + new)
    return [tok.decode(o[enc.input_ids.shape[1]:], skip_special_tokens=True) for o in out]


def _count_trials(ctx, words: list[tuple[str, str]]) -> list[dict]:
    """Each word asked three ways: plainly; after the model spells it; with the spelling given."""
    tok, model = ctx.model.tokenizer, ctx.model.model
    rows = []
    for start in ctx.track(range(0, len(words), 8), "letter counting (8 words a step)"):
        chunk = words[start:start + 8]
        ask = [f"How many times does the letter '{l}' appear in the word '{w}'? "
               "Answer with a number." for w, l in chunk]
        spell_q = [f"Spell the word '{w}' one letter per line." for w, _ in chunk]
        follow = [f"Now count: how many times does the letter '{l}' appear in that list? "
                  "Answer with a number." for _, l in chunk]
        given_q = ["Here is a word spelled one letter per line:\n" + "\n".join(w)
                   + f"\nHow many times does the letter '{l}' appear? Answer with a number."
                   for w, l in chunk]
        plain = _chat(tok, model, [[{"role": "user", "content": q}] for q in ask], ANSWER_TOKENS)
        spelled = _chat(tok, model, [[{"role": "user", "content": q}] for q in spell_q],
                        4 * max(len(w) for w, _ in chunk) + 32)
        after = _chat(tok, model, [[{"role": "user", "content": q},
                                    {"role": "assistant", "content": sp},
                                    {"role": "user", "content": f}]
                                   for q, sp, f in zip(spell_q, spelled, follow)], ANSWER_TOKENS)
        given = _chat(tok, model, [[{"role": "user", "content": q}] for q in given_q],
                      ANSWER_TOKENS)
        for (w, l), a, sp, b, g in zip(chunk, plain, spelled, after, given):
            ok = spelled_word(sp) == w
            rows.append({"word": w, "letter": l, "truth": w.count(l),
                         "plain_answer": a.strip(), "plain": parse_count(a),
                         "spelling": sp.strip(), "spelled_ok": ok,
                         "spelled_answer": b.strip(), "spelled": parse_count(b) if ok else None,
                         "given_answer": g.strip(), "given": parse_count(g)})
    return rows


def _accuracy(counting: list[dict]) -> tuple[list[dict], str]:
    """Per condition: right / trials with a Wilson interval; and a summary the data support."""
    from collections import Counter

    from ..stats import wilson

    n_all = len(counting)
    most, most_n = Counter(c["truth"] for c in counting).most_common(1)[0]
    base = most_n / n_all  # always answering the most common true count
    conds = []
    for key, label, rows in (("plain", "asked plainly", counting),
                             ("spelled", "after the model spelled the word",
                              [c for c in counting if c["spelled_ok"]]),
                             ("given", "with the spelling given", counting)):
        k, n = sum(c[key] == c["truth"] for c in rows), len(rows)
        lo, hi = wilson(k, n)
        conds.append({"condition": key, "label": label, "right": k, "trials": n,
                      "accuracy": k / n if n else 0.0, "ci_low": lo, "ci_high": hi,
                      "unparsed": sum(c[key] is None for c in rows)})
    beats = [c for c in conds if c["trials"] and c["ci_low"] > base]
    text = ("; ".join(f"{c['label']} {c['right']}/{c['trials']} ({c['accuracy']:.0%}, 95% CI "
                      f"{c['ci_low']:.0%}-{c['ci_high']:.0%})" for c in conds)
            + f". Answering {most} for every word would score {base:.0%}. ")
    if not beats:
        text += ("No condition is reliably better than that guess: on these words this model "
                 "cannot count letters in any condition.")
    else:
        text += ("Better than the guess (interval above it): "
                 + ", ".join(c["label"] for c in beats) + ".")
    plain, spelled, given = conds
    for c in (spelled, given):
        if c["trials"] and c["ci_low"] > plain["ci_high"]:
            text += f" Accuracy {c['label']} is above the plain accuracy (intervals apart)."
        elif c["trials"] and c["ci_high"] < plain["ci_low"]:
            text += f" Accuracy {c['label']} is below the plain accuracy (intervals apart)."
    if all(not (c["ci_low"] > plain["ci_high"] or c["ci_high"] < plain["ci_low"])
           for c in (spelled, given) if c["trials"]):
        text += " The intervals overlap: these trials show no difference between conditions."
    return conds, text


def run(ctx, p: dict) -> Outcome:
    tok, model = ctx.model.tokenizer, ctx.model.model
    rows = []
    for lang, text in SAMPLES.items():
        s = split(tok, text)
        words = len(text.split()) if lang not in ("Japanese",) else None
        rows.append({"language": lang, "characters": len(text), "words": words,
                     "tokens": len(s["ids"]),
                     "tokens_per_word": round(len(s["ids"]) / words, 3) if words else None,
                     "tokens_per_char": round(len(s["ids"]) / len(text), 3)})
    english = next(r for r in rows if r["language"] == "English")["tokens"]
    for r in rows:
        r["cost_vs_english"] = round(r["tokens"] / english, 3)
    shown = {}
    for text in ([p["text"]] if p["text"] else []) + ["strawberry", " strawberry", "unbelievable"]:
        s = split(tok, text)
        shown[text] = s
    counting = _count_trials(ctx, WORDS[:p["trials"]])
    conds, verdict = _accuracy(counting)
    plain, spelled, given = conds
    hindi = next(r for r in rows if r["language"] == "Hindi")
    ctx_len = getattr(model.config, "max_position_embeddings", "?")
    metrics = {
        "tokens_per_word_english": english / len(SAMPLES["English"].split()),
        "hindi_vs_english_cost": hindi["cost_vs_english"],
        "strawberry_tokens": len(shown[" strawberry"]["ids"]),
        "plain_accuracy": plain["accuracy"],
        "spelled_accuracy": spelled["accuracy"],
        "given_spelling_accuracy": given["accuracy"],
        "counting_trials": len(counting),
        "spelled_trials": spelled["trials"],
        "unparsed_answers": sum(c["unparsed"] for c in conds),
    }
    pieces = [{"text": t, "n_tokens": len(s["ids"]), "ids": s["ids"], "pieces": s["pieces"]}
              for t, s in shown.items()]
    summary = [
        f"English: {metrics['tokens_per_word_english']:.2f} tokens/word; Hindi costs "
        f"{metrics['hindi_vs_english_cost']:.2f}x the English tokens for the same sentence.",
        "Tokens per character: " + ", ".join(f"{r['language']} {r['tokens_per_char']:.2f}"
                                              for r in rows) + "; the bill, the latency and "
        f"the {ctx_len}-token context window all count tokens, so the same sentence costs "
        f"up to {max(r['cost_vs_english'] for r in rows if r['language'] != 'Python'):.2f}x "
        "the English price.",
        f"' strawberry' is {metrics['strawberry_tokens']} token(s): "
        + " | ".join(shown[' strawberry']["pieces"]),
        f"Letter counting over {len(counting)} word(s), greedy answers of up to "
        f"{ANSWER_TOKENS} tokens: the model spelled the word correctly in {spelled['trials']} "
        f"of {len(counting)} trials, and only those count for 'after spelling'. " + verdict,
        "Raw answers: the `counting` table (llmlab lab show RUN --json).",
    ]
    return Outcome(metrics=metrics, tables={"languages": rows, "pieces": pieces,
                                            "counting": counting, "accuracy": conds},
                   figures={"cost_by_language": _figure(rows)}, summary=summary)


def _figure(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar([r["language"] for r in rows], [r["cost_vs_english"] for r in rows], color="#4a7bd0")
    ax.axhline(1, color="grey", lw=0.8)
    ax.set_ylabel("tokens vs English")
    ax.set_title("Same sentence, different token bill (SmolLM2 tokenizer)")
    fig.autofmt_xdate(rotation=30)
    return fig
