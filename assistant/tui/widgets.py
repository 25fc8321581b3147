"""The chat's widgets: the prompt (multi-line, with input history), the messages, the sources
panel and the status line."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Label, Markdown, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from assistant.answering.answers import Answer, Source
from assistant.answering.claims import UNSUPPORTED_MARK


class PromptInput(TextArea):
    """The question box. Enter sends; Shift+Enter or Ctrl+J starts a new line; Up on the first
    line and Down on the last line walk through the questions asked before."""

    BINDINGS = [
        Binding("enter", "submit", "Send"),
        Binding("ctrl+j", "newline", "Newline"),
    ]

    @dataclass
    class Submitted(Message):
        prompt: PromptInput
        text: str

    def __init__(self, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.asked: list[str] = []
        self._position: int | None = None  # index into `asked` while browsing
        self._draft = ""

    def action_submit(self) -> None:
        text = self.text.strip()
        if text:
            self.post_message(self.Submitted(self, text))

    def action_newline(self) -> None:
        self.insert("\n")

    def remember(self, text: str) -> None:
        if text and (not self.asked or self.asked[-1] != text):
            self.asked.append(text)
        self._position = None

    def _browse(self, step: int) -> bool:
        if not self.asked:
            return False
        if self._position is None:
            if step > 0:
                return False
            self._draft = self.text
            self._position = len(self.asked) - 1
        else:
            self._position += step
        if self._position < 0:
            self._position = 0
            return True
        if self._position >= len(self.asked):
            self._position = None
            self.load_text(self._draft)
        else:
            self.load_text(self.asked[self._position])
        self.move_cursor(self.document.end)
        return True

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
            return
        if event.key in ("shift+enter", "ctrl+j", "newline"):
            event.stop()
            event.prevent_default()
            self.action_newline()
            return
        row = self.cursor_location[0]
        if event.key == "up" and row == 0 and self._browse(-1):
            event.stop()
            event.prevent_default()
            return
        last_row = self.document.line_count - 1
        if event.key == "down" and row == last_row and self._browse(+1):
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)


class UserMessage(Markdown):
    """A question as it was asked."""


class AnswerMessage(Markdown):
    """One answer, streamed in piece by piece; its border names the pack that answered."""

    def __init__(self, markdown: str = "", **kwargs) -> None:
        super().__init__(markdown, **kwargs)
        self.text = markdown  # the answer itself
        self.shown = markdown  # what the widget shows (with the stop or decline note)
        self.pieces = 0  # how many streamed pieces arrived
        self.border_title = "assistant"

    def add_piece(self, piece: str) -> None:
        self.text += piece
        self.pieces += 1
        self.append(piece)

    def finish(self, answer: Answer, auto: bool) -> None:
        pack = answer.pack or "no pack"
        self.border_title = f"{pack} (auto)" if auto else pack
        body = answer.answer
        if answer.cancelled:
            body = (body + "\n\n*(stopped)*").strip()
        if answer.declined:
            self.add_class("declined")
            self.border_subtitle = "declined"
            body += f"\n\n*Declined: {answer.decline_reason or 'no reason given'}*"
        if answer.grounding == "mark":  # the same words, set apart so they are not read as fact
            body = body.replace(UNSUPPORTED_MARK, f"⚠ *{UNSUPPORTED_MARK.strip()}* ")
        self.text = answer.answer
        self.shown = body
        self.update(body)


def grounding_note(answer: Answer) -> str:
    """What the claim check did to the generated sentences, for the status line: a strict
    answer that left sentences out says so, so a short answer is not mistaken for all there is."""
    if answer.grounding == "off" or not answer.claims:
        return ""
    unsupported = sum(not claim.get("supported") for claim in answer.claims)
    if not unsupported:
        return "every sentence checked ✓"
    sentences = "sentence" if unsupported == 1 else "sentences"
    if answer.grounding == "mark":
        return f"{unsupported} {sentences} marked ⚠"
    return f"{unsupported} unsupported {sentences} left out"


class SourcesPanel(Vertical):
    """The passages behind the current answer; Enter (or a click) opens one in full."""

    @dataclass
    class Selected(Message):
        source: Source

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.sources: list[Source] = []

    def compose(self) -> ComposeResult:
        yield Label("Sources", id="sources-title")
        yield OptionList(id="sources-list")

    def show(self, sources: list[Source]) -> None:
        self.sources = list(sources)
        options = self.query_one(OptionList)
        options.clear_options()
        title = self.query_one("#sources-title", Label)
        if not sources:
            title.update("Sources: none")
            return
        cited = sum(1 for s in sources if s.cited)
        title.update(f"Sources ({cited} cited)" if cited else "Sources")
        width = options.scrollable_content_region.width or 40
        for source in sources:
            label = source_label(source, width)
            options.add_option(Option(label, id=f"source-{source.number}"))
        options.highlighted = 0

    def on_resize(self) -> None:
        if self.sources:
            self.call_after_refresh(self.show, self.sources)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        index = event.option_index
        if 0 <= index < len(self.sources):
            self.post_message(self.Selected(self.sources[index]))


def source_label(source: Source, width: int = 40) -> Text:
    """Two or three short lines (cut, not wrapped, in a narrow panel)."""
    score = f"{source.dense_score:.2f}" if source.dense_score is not None else f"{source.score:.3f}"
    lines = [
        Text.assemble(
            ("✓" if source.cited else " ", "bold green"),
            (f"[{source.number}] ", "bold"),
            source.path,
        ),
    ]
    if source.section:
        lines.append(Text(f"  § {source.section}", style="italic"))
    lines.append(
        Text.assemble(
            (f"  score {score} · {source.pack}", "dim"),
            (" · cited" if source.cited else "", "green"),
        )
    )
    for line in lines:
        line.truncate(width, overflow="ellipsis")
    return Text("\n").join(lines)


class StatusLine(Static):
    """Pack, adapter and the last answer's timings."""

    def show(self, pack: str, answer: Answer | None = None, note: str = "") -> None:
        parts = [f"pack: {pack}"]
        if answer is not None:
            t = answer.timings
            parts[0] = f"auto→{answer.pack}" if answer.pack and pack == "auto" else pack
            if answer.adapter and answer.adapter == answer.pack:
                parts.append("adapter ✓")
            else:
                parts.append(f"adapter: {answer.adapter or 'none'}")
            parts.append(f"retrieval {_duration(t.retrieval_ms)}")
            parts.append(f"1st token {_duration(t.first_token_ms)}")
            parts.append(f"{t.tokens_per_s:.1f} tok/s")
            if checked := grounding_note(answer):  # last: a narrow terminal cuts it first
                parts.append(checked)
        if note:
            parts.append(note)
        self.update(Text(" · ".join(parts), no_wrap=True, overflow="ellipsis"))


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
