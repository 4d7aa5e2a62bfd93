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
# (word, letter, true count): the counting trials, in order.
WORDS = [("strawberry", "r", 3), ("banana", "a", 3), ("mississippi", "s", 4),
         ("bookkeeper", "e", 3), ("committee", "t", 2), ("occurrence", "c", 3),
         ("parallel", "l", 3), ("assessment", "s", 4), ("cucumber", "u", 2),
         ("referee", "e", 4)]
NUMBER_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9, "ten": 10}

SPEC = Spec(
    name="tokens",
    question="How does text split into tokens, what does that cost across languages, and why "
             "do models miscount letters?",
    concepts=("tokenization", "token_economics", "context_window"),
    params=(
        Param("text", str, "", "Extra text to tokenize and show piece by piece"),
        Param("trials", int, 6, "Letter-counting trials (words) per condition", low=1, high=10),
        *common(),
    ),
    quantities=(
        Quantity("tokens_per_word_english", "tokens/word", "Tokens per word of the English sentence", concept='token_economics'),
        Quantity("hindi_vs_english_cost", "ratio", "Tokens of the Hindi sentence / tokens of the English one", concept='token_economics'),
        Quantity("strawberry_tokens", "tokens", "Tokens in ' strawberry' (with its leading space)", concept='tokenization'),
        Quantity("plain_accuracy", "fraction", "Letter counts right when asked plainly", concept='tokenization'),
        Quantity("spelled_accuracy", "fraction", "Letter counts right after the model spells the word out", concept='tokenization'),
        Quantity("given_spelling_accuracy", "fraction", "Letter counts right when the prompt spells the word one letter per line", concept='tokenization'),
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


def _first_int(text: str) -> int | None:
    m = re.search(r"\d+|\b(" + "|".join(NUMBER_WORDS) + r")\b", text.lower())
    if not m:
        return None
    return int(m.group(0)) if m.group(0).isdigit() else NUMBER_WORDS[m.group(0)]


def _chat(tok, model, messages: list[dict], max_new_tokens: int) -> str:
    import torch

    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tok.eos_token_id)
    return tok.decode(out[0, enc.input_ids.shape[1]:], skip_special_tokens=True)


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
    trials = max(1, min(p["trials"], len(WORDS)))
    counting = []
    for word, letter, truth in ctx.track(WORDS[:trials], "letter counting"):
        q = f"How many times does the letter '{letter}' appear in the word '{word}'? Answer with a number."
        plain = _chat(tok, model, [{"role": "user", "content": q}], 8)
        spell_q = f"Spell the word '{word}' one letter per line."
        spelled = _chat(tok, model, [{"role": "user", "content": spell_q}], 2 * len(word) + 8)
        follow = f"Now count: how many times does the letter '{letter}' appear in that list? Answer with a number."
        answer = _chat(tok, model, [{"role": "user", "content": spell_q},
                                    {"role": "assistant", "content": spelled},
                                    {"role": "user", "content": follow}], 8)
        given_q = ("Here is a word spelled one letter per line:\n" + "\n".join(word)
                   + f"\nHow many times does the letter '{letter}' appear? Answer with a number.")
        given = _chat(tok, model, [{"role": "user", "content": given_q}], 8)
        counting.append({"word": word, "letter": letter, "truth": truth,
                         "given_answer": given.strip()[:60], "given": _first_int(given),
                         "plain_answer": plain.strip()[:60], "plain": _first_int(plain),
                         "spelling": spelled.strip().replace("\n", " ")[:60],
                         "spelled_answer": answer.strip()[:60], "spelled": _first_int(answer)})
    plain_acc = sum(c["plain"] == c["truth"] for c in counting) / len(counting)
    spelled_acc = sum(c["spelled"] == c["truth"] for c in counting) / len(counting)
    given_acc = sum(c["given"] == c["truth"] for c in counting) / len(counting)
    hindi = next(r for r in rows if r["language"] == "Hindi")
    ctx_len = getattr(model.config, "max_position_embeddings", "?")
    metrics = {
        "tokens_per_word_english": english / len(SAMPLES["English"].split()),
        "hindi_vs_english_cost": hindi["cost_vs_english"],
        "strawberry_tokens": len(shown[" strawberry"]["ids"]),
        "plain_accuracy": plain_acc,
        "spelled_accuracy": spelled_acc,
        "given_spelling_accuracy": given_acc,
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
        f"Letter counting over {len(counting)} word(s): plain {plain_acc:.0%}; after the model "
        f"spells the word out itself {spelled_acc:.0%}; with the spelling given one letter per "
        f"line {given_acc:.0%}.",
    ]
    return Outcome(metrics=metrics, tables={"languages": rows, "pieces": pieces,
                                            "counting": counting},
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
