"""anatomy on config files alone (meta device, no weights): mixture-of-experts active
parameters, and the clean condition line of a config-only run."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from llmlab.lab.runner import run_experiment  # noqa: E402

CONFIGS = Path(__file__).parent / "fixtures" / "configs"


def run(**params):
    return run_experiment(None, "anatomy", params, record=False, show_progress=False)


def test_mixtral_reports_total_and_active_parameters_per_token():
    r = run(config=str(CONFIGS / "mixtral-8x7b.json"), contexts="1024,32768,65536")
    m = r["metrics"]
    assert m["params_total"] == 46_702_792_704
    # 2 of 8 experts per token: attention, router, norms and both embeddings always run
    h, inter, layers = 4096, 14336, 32
    expert = 3 * h * inter  # gate, up and down projections of one expert
    assert m["params_active"] == 46_702_792_704 - layers * 6 * expert == 12_879_925_248
    assert m["experts"] == 8 and m["experts_per_token"] == 2
    assert m["kv_bytes_per_token_fp16"] == 2 * 32 * 8 * 128 * 2  # KV cache as for a dense model
    text = " ".join(r["summary"])
    assert "12,879,925,248 active per token" in text and "46,702,792,704" in text
    assert "beyond the model's maximum context (32,768)" in text  # 65536 > max_position


def test_a_dense_config_is_all_active_and_prints_a_clean_condition_line(cli, tmp_path):
    r = run(config=str(CONFIGS / "llama-3.1-8b.json"))
    m = r["metrics"]
    assert m["params_active"] == m["params_total"] == 8_030_261_248 and m["experts"] == 1
    out = cli("lab", "run", "anatomy", "-p", f"config={CONFIGS / 'llama-3.1-8b.json'}",
              "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "model None" not in out.stdout and "()" not in out.stdout
    assert "config llama-3.1-8b.json" in out.stdout
    assert "8,030,261,248" in out.stdout and "e+" not in out.stdout  # readable numbers


def test_lab_run_help_lists_the_experiments_parameters(cli):
    r = cli("lab", "run", "sampling", "--help")
    assert r.returncode == 0, r.stderr
    for name in ("top_p", "min_p", "rows", "temperatures", "Top-p (nucleus)"):
        assert name in r.stdout
    assert "Predictable" in r.stdout and "top_p_kept" in r.stdout
    generic = cli("lab", "run", "--help")
    assert generic.returncode == 0 and "--param" in generic.stdout and "top_p" not in generic.stdout
    bad = cli("lab", "run", "samplin", "--help")
    assert bad.returncode == 1 and "sampling" in bad.stderr and "Traceback" not in bad.stderr


def test_metrics_print_as_readable_numbers():
    from llmlab.lab.cli import fmt_number

    assert fmt_number(134515008.0) == "134,515,008"
    assert fmt_number(46702792704.0) == "46,702,792,704"
    assert fmt_number(0.7734) == "0.7734" and fmt_number(3.0) == "3"
    assert fmt_number(12345.678) == "12,345.7" and fmt_number(-2.5) == "-2.5"
    assert "e+" not in fmt_number(1.2e12)
