"""Loaders on a real small file of each type, the directory walk, and skip reporting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from index_helpers import FIXTURES, write_docx, write_pdf

from assistant.knowledge.loaders import SkipFile, load_document
from assistant.knowledge.walk import expand


def section_titles(doc) -> list[str | None]:
    return [s.title for s in doc.sections]


def test_markdown_sections_and_source_line_as_metadata() -> None:
    doc = load_document(FIXTURES / "guide" / "penguins.md")
    assert doc.title == "Penguin Care"
    assert doc.meta["source"].startswith("Source: written for the assistant tests")
    assert section_titles(doc) == ["Penguin Care", "Feeding", "Housing"]
    first = doc.sections[0]
    assert "Source:" not in doc.text[first.start : first.end]
    assert doc.text[doc.sections[1].start :].startswith("## Feeding")


def test_html_keeps_main_text_only() -> None:
    doc = load_document(FIXTURES / "guide" / "page.html")
    assert doc.title == "Volcano Safety"
    assert "move uphill" in doc.text and "dust mask" in doc.text
    for noise in ("SCRIPTTEXT", "NAVMENU", "color:red", "FOOTERTEXT"):
        assert noise not in doc.text
    assert "Ash fall" in section_titles(doc)


def test_text_file() -> None:
    doc = load_document(FIXTURES / "notes.txt")
    assert doc.kind == "text" and "Compost" in doc.text
    assert doc.sections[0].start == 0 and doc.sections[0].end == len(doc.text)


def test_pdf_pages_keep_their_numbers(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "two.pdf", ["Insulin pumps deliver insulin.", "Glucagon rescue."])
    doc = load_document(path)
    assert [s.page for s in doc.sections] == [1, 2]
    second = doc.sections[1]
    assert "Glucagon" in doc.text[second.start : second.end]
    assert "Glucagon" not in doc.text[doc.sections[0].start : doc.sections[0].end]


def test_docx_headings_become_sections(tmp_path: Path) -> None:
    doc = load_document(write_docx(tmp_path / "manual.docx"))
    assert doc.title == "Pump Manual"
    assert "Changing the cartridge" in section_titles(doc)
    alarms = next(s for s in doc.sections if s.title == "Alarms")
    assert "occlusion alarm" in doc.text[alarms.start : alarms.end]


def test_latin1_text_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "cafe.txt"
    path.write_bytes("Le café crème coûte trois euros à Genève.".encode("latin-1"))
    doc = load_document(path)
    assert "café crème" in doc.text and "Genève" in doc.text


def test_utf16_with_bom_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "wide.txt"
    path.write_bytes("Ünïcode text in UTF-16".encode("utf-16"))
    assert "Ünïcode" in load_document(path).text


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("blob.txt", b"\x00\x01\x02binary\x00" * 20, "binary"),
        ("empty.md", b"", "empty"),
        ("zero.pdf", b"", "empty"),
        ("broken.pdf", b"%PDF-1.4\nthis is not really a pdf\n%%EOF", "PDF"),
        ("broken.docx", b"PK\x03\x04 not a zip", "DOCX"),
        ("spaces.md", b"   \n\n  ", "no text"),
        ("image.png", b"\x89PNG\r\n", "unsupported file type .png"),
    ],
)
def test_bad_files_raise_skip_with_reason(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SkipFile, match=reason):
        load_document(path)


def test_walk_globs_links_and_missing_paths(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A\n\nalpha")
    (root / "sub" / "b.txt").write_text("beta")
    (root / "sub" / "c.md").write_text("gamma")
    (root / ".hidden.md").write_text("hidden")
    os.symlink(root / "loop1", root / "loop2")
    os.symlink(root / "loop2", root / "loop1")
    os.symlink(root, root / "sub" / "up")  # a folder link back to an ancestor
    os.symlink(root / "gone.md", root / "dangling.md")

    found, skipped = expand([root, tmp_path / "missing.md"])
    relatives = sorted(f.relative for f in found)
    assert relatives == ["a.md", "sub/b.txt", "sub/c.md"]
    reasons = {Path(s.path).name: s.reason for s in skipped}
    assert reasons["loop1"] == reasons["loop2"] == "symbolic link loop"
    assert reasons["dangling.md"] == "broken symbolic link"
    assert reasons["missing.md"] == "does not exist"
    assert "link loop" in reasons["up"]

    found, _ = expand([root], include=["*.md"], exclude=["sub/*"])
    assert [f.relative for f in found] == ["a.md"]


@pytest.mark.parametrize("kind", ["pdf", "docx"])
def test_a_bug_of_ours_in_a_loader_propagates_instead_of_skipping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Only the parsers' errors skip a file: an error raised in our own code (here a TypeError
    planted in the step every PDF and DOCX goes through) used to become 'could not extract
    text (TypeError ...)', so a property over any bytes could not catch it."""
    from assistant.knowledge import loaders

    pages = ["Insulin pumps deliver insulin."]
    path = (
        write_pdf(tmp_path / "a.pdf", pages) if kind == "pdf" else write_docx(tmp_path / "a.docx")
    )

    def broken(*args, **kwargs):
        raise TypeError("a bug of ours")

    monkeypatch.setattr(loaders, "Section" if kind == "pdf" else "split_source_line", broken)
    with pytest.raises(TypeError, match="a bug of ours"):
        load_document(path)


def test_a_malformed_pdf_is_skipped_as_the_parser_s_failure(tmp_path: Path) -> None:
    path = tmp_path / "cut.pdf"
    path.write_bytes(write_pdf(tmp_path / "whole.pdf", ["Glucagon rescue."]).read_bytes()[:400])
    with pytest.raises(SkipFile):
        load_document(path)


def test_html_headings_in_docbook_titlepages_become_sections() -> None:
    # DocBook's HTML (Valgrind's manual) wraps every heading in "titlepage" divs, which
    # trafilatura dropped as boilerplate: the whole page was one section.
    doc = load_document(FIXTURES.parent / "docbook" / "memcheck.html")
    assert section_titles(doc) == ["4. Memcheck", "4.1. Overview", "4.2. Illegal frees"]
    overview = doc.sections[1]
    assert "memory error detector" in doc.text[overview.start : overview.end]
    assert "HEADING" not in doc.text
