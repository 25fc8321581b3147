"""SIGKILL while the chat saves messages: a child appends messages (up to 8 kB each, with
sources in their metadata) to one conversation through `History.add_message`, as the chat does,
and is killed after a random delay. Afterwards the history opens, SQLite's integrity check
passes, the conversation holds exactly the messages saved so far (in order, none torn, none
lost, never fewer than before; the last 50 checked after each kill, all at the end) and
exports; the next run goes on from there and finishes.
"""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.history import History

if TYPE_CHECKING:
    from conftest import ForkServer

SEED = int(os.environ.get("FAULTS_SEED", "10"))
KILLS = 24
MAX_DELAY = 0.4  # seconds after the fork; opening the history takes a tenth of that

WRITER = """
import random
from assistant.history import History

path, seed, count = argv
rng = random.Random(int(seed))
history = History(path)
conversations = history.conversations()
cid = conversations[0].id if conversations else None
start = len(history.messages(cid)) if cid else 0
for n in range(start, start + int(count)):
    body = f"message {n} " + "x" * rng.randrange(8_000)
    sources = [{"number": 1, "path": "docs/a.md", "cited": True}] * (n % 4)
    role = ("user", "assistant")[n % 2]
    cid = history.add_message(cid, role, body, pack="kb", meta={"n": n, "sources": sources})[0]
print("saved", start + int(count))
"""


def saved(path: Path, tail: int | None = None) -> int:
    """How many messages the history holds, after checking the last `tail` (default: all)."""
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    history = History(path)
    try:
        conversations = history.conversations()
        if not conversations:
            return 0
        assert len(conversations) == 1 and conversations[0].messages >= 1
        messages = history.messages(conversations[0].id)
        first = max(0, len(messages) - tail) if tail else 0
        for n, message in enumerate(messages[first:], first):
            assert message.content.startswith(f"message {n} ") and message.meta["n"] == n
            assert message.role == ("user", "assistant")[n % 2]
            assert len(message.meta["sources"]) == n % 4
        if tail is None:
            assert history.to_markdown(conversations[0].id).count("## ") == len(messages)
        return len(messages)
    finally:
        history.close()


def test_sigkill_while_saving_messages(fork_server: ForkServer, tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    rng = random.Random(SEED * 1000 + 7)
    count = 0
    killed = 0
    for point in range(KILLS):
        delay = round(rng.uniform(0.0, MAX_DELAY), 3)
        run = fork_server.run("-c", WRITER, str(path), str(point), "1000000", kill_after=delay)
        assert run.killed, run.output
        killed += 1
        now = saved(path, tail=50) if path.exists() else 0
        assert now >= count  # a saved message is never lost
        count = now
    print(f"history: {killed} kills, {count} messages saved between them")
    assert count > 0

    run = fork_server.run("-c", WRITER, str(path), "99", "5")
    assert run.status == 0 and run.output.strip() == f"saved {count + 5}", run.output
    assert saved(path) == count + 5
