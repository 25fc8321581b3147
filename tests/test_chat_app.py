"""Pilot tests of `assistant chat` with the REAL model, router and penguin-wood index (answers
are kept short with `max_tokens`). Snapshot tests with a fake backend are in
test_chat_snapshots.py; the real-terminal test is test_chat_tmux.py."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from click.testing import CliRunner

from assistant.answering.answers import AnswerStream
from assistant.errors import AssistantError
from assistant.history import History
from assistant.tui.app import ChatApp
from assistant.tui.backend import Backend
from assistant.tui.screens import ConversationPicker, PackPicker
from assistant.tui.widgets import AnswerMessage, PromptInput, SourcesPanel, StatusLine, UserMessage

pytestmark = pytest.mark.anyio

QUESTION = "What respirator should I wear against sabline dust?"
SIZE = (100, 32)


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(scope="module")
def backend(settings):
    """One real backend (model, embedder, open indexes) for the module's apps."""
    return Backend(settings)


async def wait_until(pilot, condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the app")
        await pilot.pause(0.2)


async def ask(pilot, question: str = QUESTION) -> AnswerMessage:
    prompt = pilot.app.query_one(PromptInput)
    prompt.focus()
    prompt.insert(question)
    await pilot.press("enter")
    await wait_until(pilot, lambda: pilot.app.query(AnswerMessage))
    return pilot.app.query(AnswerMessage).last()


def status_text(app) -> str:
    return str(app.query_one(StatusLine).render())


async def test_ask_stream_sources_export_and_reopen(backend, settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # The real stream, held before its final Answer until the test has seen the app answering:
    # an 8-token answer can otherwise end before the first check (it did, under load).
    release = threading.Event()
    real_stream = backend.stream

    def held_stream(*args, **kwargs):
        stream = real_stream(*args, **kwargs)

        def steps():
            yield from stream
            release.wait(120)
            return stream.answer

        return AnswerStream(steps())

    monkeypatch.setattr(backend, "stream", held_stream)
    app = ChatApp(settings, "penguin-wood", backend=backend, history=History(), max_tokens=8)
    async with app.run_test(size=SIZE) as pilot:
        widget = await ask(pilot)
        assert app.answering
        release.set()
        await wait_until(pilot, lambda: not app.answering)
        assert widget.pieces >= 2, "the answer arrived in pieces"
        assert app.last_answer is not None and app.last_answer.pack == "penguin-wood"
        assert widget.text.strip()
        assert widget.border_title == "penguin-wood"
        panel = app.query_one(SourcesPanel)
        assert panel.sources and all(s.path.startswith("docs/") for s in panel.sources)
        assert app.query_one("#sources-list").option_count == len(panel.sources)
        status = status_text(app)
        assert "retrieval" in status and "tok/s" in status
        # the source opens in a modal with its document
        app.query_one("#sources-list").focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.screen.__class__.__name__ == "SourceView")
        assert "docs/" in str(app.screen.query_one(".dialog-title").render())
        await pilot.press("escape")
        # export writes the Markdown file in the current folder
        await pilot.press("ctrl+s")
        files = list(tmp_path.glob("conversation-*.md"))
        assert len(files) == 1
        text = files[0].read_text()
        assert QUESTION in text and "docs/" in text
        answer_text = widget.text
    app.history.close()

    # A new app (as after a restart) reopens the saved conversation from the list.
    again = ChatApp(settings, None, backend=backend, history=History())
    async with again.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(again.screen, ConversationPicker))
        await pilot.press("enter")
        await wait_until(pilot, lambda: again.query(UserMessage))
        assert again.pack == "penguin-wood"
        assert [t["role"] for t in again.turns] == ["user", "assistant"]
        assert again.query(AnswerMessage).last().text == answer_text
        assert again.query_one(SourcesPanel).sources
    again.history.close()


async def test_cancel_mid_answer(backend, settings):
    app = ChatApp(settings, "penguin-wood", backend=backend, history=History(), max_tokens=200)
    async with app.run_test(size=SIZE) as pilot:
        await ask(pilot, "How do I glue up a tall panel of penguin wood?")
        # the claim check shows whole sentences, so the engine may be mid-answer with nothing
        # shown yet: stop it just after it starts
        await wait_until(pilot, lambda: app.answering)
        await asyncio.sleep(0.3)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.answering, timeout=30)
        assert app.last_answer is not None and app.last_answer.cancelled
        assert app.last_answer.timings.answer_tokens < 200
        assert "stopped" in status_text(app)
        assert app.is_running  # still in the chat
        saved = app.history.messages(app.conversation_id)
        assert saved[-1].meta["cancelled"] is True
    app.history.close()


async def test_switch_pack_and_auto_mode(backend, settings):
    app = ChatApp(settings, "diabetes", backend=backend, history=History(), max_tokens=8)
    async with app.run_test(size=SIZE) as pilot:
        # command palette: "Use pack: Penguin wood ..."
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"use pack penguin")
        await asyncio.sleep(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.pack == "penguin-wood", timeout=20)
        # picker: "auto" first
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: isinstance(app.screen, PackPicker))
        await pilot.press("home", "enter")
        await wait_until(pilot, lambda: app.pack == "auto")
        assert "pack: auto" in status_text(app)
        widget = await ask(pilot, "How do I stop penguin wood from splintering when I cut it?")
        await wait_until(pilot, lambda: not app.answering)
        assert app.last_answer.pack == "penguin-wood"
        assert widget.border_title == "penguin-wood (auto)"
        assert "auto→penguin-wood" in status_text(app)
        # a new conversation; a question no pack covers is declined with the reason
        # (routing only, no generation)
        first_conversation = app.conversation_id
        await pilot.press("ctrl+n")
        assert app.conversation_id is None and not app.query(AnswerMessage)
        declined = await ask(pilot, "What is the best recipe for lasagna?")
        await wait_until(pilot, lambda: not app.answering)
        assert app.conversation_id != first_conversation
        assert app.last_answer.declined and app.last_answer.pack is None
        assert declined.has_class("declined") and declined.border_subtitle == "declined"
        assert "Declined: no pack covers this question" in declined.shown
        # regenerate answers the last question again, in place
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: not app.answering and len(app.query(AnswerMessage)) == 1)
        roles = [m.role for m in app.history.messages(app.conversation_id)]
        assert roles == ["user", "assistant"]
        # copy, hide the sources, light theme
        await pilot.press("ctrl+g")
        assert app.clipboard == app.last_answer.answer
        await pilot.press("ctrl+b")
        assert not app.query_one(SourcesPanel).display
        dark = app.current_theme.dark
        await pilot.press("ctrl+t")
        assert app.current_theme.dark != dark
    app.history.close()


class BrokenBackend:
    needs_warm_up = False

    def packs(self):
        return []

    def stream(self, question, pack, history, cancel, max_tokens=None):
        raise AssistantError("pack 'x' has no index: run `assistant index rebuild x`")
        yield  # pragma: no cover

    def document_text(self, pack, path):
        raise AssistantError("no index")


async def test_router_error_is_a_notification():
    app = ChatApp(pack="x", backend=BrokenBackend(), history=History())
    async with app.run_test(size=(80, 24)) as pilot:
        await ask(pilot, "anything")
        await wait_until(pilot, lambda: not app.answering)
        messages = [n.message for n in app._notifications]
        assert any("assistant index rebuild x" in m for m in messages)
        assert app.query(AnswerMessage).last().has_class("error")
        assert app.is_running
    app.history.close()


async def test_input_history_and_newline():
    app = ChatApp(pack="x", backend=BrokenBackend(), history=History())
    async with app.run_test(size=(80, 24)) as pilot:
        prompt = app.query_one(PromptInput)
        await ask(pilot, "first question")
        await wait_until(pilot, lambda: not app.answering)
        assert prompt.text == ""
        await pilot.press("up")
        assert prompt.text == "first question"
        await pilot.press("down")
        assert prompt.text == ""
        await pilot.press("a", "ctrl+j", "b")
        assert prompt.text == "a\nb"
    app.history.close()


def test_unknown_pack_is_one_line_exit_2():
    from assistant.cli import commands  # noqa: F401
    from assistant.cli.app import cli

    result = CliRunner().invoke(cli, ["chat", "no-such-pack"])
    assert result.exit_code == 2
    assert result.output.startswith("error:") and result.output.count("\n") == 1
