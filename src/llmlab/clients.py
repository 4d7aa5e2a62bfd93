"""MCP client set-up: put the `llmlab mcp` server into an agent client's configuration.

One small function per client says where its configuration lives and how the server entry
looks there. Writing merges into the existing file: other servers and settings are kept,
only our entry (by server name) is added or replaced, and a file that cannot be parsed is
never overwritten.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import files
from .errors import UserError, unknown
from .workspace import Workspace


@dataclass(frozen=True)
class Target:
    """Where a client's config lives, the key holding its servers, and our entry there."""

    client: str
    path: Path
    key: str  # top-level object holding servers by name: "mcpServers" or "servers"
    entry: dict
    after: str  # what the learner does next
    fmt: files.Format = "json"
    extra: Callable[[dict], None] | None = None  # other settings the client needs


def command() -> tuple[str, list[str]]:
    """How to start the server from any folder: the absolute `llmlab` script next to this
    interpreter when there is one (clients start servers with a minimal PATH), else this
    interpreter with `-m llmlab`."""
    script = Path(sys.executable).parent / ("llmlab.exe" if os.name == "nt" else "llmlab")
    if script.is_file():
        return str(script), ["mcp"]
    found = shutil.which("llmlab")
    if found:
        return str(Path(found).resolve()), ["mcp"]
    return sys.executable, ["-m", "llmlab", "mcp"]


def server_entry(ws: Workspace) -> dict:
    cmd, args = command()
    return {"command": cmd, "args": args, "env": {"LLMLAB_HOME": str(ws.root)}}


# ---------------------------------------------------------------- one function per client

def claude_code(ws: Workspace, config: Path | None) -> Target:
    return Target("claude-code", config or ws.root / ".mcp.json", "mcpServers",
                  {"type": "stdio", **server_entry(ws)},
                  f"Open Claude Code in {ws.root} (`cd {ws.root} && claude`) and approve the "
                  "project's llmlab server when asked; `/mcp` shows it connected.")


def claude_desktop_config_path() -> Path:
    """claude_desktop_config.json: macOS and Windows as Claude Desktop documents them; on
    Linux (no official build) the XDG config folder that community builds use."""
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if os.name == "nt":
        base = Path(os.environ.get("APPDATA", home / "AppData" / "Roaming"))
        return base / "Claude" / "claude_desktop_config.json"
    base = Path(os.environ.get("XDG_CONFIG_HOME", home / ".config"))
    return base / "Claude" / "claude_desktop_config.json"


def claude_desktop(ws: Workspace, config: Path | None) -> Target:
    return Target("claude-desktop", config or claude_desktop_config_path(), "mcpServers",
                  server_entry(ws),
                  "Quit and reopen Claude Desktop; the llmlab tools appear under the tools "
                  "icon. Start a chat with the `start_session` prompt (the + menu).")


def cursor(ws: Workspace, config: Path | None) -> Target:
    return Target("cursor", config or ws.root / ".cursor" / "mcp.json", "mcpServers",
                  server_entry(ws),
                  f"Open {ws.root} in Cursor and enable the llmlab server in Settings > MCP. "
                  "Cursor reads AGENTS.md as the project's rules.")


def vscode(ws: Workspace, config: Path | None) -> Target:
    """VS Code's mcp.json is JSONC: read with its comments; a commented file is not
    rewritten (the error gives the entry to paste)."""
    return Target("vscode", config or ws.root / ".vscode" / "mcp.json", "servers",
                  {"type": "stdio", **server_entry(ws)},
                  f"Open {ws.root} in VS Code; start the llmlab server from .vscode/mcp.json "
                  "and use Copilot Chat in agent mode.", fmt="jsonc")


def _context_file(doc: dict) -> None:
    """Gemini CLI reads GEMINI.md by default: add AGENTS.md to `contextFileName` (a name
    or a list of names), keeping the names already there."""
    names = doc.get("contextFileName")
    if names is None or names == "AGENTS.md":
        doc["contextFileName"] = "AGENTS.md"
    elif isinstance(names, str):
        doc["contextFileName"] = [names, "AGENTS.md"]
    elif isinstance(names, list):
        if "AGENTS.md" not in names:
            names.append("AGENTS.md")
    else:
        raise UserError("'contextFileName' in the Gemini settings is neither a file name nor "
                        "a list of them; llmlab will not replace it. Fix it by hand, then run "
                        "this again. Nothing was changed.")


def gemini(ws: Workspace, config: Path | None) -> Target:
    return Target("gemini", config or ws.root / ".gemini" / "settings.json", "mcpServers",
                  server_entry(ws),
                  f"Run `gemini` in {ws.root}; `/mcp` lists the llmlab tools, and the tutor "
                  "instructions (AGENTS.md) are its context file.", extra=_context_file)


def codex_config_path() -> Path:
    """Codex's user configuration: $CODEX_HOME/config.toml, ~/.codex by default."""
    home = os.environ.get("CODEX_HOME")
    return (Path(home) if home else Path.home() / ".codex") / "config.toml"


def codex(ws: Workspace, config: Path | None) -> Target:
    """Codex CLI: a [mcp_servers.NAME] table (command, args, env) in its TOML config,
    merged with tomlkit so comments and formatting stay. Codex reads AGENTS.md itself."""
    return Target("codex", config or codex_config_path(), "mcp_servers", server_entry(ws),
                  f"Run `codex` in {ws.root}; `/mcp` lists the llmlab tools, and Codex reads "
                  "AGENTS.md as the project's instructions.", fmt="toml")


CLIENTS: dict[str, Callable[[Workspace, Path | None], Target]] = {
    "claude-code": claude_code,
    "claude-desktop": claude_desktop,
    "cursor": cursor,
    "vscode": vscode,
    "gemini": gemini,
    "codex": codex,
}


# ---------------------------------------------------------------- merge and write

def target(ws: Workspace, client: str, config: Path | None = None) -> Target:
    if client not in CLIENTS:
        raise unknown("client", client, CLIENTS,
                      f"Supported clients: {', '.join(CLIENTS)}. For any other MCP client, "
                      "run `llmlab tutor setup --client claude-desktop --print` and copy the "
                      "server entry into its configuration.")
    return CLIENTS[client](ws, config.expanduser() if config else None)


def _toml_table(entry: dict):
    """Our entry as one TOML table (`env` inline, as Codex documents it), followed by a
    blank line so a table after it keeps its spacing."""
    import tomlkit

    table = tomlkit.table()
    for k, v in entry.items():
        if isinstance(v, dict):
            inline = tomlkit.inline_table()
            inline.update(v)
            v = inline
        table.add(k, v)
    table.add(tomlkit.nl())
    return table


def _fix(t: Target) -> str:
    return (f"Fix the file, or run `llmlab tutor setup --client {t.client} --print` and add the "
            "entry by hand.")


def setup(ws: Workspace, client: str, config: Path | None = None, name: str = "llmlab",
          write: bool = True, plugin: bool = True) -> dict:
    """Merge the llmlab server entry into `client`'s configuration (or only compute it).

    For claude-code, `plugin` also enables the llmlab Claude Code plugin (hooks and slash
    commands) in the workspace; a plugin that cannot be set up is reported, not an error."""
    if not name or any(c.isspace() for c in name):
        raise UserError(f"Server name {name!r} must be a non-empty word, e.g. 'llmlab' or "
                        "'llmlab-course2'.")
    t = target(ws, client, config)
    before: dict = {}

    def add_entry(doc: dict) -> None:
        servers = files.section(doc, t.key, t.path)
        before["entry"] = servers.get(name)
        servers[name] = _toml_table(t.entry) if t.fmt == "toml" else t.entry
        if t.extra:
            t.extra(doc)

    data, change = files.edit_config(t.path, add_entry, fmt=t.fmt, write=write, fix=_fix(t))
    if change != "unchanged":
        change = "updated" if before["entry"] is not None else "added"
    res = {"client": t.client, "path": str(t.path), "name": name, "change": change,
           "written": write and change != "unchanged", "entry": {t.key: {name: t.entry}},
           "format": t.fmt,
           "config": data, "next": t.after}
    if client == "claude-code" and plugin:
        from .plugin import setup as plugin_setup

        res["plugin"] = plugin_setup.best_effort(ws, write=write)
    return res
