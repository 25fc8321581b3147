"""Snapshot tests of the chat's screens (pytest-textual-snapshot).

These tests inject a FAKE backend (`FakeBackend` below) into `ChatApp`: it streams a fixed
answer with fixed sources and timings, so the screenshots do not depend on what the model writes
or how fast the machine is. The behaviour with the real model is covered by test_chat_app.py.

Update the snapshots after an intended change of the screens:
    .venv/bin/pytest tests/test_chat_snapshots.py --snapshot-update
"""

from __future__ import annotations

import threading

import pytest

from assistant.answering.answers import Answer, AnswerStream, Source, Timings
from assistant.history import History
from assistant.tui.app import ChatApp
from assistant.tui.backend import PackInfo
from assistant.tui.widgets import AnswerMessage, StatusLine

QUESTION = "Which respirator do I need against sabline dust?"
PIECES = [
    "Wear a **P3 (FFP3)** respirator ",
    "when sanding or cutting penguin wood [1]. ",
    "Run an M-class extractor at the tool [2].\n\n",
    "Safety reminder: sabline dust irritates the nose and eyes.",
]
DOCUMENT = (
    "# Safety\n\nPenguin wood is safe to handle once sealed.\n\n"
    "## Personal protective equipment\n\n"
    "Sabline dust from penguin wood irritates the nose and eyes. Wear a P3 (FFP3) respirator"
    " when sanding or cutting, and safety glasses at every machine.\n\n"
    "## Lifting\n\nLift tall boards with a partner.\n"
)
PASSAGE_START = DOCUMENT.index("Sabline dust")
PASSAGE_END = DOCUMENT.index("every machine.") + len("every machine.")


def fake_sources() -> list[Source]:
    return [
        Source(
            1,
            "penguin-wood",
            "docs/11_safety.md",
            "Safety",
            "Personal protective equipment",
            None,
            PASSAGE_START,
            PASSAGE_END,
            0.0328,
            0.71,
            DOCUMENT[PASSAGE_START:PASSAGE_END],
            cited=True,
        ),
        Source(
            2,
            "penguin-wood",
            "docs/10_tools_and_jigs.md",
            "Tools and jigs",
            "Dust control",
            None,
            0,
            120,
            0.0323,
            0.58,
            "An M-class extractor at the tool.",
            cited=True,
        ),
        Source(
            3,
            "penguin-wood",
            "docs/13_troubleshooting_faq.md",
            "FAQ",
            "Dust",
            None,
            0,
            80,
            0.0315,
            0.49,
            "Dust everywhere? Check the extractor bag.",
        ),
    ]


class FakeBackend:
    """Deterministic stand-in for `assistant.tui.backend.Backend` (snapshot tests only)."""

    needs_warm_up = False

    def packs(self) -> list[PackInfo]:
        return [
            PackInfo("contracts", "Contract clauses explained", "Common clauses of contracts."),
            PackInfo("diabetes", "Diabetes self-care", "Living with type 1 and type 2 diabetes."),
            PackInfo(
                "penguin-wood",
                "Penguin wood workshop mentor",
                "Working penguin wood, a banded timber for tall, vertical woodworking.",
            ),
            PackInfo("support", "Cloud drive support", "Help with the cloud drive app."),
        ]

    def warm_up(self) -> None:
        pass

    def stream(self, question, pack, history, cancel: threading.Event, max_tokens=None):
        def steps():
            yield from PIECES
            return Answer(
                question,
                "".join(PIECES),
                pack or "penguin-wood",
                sources=fake_sources(),
                citations=[1, 2],
                timings=Timings(
                    routing_ms=0,
                    retrieval_ms=41,
                    first_token_ms=380,
                    total_ms=2100,
                    tokens_per_s=12.5,
                ),
                adapter="penguin-wood",
            )

        return AnswerStream(steps())

    def document_text(self, pack: str, path: str) -> str:
        return DOCUMENT


async def steady(pilot) -> None:
    """Turn the prompt's cursor blink off: a blinking cursor made screenshots differ by when
    they were taken."""
    pilot.app.query_one("#prompt").cursor_blink = False
    await pilot.pause()


def make_app(pack: str | None = "penguin-wood") -> ChatApp:
    return ChatApp(pack=pack, backend=FakeBackend(), history=History())


async def ask(pilot) -> None:
    await steady(pilot)
    await pilot.click("#prompt")
    await pilot.press(*QUESTION)
    await pilot.press("enter")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.pause()


def test_main_screen_after_an_answer(snap_compare):
    """The main screen at 80x24 after one answer (FAKE backend: fixed text, sources, timings)."""
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=ask)


def test_main_screen_large_light(snap_compare):
    """A large terminal in the light theme (FAKE backend)."""

    async def run_before(pilot):
        await ask(pilot)
        await pilot.press("ctrl+t")
        await pilot.pause()

    assert snap_compare(make_app(None), terminal_size=(140, 40), run_before=run_before)


def test_pack_picker(snap_compare):
    """The pack picker: "auto" first, then every pack with title and description (FAKE)."""

    async def run_before(pilot):
        await steady(pilot)
        await pilot.press("ctrl+l")
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_source_view(snap_compare):
    """A source opened from the panel: the document around the passage, the passage
    highlighted (FAKE backend and document)."""

    async def run_before(pilot):
        await ask(pilot)
        await pilot.press("tab")  # from the question box to the sources list
        await pilot.press("enter")
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)


def test_status_line_says_what_the_claim_check_left_out() -> None:
    """Pure logic on hand-made Answers (no model): a strict answer that dropped a sentence says
    so; a marked one says how many are marked; grounding off says nothing."""
    from assistant.tui.widgets import grounding_note

    claims = [{"text": "A.", "supported": True}, {"text": "B.", "supported": False}]
    assert grounding_note(Answer("q", "A.", "p", grounding="strict", claims=claims)) == (
        "1 unsupported sentence left out"
    )
    assert grounding_note(Answer("q", "A.", "p", grounding="mark", claims=claims)) == (
        "1 sentence marked ⚠"
    )
    assert grounding_note(Answer("q", "A.", "p", grounding="off", claims=claims)) == ""
    all_supported = Answer("q", "A.", "p", grounding="strict", claims=claims[:1])
    assert "checked" in grounding_note(all_supported)


@pytest.mark.anyio
async def test_a_marked_sentence_is_set_apart_in_the_chat(anyio_backend) -> None:
    """In "mark" mode the unsupported sentence is shown set apart (emphasised, with a warning
    sign) and the status line counts it. A fake backend: what is tested is the widget."""
    from assistant.answering.claims import UNSUPPORTED_MARK

    class MarkingBackend(FakeBackend):
        def stream(self, question, pack, history, cancel, max_tokens=None):
            text = f"Wear a P3 mask [1]. {UNSUPPORTED_MARK}Sabline dust cures colds."

            def steps():
                yield text
                return Answer(
                    question,
                    text,
                    "penguin-wood",
                    sources=fake_sources(),
                    citations=[1],
                    grounding="mark",
                    claims=[
                        {"text": "Wear a P3 mask [1].", "supported": True},
                        {"text": "Sabline dust cures colds.", "supported": False},
                    ],
                    adapter="penguin-wood",
                )

            return AnswerStream(steps())

    app = ChatApp(pack="penguin-wood", backend=MarkingBackend(), history=History())
    async with app.run_test(size=(100, 32)) as pilot:
        await ask(pilot)
        widget = app.query(AnswerMessage).last()
        assert "⚠ *(not in the documents)* Sabline dust cures colds." in widget.shown
        assert "1 sentence marked ⚠" in str(app.query_one(StatusLine).render())
    app.history.close()


@pytest.fixture
def anyio_backend():
    return "asyncio"
