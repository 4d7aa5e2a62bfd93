"""docs/tutor-and-clients.md "Learning inside Claude Code": every command of the section
runs as written (except starting `claude` and installing, which the test environment
already did)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from doctext import DOCS, ROOT, section as doc_section, sh_lines


def section() -> str:
    return doc_section("Learning inside Claude Code", DOCS / "tutor-and-clients.md")


def test_section_runs_as_written(tmp_path, cli):
    lines = sh_lines(section())
    skipped = {ln for ln in lines if ln.startswith(("python3 -m venv", ". .venv", "claude"))}
    assert len(skipped) == 3
    env = dict(os.environ, HOME=str(tmp_path), LLMLAB_HOME="",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    cwd, ran, outputs = tmp_path, 0, {}
    for line in lines:
        if not line or line in skipped:
            continue
        line = line.replace("~", str(tmp_path))
        if line.startswith("cd "):
            cwd = Path(line[3:])
            continue
        if line.startswith("llmlab "):
            r = cli(*shlex.split(line)[1:], cwd=cwd, env={"LLMLAB_HOME": "", "HOME": str(tmp_path)})
        else:
            r = subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True,
                               text=True, timeout=120)
        assert r.returncode == 0, f"`{line}` failed:\n{r.stdout}\n{r.stderr}"
        outputs[line.split()[0] + " " + line.split()[-1]] = r.stdout
        ran += 1
    assert ran == 6
    course = tmp_path / "llm-course"
    settings = json.loads((course / ".claude" / "settings.json").read_text())
    assert settings["enabledPlugins"] == {"llmlab@llmlab": True}
    brief = json.loads(outputs["echo session-start"])["hookSpecificOutput"]["additionalContext"]
    assert "Current module: inference_loop" in brief
    assert (course / "flashcards" / "llmlab-flashcards.txt").is_file()
    assert "evt_000001" in (course / "evidence.jsonl").read_text()


def test_section_names_every_slash_command_and_setting():
    text = section()
    for cmd in sorted(p.stem for p in (ROOT / "plugin" / "commands").glob("*.md")):
        assert f"/llmlab:{cmd}" in text
    for key in ("remind", "transcript", "brief_probes"):
        assert f"`{key} =" in text
