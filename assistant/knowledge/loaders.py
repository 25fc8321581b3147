"""Document loaders: one file -> its extracted text, its sections and its metadata.

Every loader returns a `LoadedDocument` whose `text` is the document's extracted text; sections
and chunks are character spans of that text, so `text[start:end]` is always exact. A file that
cannot be used raises `SkipFile` with a reason a person can act on; the caller reports it and
goes on with the next file.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}
MAX_FILE_BYTES = 200 * 1024 * 1024

# Corpus files open with one line naming where they come from and under which license.
SOURCE_LINE = re.compile(r"^\s*Source:.*\bLicen[cs]e\b", re.IGNORECASE)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
FENCE = re.compile(r"^(```|~~~)", re.MULTILINE)


class SkipFile(Exception):
    """This file is not indexed; the message is the reason shown to the user."""


@dataclass(frozen=True)
class Section:
    """A span of the document text under one heading (or one PDF page)."""

    start: int
    end: int
    title: str | None = None
    page: int | None = None


@dataclass
class LoadedDocument:
    """A document's extracted text plus the structure found in it."""

    text: str
    title: str
    sections: list[Section]
    kind: str
    meta: dict[str, str] = field(default_factory=dict)


def decode_text(data: bytes) -> tuple[str, str]:
    """Bytes -> (text, encoding). UTF-8 (with or without BOM) and UTF-16 with a BOM are
    recognised; anything else is read as Windows-1252, else Latin-1 (which never fails).
    Statistical charset detection was tried and guessed Central European code pages for short
    French text, so the Western fallback is the predictable choice. Bytes with NULs and no
    UTF-16 BOM are binary."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise SkipFile("looks like UTF-16 but does not decode; re-save it as UTF-8") from None
    if b"\x00" in data[:8192]:
        raise SkipFile("binary file (contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    for encoding in ("cp1252", "latin-1"):
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    raise SkipFile("text in an unknown encoding; re-save it as UTF-8")  # pragma: no cover


def split_source_line(text: str) -> tuple[int, str | None]:
    """Where the body starts, and the `Source: ... License: ...` line if the text opens with one."""
    first, newline, _ = text.partition("\n")
    if SOURCE_LINE.match(first):
        return len(first) + len(newline), first.strip()
    return 0, None


def markdown_sections(text: str, body_start: int) -> tuple[list[Section], str | None]:
    """Sections split at Markdown headings outside code fences; also the first H1 as the title."""
    fences = [m.start() for m in FENCE.finditer(text)]

    def in_fence(pos: int) -> bool:
        return sum(1 for f in fences if f < pos) % 2 == 1

    heads = [m for m in HEADING.finditer(text, body_start) if not in_fence(m.start())]
    title = next((m.group(2).strip() for m in heads if len(m.group(1)) == 1), None)
    sections: list[Section] = []
    first_end = heads[0].start() if heads else len(text)
    if text[body_start:first_end].strip():
        sections.append(Section(body_start, first_end, None))
    for i, match in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(text)
        sections.append(Section(match.start(), end, match.group(2).strip()))
    return sections, title


def _read_bytes(path: Path) -> bytes:
    size = path.stat().st_size
    if size == 0:
        raise SkipFile("empty file")
    if size > MAX_FILE_BYTES:
        raise SkipFile(f"file too large ({size // 2**20} MiB; the limit is 200 MiB)")
    return path.read_bytes()


def load_text(path: Path, data: bytes) -> LoadedDocument:
    text, encoding = decode_text(data)
    body_start, source = split_source_line(text)
    if not text[body_start:].strip():
        raise SkipFile("no text in the file")
    meta = {"encoding": encoding}
    if source:
        meta["source"] = source
    if path.suffix.lower() in (".md", ".markdown"):
        sections, title = markdown_sections(text, body_start)
        return LoadedDocument(text, title or path.stem, sections, "markdown", meta)
    return LoadedDocument(text, path.stem, [Section(body_start, len(text))], "text", meta)


def load_html(path: Path, data: bytes) -> LoadedDocument:
    """Main text only (no scripts, menus or footers), via trafilatura, as Markdown so headings
    become sections."""
    import trafilatura

    html, _ = decode_text(data)
    extracted = trafilatura.extract(
        html, output_format="markdown", include_formatting=True, favor_recall=True
    )
    if not extracted or not extracted.strip():
        raise SkipFile("no main text found in the HTML page")
    metadata = trafilatura.extract_metadata(html)
    body_start, source = split_source_line(extracted)
    sections, h1 = markdown_sections(extracted, body_start)
    title = (metadata.title if metadata and metadata.title else None) or h1 or path.stem
    meta = {"source": source} if source else {}
    return LoadedDocument(extracted, title, sections, "html", meta)


def load_pdf(path: Path, data: bytes) -> LoadedDocument:
    """Text per page; each page is a section that remembers its page number (1-based)."""
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise SkipFile("encrypted PDF; save an unencrypted copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise SkipFile(f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    parts: list[str] = []
    sections: list[Section] = []
    pos = 0
    for number, page_text in enumerate(pages, start=1):
        if pos:
            parts.append("\n\n")
            pos += 2
        parts.append(page_text)
        if page_text.strip():
            sections.append(Section(pos, pos + len(page_text), None, number))
        pos += len(page_text)
    text = "".join(parts)
    if not sections:
        raise SkipFile("the PDF has no extractable text (scanned images need OCR first)")
    title = (reader.metadata.title if reader.metadata else None) or path.stem
    return LoadedDocument(text, str(title), sections, "pdf", {"pages": str(len(pages))})


def load_docx(path: Path, data: bytes) -> LoadedDocument:
    """Paragraphs joined by blank lines; paragraphs styled as headings start sections."""
    import io
    import zipfile

    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise SkipFile(f"unreadable DOCX ({type(exc).__name__}: {exc})") from None
    parts: list[str] = []
    heads: list[tuple[int, str]] = []
    pos = 0
    title = None
    for paragraph in document.paragraphs:
        text = paragraph.text
        if not text.strip():
            continue
        if parts:
            parts.append("\n\n")
            pos += 2
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.startswith("Heading") or style == "Title":
            heads.append((pos, text.strip()))
            if title is None:
                title = text.strip()
        parts.append(text)
        pos += len(text)
    text = "".join(parts)
    if not text.strip():
        raise SkipFile("no text in the document")
    body_start, source = split_source_line(text)
    sections: list[Section] = []
    heads = [(s, t) for s, t in heads if s >= body_start]
    first_end = heads[0][0] if heads else len(text)
    if text[body_start:first_end].strip():
        sections.append(Section(body_start, first_end))
    for i, (start, head) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        sections.append(Section(start, end, head))
    core_title = document.core_properties.title
    meta = {"source": source} if source else {}
    return LoadedDocument(text, core_title or title or path.stem, sections, "docx", meta)


def load_document(path: Path) -> LoadedDocument:
    """Load one file, or raise SkipFile saying why it cannot be indexed."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise SkipFile(f"unsupported file type {suffix or '(none)'} (supported: {supported})")
    try:
        data = _read_bytes(path)
    except SkipFile:
        raise
    except OSError as exc:
        raise SkipFile(f"cannot read the file: {exc.strerror or exc}") from None
    if suffix in TEXT_SUFFIXES:
        return load_text(path, data)
    if suffix in HTML_SUFFIXES:
        return load_html(path, data)
    try:
        if suffix == ".pdf":
            return load_pdf(path, data)
        return load_docx(path, data)
    except SkipFile:
        raise
    except Exception as exc:  # third-party parsers raise many types on malformed input
        log.debug("loader failed on %s", path, exc_info=True)
        raise SkipFile(f"could not extract text ({type(exc).__name__}: {exc})") from None
