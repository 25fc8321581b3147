"""Choosing the pack that answers: the pack picker (Ctrl+L) and the switch itself, which the
command palette's "Use pack" entries (assistant/tui/commands.py) call too.

`PackChoiceMixin` is mixed into `ChatApp` (assistant/tui/app.py), which holds the state it
uses and provides `_error` and `_show_status`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from textual import work

from assistant.errors import AssistantError
from assistant.history import History
from assistant.tui.backend import PackInfo
from assistant.tui.screens import AUTO, PackPicker


class PackChoiceMixin:
    """Pick the pack ("auto": the router picks) and remember it in the conversation."""

    backend: Any
    history: History
    pack: str
    conversation_id: int | None

    def backend_packs(self) -> list[PackInfo]:
        return self.backend.packs()

    def action_pick_pack(self) -> None:
        self._pick_pack()

    @work(group="picker")
    async def _pick_pack(self) -> None:
        packs = await self._packs()
        choice = await self.push_screen_wait(PackPicker(packs, self.pack))
        if choice:
            self.switch_pack(choice)

    async def _packs(self) -> list[PackInfo]:
        try:
            return await asyncio.to_thread(self.backend.packs)
        except AssistantError as exc:
            self._error(str(exc))
            return []

    def switch_pack(self, name: str) -> None:
        """Answer the next questions with `name` ("auto": the router picks)."""
        if name == self.pack:
            return
        self.pack = name
        if self.conversation_id is not None:
            try:
                self.history.set_pack(self.conversation_id, None if name == AUTO else name)
            except AssistantError as exc:
                self._error(str(exc))
        self.notify(f"Now answering with: {name}", timeout=3)
        self._show_status()
