"""What the chat needs from the library, behind one small class so tests can swap it.

`Backend` wraps the `Router`; snapshot tests give the app a fake with the same methods so the
screen does not depend on what the model writes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from assistant.answering.answers import AnswerStream
from assistant.settings import LoadedSettings


@dataclass(frozen=True)
class PackInfo:
    name: str
    title: str
    description: str


class Backend:
    """The router, the model warm-up and the packs' titles, for the chat."""

    needs_warm_up = True

    def __init__(self, loaded: LoadedSettings, router: Any = None) -> None:
        from assistant.answering.router import Router

        self.loaded = loaded
        self.router = router if router is not None else Router(loaded)
        self._packs: list[PackInfo] | None = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the base model and the embedder (seconds on the first call of a process)."""
        from assistant.runtime.models import load_embedder

        self.router.warm_up()
        load_embedder(self.loaded)

    def packs(self) -> list[PackInfo]:
        """Every pack with its title and description (read from pack.toml, no index opened)."""
        with self._lock:
            if self._packs is None:
                from assistant.errors import AssistantError
                from assistant.packs.format import load_pack_config

                found = []
                for pack in self.router.packs():
                    try:
                        config = load_pack_config(pack, self.loaded)
                        found.append(PackInfo(pack.name, config.title, config.description))
                    except AssistantError as exc:
                        found.append(PackInfo(pack.name, pack.name, f"(broken: {exc})"))
                self._packs = found
            return list(self._packs)

    def stream(
        self,
        question: str,
        pack: str | None,
        history: Sequence[dict[str, str]],
        cancel: threading.Event,
        max_tokens: int | None = None,
    ) -> AnswerStream:
        return self.router.stream(
            question, pack, list(history), max_tokens=max_tokens, cancel=cancel
        )

    def document_text(self, pack: str, path: str) -> str:
        return self.router.handle(pack).index.document_text(path)
