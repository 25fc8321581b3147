"""Property-based tests of the document loaders (hypothesis, 1,000 generated cases each):
`decode_text` on any bytes, `load_document` on any bytes under every supported suffix, and real
Markdown, PDF and DOCX files built from generated text. A loader returns a document whose
sections are exact, ordered spans of its text, or raises SkipFile with a reason; nothing else.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from generated import pdf, property_settings
from hypothesis import HealthCheck, assume, given
from hypothesis import strategies as st

from assistant.knowledge.loaders import (
    SUPPORTED_SUFFIXES,
    LoadedDocument,
    SkipFile,
    decode_text,
    load_document,
)

PROPERTY = property_settings(HealthCheck.function_scoped_fixture)
BOMS = st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"])
# Words as a user writes them (accents, apostrophes, digits), nothing a format would escape.
WORD = st.text("abcdefghijklmnopqrstuvwxyzABCXYZ0123456789éüçñ'-", min_size=1, max_size=12)
PARAGRAPH = st.lists(WORD, min_size=1, max_size=12).map(" ".join)


def check_document(doc: LoadedDocument) -> None:
    """The invariants every loaded document keeps."""
    assert doc.text.strip() and isinstance(doc.title, str)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in doc.meta.items())
    end = 0
    for section in doc.sections:
        assert end <= section.start <= section.end <= len(doc.text), "sections in order"
        end = section.end
    assert doc.sections, "a document has at least one section"


def load_or_skip(path: Path) -> LoadedDocument | None:
    try:
        doc = load_document(path)
    except SkipFile as exc:
        assert str(exc).strip(), "a skipped file always has a reason"
        # a programming error (ours) must propagate and fail here, never become a skip
        assert "TypeError" not in str(exc) and "AttributeError" not in str(exc), str(exc)
        return None
    check_document(doc)
    return doc


@PROPERTY
@given(bom=BOMS, data=st.binary(max_size=3000))
def test_decode_text_on_any_bytes(bom: bytes, data: bytes) -> None:
    raw = bom + data
    try:
        text, encoding = decode_text(raw)
    except SkipFile as exc:
        assert "UTF-16" in str(exc) or "NUL" in str(exc)
        return
    assert encoding in ("utf-8", "utf-16", "cp1252", "latin-1")
    if encoding != "utf-16":
        assert b"\x00" not in raw and "\x00" not in text


@PROPERTY
@given(text=st.text(max_size=500).filter(lambda t: not t.startswith("\ufeff")))
def test_utf8_and_utf16_text_round_trips(text: str) -> None:
    if "\x00" in text:
        with pytest.raises(SkipFile, match="NUL"):
            decode_text(text.encode("utf-8"))
    else:
        assert decode_text(text.encode("utf-8")) == (text, "utf-8")
        assert decode_text(b"\xef\xbb\xbf" + text.encode("utf-8")) == (text, "utf-8")
    assert decode_text(text.encode("utf-16")) == (text, "utf-16")


@PROPERTY
@given(text=st.text(st.characters(codec="cp1252", exclude_characters="\x00"), max_size=300))
def test_windows_text_that_is_not_utf8_is_read_as_cp1252(text: str) -> None:
    raw = text.encode("cp1252")
    assume(not raw.startswith((b"\xff\xfe", b"\xfe\xff")))
    assume(not _is_utf8(raw))
    assert decode_text(raw) == (text, "cp1252")


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@PROPERTY
@given(
    suffix=st.sampled_from(sorted(SUPPORTED_SUFFIXES)),
    data=st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=2000).map(str.encode),
        st.sampled_from([b"%PDF-1.4\n", b"PK\x03\x04", b"<html><body>"]).flatmap(
            lambda head: st.binary(max_size=500).map(lambda tail: head + tail)
        ),
    ),
)
def test_any_bytes_under_any_suffix_load_or_skip(tmp_path: Path, suffix: str, data: bytes) -> None:
    path = tmp_path / f"doc{suffix}"
    path.write_bytes(data)
    load_or_skip(path)


@PROPERTY
@given(
    blocks=st.lists(
        st.one_of(
            st.tuples(st.sampled_from(["# ", "## ", "### "]), PARAGRAPH).map("".join),
            PARAGRAPH,
            st.just("```"),
            st.just(""),
        ),
        max_size=10,
    ),
    source=st.booleans(),
)
def test_markdown_sections_follow_the_headings(
    tmp_path: Path, blocks: list[str], source: bool
) -> None:
    text = ("Source: a test. License: CC0\n" if source else "") + "\n\n".join(blocks)
    path = tmp_path / "doc.md"
    path.write_text(text, "utf-8")
    doc = load_or_skip(path)
    if doc is None:
        assert not "".join(blocks).strip()
        return
    assert doc.text == text
    assert ("source" in doc.meta) == source
    body = text.index("\n") + 1 if source else 0
    covered = {i for s in doc.sections for i in range(s.start, s.end)}
    assert all(i in covered for i in range(body, len(text)) if not text[i].isspace())
    for section in doc.sections:
        if section.title is not None:
            heading = text[section.start :].split("\n", 1)[0]
            assert heading.startswith("#") and heading.lstrip("#").strip() == section.title


# ----- PDF ------------------------------------------------------------------------------------


def pdf_bytes(pages: list[str]) -> bytes:
    """A real PDF, one line of Helvetica text per page (written by hand: the objects, the
    cross-reference table and the trailer)."""
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for i, text in enumerate(pages):
        quoted = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream = b"BT /F1 12 Tf 72 720 Td (" + quoted.encode("cp1252") + b") Tj ET"
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1"
            b" 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * i)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    return pdf(objects)


@PROPERTY
@given(pages=st.lists(st.one_of(PARAGRAPH, st.just("")), min_size=1, max_size=4))
def test_pdf_pages_become_numbered_sections(tmp_path: Path, pages: list[str]) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(pdf_bytes(pages))
    doc = load_or_skip(path)
    written = [(n, p) for n, p in enumerate(pages, start=1) if p.strip()]
    if doc is None:
        assert not written
        return
    assert [s.page for s in doc.sections] == [n for n, _ in written]
    for section, (_, page) in zip(doc.sections, written, strict=True):
        assert doc.text[section.start : section.end].split() == page.split()
    assert doc.meta["pages"] == str(len(pages))


# ----- DOCX -----------------------------------------------------------------------------------

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
DOCX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
        'package/2006/content-types"><Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType='
        '"application/xml"/><Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override '
        'PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.wordprocessingml.styles+xml"/></Types>'
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
        f'{REL}/officeDocument" Target="word/document.xml"/></Relationships>'
    ),
    "word/_rels/document.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
        'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="'
        f'{REL}/styles" Target="styles.xml"/></Relationships>'
    ),
    "word/styles.xml": (
        f'<?xml version="1.0" encoding="UTF-8"?><w:styles {W}>'
        '<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/>'
        '</w:style><w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/>'
        '</w:style><w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/>'
        "</w:style></w:styles>"
    ),
}
STYLES = st.sampled_from([None, "Title", "Heading1"])


def docx_bytes(paragraphs: list[tuple[str | None, str]]) -> bytes:
    """A real DOCX holding the paragraphs, each with its style id (None: Normal)."""
    body = "".join(
        "<w:p>"
        + (f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else "")
        + f'<w:r><w:t xml:space="preserve">{escape(text)}</w:t></w:r></w:p>'
        for style, text in paragraphs
    )
    document = f'<?xml version="1.0"?><w:document {W}><w:body>{body}</w:body></w:document>'
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in {**DOCX_PARTS, "word/document.xml": document}.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@PROPERTY
@given(paragraphs=st.lists(st.tuples(STYLES, st.one_of(PARAGRAPH, st.just(" "))), max_size=8))
def test_docx_paragraphs_and_headings(
    tmp_path: Path, paragraphs: list[tuple[str | None, str]]
) -> None:
    path = tmp_path / "doc.docx"
    path.write_bytes(docx_bytes(paragraphs))
    doc = load_or_skip(path)
    kept = [(style, text) for style, text in paragraphs if text.strip()]
    if doc is None:
        assert not kept
        return
    assert doc.text == "\n\n".join(text for _, text in kept)
    headings = [text.strip() for style, text in kept if style]
    assert [s.title for s in doc.sections if s.title] == headings
    assert doc.title == (headings[0] if headings else "doc")  # no core properties: no title
