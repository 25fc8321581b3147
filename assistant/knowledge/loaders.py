"""Document loaders: one file -> its extracted text, its sections and its metadata.

Every loader returns a `LoadedDocument` whose `text` is the document's extracted text; sections
and chunks are character spans of that text, so `text[start:end]` is always exact. A file that
cannot be used raises `SkipFile` with a reason a person can act on; the caller reports it and
goes on with the next file.

Hostile files are bounded before they are parsed: text and HTML files above `MAX_TEXT_BYTES`,
PDF and DOCX files above `MAX_FILE_BYTES`, a DOCX whose parts expand past `MAX_EXPANDED_BYTES`
(a zip bomb) or whose XML expands past `MAX_XML_BYTES`, and extracted text longer than
`MAX_TEXT_CHARS` are skipped with a reason. These limits are constants here until they become
settings.
"""

from __future__ import annotations

import bisect
import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".docx"}
MAX_FILE_BYTES = 200 * 2**20  # PDF and DOCX files (images make them big)
MAX_TEXT_BYTES = 16 * 2**20  # text, Markdown and HTML files: ~4M tokens, ~20k chunks
MAX_TEXT_CHARS = 16 * 2**20  # the text extracted from any file
MAX_EXPANDED_BYTES = 256 * 2**20  # a DOCX's parts, uncompressed, all together
MAX_XML_BYTES = 32 * 2**20  # ...its XML parts (parsed into memory: ~25 bytes per byte)
MAX_PDF_PAGES = 20_000
# Text a PDF may yield per byte of file, past a floor: pages can share one content stream, so a
# 6.8 KB file of 1,000 references to one page gave 4 million characters. Real PDFs give a few
# characters per byte (text compresses ~3-4x).
MAX_PDF_CHARS_PER_BYTE = 20
PDF_CHARS_FLOOR = 256 * 2**10

# Corpus files open with one line naming where they come from and under which license.
SOURCE_LINE = re.compile(r"^\s*Source:.*\bLicen[cs]e\b", re.IGNORECASE)
# The title is the rest of the line with its closing "#"s and spaces stripped in Python: a lazy
# title before an optional tail backtracked quadratically on a long line (20k chars: 1.8 s).
HEADING = re.compile(r"^(#{1,6})[ \t]+(.*)$", re.MULTILINE)
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
    French text, so the Western fallback is the predictable choice. Bytes with a NUL anywhere
    and no UTF-16 BOM are binary (or UTF-16 without a BOM, which the user must re-save)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise SkipFile("looks like UTF-16 but does not decode; re-save it as UTF-8") from None
    if b"\x00" in data:
        raise SkipFile(
            "binary file (contains NUL bytes), not text; if it is text, re-save it as UTF-8"
        )
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
    """Sections split at Markdown headings outside code fences; also the first H1 as the title.
    Linear in the text: a heading is inside a fence when an odd number of fences open before
    it (a binary search over the fence positions, not a count per heading)."""
    fences = [m.start() for m in FENCE.finditer(text)]
    heads = [
        (m.start(), len(m.group(1)), title)
        for m in HEADING.finditer(text, body_start)
        if bisect.bisect_left(fences, m.start()) % 2 == 0 and (title := m.group(2).rstrip(" \t#"))
    ]
    title = next((t for _, level, t in heads if level == 1), None)
    sections: list[Section] = []
    first_end = heads[0][0] if heads else len(text)
    if text[body_start:first_end].strip():
        sections.append(Section(body_start, first_end, None))
    for i, (start, _, heading) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        sections.append(Section(start, end, heading.strip()))
    return sections, title


def _mib(size: int) -> str:
    return f"{size / 2**20:.0f} MiB"


def _read_bytes(path: Path, limit: int) -> bytes:
    """The file's bytes, unless it is empty or larger than `limit` (checked before reading;
    a file that grows meanwhile is cut at the limit and refused)."""
    size = path.stat().st_size
    if size == 0:
        raise SkipFile("empty file")
    if size > limit:
        raise SkipFile(f"file too large ({_mib(size)}; the limit is {_mib(limit)})")
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise SkipFile(f"file too large (more than {_mib(limit)})")
    return data


def _check_length(text: str) -> None:
    if len(text) > MAX_TEXT_CHARS:
        limit = f"{MAX_TEXT_CHARS // 2**20}M"
        raise SkipFile(f"too much text ({len(text):,} characters; the limit is {limit}); split it")


def load_text(path: Path, data: bytes) -> LoadedDocument:
    text, encoding = decode_text(data)
    _check_length(text)
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


def _headings_as_paragraphs(html: str, mark: str) -> object:
    """The page with each <h1>..<h6> turned into a paragraph opening with `mark`, its level and
    the mark again. trafilatura drops headings it takes for boilerplate: every heading of
    DocBook's HTML (Valgrind's manual, many distributions' docs), wrapped in "titlepage" divs,
    was lost, and the page became one section. Returns the parsed tree (trafilatura takes it as
    it is), or the text when it does not parse."""
    import lxml.html
    from lxml.etree import ParserError

    try:
        root = lxml.html.fromstring(html)
    except (ParserError, ValueError):
        return html
    for heading in root.iter("h1", "h2", "h3", "h4", "h5", "h6"):
        title = " ".join(heading.text_content().split())
        level = heading.tag[1]
        for child in list(heading):
            heading.remove(child)
        heading.attrib.clear()
        heading.tag = "p"
        heading.text = f"{mark}{level}{mark} {title}" if title else None
    return root


def load_html(path: Path, data: bytes) -> LoadedDocument:
    """Main text only (no scripts, menus or footers), via trafilatura, as Markdown so headings
    become sections."""
    import trafilatura

    html, _ = decode_text(data)
    # a mark no page holds (trafilatura strips private-use characters, so it is letters)
    mark = f"HEADING{secrets.token_hex(8)}"
    extracted = trafilatura.extract(
        _headings_as_paragraphs(html, mark),
        output_format="markdown",
        include_formatting=True,
        favor_recall=True,
    )
    if extracted:
        heading = re.compile(f"^{mark}([1-6]){mark} ?", re.MULTILINE)
        extracted = heading.sub(lambda m: "#" * int(m.group(1)) + " ", extracted)
        # a heading inside a list item or a table cell stays text
        extracted = re.sub(f"{mark}[1-6]{mark} ?", "", extracted)
    if not extracted or not extracted.strip():
        raise SkipFile("no main text found in the HTML page")
    _check_length(extracted)
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

    # Extraction stops as soon as the text passes its limit (every page used to be extracted
    # first, and the limit checked after).
    limit = min(MAX_TEXT_CHARS, max(PDF_CHARS_FLOOR, MAX_PDF_CHARS_PER_BYTE * len(data)))
    pages: list[str] = []
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise SkipFile("encrypted PDF; save an unencrypted copy")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise SkipFile(
                f"too many pages ({len(reader.pages):,}; the limit is {MAX_PDF_PAGES:,})"
            )
        total = 0
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            total += len(pages[-1])
            if total > limit:
                raise SkipFile(
                    f"the PDF's text passes {limit:,} characters by page {len(pages):,} of"
                    f" {len(reader.pages):,}"
                    + (
                        ", far more than its size holds (pages sharing content?)"
                        if limit < MAX_TEXT_CHARS
                        else "; split it"
                    )
                )
    except SkipFile:
        raise
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
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
    _check_length(text)
    title = (reader.metadata.title if reader.metadata else None) or path.stem
    return LoadedDocument(text, str(title), sections, "pdf", {"pages": str(len(pages))})


def check_expansion(data: bytes) -> None:
    """Refuse a DOCX whose parts expand past the limits (a zip bomb, or a document too big to
    parse in bounded memory). Python's zipfile never inflates a member beyond its recorded
    size, so the recorded sizes bound what python-docx reads."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise SkipFile(f"unreadable DOCX ({type(exc).__name__}: {exc})") from None
    expanded = sum(info.file_size for info in members)
    xml = sum(info.file_size for info in members if info.filename.endswith((".xml", ".rels")))
    if expanded > MAX_EXPANDED_BYTES:
        raise SkipFile(
            f"the DOCX expands to {_mib(expanded)}, {expanded / len(data):.0f} times its size"
            f" (a zip bomb?); the limit is {_mib(MAX_EXPANDED_BYTES)}"
        )
    if xml > MAX_XML_BYTES:
        raise SkipFile(
            f"the DOCX's XML expands to {_mib(xml)}; the limit is {_mib(MAX_XML_BYTES)}"
            " (split the document)"
        )


def load_docx(path: Path, data: bytes) -> LoadedDocument:
    """Paragraphs joined by blank lines; paragraphs styled as headings start sections."""
    import io
    import zipfile

    import docx
    from docx.enum.style import WD_STYLE_TYPE
    from docx.opc.constants import RELATIONSHIP_TYPE as RT

    check_expansion(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise SkipFile(f"unreadable DOCX ({type(exc).__name__}: {exc})") from None
    # A style is looked up once per style id: python-docx searches styles.xml on every
    # `paragraph.style`, which made a document of a million short paragraphs take minutes.
    style_names: dict[str | None, str] = {}

    def style_name(style_id: str | None) -> str:
        if style_id not in style_names:
            style = document.part.get_style(style_id, WD_STYLE_TYPE.PARAGRAPH)
            style_names[style_id] = (style.name if style is not None else "") or ""
        return style_names[style_id]

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
        style = style_name(paragraph._p.style)
        if style.startswith("Heading") or style == "Title":
            heads.append((pos, text.strip()))
            if title is None:
                title = text.strip()
        parts.append(text)
        pos += len(text)
    text = "".join(parts)
    if not text.strip():
        raise SkipFile("no text in the document")
    _check_length(text)
    body_start, source = split_source_line(text)
    sections: list[Section] = []
    heads = [(s, t) for s, t in heads if s >= body_start]
    first_end = heads[0][0] if heads else len(text)
    if text[body_start:first_end].strip():
        sections.append(Section(body_start, first_end))
    for i, (start, head) in enumerate(heads):
        end = heads[i + 1][0] if i + 1 < len(heads) else len(text)
        sections.append(Section(start, end, head))
    # python-docx makes up core properties titled "Word Document" when a file has none.
    package = document.part.package
    has_core = any(rel.reltype == RT.CORE_PROPERTIES for rel in package.rels.values())
    core_title = document.core_properties.title if has_core else None
    meta = {"source": source} if source else {}
    return LoadedDocument(text, core_title or title or path.stem, sections, "docx", meta)


def load_document(path: Path) -> LoadedDocument:
    """Load one file, or raise SkipFile saying why it cannot be indexed."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise SkipFile(f"unsupported file type {suffix or '(none)'} (supported: {supported})")
    limit = MAX_TEXT_BYTES if suffix in TEXT_SUFFIXES | HTML_SUFFIXES else MAX_FILE_BYTES
    try:
        data = _read_bytes(path, limit)
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
    except Exception as exc:
        if not _raised_by_parser(exc):
            raise  # a bug of ours is not the file's fault: it must show
        log.debug("the parser failed on %s", path, exc_info=True)
        raise SkipFile(f"malformed file: the {suffix[1:].upper()} parser stopped ({exc})") from None


# The packages that parse PDF and DOCX files. On malformed input they raise many kinds of
# errors, their own and Python's (a KeyError, or an AttributeError on a missing object), so
# an error whose innermost frame is in one of them is the file's fault and skips it; one
# raised in our code propagates (catching every exception had hidden our own bugs as skips).
_PARSER_PACKAGES = ("pypdf", "docx", "lxml", "zipfile", "zlib", "xml")


def _raised_by_parser(exc: BaseException) -> bool:
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return False
    innermost = Path(frames[-1].filename).parts
    return any(part in _PARSER_PACKAGES or part == "zipfile.py" for part in innermost)
