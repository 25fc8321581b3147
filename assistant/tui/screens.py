"""The chat's modal screens: the pack picker, the saved conversations and a source passage."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from assistant.answering.answers import Source
from assistant.history import Conversation
from assistant.tui.backend import PackInfo

AUTO = "auto"
CONTEXT_CHARS = 700  # document text shown on each side of a passage


class PackPicker(ModalScreen[str | None]):
    """Every pack with its title and description, "auto" first. Returns a name, "auto" or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, packs: list[PackInfo], current: str) -> None:
        super().__init__()
        self.packs = packs
        self.current = current

    def compose(self) -> ComposeResult:
        options = [
            Option(
                _pack_text(
                    AUTO,
                    "Auto",
                    "the router picks the pack for each question (or declines)",
                    self.current == AUTO,
                ),
                id=AUTO,
            )
        ]
        for info in self.packs:
            text = _pack_text(info.name, info.title, info.description, self.current == info.name)
            options.append(Option(text, id=info.name))
        with Vertical(classes="dialog"):
            yield Label("Choose a pack  [dim](Enter picks, Esc cancels)[/]", classes="dialog-title")
            yield OptionList(*options, id="pack-list")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [AUTO] + [p.name for p in self.packs]
        options.highlighted = ids.index(self.current) if self.current in ids else 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


def _pack_text(name: str, title: str, description: str, current: bool) -> Text:
    text = Text()
    text.append("● " if current else "  ", style="bold green")
    text.append(title, style="bold")
    text.append(f"  ({name})\n", style="dim")
    short = " ".join(description.split())
    if len(short) > 150:
        short = short[:149] + "…"
    text.append("  " + short, style="italic")
    return text


class ConversationPicker(ModalScreen[int | None]):
    """Saved conversations, newest first. Returns a conversation id or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, conversations: list[Conversation]) -> None:
        super().__init__()
        self.conversations = conversations

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(
                "Open a conversation  [dim](Enter opens, Esc cancels)[/]", classes="dialog-title"
            )
            if not self.conversations:
                yield Label("No saved conversations yet.", id="no-conversations")
            options = []
            for c in self.conversations:
                text = Text(c.title, style="bold")
                when = time.strftime("%Y-%m-%d %H:%M", time.localtime(c.updated))
                text.append(f"\n  {when} · {c.pack or AUTO} · {c.messages} messages", style="dim")
                options.append(Option(text, id=str(c.id)))
            yield OptionList(*options, id="conversation-list")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id))


class SourceView(ModalScreen[None]):
    """A retrieved passage in its document, the passage itself highlighted."""

    BINDINGS = [Binding("escape,q", "dismiss(None)", "Close")]

    def __init__(self, source: Source, document: str | None) -> None:
        super().__init__()
        self.source = source
        self.document = document

    def compose(self) -> ComposeResult:
        s = self.source
        where = s.path + (f" § {s.section}" if s.section else "")
        cited = "cited" if s.cited else "not cited"
        with Vertical(classes="dialog source-dialog"):
            yield Label(
                f"[b][{s.number}] {where}[/b]  [dim]{s.pack} · {cited} · Esc closes[/]",
                classes="dialog-title",
                markup=True,
            )
            with VerticalScroll(id="passage-scroll"):
                yield Static(self.passage_text(), id="passage")

    def passage_text(self) -> Text:
        s = self.source
        doc = self.document
        if doc is None or not (0 <= s.start < s.end <= len(doc)):
            return Text(s.text, style="reverse")
        lo = max(0, s.start - CONTEXT_CHARS)
        hi = min(len(doc), s.end + CONTEXT_CHARS)
        text = Text()
        if lo > 0:
            text.append("…", style="dim")
        text.append(doc[lo : s.start], style="dim")
        text.append(doc[s.start : s.end], style="bold reverse")
        text.append(doc[s.end : hi], style="dim")
        if hi < len(doc):
            text.append("…", style="dim")
        return text

    def on_mount(self) -> None:
        # Bring the highlighted passage into view.
        s = self.source
        if self.document and s.start > CONTEXT_CHARS // 2:
            scroll = self.query_one("#passage-scroll", VerticalScroll)
            lines_before = self.document[max(0, s.start - CONTEXT_CHARS) : s.start].count("\n")
            self.call_after_refresh(scroll.scroll_to, y=max(0, lines_before - 2), animate=False)
