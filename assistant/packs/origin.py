"""Who wrote a training or eval line: lines a program wrote (`assistant pack draft`, the
scaffold's examples) carry `"origin": "drafted"` and a hash of their content, so a person can
review them and a later draft replaces them; a line without that origin, or whose content no
longer matches its hash, is a person's and is kept."""

from __future__ import annotations

import hashlib
import json

ORIGIN = "drafted"


def draft_hash(line: dict) -> str:
    """A hash of a drafted line's content (without origin and hash): a line whose content no
    longer matches was edited by a person and is kept."""
    content = {k: v for k, v in line.items() if k not in ("origin", "draft")}
    text = json.dumps(content, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def stamped(line: dict) -> dict:
    """The line marked as drafted, with the hash of its content."""
    return {**line, "origin": ORIGIN, "draft": draft_hash(line)}


def kept_by_a_person(line: dict) -> bool:
    """A line a person wrote (no drafted origin) or edited (its content changed since)."""
    return line.get("origin") != ORIGIN or line.get("draft") != draft_hash(line)
