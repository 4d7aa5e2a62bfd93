"""cost: forward time against prompt length, and per-token time with and without KV cache.

Timings are only as good as the machine is quiet: the thread count is set explicitly
(default: the cores not already busy, from the load average), the cases are interleaved
and repeated (each time is the fastest of its repeats: other processes only ever add
time), and the summary warns when the machine was busy while timing.
"""

from __future__ import annotations

import math
import os
import random
import time

from ..experiment import Outcome, Param, Quantity, Spec, common

SPEC = Spec(
    name="cost",
    question="How does compute time grow with prompt length, and how much does the KV cache "
             "save per generated token?",
    concepts=("attention_cost", "kv_cache", "autoregressive_loop"),
    params=(
        Param("lengths", int, (32, 64, 128, 256, 512, 1024), "Prompt lengths (tokens) for the "
              "forward-time curve (at least two)", many=True, low=1, high=1_000_000, min_items=2),
        Param("repeats", int, 3, "Interleaved timed repeats per case (the fastest is reported: "
              "other processes only ever add time)", low=1, high=50),
        Param("gen_tokens", int, 32, "Tokens generated for the per-token timing", low=1,
              high=4096),
        Param("gen_prompt", int, 64, "Prompt length (tokens) for the generation timing", low=1,
              high=1_000_000),
        *common(),
    ),
    quantities=(
        Quantity("growth_exponent", "exponent", "Slope of log(time) vs log(length) over the longest half of lengths", concept='attention_cost', depends_on=('lengths', 'threads')),
        Quantity("ms_per_token_cache", "ms", "Time per generated token with the KV cache", concept='kv_cache', depends_on=('gen_tokens', 'gen_prompt', 'threads')),
        Quantity("ms_per_token_no_cache", "ms", "Time per generated token without it", concept='autoregressive_loop', depends_on=('gen_tokens', 'gen_prompt', 'threads')),
        Quantity("cache_speedup", "ratio", "no-cache time / cache time per token", concept='kv_cache', depends_on=('gen_tokens', 'gen_prompt', 'threads')),
    ),
    seconds=40,
)


def free_threads() -> int:
    """The cores not busy now: CPU count minus the 1-minute load average, at least 1."""
    return max(1, (os.cpu_count() or 1) - round(os.getloadavg()[0]))


def _fit_slope(xs, ys) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def run(ctx, p: dict) -> Outcome:
    import torch

    model, cfg = ctx.model.model, ctx.model.model.config
    lengths = sorted(set(p["lengths"]))  # at least two (min_items): a slope needs two points
    ctx.check_length(max(lengths + [p["gen_prompt"] + p["gen_tokens"]]))
    threads = torch.get_num_threads()  # the runner set it from the `threads` parameter
    load_before = os.getloadavg()[0]
    gen = torch.Generator().manual_seed(ctx.seed)
    rand = lambda n: torch.randint(1000, cfg.vocab_size - 1000, (1, n), generator=gen).to(model.device)  # noqa: E731
    order = random.Random(ctx.seed)
    k = p["gen_tokens"]
    prompt = rand(p["gen_prompt"])
    inputs = {n: rand(n) for n in lengths}
    # every case once per round, in a shuffled order: a busy spell hits all cases alike
    cases = [("forward", n) for n in lengths] + [("generate", True), ("generate", False)]
    times: dict[tuple, list[float]] = {c: [] for c in cases}
    with torch.no_grad():
        model(rand(16))  # warm-up
        for _ in ctx.track(range(p["repeats"]), "interleaved timing rounds"):
            for case in order.sample(cases, len(cases)):
                kind, x = case
                if kind == "forward":
                    times[case].append(_time(lambda: model(inputs[x], use_cache=False)))
                else:
                    times[case].append(_time(lambda: model.generate(
                        prompt, max_new_tokens=k, min_new_tokens=k, do_sample=False,
                        use_cache=x, pad_token_id=cfg.eos_token_id)))
    load_after = os.getloadavg()[0]
    rows = [{"tokens": n, "seconds": min(times[("forward", n)]),
             "median_s": sorted(times[("forward", n)])[len(times[("forward", n)]) // 2],
             "ms_per_token": 1000 * min(times[("forward", n)]) / n} for n in lengths]
    half = rows[len(rows) // 2:] if len(rows) >= 4 else rows
    slope = _fit_slope([r["tokens"] for r in half], [r["seconds"] for r in half])
    timing = {c: 1000 * min(times[("generate", c)]) / k for c in (True, False)}
    cpus = os.cpu_count() or 1
    busy = max(load_before, load_after) > max(cpus - threads, 0) + 0.5
    metrics = {
        "growth_exponent": slope,
        "ms_per_token_cache": timing[True],
        "ms_per_token_no_cache": timing[False],
        "cache_speedup": timing[False] / timing[True],
        "forward_ms_longest": 1000 * rows[-1]["seconds"],
        "threads": threads, "load_avg_before": load_before, "load_avg_after": load_after,
        "machine_busy": float(busy),
    }
    summary = [
        f"Forward time grows as length^{slope:.2f} over {half[0]['tokens']}-{half[-1]['tokens']} "
        f"tokens (1 = linear, 2 = quadratic); {rows[-1]['tokens']} tokens take "
        f"{1000 * rows[-1]['seconds']:.0f} ms.",
        f"Generating {k} tokens after a {p['gen_prompt']}-token prompt: "
        f"{timing[True]:.1f} ms/token with the KV cache, {timing[False]:.1f} without "
        f"({metrics['cache_speedup']:.1f}x).",
        f"Timed on {threads} CPU thread(s) of {cpus}, {model.device.type}, "
        f"{model.config._attn_implementation} attention (the full score matrix is built); "
        f"{p['repeats']} interleaved rounds, each time the fastest of its repeats; load "
        f"average {load_before:.1f} before, {load_after:.1f} after. Absolute times depend on "
        "the machine.",
    ]
    if busy:
        summary.append(
            f"WARNING: the machine was busy (load average up to {max(load_before, load_after):.1f} "
            f"on {cpus} CPUs with {threads} thread(s) of ours): other processes took cores, so "
            "times are inflated and the exponent is unreliable. Rerun on a quiet machine, or "
            "with fewer threads (-p threads=1).")
    return Outcome(metrics=metrics,
                   tables={"forward": rows,
                           "generation": [{"kv_cache": c, "ms_per_token": v,
                                           "all_ms_per_token": [1000 * t / k for t in times[("generate", c)]]}
                                          for c, v in timing.items()]},
                   figures={"cost": _figure(rows, slope, timing)}, summary=summary)


def _figure(rows, slope, timing):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [3, 2]})
    xs, ys = [r["tokens"] for r in rows], [r["seconds"] for r in rows]
    a.loglog(xs, ys, "o-", label=f"measured (fit {slope:.2f})")
    for power, style in ((1, ":"), (2, "--")):  # reference slopes through the longest point
        a.loglog(xs, [ys[-1] * (x / xs[-1]) ** power for x in xs], "k" + style, lw=0.8,
                 label=f"slope {power}")
    a.set_xlabel("prompt length (tokens)")
    a.set_ylabel("forward time (s)")
    a.set_title("Forward time vs length")
    a.legend(fontsize=7)
    b.bar(["KV cache", "no cache"], [timing[True], timing[False]], color=["tab:green", "tab:red"])
    b.set_ylabel("ms per generated token")
    b.set_title(f"Generation ({timing[False] / timing[True]:.1f}x)")
    fig.tight_layout()
    return fig
