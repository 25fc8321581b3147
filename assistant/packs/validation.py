"""Check a whole domain pack and report every problem at once, each with its file and line.

`validate_pack(pack)` reads pack.toml, `sft/train.jsonl` and `eval/qa.jsonl`, and checks that
`docs/` lies inside the pack, that every `source` names a document inside it, and that every
eval fact occurs in its source document (`assistant.text.fact_in`, the rule eval scores by). It
never raises for a broken pack, however hostile its files (invalid UTF-8, arrays nested a hundred
thousand deep): broken is what it reports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import lru_cache
from html import unescape
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ValidationError

from assistant.packs.format import EvalLine, SftLine, check_pack_toml
from assistant.packs.locate import DomainPack
from assistant.packs.problems import TOO_DEEP, Problem, pydantic_problems
from assistant.text import fact_in

# ----------------------------------------------------------------------------- documents


class _TextOfHtml(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _question_key(question: str) -> str:
    """Two eval questions are the same when they differ only in case and whitespace. Not
    `assistant.text.normalize`, which drops punctuation: "C++?" and "C?" are two questions."""
    return " ".join(question.casefold().split())


@lru_cache(maxsize=256)
def _document_text_cached(path: str, mtime_ns: int, size: int) -> str | None:
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".pdf":
        try:
            from pypdf import PdfReader

            return "\n".join(page.extract_text() or "" for page in PdfReader(file).pages)
        except Exception:
            return None
    try:
        text = file.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None
    if suffix in (".html", ".htm"):
        parser = _TextOfHtml()
        parser.feed(text)
        return unescape(" ".join(parser.parts))
    if suffix in (".md", ".markdown", ".txt", ".rst", ".text", ""):
        return text
    return None


def document_text(path: Path) -> str | None:
    """The plain text of a document for fact checks, or None when its type cannot be read."""
    stat = path.stat()
    return _document_text_cached(str(path), stat.st_mtime_ns, stat.st_size)


def resolve_source(pack: DomainPack, source: str) -> tuple[Path | None, str | None]:
    """The document a `source` names, or an explanation of why it names none.

    Sources are POSIX paths relative to the pack folder, inside `docs/` (an optional `#anchor`
    is allowed); absolute paths and `..` are refused so a pack can never point outside itself.
    """
    relative = source.split("#", 1)[0].strip()
    posix = PurePosixPath(relative.replace("\\", "/"))
    if not relative or posix.is_absolute() or re.match(r"^[A-Za-z]:", relative):
        return None, f"source {source!r} must be a path relative to the pack folder"
    if ".." in posix.parts:
        return None, f"source {source!r} leaves the pack folder ('..' is not allowed)"
    if posix.parts[0] != "docs":
        return None, f"source {source!r} must be a document under docs/"
    path = pack.root.joinpath(*posix.parts)
    try:
        path.resolve().relative_to(pack.docs_dir.resolve())
    except ValueError:
        return None, f"source {source!r} resolves outside the pack's docs/ folder"
    if not path.is_file():
        return None, f"source {source!r} names a document that does not exist"
    return path, None


# ----------------------------------------------------------------------------- JSONL files


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """(line number, parsed JSON or None, error or None) for every non-blank line."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, None, f"not valid UTF-8 (byte {exc.start} of the line)"
                continue
            if not text.strip():
                continue
            try:
                yield number, json.loads(text), None
            except json.JSONDecodeError as exc:
                yield number, None, f"not valid JSON: {exc.msg} (column {exc.colno})"
            except RecursionError:  # json recurses once per nested array or object
                yield number, None, TOO_DEEP


def _check_lines(
    path: Path, model: type[BaseModel], label: str
) -> tuple[list[tuple[int, Any]], list[Problem]]:
    file = str(path)
    if not path.is_file():
        hint = "create it (it may be empty)"
        return [], [Problem(file, None, None, f"{label} file is missing: {hint}")]
    rows: list[tuple[int, Any]] = []
    problems: list[Problem] = []
    try:
        for number, value, error in iter_jsonl(path):
            if error:
                problems.append(Problem(file, number, None, error))
            elif not isinstance(value, dict):
                problems.append(Problem(file, number, None, "each line must be a JSON object"))
            else:
                try:
                    rows.append((number, model.model_validate(value)))
                except ValidationError as exc:
                    problems.extend(pydantic_problems(exc, file, line=number))
    except OSError as exc:
        problems.append(Problem(file, None, None, f"cannot read: {exc.strerror}"))
    return rows, problems


def check_sft(pack: DomainPack) -> list[Problem]:
    rows, problems = _check_lines(pack.sft_file, SftLine, "training examples")
    for number, line in rows:
        if line.source:
            _, error = resolve_source(pack, line.source)
            if error:
                problems.append(Problem(str(pack.sft_file), number, "source", error))
    return problems


def check_eval(pack: DomainPack) -> list[Problem]:
    file = str(pack.eval_file)
    rows, problems = _check_lines(pack.eval_file, EvalLine, "evaluation questions")
    seen: dict[str, int] = {}
    for number, line in rows:
        key = _question_key(line.question)
        if key in seen:
            message = f"duplicate question (same as line {seen[key]}): {line.question!r}"
            problems.append(Problem(file, number, "question", message))
        else:
            seen[key] = number
        if not line.source:
            continue
        path, error = resolve_source(pack, line.source)
        if error or path is None:
            problems.append(Problem(file, number, "source", error or "bad source"))
            continue
        text = document_text(path)
        if text is None:
            continue
        for fact in line.facts:
            if not fact_in(fact, text):
                message = f"fact {fact!r} does not occur in {line.source}"
                problems.append(Problem(file, number, "facts", message))
    return problems


def check_docs(pack: DomainPack) -> list[Problem]:
    if not pack.docs_dir.is_dir():
        return [Problem(str(pack.docs_dir), None, None, "docs/ folder is missing")]
    if not pack.docs_dir.resolve().is_relative_to(pack.root.resolve()):
        message = "docs/ is a symbolic link to a folder outside the pack; make it a real folder"
        return [Problem(str(pack.docs_dir), None, None, message)]
    if not any(p.is_file() for p in pack.docs_dir.rglob("*") if not p.name.startswith(".")):
        return [Problem(str(pack.docs_dir), None, None, "docs/ holds no documents")]
    return []


def validate_pack(pack: DomainPack) -> list[Problem]:
    """Every problem of the pack, in file order; an empty list means the pack is valid."""
    _, problems = check_pack_toml(pack)
    return problems + check_docs(pack) + check_sft(pack) + check_eval(pack)
