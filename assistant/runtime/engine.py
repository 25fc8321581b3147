"""The one engine seam: the `Generator` protocol and the dispatch list that picks an engine once
from the settings (`models.backend`). Nothing above the runtime knows which engine runs.

An engine takes the prompt's token ids (the tokenizer's chat template applied), the name of a
loaded adapter (or None for the base alone), decoding options and a cancel event, and returns a
`TextStream`: text pieces as they are produced, then the stats. To add an engine, write one
module with a class that has these methods and add it to `ENGINES`.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from assistant.errors import AssistantError, MissingDependencyError
from assistant.packs.locate import DomainPack
from assistant.runtime.generation import GenerationOptions, TextStream
from assistant.settings import LoadedSettings

# Prompt plus answer budget in tokens; SmolLM2 allows 8192, a CPU makes less wise.
CONTEXT_TOKENS = 4096


class Generator(Protocol):
    """What the answer path needs from an engine."""

    tokenizer: Any

    @property
    def load_seconds(self) -> float:
        """How long the model took to load (0 before `warm_up`)."""

    def warm_up(self, packs: Sequence[DomainPack] = ()) -> None:
        """Load the model now (seconds on the first call of a process), and the adapters of
        `packs` where the engine loads adapters up front."""

    def load_adapter(self, pack: DomainPack) -> str:
        """Load the pack's adapter once (checked against the base); returns its name."""

    def generate(
        self,
        token_ids: list[int],
        options: GenerationOptions,
        *,
        adapter: str | None = None,
        cancel: threading.Event | None = None,
    ) -> TextStream:
        """Stream the reply to the prompt `token_ids` with the named adapter active."""


# backend setting -> "module:class"; imported only when chosen (torch and llama.cpp are heavy).
ENGINES: dict[str, str] = {
    "llama_cpp": "assistant.runtime.llama_engine:LlamaCppGenerator",
    "transformers": "assistant.runtime.torch_engine:TorchGenerator",
    "openai": "assistant.runtime.remote_engine:OpenAIGenerator",
}
# The engine that runs wherever torch does, for when the configured one cannot load here.
FALLBACK = "transformers"

log = logging.getLogger(__name__)
_fallback_noticed = False


def generator_for(loaded: LoadedSettings) -> Generator:
    """The engine the settings choose (`models.backend`); its model loads on first use. When
    the llama.cpp engine's native library cannot load on this machine, answers come from torch,
    and a one-line notice says so once per process."""
    global _fallback_noticed
    backend = loaded.settings.models.backend
    if backend not in ENGINES:
        raise AssistantError(
            f"models.backend is {backend!r}: choose one of {', '.join(sorted(ENGINES))}"
        )
    try:
        return _construct(backend, loaded)
    except MissingDependencyError as exc:
        if backend == FALLBACK:
            raise
        if not _fallback_noticed:
            _fallback_noticed = True
            log.warning("answering with the slower %s engine: %s", FALLBACK, exc)
        return _construct(FALLBACK, loaded)


def _construct(backend: str, loaded: LoadedSettings) -> Generator:
    module, name = ENGINES[backend].split(":")
    return getattr(importlib.import_module(module), name)(loaded)
