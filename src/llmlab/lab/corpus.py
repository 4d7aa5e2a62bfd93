"""Concept corpora: the texts a concept vector is extracted from, validated before any model
is loaded (torch-free).

Layout of a corpus folder (every `.txt` holds paragraphs separated by blank lines):

    stories/<concept>.txt             paragraphs that show the concept without naming it
    paired/<scenario>/<concept>.txt   one scene told with different inner states ...
    paired/<scenario>/baseline.txt    ... and flatly: a shared negative
    direct/<concept>.txt              first-person descriptions of the state
    direct/_<anything>.txt            neutral texts: shared negatives

A concept's positives are its own texts; its negatives are every other concept's positives
plus the baselines and neutral texts. Contrastive pairs (for difference of means and PCA)
put each paired-scenario text against the baseline and the other concepts of the same scene,
and each story or direct text against negatives from the pool, so every negative is used.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import UserError, closest

STARTER = Path(__file__).parent / "corpora" / "starter"
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
FOLDERS = ("stories", "paired", "direct")
LAYOUT = ("A corpus folder holds stories/<concept>.txt, paired/<scenario>/<concept>.txt with "
          "paired/<scenario>/baseline.txt, and direct/<concept>.txt with neutral "
          "direct/_<name>.txt; paragraphs are separated by blank lines")


@dataclass(frozen=True)
class Text:
    text: str
    source: str  # "stories/calm.txt#2" (paragraph number from 1)
    group: str  # held out together: a paired scenario, else the paragraph itself
    scenario: str | None = None
    variant: int = 0  # paragraph index within its file (pairs variant i with variant i)


@dataclass
class Corpus:
    root: Path
    concepts: list[str]
    positives: dict[str, list[Text]]
    baselines: list[Text]
    neutral: list[Text]
    scenarios: dict[str, dict[str, list[Text]]] = field(default_factory=dict)  # incl. "baseline"

    def negatives(self, concept: str) -> list[Text]:
        return [t for c in self.concepts if c != concept for t in self.positives[c]] + \
            self.baselines + self.neutral

    def all_texts(self) -> list[Text]:
        return [t for c in self.concepts for t in self.positives[c]] + self.baselines + self.neutral

    def unique_texts(self) -> list[str]:
        """Every distinct text once, in a stable order: what extraction forwards."""
        return list(dict.fromkeys(t.text for t in self.all_texts()))

    def uses(self) -> int:
        """How many texts the concepts use in all (positives + negatives, over concepts):
        what a per-concept extraction without de-duplication would forward."""
        return sum(len(self.positives[c]) + len(self.negatives(c)) for c in self.concepts)

    def pairs(self, concept: str, seed: int = 0) -> list[tuple[Text, Text]]:
        """Contrastive (positive, negative) pairs for `concept`.

        Paired scenarios: each variant against the same variant of the baseline and of every
        other concept in that scene (only the inner state differs). Stories and direct texts:
        cycled against a seeded shuffle of the remaining negatives, each of which is used once.
        """
        out: list[tuple[Text, Text]] = []
        paired_ids = set()
        for scene in self.scenarios.values():
            if concept not in scene:
                continue
            for pos in scene[concept]:
                for other, texts in scene.items():
                    if other == concept:
                        continue
                    neg = texts[pos.variant % len(texts)]
                    out.append((pos, neg))
                    paired_ids.add(neg.source)
        free = [t for t in self.positives[concept] if t.scenario is None]
        pool = [t for t in self.negatives(concept) if t.scenario is None or
                t.source not in paired_ids]
        if free and pool:
            random.Random(f"{seed}:{concept}").shuffle(pool)
            for i in range(max(len(free), len(pool))):
                out.append((free[i % len(free)], pool[i % len(pool)]))
        return out

    def shuffled(self, seed: int = 0) -> "Corpus":
        """A control: the same texts with the positives' concept labels permuted, so no
        concept means anything (scenario pairing dropped; held-out groups kept)."""
        texts = [t for c in self.concepts for t in self.positives[c]]
        labels = [c for c in self.concepts for _ in self.positives[c]]
        random.Random(f"shuffle:{seed}").shuffle(labels)
        positives: dict[str, list[Text]] = {c: [] for c in self.concepts}
        for t, c in zip(texts, labels):
            positives[c].append(replace(t, scenario=None))
        return Corpus(self.root, self.concepts, positives, self.baselines, self.neutral)

    def summary(self) -> dict:
        unique = len(self.unique_texts())
        return {"root": str(self.root), "concepts": {c: len(self.positives[c]) for c in self.concepts},
                "scenarios": sorted(self.scenarios), "baselines": len(self.baselines),
                "neutral": len(self.neutral), "unique_texts": unique, "text_uses": self.uses(),
                "forwards_saved": self.uses() - unique}


def paragraphs(raw: str) -> list[str]:
    """Blank-line separated paragraphs, each with its lines joined by single spaces."""
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", raw) if p.strip()]


def resolve_root(path: str | Path | None) -> Path:
    return STARTER if path in (None, "", "starter") else Path(path).expanduser()


def load(path: str | Path | None = None, min_positives: int = 6,
         concepts: list[str] | None = None) -> Corpus:
    """Read and validate a corpus; every problem is reported at once, naming its file.

    `concepts` keeps only those concepts (the others' texts stay as negatives).
    """
    root = resolve_root(path)
    if not root.is_dir():
        raise UserError(f"Corpus folder {root} does not exist. {LAYOUT}. Give no folder (an "
                        "empty corpus parameter) to use the shipped starter corpus.")
    problems: list[str] = []
    rel = lambda p: p.relative_to(root).as_posix()  # noqa: E731

    def read(f: Path) -> list[str]:
        if f.suffix != ".txt":
            problems.append(f"{rel(f)}: only .txt files belong here (rename or remove it)")
            return []
        try:
            paras = paragraphs(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            problems.append(f"{rel(f)}: not UTF-8 text ({e.reason} at byte {e.start})")
            return []
        if not paras:
            problems.append(f"{rel(f)}: the file is empty; write at least one paragraph or "
                            "delete it")
        return paras

    def entries(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if not p.name.startswith("."))

    present = [d for d in FOLDERS if (root / d).is_dir()]
    for p in entries(root):
        if p.is_dir() and p.name not in FOLDERS:
            near = closest(p.name, FOLDERS)
            hint = f" (did you mean {near[0]}/?)" if near else ""
            problems.append(f"{p.name}/: unknown folder{hint}; a corpus has only "
                            f"{', '.join(f + '/' for f in FOLDERS)}")
        elif p.suffix == ".txt":
            problems.append(f"{p.name}: texts belong in stories/, paired/<scenario>/ or "
                            "direct/, not in the corpus folder itself")
    if not present:
        raise UserError(f"Corpus folder {root} has none of stories/, paired/, direct/. {LAYOUT}.")

    positives: dict[str, list[Text]] = {}
    baselines: list[Text] = []
    neutral: list[Text] = []
    scenarios: dict[str, dict[str, list[Text]]] = {}

    def name_ok(f: Path, what: str) -> bool:
        if f.is_dir():
            problems.append(f"{rel(f)}/: a folder where a .txt file belongs")
            return False
        if f.suffix == ".txt" and not NAME.match(f.stem):
            problems.append(f"{rel(f)}: {what} names are lowercase letters, digits and _ "
                            f"(starting with a letter), e.g. calm.txt")
            return False
        return True

    for folder in ("stories", "direct"):
        d = root / folder
        if not d.is_dir():
            continue
        for f in entries(d):
            is_neutral = folder == "direct" and f.name.startswith("_") and f.is_file()
            if not is_neutral and not name_ok(f, "concept"):
                continue
            texts = [Text(t, f"{rel(f)}#{i + 1}", f"{rel(f)}#{i + 1}", None, i)
                     for i, t in enumerate(read(f))]  # each paragraph is its own held-out group
            if is_neutral:
                neutral += texts
            else:
                positives.setdefault(f.stem, []).extend(texts)
    if (root / "paired").is_dir():
        for scene in entries(root / "paired"):
            if not scene.is_dir():
                problems.append(f"{rel(scene)}: paired/ holds one folder per scenario "
                                "(paired/<scenario>/<concept>.txt and baseline.txt)")
                continue
            if not NAME.match(scene.name):
                problems.append(f"{rel(scene)}/: scenario names are lowercase letters, digits "
                                "and _")
                continue
            files = [f for f in entries(scene) if name_ok(f, "concept")]
            if not any(f.name == "baseline.txt" for f in files):
                problems.append(f"{rel(scene)}/: no baseline.txt; every scenario needs the "
                                "same scene told flatly, as the shared negative")
            if not any(f.name != "baseline.txt" for f in files):
                problems.append(f"{rel(scene)}/: no concept files next to the baseline")
            texts: dict[str, list[Text]] = {}
            for f in files:
                grp = f"paired/{scene.name}"
                texts[f.stem] = [Text(t, f"{rel(f)}#{i + 1}", grp, scene.name, i)
                                 for i, t in enumerate(read(f))]
            scenarios[scene.name] = {k: v for k, v in texts.items() if v}
            baselines += texts.get("baseline", [])
            for c, ts in texts.items():
                if c != "baseline":
                    positives.setdefault(c, []).extend(ts)
    _check_overlaps(positives, baselines, neutral, problems)
    if concepts:
        missing = [c for c in concepts if c not in positives]
        for c in missing:
            near = closest(c, positives)
            hint = f" (did you mean {near[0]}?)" if near else ""
            problems.append(f"concept '{c}' is not in the corpus{hint}; it has: "
                            f"{', '.join(sorted(positives))}")
    keep = [c for c in sorted(positives) if not concepts or c in concepts]
    for c in keep:
        n = len(positives[c])
        if 0 < n < min_positives:
            files = sorted({t.source.split("#")[0] for t in positives[c]})
            problems.append(f"concept '{c}' has {n} positive text{'s' * (n != 1)} "
                            f"({', '.join(files)}), fewer than the {min_positives} needed; "
                            f"add paragraphs or lower min_positives")
    if len([c for c in positives if positives[c]]) < 2:
        problems.append("a corpus needs at least 2 concepts (one concept's negatives are the "
                        "others' positives)")
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise UserError(f"Corpus {root} has {len(problems)} problem"
                        f"{'s' * (len(problems) != 1)}:\n{listing}\n{LAYOUT}.")
    # `concepts` narrows which vectors are made; the others' texts remain negatives
    if concepts:
        for c in sorted(set(positives) - set(keep)):
            neutral += positives.pop(c)
    return Corpus(root=root, concepts=keep, positives={c: positives[c] for c in keep},
                  baselines=baselines, neutral=neutral, scenarios=scenarios)


def _check_overlaps(positives, baselines, neutral, problems) -> None:
    """The same paragraph may not be a positive of two concepts, or a positive and a shared
    negative: it would be its own contrast."""
    owner: dict[str, tuple[str, str]] = {}
    for role, texts in [*((c, ts) for c, ts in positives.items()), ("baseline", baselines),
                        ("neutral", neutral)]:
        for t in texts:
            prev = owner.get(t.text)
            if prev and prev[0] != role:
                problems.append(f"{t.source} repeats {prev[1]} word for word ({prev[0]} and "
                                f"{role}); a text can't be both a positive and a negative")
            elif not prev:
                owner[t.text] = (role, t.source)
