"""The conversation history: one transaction per message, WAL, survives a crash, exports."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from assistant.errors import AssistantError
from assistant.history import History, default_path


def test_messages_round_trip_newest_conversation_first(isolated_home):
    history = History()
    assert history.path == isolated_home / "history.sqlite" == default_path()
    assert history.conversations() == []  # nothing is stored before the first message
    cid, first = history.add_message(None, "user", "What is PGW?", conversation_pack="penguin-wood")
    history.add_message(
        cid,
        "assistant",
        "A banded timber [1].",
        pack="penguin-wood",
        meta={"sources": [{"number": 1, "path": "docs/a.md", "cited": True}], "declined": False},
    )
    other, _ = history.add_message(None, "user", "x" * 200)
    conversations = history.conversations()
    assert [c.id for c in conversations] == [other, cid]
    assert conversations[0].title.endswith("…") and len(conversations[0].title) == 60
    assert conversations[1].pack == "penguin-wood" and conversations[1].messages == 2
    messages = history.messages(cid)
    assert [m.role for m in messages] == ["user", "assistant"]
    assert messages[1].meta["sources"][0]["path"] == "docs/a.md"
    history.delete_message(messages[1].id)
    assert len(history.messages(cid)) == 1
    history.set_pack(cid, None)
    assert history.conversation(cid).pack is None
    assert first > 0
    with pytest.raises(AssistantError, match="no saved conversation"):
        history.conversation(999)
    history.close()


def test_wal_and_committed_before_a_crash(isolated_home):
    """A process that dies right after add_message (no close) has still saved the message."""
    code = (
        "import os\n"
        "from assistant.history import History\n"
        "h = History()\n"
        "h.add_message(None, 'user', 'saved before the crash')\n"
        "os._exit(9)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert result.returncode == 9
    db = sqlite3.connect(isolated_home / "history.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT content FROM messages").fetchall() == [("saved before the crash",)]
    db.close()


def test_markdown_export(tmp_path):
    history = History(tmp_path / "h.sqlite")
    cid, _ = history.add_message(None, "user", "Why did it decline?")
    history.add_message(
        cid,
        "assistant",
        "I can only help with penguin wood.",
        pack="penguin-wood",
        meta={
            "declined": True,
            "decline_reason": "best passage scored 0.1",
            "sources": [
                {"number": 1, "path": "docs/11_safety.md", "section": "PPE", "cited": False}
            ],
        },
    )
    path = history.export(cid, tmp_path)
    text = path.read_text()
    assert path.parent == tmp_path and path.name.startswith(f"conversation-{cid}-")
    assert "## You\n\nWhy did it decline?" in text
    assert "## Assistant (penguin-wood)" in text
    assert "*Declined: best passage scored 0.1*" in text
    assert "- [1] docs/11_safety.md § PPE" in text
    with pytest.raises(AssistantError, match="cannot write"):
        history.export(cid, tmp_path / "missing-folder")


def test_corrupt_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "history.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(AssistantError, match="move the file aside"):
        History(bad)
