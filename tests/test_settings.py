"""Settings: layering, sources, and the one-line errors that name the key and the file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.errors import AssistantError
from assistant.settings import load_settings, settings_rows


def test_defaults_load_and_every_key_has_a_source() -> None:
    loaded = load_settings()
    assert loaded.settings.models.base_model == "qwen2.5-coder-0.5b"
    rows = {row["key"]: row for row in settings_rows(loaded)}
    assert rows["generation.max_new_tokens"]["source"].startswith("default")


def test_config_file_then_environment_override(tmp_path: Path, monkeypatch) -> None:
    config = tmp_path / "mine.toml"
    config.write_text("[generation]\nmax_new_tokens = 64\ntemperature = 0.5\n")
    monkeypatch.setenv("ASSISTANT_TEMPERATURE", "0.2")
    loaded = load_settings(config)
    assert loaded.settings.generation.max_new_tokens == 64
    assert loaded.settings.generation.temperature == 0.2
    assert loaded.sources["generation.max_new_tokens"] == str(config)
    assert loaded.sources["generation.temperature"] == "env ASSISTANT_TEMPERATURE"


def test_user_config_in_home_is_applied(isolated_home: Path) -> None:
    (isolated_home / "config.toml").write_text("[retrieval]\nk = 7\n")
    loaded = load_settings()
    assert loaded.settings.retrieval.k == 7
    assert loaded.sources["retrieval.k"] == str(isolated_home / "config.toml")


def test_broken_toml_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "broken.toml"
    config.write_text("[generation\nmax_new_tokens = 1\n")
    with pytest.raises(AssistantError, match=r"broken\.toml is not valid TOML"):
        load_settings(config)


def test_unknown_setting_names_key_and_file(tmp_path: Path) -> None:
    config = tmp_path / "typo.toml"
    config.write_text("[generation]\nmax_new_token = 5\n")
    with pytest.raises(
        AssistantError, match=r"typo\.toml: unknown setting generation\.max_new_token"
    ):
        load_settings(config)


def test_wrong_type_names_key_and_source(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ASSISTANT_K", "many")
    with pytest.raises(AssistantError, match=r"retrieval\.k from env ASSISTANT_K"):
        load_settings()
    monkeypatch.delenv("ASSISTANT_K")
    config = tmp_path / "bad.toml"
    config.write_text('[models]\ndtype = "float8"\n')
    with pytest.raises(AssistantError, match=r"models\.dtype from .*bad\.toml"):
        load_settings(config)


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_cli_config_json_and_one_line_error(tmp_path: Path) -> None:
    result = _run_cli("config", "--json")
    assert result.returncode == 0, result.stderr
    keys = {row["key"] for row in json.loads(result.stdout)["settings"]}
    assert "models.embedder" in keys
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = [\n")
    result = _run_cli("--config", str(bad), "config")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "bad.toml is not valid TOML" in result.stderr
    assert "Traceback" not in result.stderr
