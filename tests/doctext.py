"""Read the README and docs/*.md for the tests that run them: sections, the command lines of
their ```sh blocks, their ```python blocks and their links. One parser for every docs test."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def doc_files() -> list[Path]:
    """README.md and every docs/*.md, README first."""
    return [README, *sorted(DOCS.glob("*.md"))]


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def sections(path: Path = README) -> dict[str, str]:
    """Title of each `## ` section -> its text up to the next one (`### ` parts included);
    the text before the first `## ` is under the title ""."""
    parts = re.split(r"^## (.*)\n", path.read_text(encoding="utf-8"), flags=re.M)
    return {"": parts[0], **dict(zip(parts[1::2], parts[2::2]))}


def section(title: str, path: Path = README) -> str:
    found = sections(path)
    assert title in found, f"{rel(path)} has no '## {title}' section"
    return found[title]


def sh_lines(block: str) -> list[str]:
    """The non-empty lines of a text's ```sh blocks, `  # comments` cut."""
    return [ln for code in re.findall(r"```sh\n(.*?)```", block, re.S)
            for ln in (line.split("  #")[0].strip() for line in code.splitlines()) if ln]


def commands(block: str, prefixes: tuple[str, ...] = ("llmlab ", "cd ")) -> list[str]:
    """The lines of a text's ```sh blocks that start with one of `prefixes`."""
    return [ln for ln in sh_lines(block) if ln.startswith(prefixes)]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.S)


def links(path: Path) -> list[str]:
    """The targets of the markdown links in a file (code spans and blocks left out)."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a markdown file."""
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    out = set()
    for h in re.findall(r"^#+ (.*)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out
