"""The conversation area: asking a question and streaming its answer into the chat.

`Router.stream()` runs in a thread worker (`@work(thread=True)`); its pieces reach the screen
through `call_from_thread`, the chat follows the stream (`VerticalScroll.anchor()`), and each
message is saved to the conversation history as soon as it exists. Esc stops an answer, Ctrl+R
answers the last question again.

`ConversationMixin` is mixed into `ChatApp` (assistant/tui/app.py), which holds the state it
uses (pack, turns, last answer) and provides `_error` and `_show_status`.
"""

from __future__ import annotations

import threading
from dataclasses import asdict
from typing import Any

from textual import work
from textual.containers import VerticalScroll

from assistant.answering.answers import Answer
from assistant.errors import AssistantError
from assistant.history import History
from assistant.tui.screens import AUTO
from assistant.tui.widgets import AnswerMessage, SourcesPanel, UserMessage


class ConversationMixin:
    """Ask, stream, stop and regenerate answers; save each message to the history."""

    backend: Any
    history: History
    pack: str
    max_tokens: int | None
    conversation_id: int | None
    turns: list[dict[str, str]]
    last_answer: Answer | None
    answering: bool
    _cancel: threading.Event | None
    _last_answer_widget: AnswerMessage | None
    _last_answer_id: int | None

    def _target_pack(self) -> str | None:
        """The pack that answers: None in auto mode (the router picks)."""
        return None if self.pack == AUTO else self.pack

    def ask(self, question: str) -> None:
        """Show and save the question, then stream its answer."""
        pack = self._target_pack()
        history = list(self.turns)
        self._save("user", question, pack)
        self.turns.append({"role": "user", "content": question})
        chat = self.query_one("#chat", VerticalScroll)
        welcome = self.query("#welcome")
        if welcome:
            welcome.remove()
        chat.mount(UserMessage(question, classes="user"))
        self._start_answer(question, pack, history)

    def _start_answer(self, question: str, pack: str | None, history: list[dict]) -> None:
        chat = self.query_one("#chat", VerticalScroll)
        widget = AnswerMessage("", classes="answer")
        widget.border_title = pack or "auto"
        chat.mount(widget)
        chat.anchor()
        self.answering = True
        self._cancel = threading.Event()
        self.add_class("answering")
        self._show_status("answering…  (Esc stops)")
        self._answer(question, pack, history, widget, self._cancel)

    @work(thread=True, exclusive=True, group="answer")
    def _answer(
        self,
        question: str,
        pack: str | None,
        history: list[dict],
        widget: AnswerMessage,
        cancel: threading.Event,
    ) -> None:
        try:
            stream = self.backend.stream(question, pack, history, cancel, self.max_tokens)
            for piece in stream:
                self.call_from_thread(widget.add_piece, piece)
            final = stream.answer
        except AssistantError as exc:
            self.call_from_thread(self._failed, widget, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - a broken adapter, a bad file: keep running
            self.call_from_thread(self._failed, widget, f"{type(exc).__name__}: {exc}")
            return
        self.call_from_thread(self._finished, widget, final, pack is None)

    def _failed(self, widget: AnswerMessage, message: str) -> None:
        self.answering = False
        self.remove_class("answering")
        widget.add_class("error")
        widget.border_title = "error"
        widget.update(f"*Could not answer:* {message}")
        self._error(message)
        self._show_status()

    def _finished(self, widget: AnswerMessage, answer: Answer | None, auto: bool) -> None:
        self.answering = False
        self.remove_class("answering")
        if answer is None:
            self._failed(widget, "the answer ended without a result")
            return
        widget.finish(answer, auto)
        self.last_answer = answer
        self._last_answer_widget = widget
        self.turns.append({"role": "assistant", "content": answer.answer})
        meta = {
            "sources": [s.to_dict() for s in answer.sources],
            "citations": answer.citations,
            "timings": asdict(answer.timings),
            "adapter": answer.adapter,
            "declined": answer.declined,
            "decline_reason": answer.decline_reason,
            "cancelled": answer.cancelled,
            "auto": auto,
        }
        self._last_answer_id = self._save("assistant", answer.answer, answer.pack, meta)
        self.query_one("#sources", SourcesPanel).show(answer.sources)
        for notice in answer.notices:
            self.notify(notice, title="Note", severity="warning", timeout=8)
        self._show_status("stopped" if answer.cancelled else "")

    def _save(self, role: str, content: str, pack: str | None, meta: dict | None = None):
        try:
            self.conversation_id, message_id = self.history.add_message(
                self.conversation_id,
                role,
                content,
                pack=pack,
                meta=meta,
                conversation_pack=self._target_pack(),
            )
            return message_id
        except AssistantError as exc:
            self._error(str(exc))
            return None

    def action_stop(self) -> None:
        if self.answering and self._cancel is not None:
            self._cancel.set()
            self._show_status("stopping…")

    def action_regenerate(self) -> None:
        if self.answering:
            self.notify("Wait for the answer to finish, or press Esc first.")
            return
        if len(self.turns) < 2 or self.turns[-1]["role"] != "assistant":
            if self.turns and self.turns[-1]["role"] == "user":  # the last one failed
                question = self.turns[-1]["content"]
                pack = self._target_pack()
                self._start_answer(question, pack, self.turns[:-1])
                return
            self.notify("There is no answer to regenerate yet.")
            return
        self.turns.pop()
        question = self.turns[-1]["content"]
        if self._last_answer_id is not None:
            self.history.delete_message(self._last_answer_id)
            self._last_answer_id = None
        if self._last_answer_widget is not None:
            self._last_answer_widget.remove()
            self._last_answer_widget = None
        pack = self._target_pack()
        self._start_answer(question, pack, self.turns[:-1])
