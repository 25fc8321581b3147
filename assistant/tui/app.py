"""`assistant chat`: a Textual chat with the packs.

Questions go to `Router.stream()` in a thread worker; pieces reach the screen through
`call_from_thread`, the chat follows the stream (`VerticalScroll.anchor()`), and each message is
saved to the conversation history as soon as it exists. Run it with `assistant chat [PACK]`, or:

    from assistant.tui.app import ChatApp
    ChatApp(pack="penguin-wood").run()
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, LoadingIndicator, Markdown

from assistant.answering.answers import Answer, Source, Timings
from assistant.errors import AssistantError
from assistant.history import History
from assistant.settings import LoadedSettings, home_dir
from assistant.tui.backend import Backend, PackInfo
from assistant.tui.commands import PackCommands
from assistant.tui.screens import AUTO, ConversationPicker, PackPicker, SourceView
from assistant.tui.widgets import (
    AnswerMessage,
    PromptInput,
    SourcesPanel,
    StatusLine,
    UserMessage,
)

WELCOME = (
    "Ask a question about the pack's documents. **Enter** sends, **Ctrl+J** (or Shift+Enter)"
    " starts a new line, **Esc** stops an answer, **Ctrl+L** picks the pack, **Ctrl+P** opens"
    " the command palette."
)


class ChatApp(App[None]):
    """Chat with one pack, or with all of them in auto mode."""

    TITLE = "assistant chat"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {PackCommands}
    BINDINGS = [
        Binding("escape", "stop", "Stop"),
        Binding("ctrl+l", "pick_pack", "Pack"),
        Binding("ctrl+r", "regenerate", "Retry"),
        Binding("ctrl+n", "new_chat", "New"),
        Binding("ctrl+o", "open_chat", "Open"),
        Binding("ctrl+s", "export", "Export"),
        Binding("ctrl+b", "toggle_sources", "Sources"),
        Binding("ctrl+g", "copy_answer", "Copy"),
        Binding("ctrl+t", "toggle_theme", "Theme"),
        Binding("pageup", "scroll_chat(-1)", "Scroll up", show=False, priority=True),
        Binding("pagedown", "scroll_chat(1)", "Scroll down", show=False, priority=True),
    ]

    def __init__(
        self,
        loaded: LoadedSettings | None = None,
        pack: str | None = None,
        *,
        backend: Any = None,
        history: History | None = None,
        max_tokens: int | None = None,
    ) -> None:
        super().__init__()
        if backend is None:
            from assistant.settings import load_settings

            backend = Backend(loaded or load_settings())
        self.backend = backend
        self.history = history if history is not None else History()
        self.pack = pack or AUTO
        self.max_tokens = max_tokens
        self.conversation_id: int | None = None
        self.turns: list[dict[str, str]] = []  # what the router sees as history
        self.last_answer: Answer | None = None
        self.answering = False
        self._cancel: threading.Event | None = None
        self._last_answer_widget: AnswerMessage | None = None
        self._last_answer_id: int | None = None
        self._model_ready = not getattr(backend, "needs_warm_up", False)

    # ----- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with VerticalScroll(id="chat"):
                yield Markdown(WELCOME, id="welcome")
            yield SourcesPanel(id="sources")
        with Horizontal(id="loading"):
            yield LoadingIndicator()
            yield Label("loading the model…")
        yield PromptInput(id="prompt", placeholder="Ask a question…")
        yield StatusLine(id="status")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        chat = self.query_one("#chat", VerticalScroll)
        chat.can_focus = False  # Tab goes between the question box and the sources
        chat.anchor()
        self.query_one("#sources", SourcesPanel).show([])
        self.query_one("#prompt", PromptInput).focus()
        self._show_status()
        if self._model_ready:
            self.query_one("#loading").display = False
        else:
            self._warm_up()

    def _show_status(self, note: str = "") -> None:
        if not self._model_ready and not note:
            note = "loading the model…"
        self.query_one("#status", StatusLine).show(self.pack, self.last_answer, note)
        self.sub_title = f"pack: {self.pack}"

    @work(thread=True, group="warm-up")
    def _warm_up(self) -> None:
        try:
            self.backend.warm_up()
        except AssistantError as exc:
            self.call_from_thread(self._error, str(exc))
        except Exception as exc:  # noqa: BLE001 - show it, keep the app alive
            self.call_from_thread(self._error, f"the model did not load: {exc}")
        self.call_from_thread(self._model_loaded)

    def _model_loaded(self) -> None:
        self._model_ready = True
        self.query_one("#loading").display = False
        self._show_status()

    def _error(self, message: str) -> None:
        self.notify(message, title="Problem", severity="error", timeout=12)

    def backend_packs(self) -> list[PackInfo]:
        return self.backend.packs()

    def get_system_commands(self, screen: Screen):
        yield from super().get_system_commands(screen)
        yield SystemCommand("Pick pack", "Choose the pack (or auto mode)", self.action_pick_pack)
        yield SystemCommand("New conversation", "Start an empty chat", self.action_new_chat)
        yield SystemCommand("Open conversation", "Reopen a saved chat", self.action_open_chat)
        yield SystemCommand("Export conversation", "Write it as Markdown", self.action_export)
        yield SystemCommand("Regenerate", "Answer the last question again", self.action_regenerate)
        yield SystemCommand("Copy last answer", "To the clipboard", self.action_copy_answer)
        yield SystemCommand(
            "Toggle sources panel", "Show or hide the sources", self.action_toggle_sources
        )
        yield SystemCommand("Toggle light/dark", "Switch the theme", self.action_toggle_theme)

    # ----- asking -------------------------------------------------------------------------

    @on(PromptInput.Submitted)
    def _submitted(self, event: PromptInput.Submitted) -> None:
        if self.answering:
            self.notify("An answer is still coming: wait, or press Esc to stop it.")
            return
        event.prompt.remember(event.text)
        event.prompt.clear()
        self.ask(event.text)

    def ask(self, question: str) -> None:
        """Show and save the question, then stream its answer."""
        pack = None if self.pack == AUTO else self.pack
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
                conversation_pack=None if self.pack == AUTO else self.pack,
            )
            return message_id
        except AssistantError as exc:
            self._error(str(exc))
            return None

    # ----- actions ------------------------------------------------------------------------

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
                pack = None if self.pack == AUTO else self.pack
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
        pack = None if self.pack == AUTO else self.pack
        self._start_answer(question, pack, self.turns[:-1])

    def action_pick_pack(self) -> None:
        self._pick_pack()

    @work(group="picker")
    async def _pick_pack(self) -> None:
        packs = await self._packs()
        choice = await self.push_screen_wait(PackPicker(packs, self.pack))
        if choice:
            self.switch_pack(choice)

    async def _packs(self) -> list[PackInfo]:
        import asyncio

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

    def action_scroll_chat(self, direction: int) -> None:
        chat = self.query_one("#chat", VerticalScroll)
        if direction < 0:
            chat.scroll_page_up()
        else:
            chat.scroll_page_down()

    def action_toggle_sources(self) -> None:
        panel = self.query_one("#sources", SourcesPanel)
        panel.display = not panel.display

    def action_copy_answer(self) -> None:
        if self.last_answer is None:
            self.notify("There is no answer to copy yet.")
            return
        self.copy_to_clipboard(self.last_answer.answer)
        self.notify("Copied the last answer.", timeout=2)

    def action_toggle_theme(self) -> None:
        self.theme = "textual-light" if self.current_theme.dark else "textual-dark"

    @on(SourcesPanel.Selected)
    def _source_selected(self, event: SourcesPanel.Selected) -> None:
        self._show_source(event.source)

    @work(group="source")
    async def _show_source(self, source: Source) -> None:
        import asyncio

        try:
            document = await asyncio.to_thread(self.backend.document_text, source.pack, source.path)
        except AssistantError as exc:
            self.notify(f"{exc}; showing the passage alone", severity="warning")
            document = None
        await self.push_screen(SourceView(source, document))


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
