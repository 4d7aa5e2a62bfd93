"""Tuning data: read and validate JSONL files, apply the chat template, mask the prompt.

Two shapes of SFT item are accepted, one JSON object per line:

    {"prompt": "What is 2 + 2?", "response": "{\"answer\": 4}"}
    {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}

and preference pairs for DPO: {"prompt": "...", "chosen": "...", "rejected": "..."}.

Validation runs before any model is loaded and names the line of each problem: bad UTF-8,
a line that is not JSON, wrong or missing keys, empty text, an item that is too long,
a duplicate of an earlier line. The shipped sets live in `data/` (see data/generate.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

DATA = Path(__file__).parent / "data"
# name -> (train file, held-out file)
SHIPPED_SFT = {"json_task": ("json_task_train.jsonl", "json_task_heldout.jsonl")}
SHIPPED_PREF = {"concise": ("preferences_train.jsonl", "preferences_heldout.jsonl")}
GENERAL_TEXT = DATA / "general_text.txt"
CHARS_PER_TOKEN = 6  # generous: the pre-model length check must not reject what fits
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Item:
    line: int  # 1-based line in its file, for messages after loading
    messages: tuple[dict, ...]  # chat messages; the last one is the assistant's response

    @property
    def prompt(self) -> tuple[dict, ...]:
        return self.messages[:-1]

    @property
    def response(self) -> str:
        return self.messages[-1]["content"]


@dataclass(frozen=True)
class Pair:
    line: int
    prompt: str
    chosen: str
    rejected: str


def _fix(path: Path) -> str:
    return (f"Fix {path} (one JSON object per line: {{\"prompt\": ..., \"response\": ...}} or "
            "{\"messages\": [...]}; see the shipped json_task_train.jsonl)")


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.is_file():
        raise UserError(f"Data file {path} does not exist. Give a JSONL file with {{param:data=FILE}}, "
                        "or leave it out to use the shipped set.")
    raw = path.read_bytes()
    out = []
    for i, b in enumerate(raw.split(b"\n"), start=1):
        try:
            text = b.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"{path} line {i}: not valid UTF-8 (byte {e.start}). Save the file "
                            "as UTF-8.") from None
        if text.strip():
            out.append((i, text))
    return out


def _objects(path: Path) -> list[tuple[int, dict]]:
    out = []
    for i, text in _lines(path):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{path} line {i}: not valid JSON ({e.msg} at column {e.colno}). "
                            "Each line must be one JSON object.") from None
        if not isinstance(obj, dict):
            raise UserError(f"{path} line {i}: expected a JSON object, got "
                            f"{type(obj).__name__}.")
        out.append((i, obj))
    if not out:
        raise UserError(f"{path} has no items. Give at least a few JSON lines.")
    return out


def _text(path: Path, i: int, obj: dict, key: str) -> str:
    v = obj.get(key)
    if not isinstance(v, str):
        raise UserError(f"{path} line {i}: '{key}' must be a string, got {type(v).__name__}.")
    if not v.strip():
        raise UserError(f"{path} line {i}: '{key}' is empty. Remove the line or fill it in.")
    return v


def _messages(path: Path, i: int, obj: dict) -> tuple[dict, ...]:
    if set(obj) == {"prompt", "response"}:
        return ({"role": "user", "content": _text(path, i, obj, "prompt")},
                {"role": "assistant", "content": _text(path, i, obj, "response")})
    if set(obj) == {"messages"}:
        ms = obj["messages"]
        if not isinstance(ms, list) or len(ms) < 2:
            raise UserError(f"{path} line {i}: 'messages' must be a list of at least two "
                            "{\"role\", \"content\"} objects (a user turn, then the assistant's).")
        out = []
        for j, m in enumerate(ms):
            if not isinstance(m, dict) or set(m) != {"role", "content"} or \
                    m["role"] not in ROLES:
                raise UserError(f"{path} line {i}: message {j + 1} must be {{\"role\": "
                                f"{'|'.join(ROLES)}, \"content\": text}}; got {m!r}.")
            out.append({"role": m["role"], "content": _text(path, i, m, "content")})
        if out[-1]["role"] != "assistant":
            raise UserError(f"{path} line {i}: the last message must be the assistant's "
                            "(the response the loss is computed on).")
        return tuple(out)
    raise UserError(f"{path} line {i}: wrong keys {sorted(obj)}. {_fix(path)}.")


def _no_duplicates(path: Path, keyed: list[tuple[int, str]]) -> None:
    first: dict[str, int] = {}
    for i, key in keyed:
        if key in first:
            raise UserError(f"{path} line {i}: duplicate of line {first[key]}. Remove it "
                            "(duplicates over-weight an item and leak into the held-out split).")
        first[key] = i


def read_sft(path: Path, max_len: int) -> list[Item]:
    """Validated SFT items from a JSONL file (no tokenizer needed)."""
    items = []
    for i, obj in _objects(path):
        ms = _messages(path, i, obj)
        chars = sum(len(m["content"]) for m in ms)
        if chars > max_len * CHARS_PER_TOKEN:
            raise UserError(f"{path} line {i}: {chars} characters, too long for max_len="
                            f"{max_len} tokens. Shorten it or raise {{param:max_len}}.")
        items.append(Item(i, ms))
    _no_duplicates(path, [(it.line, json.dumps(it.messages, sort_keys=True)) for it in items])
    return items


def read_pairs(path: Path, max_len: int) -> list[Pair]:
    """Validated preference pairs from a JSONL file."""
    pairs = []
    for i, obj in _objects(path):
        if set(obj) != {"prompt", "chosen", "rejected"}:
            raise UserError(f"{path} line {i}: wrong keys {sorted(obj)}. A preference pair is "
                            "{\"prompt\": ..., \"chosen\": ..., \"rejected\": ...}.")
        p, c, r = (_text(path, i, obj, k) for k in ("prompt", "chosen", "rejected"))
        if c == r:
            raise UserError(f"{path} line {i}: 'chosen' and 'rejected' are identical, so the "
                            "pair carries no preference.")
        if len(p) + max(len(c), len(r)) > max_len * CHARS_PER_TOKEN:
            raise UserError(f"{path} line {i}: too long for max_len={max_len} tokens. "
                            "Shorten it or raise {param:max_len}.")
        pairs.append(Pair(i, p, c, r))
    _no_duplicates(path, [(x.line, x.prompt + "\0" + x.chosen) for x in pairs])
    return pairs


def files(data: str, heldout: str, shipped: dict) -> tuple[Path, Path | None]:
    """(train file, held-out file or None: split the train file) for a `data` parameter."""
    if data in shipped:
        a, b = shipped[data]
        return DATA / a, (Path(heldout).expanduser() if heldout else DATA / b)
    return Path(data).expanduser(), (Path(heldout).expanduser() if heldout else None)


def split(items: list, heldout: list | None, fraction: float = 0.2) -> tuple[list, list]:
    """Train and held-out lists: the given held-out set, else the last 20 % of the file."""
    if heldout is not None:
        return items, heldout
    n = max(1, round(len(items) * fraction))
    if len(items) - n < 2:
        raise UserError(f"Only {len(items)} items: too few to hold some out. Give at least 10, "
                        "or a separate held-out file with {param:heldout=FILE}.")
    return items[:-n], items[-n:]


# --- with a tokenizer ----------------------------------------------------------------------

def chat_text(tok, messages, generation_prompt: bool = False) -> str:
    return tok.apply_chat_template(list(messages), tokenize=False,
                                   add_generation_prompt=generation_prompt)


def encode(tok, item: Item, max_len: int, where: str = "") -> tuple[list[int], list[int]]:
    """(input ids, labels): the chat template applied; labels -100 on every prompt token,
    so the loss is on the response (and its end-of-turn token) only."""
    prompt = tok(chat_text(tok, item.prompt, True), add_special_tokens=False).input_ids
    full = tok(chat_text(tok, item.messages), add_special_tokens=False).input_ids
    if full[:len(prompt)] != prompt:  # the template must extend the prompt, else masking lies
        raise UserError(f"{where}line {item.line}: the chat template does not start the "
                        "conversation with its prompt; this model's template can't be masked.")
    if len(full) > max_len:
        raise UserError(f"{where}line {item.line}: {len(full)} tokens with the chat template, "
                        f"more than max_len={max_len}. Shorten it or raise {{param:max_len}}.")
    return full, [-100] * len(prompt) + full[len(prompt):]


def masking_table(tok, ids: list[int], labels: list[int]) -> list[dict]:
    """Each token of one example and whether the loss sees it ("show what is masked")."""
    return [{"position": i, "token": tok.decode([t]), "in_loss": lab != -100}
            for i, (t, lab) in enumerate(zip(ids, labels))]


def collate(rows: list[tuple[list[int], list[int]]], pad_id: int):
    """Right-padded (input_ids, attention_mask, labels) tensors, each (batch, longest)."""
    import torch

    n = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), n), dtype=torch.long)
    labels = torch.full((len(rows), n), -100, dtype=torch.long)
    for b, (x, y) in enumerate(rows):
        ids[b, :len(x)], mask[b, :len(x)], labels[b, :len(y)] = (
            torch.tensor(x), 1, torch.tensor(y))
    return ids, mask, labels
