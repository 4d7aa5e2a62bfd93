"""The shape of the code: dependencies point one way, one owner per idea."""

from __future__ import annotations

import ast
import json
import os
import stat
from pathlib import Path

import pytest

from llmlab import files
from llmlab.errors import BadParameter, UnknownName, UserError, render

SRC = Path(__file__).resolve().parents[1] / "src" / "llmlab"


def import_graph(root: Path = SRC) -> dict[str, set[str]]:
    """Module -> the llmlab modules it imports, anywhere in its source (inside functions
    too). `from a import b` is an edge to `a.b` when that is a module, else to `a`."""
    mods = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        mods[".".join(parts)] = (f, is_pkg)

    def known(name: str) -> str:
        while name not in mods and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, (f, is_pkg) in mods.items():
        package = m.split(".") if is_pkg else m.split(".")[:-1]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                graph[m] |= {known(a.name) for a in node.names if a.name.startswith("llmlab")}
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                target = ".".join(base + ([node.module] if node.module else []))
                if target.startswith("llmlab"):
                    graph[m] |= {known(f"{target}.{a.name}") for a in node.names}
        graph[m].discard(m)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_imports_inside_functions():
    g = import_graph()
    assert "llmlab.plugin.setup" in g["llmlab.clients"]  # imported inside setup()
    assert "llmlab.lab.catalog" in g["llmlab.api"]  # inside experiment_catalog()
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_layers_point_one_way():
    g = import_graph()
    below_api = ["llmlab.core", "llmlab.files", "llmlab.errors", "llmlab.workspace",
                 "llmlab.lab.catalog", "llmlab.lab.experiment"]

    def reach(m: str, seen: set[str]) -> set[str]:
        for n in g[m] - seen:
            seen.add(n)
            reach(n, seen)
        return seen

    for m in below_api:
        assert "llmlab.api" not in reach(m, set()), m
    assert reach("llmlab.core", set()) <= {"llmlab.errors"}  # stdlib only, for the hooks
    assert not reach("llmlab.workspace", set()) & {"llmlab.clients", "llmlab.tutor",
                                                    "llmlab.create"}


# ---------------------------------------------------------------- files.py

def test_atomic_write_keeps_modes_and_follows_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        files.atomic_write(tmp_path / "new.txt", "x")
        assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    p = tmp_path / "kept.txt"
    p.write_text("old")
    p.chmod(0o640)
    assert files.atomic_write(p, [b"ab", "c\u00e9"]) == 5
    assert p.read_text() == "abc\u00e9" and stat.S_IMODE(p.stat().st_mode) == 0o640
    files.atomic_write(tmp_path / "private.json", "{}", mode=0o600)
    assert stat.S_IMODE((tmp_path / "private.json").stat().st_mode) == 0o600
    assert [x.name for x in tmp_path.iterdir() if x.name.endswith(".tmp")] == []


def test_atomic_write_leaves_the_old_file_on_error(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")

    def chunks():
        yield "new"
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError):
        files.atomic_write(p, chunks())
    assert p.read_text() == "old" and sorted(x.name for x in tmp_path.iterdir()) == ["a.txt"]


def add_server(doc: dict) -> None:
    files.section(doc, "servers", Path("cfg"))["llmlab"] = {"command": "llmlab"}


def test_edit_config_json_keeps_everything_else(tmp_path):
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"servers": {"other": {"command": "x"}}, "theme": "dark"}))
    doc, change = files.edit_config(p, add_server)
    assert change == "updated"
    assert json.loads(p.read_text()) == doc == {
        "servers": {"other": {"command": "x"}, "llmlab": {"command": "llmlab"}}, "theme": "dark"}
    before = p.read_bytes()
    assert files.edit_config(p, add_server)[1] == "unchanged" and p.read_bytes() == before
    assert files.edit_config(tmp_path / "new.json", add_server)[1] == "created"


def test_edit_config_refuses_what_it_cannot_keep(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(UserError, match="is not valid JSON.*Nothing was changed. FIX"):
        files.edit_config(bad, add_server, fix="FIX")
    assert bad.read_text() == "{oops"
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"servers": [1]}')
    with pytest.raises(UserError, match="'servers' is not an object"):
        files.edit_config(wrong, add_server)
    commented = tmp_path / "mcp.json"
    text = '{\n  // my servers\n  "servers": {"other": {"command": "x"},},\n}\n'
    commented.write_text(text)
    doc, _ = files.edit_config(commented, add_server, fmt="jsonc", write=False)
    assert doc["servers"]["other"] == {"command": "x"}  # JSONC parses
    with pytest.raises(UserError, match='(?s)has comments.*"llmlab"'):
        files.edit_config(commented, add_server, fmt="jsonc")
    assert commented.read_text() == text


def test_edit_config_toml_keeps_comments_and_layout(tmp_path):
    p = tmp_path / "config.toml"
    p.write_text('# my settings\nmodel = "o4"  # keep\n\n[mcp_servers.other]\ncommand = "x"\n')

    def add(doc):
        files.section(doc, "mcp_servers", p)["llmlab"] = {"command": "llmlab", "args": ["mcp"]}

    _, change = files.edit_config(p, add, fmt="toml")
    text = p.read_text()
    assert change == "updated"
    assert text.startswith('# my settings\nmodel = "o4"  # keep\n')
    assert '[mcp_servers.llmlab]\ncommand = "llmlab"\nargs = ["mcp"]' in text


# ---------------------------------------------------------------- errors

def test_errors_carry_facts_and_each_shell_spells_inputs():
    from llmlab.lab.catalog import spec

    with pytest.raises(BadParameter) as e:
        spec("sampling").resolve({"draws": "many"})
    assert (e.value.name, e.value.value) == ("draws", "many") and "int" in e.value.rule
    with pytest.raises(UnknownName) as e:
        spec("sampling").resolve({"drawz": 3})
    assert e.value.word == "drawz" and "draws" in e.value.choices
    assert "-p name=value" in str(e.value)
    assert 'params {"name": "value"}' in e.value.render("mcp") and "-p" not in e.value.render("mcp")
    assert render("{opt:claim=TEXT} or {param:prompt=a b}", "cli") == '--claim TEXT or -p prompt="a b"'
