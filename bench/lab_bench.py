"""Benchmark the lab (issue 3).

1. Model load: cold (from the GGUF, dequantizing into an empty cache) and from the cache,
   each in a fresh process, timing the load only (imports excluded).
2. Capturing the residual stream after every layer vs a plain forward pass vs nnsight
   saving the same tensors, on the same loaded model, interleaved in one run.
3. Each experiment's default run (model already loaded).

    .venv/bin/pip install -e '.[bench]'      # nnsight
    .venv/bin/python bench/lab_bench.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

LOAD_CHILD = """
import json, time, sys
from llmlab.lab import models
import torch, transformers  # imports excluded from the timing
from transformers import AutoModelForCausalLM, AutoTokenizer
import transformers.models.llama.modeling_llama, transformers.models.llama.configuration_llama
t = time.perf_counter()
L = models.load()
print(json.dumps({"seconds": time.perf_counter() - t, "source": L.source}))
"""


def bench_load() -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "LLMLAB_CACHE": cache}
        for label in ("cold", "cached", "cached_again"):
            r = subprocess.run([sys.executable, "-c", LOAD_CHILD], env=env, check=True,
                               capture_output=True, text=True)
            out[label] = json.loads(r.stdout.strip().splitlines()[-1])
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
        assert len(saved) == 30

    def nnsight_save():
        out = []
        with torch.no_grad(), nn.trace(ids):
            for layer in nn.model.layers:
                out.append(layer.output.save())
        assert len(out) == 30

    fns = {"plain": plain, "capture": ours, "nnsight": nnsight_save}
    for f in fns.values():
        f()  # warm-up
    times = {k: [] for k in fns}
    for _ in range(reps):  # interleaved, so machine noise hits all three alike
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    return {"tokens": tokens, "reps": reps, "median_ms": med,
            "capture_over_plain": med["capture"] / med["plain"],
            "nnsight_over_plain": med["nnsight"] / med["plain"]}


def bench_experiments() -> list[dict]:
    from llmlab.lab import NAMES, run_experiment

    rows = []
    for name in NAMES:
        t = time.perf_counter()
        run_experiment(None, name, {}, record=False, show_progress=False)
        rows.append({"experiment": name, "seconds": time.perf_counter() - t})
    return rows


def main() -> None:
    print(f"# machine: {platform.node()} {platform.machine()} cpus={os.cpu_count()} "
          f"python {platform.python_version()}; date {time.strftime('%Y-%m-%d')}")
    load = bench_load()
    print(f"model load: cold (GGUF -> cache) {load['cold']['seconds']:.2f} s "
          f"[{load['cold']['source']}]; cached {load['cached']['seconds']:.2f} s, again "
          f"{load['cached_again']['seconds']:.2f} s [{load['cached']['source']}]", flush=True)
    cap = bench_capture()
    med = cap["median_ms"]
    print(f"residual capture, {cap['tokens']} tokens, median of {cap['reps']} interleaved: "
          f"plain {med['plain']:.1f} ms, capture {med['capture']:.1f} ms "
          f"({cap['capture_over_plain']:.3f}x), nnsight {med['nnsight']:.1f} ms "
          f"({cap['nnsight_over_plain']:.3f}x)", flush=True)
    print("| experiment | default run (s) |\n|---|---|")
    for r in bench_experiments():
        print(f"| {r['experiment']} | {r['seconds']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
