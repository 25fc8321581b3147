"""What a domain pack holds, as plain data: document and question counts, the adapter for the
configured base and the adapters for the others, the index size. Used by `assistant pack
list/show` (and the TUI).
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
    pack: DomainPack, loaded: LoadedSettings, config: PackConfig | None = None
) -> dict[str, Any]:
    """{"trained", "base_model", "path", "stale", "steps", "trained_at"} of the adapter answers
    use: the pack's adapter for the configured base. `stale` says when the examples or training
    settings changed since it was trained."""
    adapter = pack.adapter(loaded.settings.models.base_model)
    info = _read_json(adapter.record)
    stale = None
    if (
        adapter.trained
        and config is not None
        and info.get("data_hash")
        and pack.sft_file.is_file()
        and info["data_hash"] != data_hash(pack, config)
    ):
        stale = "examples or training settings changed since training"
    return {
        "trained": adapter.trained,
        "base_model": adapter.base,
        "path": str(adapter.dir),
        "stale": stale,
        "steps": info.get("steps"),
        "trained_at": info.get("trained_at"),
    }


def all_adapters(pack: DomainPack) -> list[dict[str, Any]]:
    """Every trained adapter of the pack, one per base: {"base_model", "path", "steps",
    "trained_at"}."""
    rows = []
    for adapter in pack.adapters():
        info = _read_json(adapter.record)
        rows.append(
            {
                "base_model": adapter.base,
                "path": str(adapter.dir),
                "steps": info.get("steps"),
                "trained_at": info.get("trained_at"),
            }
        )
    return rows


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
        "adapter": adapter_info(pack, loaded, config),
        "adapters": all_adapters(pack),
        "eval_questions": count_lines(pack.eval_file),
        "sft_examples": count_lines(pack.sft_file),
        "error": error,
    }
