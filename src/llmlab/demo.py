"""`llmlab demo`: a fresh workspace with a scripted, multi-day tutoring trajectory.

Everything goes through the one write path (`api.record` via the typed helpers), with
back-dated timestamps so the mastery gates (several observations on distinct days) and
the retention model have real days to work with.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from . import api
from .errors import UserError
from .core import CONFIG_FILE
from .create import create_workspace
from .workspace import Workspace

NAME = "Demo Learner"
GOAL = "Ship an LLM feature at work and debug it from first principles."


def _at(days_ago: float, hour: int, minute: int = 0) -> str:
    base = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return (base - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _script() -> list[tuple]:
    """(days_ago, hour, action, args): nine days of tutoring on the default course."""
    return [
        # day 1: find out what the learner knows, starting from a symptom
        (9, 10, "observe", ("tokenization", 0.4, "Guessed the model reads letters; could not say "
                            "why it miscounts the r's in 'strawberry'.", "Why can a model miscount letters?")),
        (9, 10, "misconception", ("tokenization", "model_sees_letters")),
        (9, 11, "observe", ("autoregressive_loop", 0.6, "Knew answers stream; unsure what decides "
                            "when the loop stops.", "Walk me through one generation step.")),
        # day 2: the misconception is fixed with the tokenizer in front of them
        (8, 9, "observe", ("tokenization", 0.8, "Predicted 'strawberry' is several tokens, checked "
                           "it, and explained the split from merge frequency.", "Predict the token count, then check.")),
        (8, 9, "resolve", ("Saw the token split and explained why spelling the word out helps.",)),
        (8, 10, "observe", ("autoregressive_loop", 0.85, "Explained the loop step by step, "
                            "including the end-of-turn token.", "What happens after the first token?")),
        (8, 10, "observe", ("softmax", 0.5, "Knew softmax normalises, but thought logit 4 vs 2 "
                            "means twice as likely.", "Logits 4 and 2: how much more likely?")),
        # day 4: consolidation with concrete numbers
        (6, 19, "observe", ("tokenization", 0.95, "Estimated the token count of a German prompt "
                            "within 15 % and explained why it exceeds the English one.", "Estimate, then measure.")),
        (6, 19, "observe", ("tokenization", 0.9, "Explained why a rare name costs more tokens "
                            "than a common word.", "Why does 'Szczepański' cost so much?")),
        (6, 19, "observe", ("autoregressive_loop", 0.9, "Derived why latency grows with answer "
                            "length and why streaming is possible.", "Why can the answer stream?")),
        (6, 20, "observe", ("softmax", 0.75, "Computed softmax of [4, 1] at T = 1 by hand: "
                            "0.953 and 0.047.", "Work the numbers for logits 4 and 1.")),
        (6, 20, "observe", ("temperature", 0.55, "Said a higher temperature picks different, more "
                            "creative tokens; unsure whether the ranking changes.", "What does T = 2 do to [4, 1]?")),
        # day 6: a mis-logged observation is retracted, never deleted
        (4, 18, "observe", ("self_attention", 0.9, "Logged by mistake: this answer was about "
                            "temperature, not attention.", "")),
        (4, 18, "retract_last", ("Logged on the wrong concept; the answer was about temperature.",)),
        (4, 18, "observe", ("temperature", 0.9, "Showed with numbers that dividing logits by T "
                            "never changes the argmax.", "Does T = 2 ever change the top token?")),
        (4, 19, "observe", ("softmax", 0.9, "Explained why a logit gap of 3 is a factor of 20.",
                            "Why is the top token so dominant?")),
        # day 8: an exit attempt that fails honestly, then the next module starts
        (2, 9, "observe", ("temperature", 0.9, "Predicted the T = 0.5 distribution of [4, 1] "
                           "(0.998 / 0.002) before computing it.", "Sharpen [4, 1] with T = 0.5.")),
        (2, 9, "observe", ("autoregressive_loop", 0.95, "Explained the loop to a colleague, "
                           "mentioning the KV cache.", "")),
        # the skill verdict wants sustained evidence after a shaky start: tokenization again
        (2, 9, "observe", ("tokenization", 0.95, "Predicted that JSON keys repeat as tokens and "
                           "cost budget; checked it.", "Where do the tokens of a JSON reply go?")),
        (2, 10, "observe", ("tokenization", 0.95, "Explained unprompted why numbers tokenize "
                            "unevenly and what that does to arithmetic.", "")),
        (2, 10, "exit", ("explain_next_token", False, "Clear on tokens, softmax and temperature; "
                         "could not yet explain top-p or where the KV cache saves work.")),
        (1, 19, "observe", ("tokenization", 0.95, "Estimated the token cost of a code file "
                            "within 10 % before measuring.", "Estimate, then measure.")),
        (1, 19, "observe", ("tokenization", 1.0, "Caught that a leading space makes a "
                            "different token, unasked.", "Are ' cat' and 'cat' the same token?")),
        (1, 20, "observe", ("self_attention", 0.55, "Intuition right (tokens read from earlier "
                            "tokens), mechanism of Q, K, V fuzzy.", "What problem does attention solve?")),
    ]


def run(directory: Path, force: bool = False, console: Console | None = None) -> Workspace:
    directory = directory.expanduser().resolve()
    if directory.exists() and any(directory.iterdir()):
        if not force:
            raise UserError(f"{directory} already exists. Use --force to replace the demo "
                            "workspace, or --dir to choose another folder.")
        if not (directory / CONFIG_FILE).is_file():
            raise UserError(f"{directory} is not an llmlab workspace; refusing to delete it with "
                            "--force. Choose another --dir.")
        shutil.rmtree(directory)
    ws = create_workspace(directory, name=NAME, goal=GOAL)
    opened = last = None
    for days_ago, hour, action, args in _script():
        at = _at(days_ago, hour)
        if action == "observe":
            cid, q, evidence, probe = args
            last = api.observe(ws, cid, q, evidence, probe, at=at)
        elif action == "misconception":
            cid, catalog = args
            opened = api.open_misconception(ws, cid, catalog=catalog, at=at,
                                            quote="It reads the word, so counting letters is easy.")
        elif action == "resolve":
            api.resolve_misconception(ws, opened.id, args[0], at=at)
        elif action == "retract_last":
            api.retract(ws, last.id, args[0], at=at)
        elif action == "exit":
            api.exit_attempt(ws, *args, at=at)
    _lab_run(ws, console)
    if console:
        console.print(f"Demo workspace: {ws.root} ({api.state(ws)['events']} events)")
    return ws


def _lab_run(ws: Workspace, console: Console | None) -> None:
    """Predict, then measure: one real lab run, so the lab section has a comparison."""
    try:
        from .lab.runner import require_torch, run_experiment

        require_torch()
    except UserError as e:
        if console:
            console.print(f"Skipping the demo's lab run: {e}")
        return
    api.predict(ws, "sampling", "top1_prob", 0.9, concept="softmax",
                note="Canberra is the capital, so the model should be confident.")
    r = run_experiment(ws, "sampling", {"draws": 1000, "greedy_runs": 2}, console=console,
                       show_progress=console is not None)
    if console:
        for c in r["comparisons"]:
            console.print(f"Lab: predicted {c['quantity']} = {c['predicted']:g}, measured "
                          f"{c['measured']:.3f} ({'within' if c['within'] else 'outside'} "
                          "tolerance).")
