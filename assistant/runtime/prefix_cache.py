"""Reuse the key/value cache of a prompt's fixed system turn across answers.

Every answer of a pack starts with the same system turn (persona and rules, a third of a
default prompt). Prefilling it once per (adapter, token ids) and handing `generate` a copy of
that cache removes that share of the prefill from time to first token. The cache depends on the
active adapter (LoRA changes the key and value projections), so the adapter is part of the key.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from typing import Any

# A handful of packs x (adapter, base): each entry is ~8 MB for a 200-token system turn.
MAX_ENTRIES = 12


class PrefixCache:
    """LRU of prefilled system turns: (adapter name or None, prefix token ids) -> KV cache."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def prefilled(self, model: Any, input_ids: Any, prefix_length: int, adapter: str | None) -> Any:
        """A private copy of the KV cache of `input_ids[:, :prefix_length]` under `model`,
        computed on first use. The caller must hold the generation lock."""
        import torch

        key = (adapter, tuple(input_ids[0, :prefix_length].tolist()))
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return copy.deepcopy(cached)
        self.misses += 1
        with torch.inference_mode():
            out = model(input_ids=input_ids[:, :prefix_length], use_cache=True)
        cache = out.past_key_values
        with self._lock:
            self._entries[key] = cache
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return copy.deepcopy(cache)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def system_prefix_length(input_ids: Any, end_of_turn_id: int) -> int:
    """Tokens up to and including the end of the first turn (the system turn), or 0 when the
    prompt has no complete first turn followed by more tokens. `input_ids`: a 1 x n tensor or
    a list of ids."""
    ids = input_ids[0].tolist() if hasattr(input_ids, "tolist") else list(input_ids)
    try:
        end = ids.index(end_of_turn_id)
    except ValueError:
        return 0
    return end + 1 if end + 1 < len(ids) else 0
