"""Retrievers over a list of chunks: dense, BM25, hybrid (RRF) and an LM reranker.

  dense    MiniLM vectors, exact search: cosine = dot product of unit vectors (numpy)
  bm25     Okapi BM25 (rank-bm25) on lower-cased words, English stop words removed
  hybrid   reciprocal rank fusion of the dense and BM25 rankings (k = 60)
  rerank   the dense top `depth`, re-ordered by SmolLM2's log-odds of answering "yes" to
           "Does this passage help answer the question?"
Each returns, per query, chunk indices best first.
"""

from __future__ import annotations

import re

from .metrics import rrf

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return [w for w in _WORD.findall(text.lower()) if w not in ENGLISH_STOP_WORDS]


def dense_rank(qvecs, cvecs, depth: int) -> list[list[int]]:
    import numpy as np

    sims = qvecs @ cvecs.T  # (queries, chunks): cosine, both sides unit-normalised
    order = np.argsort(-sims, axis=1, kind="stable")[:, :depth]
    return order.tolist()


class BM25:
    def __init__(self, texts: list[str]):
        from rank_bm25 import BM25Okapi

        self.index = BM25Okapi([words(t) or ["\u2205"] for t in texts])

    def rank(self, queries: list[str], depth: int) -> list[list[int]]:
        import numpy as np

        out = []
        for q in queries:
            scores = self.index.get_scores(words(q))  # (chunks,)
            out.append(np.argsort(-scores, kind="stable")[:depth].tolist())
        return out


def hybrid_rank(dense: list[list[int]], lexical: list[list[int]], depth: int) -> list[list[int]]:
    return [rrf([d, b])[:depth] for d, b in zip(dense, lexical)]


RERANK_PROMPT = ("Passage:\n{passage}\n\nQuestion: {question}\n\nDoes the passage help answer "
                 "the question? Answer yes or no.")


class Reranker:
    """Scores (question, passage) pairs by log P(yes) - log P(no) for the next token."""

    def __init__(self, loaded, max_passage_tokens: int = 200):
        tok = loaded.tokenizer
        self.model, self.tok = loaded.model, tok
        self.max_passage = max_passage_tokens
        self.yes = sorted({tok.encode(w, add_special_tokens=False)[0]
                           for w in ("yes", "Yes", " yes", " Yes")})
        self.no = sorted({tok.encode(w, add_special_tokens=False)[0]
                          for w in ("no", "No", " no", " No")})

    def _prompt(self, question: str, passage: str) -> str:
        ids = self.tok.encode(passage, add_special_tokens=False)[: self.max_passage]
        msg = RERANK_PROMPT.format(passage=self.tok.decode(ids), question=question)
        return self.tok.apply_chat_template([{"role": "user", "content": msg}], tokenize=False,
                                            add_generation_prompt=True)

    def scores(self, pairs: list[tuple[str, str]], track=None, batch: int = 16) -> list[float]:
        """log P(yes) - log P(no) for each (question, passage) pair. The prompts are run
        sorted by length, `batch` at a time, so little of each batch is padding."""
        import torch

        tok = self.tok
        tok.padding_side = "left"  # the last position is every prompt's next-token slot
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        prompts = [self._prompt(q, p) for q, p in pairs]
        lengths = [len(x) for x in tok(prompts, add_special_tokens=False).input_ids]
        order = sorted(range(len(prompts)), key=lambda i: lengths[i])
        batches = [order[i:i + batch] for i in range(0, len(order), batch)]
        out = [0.0] * len(prompts)
        for b in (track(batches) if track else batches):
            enc = tok([prompts[i] for i in b], return_tensors="pt", padding=True,
                      add_special_tokens=False).to(self.model.device)
            with torch.no_grad():
                logits = self.model(**enc).logits[:, -1].float()  # (batch, vocab)
            logp = torch.log_softmax(logits, dim=-1)
            yes = torch.logsumexp(logp[:, self.yes], dim=-1)
            no = torch.logsumexp(logp[:, self.no], dim=-1)
            for i, v in zip(b, (yes - no).tolist()):
                out[i] = v
        return out

    def rerank(self, questions: list[str], candidates: list[list[int]], texts: list[str],
               track=None) -> list[list[int]]:
        """Each question's candidates re-ordered by score (ties keep the incoming order)."""
        pairs = [(q, texts[c]) for q, cs in zip(questions, candidates) for c in cs]
        flat = iter(self.scores(pairs, track))
        out = []
        for cs in candidates:
            s = [next(flat) for _ in cs]
            out.append([cs[i] for i in sorted(range(len(cs)), key=lambda i: (-s[i], i))])
        return out
