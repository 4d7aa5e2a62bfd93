"""The curriculum: modules, concepts, misconceptions and exit items, loaded from TOML.

Layout of a curriculum folder (the default course ships in `llmlab/curriculum/default`):

    course.toml              [course] id, title, version
    modules/*.toml           one module each: [module] plus [[concepts]]
    exit.toml                [[exit]] items (kind = "mechanism" or "build")
    study/<module_id>.md     the module's study page (markdown)

`load(path)` parses and validates; every problem is collected and reported at once,
each naming the file, the entity and the fix.
"""

from __future__ import annotations

import os
import tomllib
from functools import cache

import msgspec
from pathlib import Path
from typing import Literal

from .core import default_curriculum
from .errors import UserError, closest, read_text
from .schema import Annotated, Invalid, Meta, Record, convert

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
Id = Annotated[str, Meta(pattern=ID_PATTERN)]
Text = Annotated[str, Meta(min_length=1)]


class Misconception(Record, kw_only=True):
    id: Id
    claim: Text
    correction: Text


class Concept(Record, kw_only=True):
    id: Id
    title: Text
    summary: Text
    prerequisites: tuple[str, ...] = ()
    behaviours: tuple[str, ...] = ()
    misconceptions: tuple[Misconception, ...] = ()
    experiments: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    module: str = ""  # filled from the module file


class Module(Record, kw_only=True):
    id: Id
    title: Text
    order: int
    summary: Text
    concepts: tuple[str, ...] = ()  # concept ids, in file order


class ExitItem(Record, kw_only=True):
    id: Id
    kind: Literal["mechanism", "build"]
    title: Text
    prompt: Text
    requires: tuple[str, ...] = ()
    goal: str = ""  # build milestones: what the project achieves
    measure: str = ""  # build milestones: what to measure


class Curriculum(Record, kw_only=True):
    id: str
    title: str
    version: str = "1"
    path: str = ""
    modules: tuple[Module, ...]
    concepts: dict[str, Concept]
    exit_items: dict[str, ExitItem]

    @property
    def concept_ids(self) -> list[str]:
        return list(self.concepts)

    def module(self, module_id: str) -> Module:
        return next(m for m in self.modules if m.id == module_id)

    def counts(self) -> dict[str, int]:
        """How big the course is (what `llmlab curriculum validate` reports)."""
        return {"modules": len(self.modules), "concepts": len(self.concepts),
                "misconceptions": sum(len(c.misconceptions) for c in self.concepts.values()),
                "exit_items": len(self.exit_items)}

    def misconception(self, concept_id: str, catalog_id: str) -> Misconception | None:
        for m in self.concepts[concept_id].misconceptions:
            if m.id == catalog_id:
                return m
        return None

    def dependants(self, concept_id: str) -> list[str]:
        return [c.id for c in self.concepts.values() if concept_id in c.prerequisites]

    def study_page(self, module_id: str) -> str | None:
        """The markdown study page of a module, if the curriculum has one."""
        if not self.path:
            return None
        p = Path(self.path) / "study" / f"{module_id}.md"
        return read_text(p) if p.is_file() else None


class CurriculumError(UserError):
    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"The curriculum at {path} has {len(problems)} problem(s):\n{lines}\n"
            "Fix them in the files named, then run `llmlab curriculum validate "
            f"{path}` again."
        )


def default_path() -> Path:
    return default_curriculum()


def _read_toml(path: Path, problems: list[str]) -> dict | None:
    try:
        return tomllib.loads(read_text(path))
    except tomllib.TOMLDecodeError as e:
        problems.append(f"{path.name}: malformed TOML ({e}). Check quoting and brackets near that line.")
    except OSError as e:
        problems.append(f"{path.name}: cannot be read ({e.strerror}).")
    return None


def _problems(where: str, err: Invalid) -> list[str]:
    return [f"{where}: field '{p.split(': ', 1)[0]}': {p.split(': ', 1)[-1]}" if ": " in p
            else f"{where}: {p}" for p in err.problems]


def _find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A prerequisite cycle as a list of ids (first == last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        colour[n] = GREY
        stack.append(n)
        for p in graph.get(n, ()):
            if p not in colour:
                continue
            if colour[p] == GREY:
                return stack[stack.index(p):] + [p]
            if colour[p] == WHITE and (cyc := visit(p)):
                return cyc
        stack.pop()
        colour[n] = BLACK
        return None

    for n in graph:
        if colour[n] == WHITE and (cyc := visit(n)):
            return cyc
    return None


def load(path: str | Path) -> Curriculum:
    """Load and validate a curriculum folder. Raises CurriculumError listing every problem."""
    path = Path(path).expanduser().resolve()
    problems: list[str] = []
    if not path.is_dir():
        raise UserError(
            f"No curriculum folder at {path}. Give a folder containing course.toml, "
            "modules/*.toml and exit.toml (see `llmlab curriculum show` for the default)."
        )
    course = _read_toml(path / "course.toml", problems) if (path / "course.toml").is_file() else None
    if course is None and not (path / "course.toml").is_file():
        problems.append("course.toml: missing. Add one with a [course] table (id, title).")
    info = (course or {}).get("course", {})

    modules: list[Module] = []
    concepts: dict[str, Concept] = {}
    module_files = sorted((path / "modules").glob("*.toml")) if (path / "modules").is_dir() else []
    if not module_files:
        problems.append("modules/: no module files. Add at least one modules/<name>.toml.")
    for f in module_files:
        data = _read_toml(f, problems)
        if data is None:
            continue
        where = f"modules/{f.name}"
        raw_concepts = data.get("concepts", [])
        try:
            mod = convert({**data.get("module", {}),
                           "concepts": [c.get("id", "") for c in raw_concepts]}, Module)
        except Invalid as e:
            problems += _problems(f"{where} [module]", e)
            continue
        if any(m.id == mod.id for m in modules):
            problems.append(f"{where}: module id '{mod.id}' is used twice. Give each module a unique id.")
        if not raw_concepts:
            problems.append(f"{where}: module '{mod.id}' is empty. Add at least one [[concepts]] entry.")
        modules.append(mod)
        for raw in raw_concepts:
            cid = raw.get("id", "?")
            try:
                c = convert({**raw, "module": mod.id}, Concept)
            except Invalid as e:
                problems += _problems(f"{where} concept '{cid}'", e)
                continue
            if c.id in concepts:
                problems.append(
                    f"{where}: concept id '{c.id}' already defined in module "
                    f"'{concepts[c.id].module}'. Concept ids must be globally unique."
                )
            if not c.behaviours:
                problems.append(f"{where} concept '{c.id}': no behaviours. Add at least one observable symptom it explains.")
            concepts[c.id] = c

    mis_ids: dict[str, str] = {}
    for c in concepts.values():
        for p in c.prerequisites:
            if p not in concepts:
                near = closest(p, concepts)
                hint = f" Did you mean {', '.join(near)}?" if near else ""
                problems.append(f"concept '{c.id}' ({c.module}): prerequisite '{p}' does not exist.{hint}")
            if p == c.id:
                problems.append(f"concept '{c.id}': lists itself as a prerequisite. Remove it.")
        for m in c.misconceptions:
            if m.id in mis_ids:
                problems.append(
                    f"concept '{c.id}': misconception id '{m.id}' already used by concept "
                    f"'{mis_ids[m.id]}'. Misconception ids must be unique."
                )
            mis_ids[m.id] = c.id
    cycle = _find_cycle({c.id: c.prerequisites for c in concepts.values()})
    if cycle:
        problems.append(
            "prerequisite cycle: " + " -> ".join(cycle) + ". Remove one of these prerequisite links."
        )

    exit_items: dict[str, ExitItem] = {}
    exit_file = path / "exit.toml"
    if exit_file.is_file():
        data = _read_toml(exit_file, problems) or {}
        for raw in data.get("exit", []):
            iid = raw.get("id", "?")
            try:
                item = convert(raw, ExitItem)
            except Invalid as e:
                problems += _problems(f"exit.toml item '{iid}'", e)
                continue
            if item.id in exit_items:
                problems.append(f"exit.toml: exit item id '{item.id}' is used twice.")
            if not item.requires:
                problems.append(f"exit.toml item '{item.id}': requires no concept. List at least one in `requires`.")
            for r in item.requires:
                if r not in concepts:
                    near = closest(r, concepts)
                    hint = f" Did you mean {', '.join(near)}?" if near else ""
                    problems.append(f"exit.toml item '{item.id}': required concept '{r}' does not exist.{hint}")
            exit_items[item.id] = item
    orders = [m.order for m in modules]
    if len(set(orders)) != len(orders):
        problems.append("modules: two modules share the same `order`. Give each a distinct order.")
    if problems:
        raise CurriculumError(path, problems)
    modules.sort(key=lambda m: m.order)
    ordered = {cid: concepts[cid] for m in modules for cid in m.concepts}
    return Curriculum(
        id=info.get("id", path.name),
        title=info.get("title", path.name),
        version=str(info.get("version", "1")),
        path=str(path),
        modules=tuple(modules),
        concepts=ordered,
        exit_items=exit_items,
    )


@cache
def _load_cached(path: str, key: str, cache_file: Path | None) -> Curriculum:
    if cache_file is not None:
        try:
            held = msgspec.json.decode(cache_file.read_bytes(), type=_Compiled)
            if held.format == _FORMAT and held.key == key:
                return held.curriculum
        except (OSError, msgspec.DecodeError, msgspec.ValidationError):
            pass  # missing, unreadable or from another llmlab: load the TOML
    cur = load(path)
    if cache_file is not None:
        try:
            from .files import atomic_write

            atomic_write(cache_file, msgspec.json.encode(
                _Compiled(format=_FORMAT, key=key, curriculum=cur)), durable=False)
        except OSError:
            pass  # a cache only: the next command loads the TOML again
    return cur


class _Compiled(Record, kw_only=True):
    """A validated curriculum with what it was loaded from (the SHA-256 of its TOML
    files' names and bytes): `load_cached` uses it while they are unchanged."""

    format: int
    key: str
    curriculum: Curriculum


_FORMAT = 1  # bump when the records above change shape


def load_cached(path: str | Path, cache_file: Path | None = None) -> Curriculum:
    """`load`, memoised on the content of the folder's TOML files: in this process, and
    across processes in `cache_file` when one is given (a workspace's
    `state/curriculum.json`). Parsing the default course's TOML costs ~20 ms a command;
    hashing it and decoding the validated result, ~1 ms."""
    import hashlib

    p = Path(path).resolve()
    h = hashlib.sha256()
    for f in sorted(p.rglob("*.toml")):
        try:
            data = f.read_bytes()
        except OSError:  # `load` words it
            data = b"?"
        name = os.fsencode(f)
        h.update(b"%d:%s%d:" % (len(name), name, len(data)) + data)
    return _load_cached(str(p), h.hexdigest(), cache_file)
