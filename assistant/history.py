"""Saved conversations of the chat, in SQLite under the user data folder.

Every message is written in its own transaction as soon as it exists (WAL journal,
`synchronous=FULL`), so a crash or a closed terminal loses at most the answer being generated.
A conversation row is created with its first message, so empty chats leave nothing behind.

    history = History()                      # home_dir()/history.sqlite
    cid = history.add_message(None, "user", "What is PGW?", pack="penguin-wood")[0]
    history.add_message(cid, "assistant", "A banded timber [1].", pack="penguin-wood",
                        meta={"sources": [...]})
    history.conversations()                  # newest first
    history.to_markdown(cid)
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError
from assistant.fsio import atomic_write_text
from assistant.settings import home_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    pack TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    content TEXT NOT NULL,
    pack TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
"""

TITLE_CHARS = 60


@dataclass
class Message:
    id: int
    role: str
    content: str
    pack: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0


@dataclass
class Conversation:
    id: int
    title: str
    pack: str | None  # the pack chosen in the chat; None is auto mode
    created: float
    updated: float
    messages: int = 0


def default_path() -> Path:
    return home_dir() / "history.sqlite"


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1] + "…"


class History:
    """A conversation store; safe to share between threads (one connection behind a lock)."""

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise AssistantError(
                f"cannot open the conversation history {self.path}: {exc}; move the file aside"
                " to start a new history"
            ) from None
        except OSError as exc:
            raise AssistantError(
                f"cannot create the conversation history in {self.path.parent}:"
                f" {exc.strerror}; set ASSISTANT_HOME to a writable folder"
            ) from None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, statements: Any) -> Any:
        """Run `statements(db)` in one transaction; returns its result."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = statements(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise AssistantError(
                    f"cannot save the conversation to {self.path}: {exc}; check the disk space"
                    " and the folder's permissions"
                ) from None

    # ----- writing ------------------------------------------------------------------------

    def add_message(
        self,
        conversation_id: int | None,
        role: str,
        content: str,
        *,
        pack: str | None = None,
        meta: dict[str, Any] | None = None,
        conversation_pack: str | None = None,
    ) -> tuple[int, int]:
        """Append one message (creating the conversation when `conversation_id` is None).
        Returns (conversation id, message id)."""
        now = time.time()
        body = json.dumps(meta or {}, ensure_ascii=False, default=str)

        def run(db: sqlite3.Connection) -> tuple[int, int]:
            cid = conversation_id
            if cid is None:
                cid = db.execute(
                    "INSERT INTO conversations (title, pack, created, updated) VALUES (?,?,?,?)",
                    (_title(content), conversation_pack, now, now),
                ).lastrowid
            else:
                db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, cid))
            mid = db.execute(
                "INSERT INTO messages (conversation_id, role, content, pack, meta, created)"
                " VALUES (?,?,?,?,?,?)",
                (cid, role, content, pack, body, now),
            ).lastrowid
            return int(cid), int(mid)

        return self._write(run)

    def delete_message(self, message_id: int) -> None:
        self._write(lambda db: db.execute("DELETE FROM messages WHERE id = ?", (message_id,)))

    def set_pack(self, conversation_id: int, pack: str | None) -> None:
        self._write(
            lambda db: db.execute(
                "UPDATE conversations SET pack = ? WHERE id = ?", (pack, conversation_id)
            )
        )

    def delete_conversation(self, conversation_id: int) -> None:
        self._write(
            lambda db: db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
        )

    # ----- reading ------------------------------------------------------------------------

    def conversations(self, limit: int = 200) -> list[Conversation]:
        """Saved conversations, the most recently used first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.title, c.pack, c.created, c.updated,"
                " (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)"
                " FROM conversations c ORDER BY c.updated DESC, c.id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [Conversation(*row) for row in rows]

    def conversation(self, conversation_id: int) -> Conversation:
        with self._lock:
            row = self._db.execute(
                "SELECT c.id, c.title, c.pack, c.created, c.updated,"
                " (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)"
                " FROM conversations c WHERE c.id = ?",
                (conversation_id,),
            ).fetchone()
        if row is None:
            raise AssistantError(f"there is no saved conversation {conversation_id}")
        return Conversation(*row)

    def messages(self, conversation_id: int) -> list[Message]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, role, content, pack, meta, created FROM messages"
                " WHERE conversation_id = ? ORDER BY id",
                (conversation_id,),
            ).fetchall()
        return [Message(i, r, c, p, json.loads(m or "{}"), t) for i, r, c, p, m, t in rows]

    # ----- export -------------------------------------------------------------------------

    def to_markdown(self, conversation_id: int) -> str:
        conversation = self.conversation(conversation_id)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(conversation.created))
        lines = [
            f"# {conversation.title}",
            "",
            f"*{when} · pack: {conversation.pack or 'auto'}*",
            "",
        ]
        for message in self.messages(conversation_id):
            if message.role == "user":
                lines += ["## You", "", message.content, ""]
                continue
            lines += [f"## Assistant ({message.pack or 'no pack'})", "", message.content, ""]
            if message.meta.get("declined"):
                lines += [f"*Declined: {message.meta.get('decline_reason') or 'no reason'}*", ""]
            sources = message.meta.get("sources") or []
            if sources:
                lines += ["Sources:", ""]
                for s in sources:
                    mark = " (cited)" if s.get("cited") else ""
                    section = f" § {s['section']}" if s.get("section") else ""
                    lines.append(f"- [{s.get('number')}] {s.get('path')}{section}{mark}")
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"

    def export(self, conversation_id: int, folder: Path | str) -> Path:
        """Write the conversation as Markdown into `folder`; returns the file's path."""
        text = self.to_markdown(conversation_id)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = Path(folder) / f"conversation-{conversation_id}-{stamp}.md"
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            raise AssistantError(f"cannot write {path}: {exc.strerror}") from None
        return path
