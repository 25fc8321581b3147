"""Helpers for the pack tests: a fresh valid pack in a temp folder, and line edits."""

from __future__ import annotations

import json
from pathlib import Path

from assistant.packs.locate import DomainPack
from assistant.packs.scaffold import create_pack


def new_pack(parent: Path, name: str = "demo", **kwargs) -> DomainPack:
    return create_pack(name, parent=parent, **kwargs).pack


def write_jsonl(path: Path, rows: list) -> None:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), "utf-8"
    )


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), "utf-8")


def line_of(path: Path, needle: str) -> int:
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in {path}")
