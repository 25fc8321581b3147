"""What a pack's adapter is trained from, as one hash: the examples, the persona and the
[training] settings. `assistant train` records it; `assistant pack list` compares it to say
that an adapter is stale."""

from __future__ import annotations

import hashlib
import json

from assistant.packs.format import PackConfig
from assistant.packs.locate import DomainPack


def data_hash(pack: DomainPack, config: PackConfig) -> str:
    """The sha256 of the pack's sft/train.jsonl, its persona and its training settings."""
    digest = hashlib.sha256(pack.sft_file.read_bytes())
    digest.update(config.persona.encode())
    digest.update(json.dumps(config.training.model_dump(), sort_keys=True).encode())
    return digest.hexdigest()
