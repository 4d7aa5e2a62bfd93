"""cost: forward time against prompt length, and per-token time with and without KV cache."""

from __future__ import annotations

import math
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
        Param("repeats", int, 2, "Timed repeats per length (the fastest is reported: "
              "other processes only ever add time)", low=1,
              high=50),
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


def _fit_slope(xs, ys) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(ctx, p: dict) -> Outcome:
    import torch

    model, cfg = ctx.model.model, ctx.model.model.config
    lengths = sorted(set(p["lengths"]))  # at least two (min_items): a slope needs two points
    ctx.check_length(max(lengths + [p["gen_prompt"] + p["gen_tokens"]]))
    gen = torch.Generator().manual_seed(ctx.seed)
    rand = lambda n: torch.randint(1000, cfg.vocab_size - 1000, (1, n), generator=gen).to(model.device)  # noqa: E731
    with torch.no_grad():
        model(rand(16))  # warm-up
        rows = []
        for n in ctx.track(lengths, "forward time by length"):
            ids = rand(n)
            t = _timed(lambda: model(ids, use_cache=False), p["repeats"])
            rows.append({"tokens": n, "seconds": t, "ms_per_token": 1000 * t / n})
        half = rows[len(rows) // 2:] if len(rows) >= 4 else rows
        slope = _fit_slope([r["tokens"] for r in half], [r["seconds"] for r in half])
        prompt = rand(p["gen_prompt"])
        k = p["gen_tokens"]
        timing = {}
        for use_cache in ctx.track((True, False), "generation with / without cache"):
            t = _timed(lambda: model.generate(prompt, max_new_tokens=k, min_new_tokens=k,
                                              do_sample=False, use_cache=use_cache,
                                              pad_token_id=cfg.eos_token_id), 1)
            timing[use_cache] = 1000 * t / k
    metrics = {
        "growth_exponent": slope,
        "ms_per_token_cache": timing[True],
        "ms_per_token_no_cache": timing[False],
        "cache_speedup": timing[False] / timing[True],
        "forward_ms_longest": 1000 * rows[-1]["seconds"],
    }
    summary = [
        f"Forward time grows as length^{slope:.2f} over {half[0]['tokens']}-{half[-1]['tokens']} "
        f"tokens (1 = linear, 2 = quadratic); {rows[-1]['tokens']} tokens take "
        f"{1000 * rows[-1]['seconds']:.0f} ms.",
        f"Generating {k} tokens after a {p['gen_prompt']}-token prompt: "
        f"{timing[True]:.1f} ms/token with the KV cache, {timing[False]:.1f} without "
        f"({metrics['cache_speedup']:.1f}x).",
        f"Timed on {torch.get_num_threads()} CPU thread(s), {model.device.type}, "
        f"{model.config._attn_implementation} attention (the full score matrix is built); "
        f"each time is the fastest of {p['repeats']} (other processes only add time); "
        "absolute times depend on the machine.",
    ]
    return Outcome(metrics=metrics,
                   tables={"forward": rows,
                           "generation": [{"kv_cache": c, "ms_per_token": v} for c, v in timing.items()]},
                   figures={"cost": _figure(rows, slope)}, summary=summary)


def _figure(rows, slope):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.loglog([r["tokens"] for r in rows], [r["seconds"] for r in rows], "o-")
    ax.set_xlabel("prompt length (tokens)")
    ax.set_ylabel("forward time (s)")
    ax.set_title(f"Forward time vs length (fitted exponent {slope:.2f})")
    return fig
