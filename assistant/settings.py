"""Typed settings: packaged defaults, then the user's config file, then `--config FILE`, then
`ASSISTANT_<KEY>` environment variables; each value remembers where it came from.

The models below declare each setting's type and range; its default lives in one place only,
`default.toml`. Keys are unique across sections, so `ASSISTANT_MAX_NEW_TOKENS` sets
`generation.max_new_tokens`.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.errors import AssistantError

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")
ENV_PREFIX = "ASSISTANT_"
# base_model values renamed since: a config (or an adapter's training.json) with the old name
# keeps meaning the same base.
RENAMED_BASES = {"smollm2-135m-instruct": "smollm2-135m"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSettings(_Section):
    base_model: str = Field(min_length=1)
    embedder: str = Field(min_length=1)
    dtype: Literal["float32", "bfloat16"]
    quantize: Literal["none", "fp16", "int8"]
    backend: Literal["transformers", "llama_cpp", "openai"]
    embedder_runtime: Literal["torch", "onnx_int8"]
    threads: int = Field(ge=0, le=256)
    base_url: str
    api_key_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout: float = Field(gt=0, le=3600)
    retries: int = Field(ge=0, le=10)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("base_model")
    @classmethod
    def _current_base_name(cls, value: str) -> str:
        return base_name(value)


class PathSettings(_Section):
    cache_dir: str


class RetrievalSettings(_Section):
    k: int = Field(ge=1, le=50)
    chunk_tokens: int = Field(ge=16, le=2048)
    chunk_overlap: int = Field(ge=0, le=1024)


class GenerationSettings(_Section):
    max_new_tokens: int = Field(ge=1, le=4096)
    temperature: float = Field(ge=0.0, le=5.0)
    top_p: float = Field(gt=0.0, le=1.0)
    repetition_penalty: float = Field(ge=1.0, le=3.0)
    reuse_system_prefix: bool
    decline_min_prob: float = Field(ge=0.0, le=1.0)
    no_repeat_ngram: int = Field(ge=0, le=64)


class Settings(_Section):
    models: ModelSettings
    paths: PathSettings
    retrieval: RetrievalSettings
    generation: GenerationSettings


SECTIONS: dict[str, type[_Section]] = {
    name: info.annotation  # type: ignore[misc]
    for name, info in Settings.model_fields.items()
}
KEY_SECTION: dict[str, str] = {
    key: section for section, model in SECTIONS.items() for key in model.model_fields
}


@dataclass(frozen=True)
class LoadedSettings:
    """The effective settings plus, for each `section.key`, the place its value came from."""

    settings: Settings
    sources: dict[str, str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.settings, name)


def base_name(value: str) -> str:
    """The current name of a base_model value (`RENAMED_BASES`); other values as they are."""
    return RENAMED_BASES.get(value.strip(), value)


def home_dir() -> Path:
    """The user's data folder: packs, conversations, user config (`ASSISTANT_HOME` overrides)."""
    env = os.environ.get("ASSISTANT_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("assistant"))


def user_config_file() -> Path:
    return home_dir() / "config.toml"


def cache_dir(settings: Settings) -> Path:
    """Converted models and other caches: `paths.cache_dir`, else under ASSISTANT_HOME or the
    user's cache folder."""
    if settings.paths.cache_dir:
        return Path(settings.paths.cache_dir).expanduser()
    if os.environ.get("ASSISTANT_HOME"):
        return home_dir() / "cache"
    return Path(platformdirs.user_cache_dir("assistant"))


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise AssistantError(f"config file {path} does not exist") from None
    except UnicodeDecodeError as exc:
        raise AssistantError(
            f"{path} is not valid UTF-8 (byte {exc.start}); re-save it as UTF-8"
        ) from None
    except OSError as exc:
        raise AssistantError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AssistantError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or table
        raise AssistantError(f"{path} is nested too deeply to be a config file") from None


def _merge_file(
    values: dict[str, dict[str, Any]], sources: dict[str, str], path: Path, label: str
) -> None:
    data = _read_toml(path)
    for section, body in data.items():
        if section not in SECTIONS:
            known = ", ".join(f"[{s}]" for s in SECTIONS)
            raise AssistantError(f"{path}: unknown section [{section}] (known: {known})")
        if not isinstance(body, dict):
            raise AssistantError(f"{path}: [{section}] must be a table of settings")
        for key, value in body.items():
            if key not in SECTIONS[section].model_fields:
                known = ", ".join(SECTIONS[section].model_fields)
                raise AssistantError(
                    f"{path}: unknown setting {section}.{key} (known in [{section}]: {known})"
                )
            values.setdefault(section, {})[key] = value
            sources[f"{section}.{key}"] = label


def load_settings(config_file: Path | str | None = None) -> LoadedSettings:
    """Load and validate the effective settings. Raises AssistantError naming key and file."""
    values: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    files = [DEFAULT_CONFIG]
    _merge_file(values, sources, DEFAULT_CONFIG, "default")
    user_file = user_config_file()
    if user_file.is_file():
        _merge_file(values, sources, user_file, str(user_file))
        files.append(user_file)
    if config_file is not None:
        path = Path(config_file)
        _merge_file(values, sources, path, str(path))
        files.append(path)
    for key, section in KEY_SECTION.items():
        env_name = ENV_PREFIX + key.upper()
        if env_name in os.environ:
            values.setdefault(section, {})[key] = os.environ[env_name]
            sources[f"{section}.{key}"] = f"env {env_name}"
    return LoadedSettings(settings=_validate(values, sources), sources=sources, files=tuple(files))


def packaged_settings() -> Settings:
    """The packaged defaults alone (`default.toml`, without the user's config or environment):
    the base of a pack checked on its own."""
    values: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    _merge_file(values, sources, DEFAULT_CONFIG, "default")
    return _validate(values, sources)


def _validate(values: dict[str, dict[str, Any]], sources: dict[str, str]) -> Settings:
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        dotted = ".".join(str(p) for p in err["loc"])
        where = sources.get(dotted, "default")
        where = "packaged defaults" if where == "default" else where
        raise AssistantError(f"setting {dotted} from {where}: {err['msg']}") from None


def settings_rows(loaded: LoadedSettings) -> list[dict[str, Any]]:
    """One row per setting: key, value, source. Used by `assistant config`."""
    rows = []
    for section, model in SECTIONS.items():
        section_values = getattr(loaded.settings, section)
        for key in model.model_fields:
            dotted = f"{section}.{key}"
            source = loaded.sources.get(dotted, "default")
            rows.append(
                {
                    "key": dotted,
                    "value": getattr(section_values, key),
                    "source": f"default ({DEFAULT_CONFIG.name})" if source == "default" else source,
                    "env": ENV_PREFIX + key.upper(),
                }
            )
    return rows
