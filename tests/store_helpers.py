"""Helpers of the vector-store tests: packs with a pack.toml that names their store, and the
Milvus collections a pack has."""

from __future__ import annotations

import re

from assistant.packs.locate import DomainPack
from assistant.packs.scaffold import create_pack
from assistant.settings import home_dir


def store_pack(name: str, store: str, **keys: str) -> DomainPack:
    """A scaffolded user pack (its docs/ emptied) whose pack.toml names `store` (and `keys`)."""
    create_pack(name)
    pack = DomainPack(name, home_dir() / "packs" / name)
    for doc in pack.docs_dir.iterdir():
        doc.unlink()
    set_store(pack, store, **keys)
    return pack


def set_store(pack: DomainPack, store: str, **keys: str) -> None:
    """Rewrite the pack's [retrieval] store (and milvus_* `keys`)."""
    text = pack.pack_toml.read_text("utf-8")
    text = re.sub(r"(?m)^(store|milvus_\w+) = .*\n", "", text)
    lines = [f'store = "{store}"', *(f'{key} = "{value}"' for key, value in keys.items())]
    text = text.replace("[retrieval]\n", "[retrieval]\n" + "\n".join(lines) + "\n", 1)
    pack.pack_toml.write_text(text, "utf-8")


def collections(pack: DomainPack) -> list[str]:
    """The Milvus collections in the pack's local milvus-lite file."""
    from assistant.knowledge.vectors.base import StorePlace, StoreSettings
    from assistant.knowledge.vectors.milvus_store import connect

    place = StorePlace(StoreSettings("milvus"), pack.name, pack.index_dir)
    return sorted(connect(place).list_collections())
