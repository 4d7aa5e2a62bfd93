"""Benchmark the lab (issue 3). Prints a markdown section for BENCHMARKS.md.

1. Model load, each in a fresh process, timing the load only (Python imports excluded):
   cold (the GGUF dequantized into an empty cache), then from the cache (twice); plus a
   check that the cached model's logits are identical to the model loaded from the GGUF.
2. Capturing the residual stream after every layer (llmlab.lab.hooks.capture_residual) vs
   a plain forward pass vs nnsight saving the same tensors, on the same loaded model,
   interleaved in one run (medians), with the saved tensors checked equal.
3. Each experiment's default run (model already loaded in the process), and one
   `llmlab lab run` end to end in a fresh process.

    .venv/bin/pip install -e '.[lab,bench]'      # nnsight for part 2
    .venv/bin/python bench/lab_bench.py [--only load,capture,experiments] [--reps 45]
                                         [--tokens 16,128]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _summary import row

# Default-run targets (s): issue 3's 60 s for every experiment; 5 minutes where issues 13 and
# 14 set it (the answer-generating and training experiments)
TARGET_S = {"rag_answer": 300, "finetune": 300, "finetune_sweep": 300, "optimizer_state": 300,
            "preference": 300}

IMPORTS = """
import json, time, sys, hashlib
import torch, transformers  # imports excluded from the timing
from transformers import AutoModelForCausalLM, AutoTokenizer
import transformers.models.llama.modeling_llama, transformers.models.llama.configuration_llama
from llmlab.lab import models
IDS = torch.tensor([[504, 3575, 282, 4617, 314, 260, 3575, 282]])
def digest(model):
    with torch.no_grad():
        return hashlib.sha256(model(IDS).logits.numpy().tobytes()).hexdigest()
"""
LOAD_CHILD = IMPORTS + """
t = time.perf_counter()
L = models.load()
s = time.perf_counter() - t
print(json.dumps({"seconds": s, "source": L.source, "logits": digest(L.model)}))
"""
GGUF_CHILD = IMPORTS + """
e = models.REGISTRY[models.DEFAULT]
path = models.verified(e)
t = time.perf_counter()
m = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                         attn_implementation="eager", dtype=torch.float32).eval()
s = time.perf_counter() - t
print(json.dumps({"seconds": s, "source": "gguf, no cache", "logits": digest(m)}))
"""


def _child(code: str, env: dict) -> dict:
    r = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True,
                       text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_load() -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "LLMLAB_CACHE": cache}
        out["gguf_direct"] = _child(GGUF_CHILD, env)
        for label in ("cold", "cached", "cached_again"):
            out[label] = _child(LOAD_CHILD, env)
    out["identical_logits"] = len({v["logits"] for v in out.values()}) == 1
    return out


def bench_capture(reps: int = 30, tokens: int = 128) -> dict:
    import torch
    from nnsight import NNsight

    from llmlab.lab import models
    from llmlab.lab.hooks import capture_residual

    m = models.load().model
    nn = NNsight(m)
    ids = torch.randint(1000, 40000, (1, tokens), generator=torch.Generator().manual_seed(0))

    def plain():
        with torch.no_grad():
            m(ids)

    def ours():
        with torch.no_grad(), capture_residual(m) as saved:
            m(ids)
        return saved

    def nnsight_save():
        out = []
        with torch.no_grad(), nn.trace(ids):
            for layer in nn.model.layers:
                out.append(layer.output.save())
        return [getattr(x, "value", x) for x in out]

    a, b = ours(), nnsight_save()
    same = len(a) == len(b) == 30 and all(torch.equal(x, y[0] if isinstance(y, tuple) else y)
                                          for x, y in zip(a, b))
    fns = [("plain", plain), ("capture", ours), ("nnsight", nnsight_save)]
    for _, f in fns:
        f()  # warm-up
    times = {k: [] for k, _ in fns}
    for i in range(reps):  # interleaved, order rotated, so machine noise hits all alike
        for k, f in fns[i % 3:] + fns[:i % 3]:
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    low = {k: min(v) * 1000 for k, v in times.items()}
    # paired: within each round the three ran back to back, so a round's ratio cancels drift
    paired = {k: statistics.median(a / b for a, b in zip(times[k], times["plain"]))
              for k in ("capture", "nnsight")}
    return {"tokens": tokens, "reps": reps, "median_ms": med, "min_ms": low,
            "same_tensors": same, "threads": torch.get_num_threads(),
            "capture_over_plain": med["capture"] / med["plain"],
            "nnsight_over_plain": med["nnsight"] / med["plain"],
            "capture_over_plain_min": low["capture"] / low["plain"],
            "nnsight_over_plain_min": low["nnsight"] / low["plain"],
            "capture_over_plain_paired": paired["capture"],
            "nnsight_over_plain_paired": paired["nnsight"]}


def bench_experiments() -> list[dict]:
    from llmlab.create import create_workspace
    from llmlab.lab import models
    from llmlab.lab.catalog import NAMES
    from llmlab.lab.runner import run_experiment

    models.load()
    rows = []
    with tempfile.TemporaryDirectory() as d:  # readout and steering use the recorded vectors
        ws = create_workspace(Path(d) / "ws", name="Bench Learner")
        for name in NAMES:
            t = time.perf_counter()
            r = run_experiment(ws, name, {}, show_progress=False)
            rows.append({"experiment": name, "seconds": time.perf_counter() - t,
                         "headline": r["summary"][0]})
    return rows


def bench_cli() -> float:
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "llmlab", "lab", "run", "residual", "--out", out,
                        "--json"], check=True, capture_output=True)
        return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="load,capture,experiments")
    ap.add_argument("--reps", type=int, default=45)
    ap.add_argument("--tokens", default="16,128", help="prompt lengths for the capture bench")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    parts = set(args.only.split(","))
    print(f"Machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"load average at start {os.getloadavg()[0]:.1f}\n", flush=True)
    if "load" in parts:
        ld = bench_load()
        print(f"- Model load (fresh process each, imports excluded): GGUF straight into "
              f"transformers {ld['gguf_direct']['seconds']:.1f} s; first llmlab load (GGUF -> "
              f"dequantized cache) {ld['cold']['seconds']:.1f} s; from the cache "
              f"{ld['cached']['seconds']:.2f} s and {ld['cached_again']['seconds']:.2f} s. "
              f"Logits identical across all four: {ld['identical_logits']}.", flush=True)
        cached = max(ld["cached"]["seconds"], ld["cached_again"]["seconds"])
        row("model load from the cache (fresh process, imports excluded)", target="<= 3 s",
            measured=f"{ld['cached']['seconds']:.2f} s, again {ld['cached_again']['seconds']:.2f} s",
            ratio=f"GGUF straight into transformers {ld['gguf_direct']['seconds']:.1f} s",
            met=cached <= 3)
        row("cached model's logits vs the GGUF's", target="bit-identical",
            measured="identical" if ld["identical_logits"] else "different",
            met=ld["identical_logits"])
    for tokens in (int(x) for x in args.tokens.split(",") if "capture" in parts):
        cap = bench_capture(args.reps, tokens)
        med, low = cap["median_ms"], cap["min_ms"]
        pct = lambda r: f"{(r - 1) * 100:+.1f}%"  # noqa: E731
        print(f"- Residual stream after all 30 layers, {cap['tokens']} tokens, {cap['reps']} "
              f"interleaved runs each ({cap['threads']} threads), median / fastest: plain "
              f"forward {med['plain']:.1f} / {low['plain']:.1f} ms; llmlab capture "
              f"{med['capture']:.1f} / {low['capture']:.1f} ms "
              f"({pct(cap['capture_over_plain'])} / {pct(cap['capture_over_plain_min'])}); "
              f"nnsight {med['nnsight']:.1f} / {low['nnsight']:.1f} ms "
              f"({pct(cap['nnsight_over_plain'])} / {pct(cap['nnsight_over_plain_min'])}). "
              f"Median of the per-round ratios: capture {pct(cap['capture_over_plain_paired'])}, "
              f"nnsight {pct(cap['nnsight_over_plain_paired'])}. "
              f"Same tensors: {cap['same_tensors']}.", flush=True)
        over, nn_over = cap["capture_over_plain_paired"], cap["nnsight_over_plain_paired"]
        what = f"residual capture, {cap['tokens']} tokens, {cap['threads']} threads"
        row(f"{what}: vs the plain forward pass", target="<= 5% slower (paired median)",
            measured=pct(over), ratio=f"plain {med['plain']:.0f} ms median; fastest "
            f"{pct(cap['capture_over_plain_min'])}", met=over <= 1.05)
        row(f"{what}: vs nnsight saving the same tensors", target="no slower (paired median)",
            measured=f"capture {pct(over)}, nnsight {pct(nn_over)}",
            ratio=f"capture / nnsight {over / nn_over:.3f}",
            met=over <= nn_over and cap["same_tensors"])
    if "experiments" in parts:
        print("\n| experiment | default run (s), model loaded | headline |\n|---|---|---|",
              flush=True)
        for r in bench_experiments():
            print(f"| {r['experiment']} | {r['seconds']:.1f} | {r['headline']} |", flush=True)
            limit = TARGET_S.get(r["experiment"], 60)
            row(f"`{r['experiment']}` default run, model loaded", target=f"<= {limit} s",
                measured=f"{r['seconds']:.1f} s", met=r["seconds"] <= limit)
        print(f"\n- `llmlab lab run residual` end to end in a fresh process (imports, cached "
              f"load, run, figures, result.json): {bench_cli():.1f} s.")
    print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
