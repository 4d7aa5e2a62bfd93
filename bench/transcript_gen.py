"""A fixed, seeded Claude Code session log of any size, for the transcript bench and tests.

Nothing in it comes from the repository or the machine: every word is drawn from the
lists below by `random.Random(seed)`, so the same (seed, size) gives the same bytes on
any commit. The shape follows real Claude Code logs (~/.claude/projects/<project>/<id>.jsonl):

- a typed prompt per exchange (some with harness noise: a system reminder, a slash
  command echo), then the assistant's reply streamed over several lines that share one
  `message.id` (a signature-only thinking block, text, tool calls), each tool call
  followed by its `tool_result` (Read: numbered source lines; Bash: command output;
  Grep: matches), progress and file-history-snapshot records between them;
- the metadata every record carries (cwd, sessionId, version, gitBranch, requestId,
  usage), exchanges a few minutes apart over many days;
- the hard cases at a low rate: a record written twice (resume), a rewind (a prompt that
  re-takes an earlier point), a compaction, secrets and e-mail addresses in tool output.

    python bench/transcript_gen.py OUT.jsonl --mb 10 [--seed 19]
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

SESSION = "5e551011-0000-4000-8000-00000000b001"
CWD = "/home/dana/src/tinyllm"
WORDS = ("token logits softmax cache layer head query key value mask batch shape embed norm residual "
         "attention sample temperature prompt vocab merge rank chunk score index model weight grad loss "
         "step epoch window offset buffer stream reader writer parse render scrub page record node").split()
TYPES = ("int", "float", "str", "list[int]", "Tensor", "dict[str, float]", "bool")
PROMPTS = ("Why does {a} change when I raise the {b}?", "Can you read {f} and explain the {a} part?",
           "Run the tests for {b} and tell me what fails.", "What would happen to {a} if {b} doubled?",
           "Where is {a} computed? I expected it next to {b}.", "Is my prediction about {a} right: {n}?",
           "Explain {a} vs {b} with concrete numbers.", "Fix the failing {a} test without touching {b}.")
REPLIES = ("The {a} depends on the {b} through the normalisation, so doubling it moves {n} of the mass.",
           "Looking at `{f}`, the {a} is built in `{fn}` and reused by the {b} step.",
           "Good prediction. The measured {a} was {n}, close to your {m}.",
           "Not quite: {a} is computed per position, so the cost grows with the square of the {b} length.",
           "Here is the plan:\n\n1. read `{f}`\n2. change `{fn}` to keep the {a}\n3. rerun the {b} tests")
SECRET_LINES = ("OPENAI_API_KEY=sk-proj-{r}", "export GITHUB_TOKEN=ghp_{r}", "contact: {w}.{v}@example.com",
                "aws_access_key_id = AKIA{R}", "password = \"{w}-{v}-{n}\"")


class Gen:
    def __init__(self, seed: int, hard: float = 1.0):
        self.r = random.Random(seed)
        self.hard = hard  # scales the rate of the hard cases (rewinds, compactions, duplicates)
        self.n = 0
        self.t = datetime(2025, 3, 3, 8, 30, tzinfo=timezone.utc)
        self.parent: str | None = None
        self.rewind_to: str | None = None
        self.bodies = [self._source(self.r.randrange(60, 500)) for _ in range(48)]

    # ------------------------------------------------------------ words
    def w(self) -> str:
        return self.r.choice(WORDS)

    def fill(self, s: str) -> str:
        r = self.r
        return s.format(a=self.w(), b=self.w(), f=self.path(), fn=f"{self.w()}_{self.w()}", n=f"{r.random():.3f}",
                        m=f"{r.random():.2f}", w=self.w(), v=self.w(),
                        r="".join(r.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
                                  for _ in range(40)),
                        R="".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16)))

    def path(self) -> str:
        return f"{CWD}/src/{self.w()}/{self.w()}_{self.w()}.py"

    def _source(self, n: int) -> str:
        r, lines, depth = self.r, [], 0
        for i in range(n):
            k = r.random()
            ind = "    " * depth
            if k < 0.08:
                depth = 1
                line = f"def {self.w()}_{self.w()}(self, {self.w()}: {r.choice(TYPES)}) -> {r.choice(TYPES)}:"
                ind = ""
            elif k < 0.2:
                line = f"{ind}# {self.w()} the {self.w()} before the {self.w()} ({r.randrange(2, 4096)} {self.w()}s)"
            elif k < 0.3:
                line = f"{ind}for {self.w()} in range({r.randrange(1, 64)}):"
                depth = min(3, depth + 1)
            elif k < 0.36:
                line = f"{ind}return {self.w()}.{self.w()}({self.w()}, dim={r.randrange(-2, 3)})"
                depth = max(0, depth - 1)
            elif k < 0.4:
                line = ""
            else:
                line = (f"{ind}{self.w()}_{self.w()} = {self.w()}[{r.randrange(0, 512)}:] * {r.random():.4f}"
                        f" + {self.w()}.{self.w()}")
            lines.append(line)
        return "\n".join(f"{i + 1:>6}\t{ln}" for i, ln in enumerate(lines))

    # ------------------------------------------------------------ records
    def uuid(self) -> str:
        self.n += 1
        return f"{self.r.getrandbits(32):08x}-{self.n >> 16:04x}-4{self.n & 0xfff:03x}-8{self.r.getrandbits(12):03x}-" \
               f"{self.r.getrandbits(48):012x}"

    def stamp(self, seconds: float) -> str:
        self.t += timedelta(seconds=seconds)
        return self.t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{self.t.microsecond // 1000:03d}Z"

    def rec(self, typ: str, message: dict | None = None, parent: str | None = "", **extra) -> dict:
        u = self.uuid()
        out = {"parentUuid": self.parent if parent == "" else parent, "isSidechain": False, "userType": "external",
               "cwd": CWD, "sessionId": SESSION, "version": "2.0.31", "gitBranch": "main", "type": typ,
               "uuid": u, "timestamp": self.stamp(self.r.uniform(0.2, 9.0))}
        if message is not None:
            out["message"] = message
        out.update(extra)
        self.parent = u
        return out

    def assistant(self, msg_id: str, block: dict, req: str) -> dict:
        r = self.r
        return self.rec("assistant", {
            "id": msg_id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [block], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": r.randrange(3, 40), "cache_creation_input_tokens": r.randrange(0, 9000),
                      "cache_read_input_tokens": r.randrange(10000, 90000), "output_tokens": r.randrange(1, 900),
                      "service_tier": "standard"}}, requestId=req)

    def tool(self) -> tuple[str, dict, str]:
        r, k = self.r, self.r.random()
        if k < 0.45:
            return "Read", {"file_path": self.path()}, r.choice(self.bodies)
        if k < 0.7:
            cmd = r.choice(("pytest -q tests/test_{a}.py", "python -m tinyllm {a} --{b} 3", "git diff --stat",
                            "ls src/{a}"))
            out = "\n".join(self.fill(r.choice(("{a}/{b}.py::test_{a} PASSED", "{n} {a} per {b}", "M src/{a}.py",
                                                   "{a}_{b}.py")))
                            for _ in range(r.randrange(3, 60)))
            if r.random() < 0.05:
                out += "\n" + self.fill(r.choice(SECRET_LINES))
            return "Bash", {"command": self.fill(cmd), "description": self.fill("Run the {a} check")}, out
        if k < 0.85:
            return "Grep", {"pattern": self.w(), "path": "src"}, "\n".join(
                f"{self.path()}:{r.randrange(1, 900)}:    {self.w()} = {self.w()}({self.w()})"
                for _ in range(r.randrange(1, 30)))
        old = f"{self.w()} = {self.w()}"
        return "Edit", {"file_path": self.path(), "old_string": old, "new_string": old + " + 1"}, \
            "The file has been updated."

    def exchange(self) -> list[dict]:
        r = self.r
        out = []
        self.stamp(r.uniform(60, 1800) if r.random() < 0.9 else r.uniform(20000, 90000))
        if r.random() < 0.03 * self.hard and self.parent:  # a rewind: the prompt re-takes an earlier point
            out.append(self.rec("user", {"role": "user", "content": self.fill(r.choice(PROMPTS))},
                                parent=self.rewind_to))
        elif r.random() < 0.01 * self.hard:  # a compaction: a boundary, then the harness's summary as a user record
            out.append(self.rec("system", None, parent=None, subtype="compact_boundary", content="Conversation "
                                "compacted", level="info", compactMetadata={"trigger": "auto", "preTokens": 155000},
                                logicalParentUuid=self.parent))
            out.append(self.rec("user", {"role": "user", "content": "This session is being continued from a previous "
                                         "conversation that ran out of context. " + self.fill(r.choice(REPLIES))},
                                isCompactSummary=True))
        text = self.fill(r.choice(PROMPTS))
        if r.random() < 0.2:
            text = f"<system-reminder>\nThe user opened the file {self.path()} in the IDE.\n</system-reminder>\n" + text
        self.rewind_to = self.parent
        out.append(self.rec("user", {"role": "user", "content": text}))
        if r.random() < 0.3:
            out.append({"type": "file-history-snapshot", "messageId": out[-1]["uuid"],
                        "snapshot": {"messageId": out[-1]["uuid"], "trackedFileBackups": {},
                                     "timestamp": out[-1]["timestamp"]}, "isSnapshotUpdate": False})
        for _turn in range(r.randrange(1, 5)):
            msg_id, req = f"msg_01{r.getrandbits(64):016x}", f"req_011{r.getrandbits(64):016x}"
            if r.random() < 0.5:
                out.append(self.assistant(msg_id, {"type": "thinking", "thinking": "",
                                                   "signature": f"Eq{r.getrandbits(256):064x}"}, req))
            out.append(self.assistant(msg_id, {"type": "text", "text": self.fill(r.choice(REPLIES))}, req))
            calls = []
            for _ in range(r.randrange(0, 3)):
                name, inp, result = self.tool()
                tid = f"toolu_01{r.getrandbits(64):016x}"
                out.append(self.assistant(msg_id, {"type": "tool_use", "id": tid, "name": name, "input": inp}, req))
                calls.append((tid, result))
            for tid, result in calls:
                if r.random() < 0.3:
                    out.append(self.rec("progress", None, data={"type": "hook_progress", "hookEvent": "PostToolUse"},
                                        toolUseID=tid, parentToolUseID=tid))
                out.append(self.rec("user", {"role": "user", "content": [
                    {"tool_use_id": tid, "type": "tool_result", "content": result, "is_error": False}]},
                    toolUseResult={"type": "text"}))
        if r.random() < 0.01 * self.hard:  # a record written twice (a resumed session copies it)
            out.append(dict(out[-1]))
        return out


def generate(path: Path, target_bytes: int, seed: int = 19, hard: float = 1.0) -> dict:
    """Write a log of at least `target_bytes` (whole exchanges) to `path`; what was written.
    `hard` multiplies the rate of rewinds, compactions and duplicated records."""
    g = Gen(seed, hard)
    size = records = exchanges = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps({"type": "summary", "summary": "Attention and the KV cache, measured",
                            "leafUuid": "not-in-this-file"}) + "\n")
        while size < target_bytes:
            buf = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in g.exchange())
            f.write(buf)
            size += len(buf.encode())
            records += buf.count("\n")
            exchanges += 1
    return {"bytes": path.stat().st_size, "records": records + 1, "exchanges": exchanges, "seed": seed,
            "hard": hard, "session": SESSION}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--mb", type=float, default=10, help="size in MB (10^6 bytes)")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--hard", type=float, default=1.0, help="multiplies the rate of the hard cases")
    args = ap.parse_args()
    print(json.dumps(generate(args.out, int(args.mb * 1_000_000), args.seed, args.hard)))


if __name__ == "__main__":
    main()
