"""Benchmark LoRA fine-tuning (issue 14): the lab's training step vs plain transformers+peft.

One process, one model, interleaved blocks: `--blocks` times, `--steps` steps of the lab's
loop (`llmlab.lab.tuning.train`: its batching, timing and progress callback) then the
same number of steps of a plain loop (get_peft_model + AdamW + loss.backward, nothing
else). Both at LoRA r=8 on q_proj and v_proj, batch 4 x 128 tokens, the same threads.
Medians per step over all blocks; the first step of each block (warm-up) is dropped.

`--default-run` also runs each tuning experiment's default configuration (`llmlab lab run
NAME --no-record`) in a child process under /usr/bin/time, after the step comparison, and
reports its wall time and peak RSS (target: <= 5 min each). `--only-default-runs` skips the
step comparison.

    .venv/bin/python bench/tuning_bench.py                  # ~2 min on an idle 2-core CPU
    .venv/bin/python bench/tuning_bench.py --default-run    # + the four default runs (~10 min)
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

import torch

from llmlab.lab import models
from llmlab.lab import tuning as T
from llmlab.lab.tuning_data import GENERAL_TEXT

from _summary import row

SEQ, BATCH, RANK = 128, 4, 8


def rows_128(tok) -> list:
    """8 rows of exactly 128 tokens of general text (labels = ids: loss on every token)."""
    ids = tok(" ".join(GENERAL_TEXT.read_text().split()) * 3, add_special_tokens=False).input_ids
    return [(ids[i * SEQ:(i + 1) * SEQ], ids[i * SEQ:(i + 1) * SEQ]) for i in range(8)]


def lab_block(base, rows, steps):
    model = T.attach(base, RANK, 2 * RANK, ["q_proj", "v_proj"], seed=0)
    c = T.train(model, rows, 0, steps=steps, batch=BATCH, lr=1e-3, seed=0,
                bar=lambda d=None: None)
    return [s["seconds"] for s in c.steps[1:]]


def plain_block(base, rows, steps):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(copy.deepcopy(base), LoraConfig(
        r=RANK, lora_alpha=2 * RANK, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3,
                            weight_decay=0.0)
    ids = torch.tensor([r[0] for r in rows[:BATCH]])  # (4, 128)
    model.train()
    out = []
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        out.append(time.perf_counter() - t0)
    return out[1:]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--default-run", action="store_true")
    ap.add_argument("--only-default-runs", action="store_true")
    ap.add_argument("--experiments", default="finetune,finetune_sweep,optimizer_state,preference")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.only_default_runs:
        return default_runs(a.experiments.split(","))
    load0 = os.getloadavg()
    loaded = models.load()
    base, tok = loaded.model, loaded.tokenizer
    rows = rows_128(tok)
    lab, plain = [], []
    for b in range(a.blocks):  # interleaved, alternating which goes first
        for name in (("lab", "plain") if b % 2 == 0 else ("plain", "lab")):
            (lab if name == "lab" else plain).extend(
                (lab_block if name == "lab" else plain_block)(base, rows, a.steps))
    ml, mp = statistics.median(lab), statistics.median(plain)
    print(f"## LoRA fine-tuning (issue 14), {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, load average before {load0[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")
    print(f"command: bench/tuning_bench.py --threads {a.threads} --blocks {a.blocks} "
          f"--steps {a.steps}")
    print("| loop | steps | median s/step | tokens/s | min | max |\n|---|---|---|---|---|---|")
    for name, xs in (("lab (tuning.train)", lab), ("plain transformers+peft", plain)):
        print(f"| {name} | {len(xs)} | {statistics.median(xs):.3f} | "
              f"{BATCH * SEQ / statistics.median(xs):.0f} | {min(xs):.3f} | {max(xs):.3f} |")
    print(f"lab / plain = {ml / mp:.3f} ({100 * (ml / mp - 1):+.1f} %); peak RSS of this "
          f"process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    row("LoRA step, lab vs plain transformers+peft (r=8, batch 4 x 128)", target="lab adds <= 5 %",
        measured=f"{ml:.2f} s/step, {BATCH * SEQ / ml:.0f} tokens/s",
        ratio=f"{ml / mp:.3f}x plain", met=ml / mp <= 1.05)
    if a.default_run:
        default_runs(a.experiments.split(","))


def default_runs(names: list[str]) -> None:
    """Each experiment's default run in a child process. /usr/bin/time measures the child
    alone: getrusage(RUSAGE_CHILDREN) would report this process's own peak, which a forked
    child inherits until it execs."""
    print(f"\n{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, load average "
          f"{os.getloadavg()[0]:.2f}; each run `llmlab lab run NAME --no-record` (defaults: "
          "torch threads = free cores)\n\n| experiment | exit | wall (s) | peak RSS (MiB) | "
          "load after |\n|---|---|---|---|---|")
    for name in names:
        t0 = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-f", "%M", sys.executable, "-m", "llmlab", "lab",
                            "run", name, "--no-record"], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        peak = int(r.stderr.strip().splitlines()[-1]) / 1024
        print(f"| {name} | {r.returncode} | {wall:.0f} | {peak:.0f} | {os.getloadavg()[0]:.2f} |",
              flush=True)
        row(f"default `{name}` run, end to end", target="<= 5 min",
            measured=f"{wall:.0f} s, peak RSS {peak:.0f} MiB", met=r.returncode == 0 and wall <= 300,
            cmd=f"llmlab lab run {name} --no-record")

if __name__ == "__main__":
    main()
