"""Saved conversations in the chat: start a new one, reopen one from the history (Ctrl+O), and
export the current one as Markdown (Ctrl+S).

`SavedChatsMixin` is mixed into `ChatApp` (assistant/tui/app.py), which holds the state it
uses (pack, turns, last answer) and provides `_error` and `_show_status`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual import work
from textual.containers import VerticalScroll
from textual.widgets import Markdown

from assistant.answering.answers import Answer, Source, Timings
from assistant.errors import AssistantError
from assistant.history import History
from assistant.settings import home_dir
from assistant.tui.screens import AUTO, ConversationPicker
from assistant.tui.widgets import AnswerMessage, SourcesPanel, UserMessage

WELCOME = (
    "Ask a question about the pack's documents. **Enter** sends, **Ctrl+J** (or Shift+Enter)"
    " starts a new line, **Esc** stops an answer, **Ctrl+L** picks the pack, **Ctrl+P** opens"
    " the command palette."
)


class SavedChatsMixin:
    """New, open and export conversations."""

    history: History
    pack: str
    conversation_id: int | None
    turns: list[dict[str, str]]
    last_answer: Answer | None
    answering: bool
    _last_answer_widget: AnswerMessage | None
    _last_answer_id: int | None

    def action_new_chat(self) -> None:
        if self.answering:
            self.action_stop()
        self._reset_chat()
        self.query_one("#chat", VerticalScroll).mount(Markdown(WELCOME, id="welcome"))
        self.notify("New conversation", timeout=2)

    def _reset_chat(self) -> None:
        self.conversation_id = None
        self.turns = []
        self.last_answer = None
        self._last_answer_widget = None
        self._last_answer_id = None
        self.query_one("#chat", VerticalScroll).remove_children()
        self.query_one("#sources", SourcesPanel).show([])
        self._show_status()

    def action_open_chat(self) -> None:
        self._open_chat()

    @work(group="picker")
    async def _open_chat(self) -> None:
        if self.answering:
            self.notify("Wait for the answer to finish, or press Esc first.")
            return
        choice = await self.push_screen_wait(ConversationPicker(self.history.conversations()))
        if choice is not None:
            await self.load_conversation(choice)

    async def load_conversation(self, conversation_id: int) -> None:
        """Show a saved conversation; new questions continue it."""
        try:
            conversation = self.history.conversation(conversation_id)
            messages = self.history.messages(conversation_id)
        except AssistantError as exc:
            self._error(str(exc))
            return
        self._reset_chat()
        chat = self.query_one("#chat", VerticalScroll)
        self.conversation_id = conversation_id
        self.pack = conversation.pack or AUTO
        widgets = []
        for message in messages:
            self.turns.append({"role": message.role, "content": message.content})
            if message.role == "user":
                widgets.append(UserMessage(message.content, classes="user"))
                continue
            widget = AnswerMessage(message.content, classes="answer")
            auto = message.meta.get("auto")
            pack = message.pack or "no pack"
            widget.border_title = f"{pack} (auto)" if auto else pack
            if message.meta.get("declined"):
                widget.add_class("declined")
                widget.border_subtitle = "declined"
            widgets.append(widget)
            self._last_answer_widget, self._last_answer_id = widget, message.id
            self.last_answer = _answer_from(message)
        await chat.mount_all(widgets)
        chat.anchor()
        if self.last_answer is not None:
            self.query_one("#sources", SourcesPanel).show(self.last_answer.sources)
        self._show_status()
        self.notify(f"Opened: {conversation.title}", timeout=3)

    def action_export(self) -> None:
        if self.conversation_id is None:
            self.notify("Nothing to export yet: ask a question first.")
            return
        folder = Path.cwd()
        if not os.access(folder, os.W_OK):
            folder = home_dir()
        try:
            path = self.history.export(self.conversation_id, folder)
        except AssistantError as exc:
            self._error(str(exc))
            return
        self.exported = path
        self.notify(f"Exported to {path}", title="Export", timeout=8)


def _answer_from(message: Any) -> Answer:
    """The saved form of an answer, back as an `Answer` (for the panel and the status line)."""
    meta = message.meta
    sources = []
    for data in meta.get("sources") or []:
        try:
            sources.append(Source(**data))
        except TypeError:
            continue
    timings = Timings(
        **{
            k: v
            for k, v in (meta.get("timings") or {}).items()
            if k in Timings.__dataclass_fields__
        }
    )
    return Answer(
        question="",
        answer=message.content,
        pack=message.pack,
        declined=bool(meta.get("declined")),
        decline_reason=meta.get("decline_reason"),
        sources=sources,
        citations=list(meta.get("citations") or []),
        timings=timings,
        adapter=meta.get("adapter"),
        cancelled=bool(meta.get("cancelled")),
    )
