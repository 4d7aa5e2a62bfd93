"""anatomy: weight shapes, parameter counts, GQA, and KV-cache memory by formula and measured."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import UserError
from ..experiment import Outcome, Param, Quantity, Spec, common

BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1, "int4": 0.5}

SPEC = Spec(
    name="anatomy",
    question="Where are the parameters, and how much memory does the KV cache need per token, "
             "per sequence and per batch?",
    concepts=("embeddings", "grouped_query_attention", "kv_cache", "kv_cache_memory",
              "parameter_memory", "mlp_blocks", "mixture_of_experts"),
    params=(
        Param("config", str, "", "Path to any Hugging Face config.json: count without weights (meta device)"),
        Param("contexts", int, (1024, 8192, 32768), "Context lengths for the KV-cache table",
              many=True, low=1, high=10_000_000),
        Param("batches", int, (1, 8), "Batch sizes for the KV-cache table", many=True, low=1,
              high=100_000),
        Param("dtypes", str, ("float16", "int8"), "KV-cache dtypes for the table", many=True,
              choices=tuple(BYTES)),
        Param("measure_tokens", int, 64, "Tokens run through the loaded model to measure the "
              "cache", low=1, high=100_000),
        *common(),
    ),
    quantities=(
        Quantity("params_total", "parameters", "Total parameters (tied embeddings counted once)", concept='parameter_memory'),
        Quantity("params_embedding", "parameters", "Parameters in the token embedding", concept='embeddings'),
        Quantity("kv_bytes_per_token_fp16", "bytes", "KV-cache bytes per token in fp16", concept='kv_cache_memory'),
        Quantity("params_active", "parameters", "Parameters used per token (a mixture of "
                 "experts uses k of n experts; dense: all)", concept="mixture_of_experts"),
        Quantity("q_per_kv", "ratio", "Query heads per key/value head", concept='grouped_query_attention'),
    ),
    seconds=2,
)


def kv_bytes_per_token(cfg, bytes_per_value: float, kv_heads: int | None = None) -> float:
    """2 (K and V) x layers x kv_heads x head_dim x bytes."""
    heads = cfg.num_attention_heads
    kv = kv_heads or getattr(cfg, "num_key_value_heads", None) or heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return 2 * cfg.num_hidden_layers * kv * head_dim * bytes_per_value


EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")


def experts_of(cfg) -> tuple[int, int]:
    """(experts per MoE layer, experts each token uses); (1, 1) for a dense model."""
    n = next((getattr(cfg, a) for a in EXPERTS if getattr(cfg, a, None)), None) or 1
    k = getattr(cfg, "num_experts_per_tok", None) or getattr(cfg, "moe_topk", None) or n
    return int(n), int(min(k, n))


def _counts(model) -> dict:
    """Parameter counts over the actual tensors; shared (tied) tensors counted once.

    Routed-expert tensors (names with `.experts.`; a shared expert is always active) are
    split evenly over the experts: a token uses k of n, so active = total - expert
    parameters x (1 - k/n)."""
    n, k = experts_of(model.config)
    seen, total, expert = set(), 0, 0
    for name, t in model.named_parameters(remove_duplicate=False):
        key = id(t)
        if key not in seen:
            seen.add(key)
            total += t.numel()
            if n > 1 and ".experts." in f"{name}.":
                expert += t.numel()
    emb = model.get_input_embeddings().weight.numel()
    out = model.get_output_embeddings()
    tied = out is not None and out.weight is model.get_input_embeddings().weight
    active = total - expert * (n - k) // n
    return {"total": total, "embedding": emb, "non_embedding": total - emb, "tied": tied,
            "experts": n, "experts_per_token": k, "expert_params": expert, "active": active}


def run(ctx, p: dict) -> Outcome:
    import torch

    contexts, batches, dtypes = p["contexts"], p["batches"], p["dtypes"]
    measured = None
    if p["config"]:
        from transformers import AutoConfig, AutoModelForCausalLM

        path = Path(p["config"]).expanduser()
        if not path.is_file():
            raise UserError(f"No config file at {path}. Give the path of a config.json.")
        try:
            cfg = AutoConfig.for_model(**json.loads(path.read_text()))
        except (ValueError, KeyError) as e:
            raise UserError(f"{path} is not a usable Hugging Face config ({e}). Give a model's "
                            "config.json as published beside its weights (it names the "
                            "model_type, e.g. \"llama\").") from None
        with torch.device("meta"):  # shapes only: no weights are allocated
            model = AutoModelForCausalLM.from_config(cfg)
        source = f"config {path.name} (meta device, no weights)"
    else:
        model, cfg = ctx.model.model, ctx.model.model.config
        source = f"loaded model {ctx.model.name}"
        n = p["measure_tokens"]
        ctx.check_length(n)
        ids = torch.randint(1000, cfg.vocab_size - 1000, (1, n),
                            generator=torch.Generator().manual_seed(ctx.seed)).to(model.device)
        with torch.no_grad():
            cache = model(ids, use_cache=True).past_key_values
        nbytes = sum(l.keys.nbytes + l.values.nbytes for l in cache.layers)
        measured = {"tokens": n, "bytes": nbytes, "bytes_per_token": nbytes / n,
                    "dtype": str(cache.layers[0].keys.dtype).replace("torch.", "")}
    counts = _counts(model)
    shapes = []
    for name, t in model.named_parameters():
        if ".layers." in name and not name.split(".layers.")[1].startswith("0."):
            continue  # one layer is enough to read the shapes
        shapes.append({"name": name, "shape": list(t.shape), "params": t.numel()})
    heads = cfg.num_attention_heads
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    table = []
    for d in dtypes:
        per_tok = kv_bytes_per_token(cfg, BYTES[d])
        mha = kv_bytes_per_token(cfg, BYTES[d], kv_heads=heads)
        for c in contexts:
            for b in batches:
                table.append({"dtype": d, "context": c, "batch": b,
                              "kv_cache_mb": round(per_tok * c * b / 1e6, 2),
                              "multi_head_mb": round(mha * c * b / 1e6, 2)})
    metrics = {
        "params_total": counts["total"], "params_embedding": counts["embedding"],
        "params_non_embedding": counts["non_embedding"], "params_active": counts["active"],
        "experts": counts["experts"], "experts_per_token": counts["experts_per_token"],
        "kv_bytes_per_token_fp16": kv_bytes_per_token(cfg, 2),
        "q_per_kv": heads / kv, "layers": cfg.num_hidden_layers,
        "weights_mb_fp16": counts["total"] * 2 / 1e6,
    }
    summary = [
        f"{source}: {counts['total']:,} parameters; embedding {counts['embedding']:,} "
        f"({counts['embedding'] / counts['total']:.1%}); tied input/output embeddings: {counts['tied']}.",
        f"{heads} query heads share {kv} key/value heads ({heads / kv:g} per KV head): "
        f"KV cache {metrics['kv_bytes_per_token_fp16']:,.0f} bytes/token in fp16 "
        f"({kv_bytes_per_token(cfg, 2, heads):,.0f} without GQA).",
    ]
    if counts["experts"] > 1:
        summary.insert(1, (
            f"Mixture of experts: {counts['experts']} experts per layer, {counts['experts_per_token']} "
            f"used per token, so {counts['active']:,} active per token of {counts['total']:,} "
            f"total ({counts['active'] / counts['total']:.0%}): compute per token follows the "
            "active count, memory the total."))
    limit = getattr(cfg, "max_position_embeddings", None)
    beyond = [c for c in contexts if limit and c > limit]
    if beyond:
        summary.append(f"Contexts {', '.join(f'{c:,}' for c in beyond)} are beyond the model's "
                       f"maximum context ({limit:,}): the table shows what the cache would take, "
                       "not what the model can use.")
    if measured:
        formula = kv_bytes_per_token(cfg, BYTES.get(measured["dtype"], 4))
        metrics["kv_bytes_per_token_measured"] = measured["bytes_per_token"]
        metrics["kv_formula_error"] = abs(measured["bytes_per_token"] - formula)
        summary.append(f"Measured on the loaded model ({measured['dtype']}): "
                       f"{measured['bytes_per_token']:,.0f} bytes/token; formula {formula:,.0f}.")
    return Outcome(metrics=metrics,
                   tables={"shapes": shapes, "kv_cache": table,
                           "counts": [{**counts, "source": source}],
                           "measured": [measured] if measured else []},
                   figures={"kv_cache": _figure(table, contexts, limit)}, summary=summary)


def _figure(table, contexts, limit=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for d in sorted({r["dtype"] for r in table}):
        for b in sorted({r["batch"] for r in table}):
            rs = [r for r in table if r["dtype"] == d and r["batch"] == b]
            ax.plot([r["context"] for r in rs], [r["kv_cache_mb"] for r in rs], "o-",
                    label=f"{d}, batch {b}")
            if d == "float16" and b == 1:
                ax.plot([r["context"] for r in rs], [r["multi_head_mb"] for r in rs], "k--",
                        label="fp16, batch 1, no GQA")
    if limit and max(contexts) > limit:
        ax.axvline(limit, color="grey", ls=":", lw=1)
        ax.axvspan(limit, max(contexts) * 1.5, color="grey", alpha=0.15,
                   label=f"beyond max context ({limit:,})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("KV cache (MB)")
    ax.legend(fontsize=7)
    ax.set_title("KV-cache memory")
    return fig
