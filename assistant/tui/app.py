"""`assistant chat`: a Textual chat with the packs. Run it with `assistant chat [PACK]`, or:

    from assistant.tui.app import ChatApp
    ChatApp(pack="penguin-wood").run()

This module is the app shell: the layout, the key bindings and command palette entries, the
model warm-up, the status line and the sources panel. The rest comes in by area, one mixin each:
asking and streaming answers (`conversation`), saved conversations (`saved_chats`) and the pack
choice (`pack_choice`). Widgets are in `widgets`, modal screens in `screens`.
"""

from __future__ import annotations

import threading
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, LoadingIndicator, Markdown

from assistant.answering.answers import Answer, Source
from assistant.errors import AssistantError
from assistant.history import History
from assistant.settings import LoadedSettings
from assistant.tui.backend import Backend
from assistant.tui.commands import PackCommands
from assistant.tui.conversation import ConversationMixin
from assistant.tui.pack_choice import PackChoiceMixin
from assistant.tui.saved_chats import WELCOME, SavedChatsMixin
from assistant.tui.screens import AUTO, SourceView
from assistant.tui.widgets import AnswerMessage, PromptInput, SourcesPanel, StatusLine


class ChatApp(ConversationMixin, SavedChatsMixin, PackChoiceMixin, App[None]):
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

    # ----- events ------------------------------------------------------------------------
    # The `@on` handlers live here: Textual's message-pump metaclass collects them from App and
    # Widget subclasses only, not from plain mixins.

    @on(PromptInput.Submitted)
    def _submitted(self, event: PromptInput.Submitted) -> None:
        if self.answering:
            self.notify("An answer is still coming: wait, or press Esc to stop it.")
            return
        event.prompt.remember(event.text)
        event.prompt.clear()
        self.ask(event.text)

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

    # ----- view actions -------------------------------------------------------------------

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
