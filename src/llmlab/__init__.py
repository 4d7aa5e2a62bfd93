"""LLM Learning Lab: learn how large language models work, by doing, with an honest tutor."""

__version__ = "0.1.0"
