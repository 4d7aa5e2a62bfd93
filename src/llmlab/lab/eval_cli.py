"""`llmlab eval ...`: evaluation tools that work on your own data (no model needed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..shell import group

app = group(help="Evaluate evaluations: calibrate an LLM judge against human scores.")
console = Console()


@app.command("calibrate")
def calibrate_cmd(
    scores: Path = typer.Argument(..., help="CSV with columns item, human, judge (optional "
                                  "dimension): one row per item scored by both."),
    threshold: float = typer.Option(3.0, "--threshold", help="Pass threshold: a score >= this "
                                    "passes (for agreement and Cohen's kappa)."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="Also write the reliability "
                                          "figure to this PNG file."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap intervals."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for programs."),
) -> None:
    """How far to trust a judge: Pearson and Spearman r, MAE, bias, Cohen's kappa at a pass
    threshold, overall and per dimension, with 95% bootstrap intervals over items."""
    from ..errors import UserError
    from . import judge

    rows = judge.read_scores(scores)  # validated before anything heavy is imported
    try:
        import numpy  # noqa: F401
        import scipy  # noqa: F401
    except ImportError:
        raise UserError("Calibration needs the lab extra: pip install -e '.[lab]'.") from None
    report = judge.calibrate(rows, threshold, seed)
    if figure:
        judge.figure(rows, report).savefig(figure, dpi=110, bbox_inches="tight")
        report["figure"] = str(figure)
    if as_json:
        sys.stdout.write(json.dumps(judge.plain(report), indent=2) + "\n")
        return
    for line in judge.lines(report):
        console.print(line, soft_wrap=True)
    if figure:
        console.print(f"Reliability figure: {figure}")
