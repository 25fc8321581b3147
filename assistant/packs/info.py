"""What a domain pack holds, as plain data: document and question counts, the adapter and what
base it was trained on, the index size. Used by `assistant pack list/show` (and the TUI).
"""

from __future__ import annotations

import json
from typing import Any

from assistant.errors import AssistantError
from assistant.packs.fingerprint import data_hash
from assistant.packs.format import PackConfig, load_pack_config
from assistant.packs.locate import DomainPack
from assistant.settings import LoadedSettings


def count_documents(pack: DomainPack) -> int:
    if not pack.docs_dir.is_dir():
        return 0
    return sum(
        1
        for p in pack.docs_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(pack.root).parts)
    )


def count_lines(path: Any) -> int:
    """Non-blank lines of a JSONL file (0 when it is missing)."""
    try:
        with path.open("rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


def _read_json(path: Any) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def adapter_info(
    pack: DomainPack, config: PackConfig | None = None, loaded: LoadedSettings | None = None
) -> dict[str, Any]:
    """{"trained", "base_model", "path", "stale"}: the base comes from `adapter/training.json`,
    else pack.toml's [adapter], else PEFT's adapter_config.json. `stale` says why the adapter no
    longer matches (another base model than configured, or changed examples/settings)."""
    folder = pack.adapter_dir
    trained = pack.adapter_config.is_file() or pack.adapter_weights.is_file()
    info = _read_json(folder / "training.json")
    base = info.get("base_model")
    if not base and config is not None:
        base = config.adapter.base_model
    if not base and trained:
        base = _read_json(pack.adapter_config).get("base_model_name_or_path")
    stale = []
    if trained and loaded is not None and base and base != loaded.settings.models.base_model:
        stale.append(f"trained on {base}, configured base is {loaded.settings.models.base_model}")
    if (
        trained
        and config is not None
        and info.get("data_hash")
        and pack.sft_file.is_file()
        and info["data_hash"] != data_hash(pack, config)
    ):
        stale.append("examples or training settings changed since training")
    return {
        "trained": trained,
        "base_model": base or None,
        "path": str(folder),
        "stale": "; ".join(stale) or None,
        "steps": info.get("steps"),
        "trained_at": info.get("trained_at"),
    }


def pack_summary(
    pack: DomainPack, loaded: LoadedSettings, index: dict[str, int] | None
) -> dict[str, Any]:
    """One row of `assistant pack list`: never raises for a broken pack.toml (it says so).
    `index` is the built index's {"documents", "chunks"} (`knowledge.index_stats`), or None."""
    config: PackConfig | None = None
    error = None
    try:
        config = load_pack_config(pack, loaded)
    except AssistantError as exc:
        error = str(exc)
    return {
        "name": pack.name,
        "title": config.title if config else None,
        "path": str(pack.root),
        "documents": count_documents(pack),
        "chunks": index["chunks"] if index else None,
        "adapter": adapter_info(pack, config, loaded),
        "eval_questions": count_lines(pack.eval_file),
        "sft_examples": count_lines(pack.sft_file),
        "error": error,
    }
