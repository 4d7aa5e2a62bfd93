"""Retrieval and evaluation machinery, in plain view: chunking, retrievers, metrics.

Used by the `retrieval`, `rag_answer` and `embeddings` experiments, `llmlab eval
calibrate` and `llmlab notes scan`. Nothing here loads a model at import time.
"""
