"""A corpus of bad files, generated at test time: each is skipped with a reason or handled, in
bounded time and memory (measured in a child process with its address space capped at 3 GiB,
so a regression fails the test instead of the machine), and `assistant index add-docs` reports
every one and indexes the good file beside them.

The files: a DOCX zip bomb (1 GiB of XML in 1 MB), a DOCX of eight million empty paragraphs
(48 MiB of XML in 0.1 MB), a PDF of 10,000 pages, a PDF whose page count claims 10,000, a PDF
whose page tree loops, a PDF with a 200 MiB compressed content stream, HTML nested 100,000
levels deep, a 200 MB single-line text file, NUL bytes past the first 8 kB, UTF-8 followed by
BOM-less UTF-16, UTF-16 with a broken surrogate, UTF-8 with a stray Latin-1 byte, symbolic links
to a file and to a folder outside the folder given, a file name holding a newline and one that
is not valid UTF-8."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from generated import pdf
from index_helpers import make_pack, write_docx

from assistant.cli import commands  # noqa: F401  (registers the commands)
from assistant.cli.app import cli

GiB = 2**30
MiB = 2**20

# Loads one file and reports how: the memory its loading needed beyond the imports, its time.
CHILD = """
import json, resource, sys, time
from pathlib import Path
import docx, pypdf, trafilatura
from assistant.knowledge.loaders import SkipFile, load_document
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
before, started = peak(), time.perf_counter()
try:
    doc = load_document(Path(sys.argv[1]))
    result = {"skipped": None, "sections": len(doc.sections), "chars": len(doc.text)}
except SkipFile as exc:
    result = {"skipped": str(exc)}
result.update(seconds=time.perf_counter() - started, grew_mib=peak() - before, peak_mib=peak())
print(json.dumps(result))
"""


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (3 * GiB, 3 * GiB))


def load_in_child(path: Path) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_cap_memory,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1])


# ----- generators -------------------------------------------------------------------------------


CATALOG = b"<< /Type /Catalog /Pages 2 0 R >>"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
PAGE = (
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >>"
    b" >> /Contents 4 0 R >>"
)
TEXT_STREAM = b"BT /F1 12 Tf 72 720 Td (A tiny page about herons.) Tj ET"


def many_pages_pdf(pages: int, count: int | None = None) -> bytes:
    """`pages` pages sharing one content stream, under a page tree claiming `count` pages."""
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    tree = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count or pages)
    stream = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(TEXT_STREAM), TEXT_STREAM)
    return pdf([CATALOG, tree, FONT, stream, *[PAGE] * pages])


def shared_page_pdf(references: int) -> bytes:
    """One page of 80 lines, Flate-compressed, referenced `references` times by the page tree:
    ~7 KB that used to give 4 million characters (every page extracted before any limit)."""
    lines = b"".join(
        b"BT /F1 12 Tf 72 %d Td (Herons wade in shallow water to catch fish all day.) Tj ET\n"
        % (720 - i)
        for i in range(80)
    )
    data = zlib.compress(lines, 9)
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data)
    kids = b" ".join([b"5 0 R"] * references)
    tree = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, references)
    return pdf([CATALOG, tree, FONT, stream, PAGE])


def cyclic_pdf() -> bytes:
    tree = b"<< /Type /Pages /Kids [2 0 R 5 0 R] /Count 10000 >>"
    stream = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(TEXT_STREAM), TEXT_STREAM)
    return pdf([CATALOG, tree, FONT, stream, PAGE])


def flate_bomb_pdf(size: int) -> bytes:
    """One page whose content stream inflates to `size` bytes of blanks."""
    packer = zlib.compressobj(9)
    data = packer.compress(TEXT_STREAM + b"\n")
    block = b" " * MiB
    data += b"".join(packer.compress(block) for _ in range(size // MiB)) + packer.flush()
    stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(data), data)
    return pdf([CATALOG, b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>", FONT, stream, PAGE])


def docx_with_body(path: Path, source: Path, body: bytes, repeat: int) -> Path:
    """A copy of the real DOCX `source` whose document body is `body` written `repeat` times."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            if info.filename != "word/document.xml":
                zout.writestr(info, zin.read(info))
                continue
            head, tail = zin.read(info).split(b"<w:body>", 1)
            with zout.open("word/document.xml", "w", force_zip64=True) as out:
                out.write(head + b"<w:body>")
                for _ in range(repeat):
                    out.write(body)
                out.write(tail)
    return path


def zip_bomb_docx(path: Path, source: Path) -> Path:
    """1 GiB of blanks in the document body (1 MB compressed)."""
    return docx_with_body(path, source, b" " * MiB, 1024)


def dense_docx(path: Path, source: Path) -> Path:
    """Eight million empty paragraphs (48 MiB of XML, 0.1 MB compressed)."""
    return docx_with_body(path, source, b"<w:p/>" * (MiB // 6), 48)


def sparse_single_line(path: Path, size: int) -> Path:
    """A text file of `size` bytes on one line (sparse: its tail is a hole read as NULs, but the
    loader must refuse it by its size before reading any of it)."""
    with path.open("wb") as handle:
        handle.write(b"heron " * 2000)  # past the 8 kB an older check looked at for NULs
        handle.truncate(size)
    return path


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of bad files (and one good file), built once for the module."""
    root = tmp_path_factory.mktemp("bad")
    folder = root / "incoming"
    folder.mkdir()
    source = write_docx(root / "real.docx")
    zip_bomb_docx(folder / "bomb.docx", source)
    dense_docx(folder / "dense.docx", source)
    (folder / "count.pdf").write_bytes(many_pages_pdf(1, count=10_000))
    (folder / "cyclic.pdf").write_bytes(cyclic_pdf())
    (folder / "flate.pdf").write_bytes(flate_bomb_pdf(200 * MiB))
    depth = 100_000
    nested = "<html><body>" + "<div>" * depth + "<p>Herons wait.</p>" + "</div>" * depth
    (folder / "nested.html").write_text(nested + "</body></html>", "utf-8")
    sparse_single_line(folder / "single-line.txt", 200_000_000)
    (folder / "nul.txt").write_bytes(b"Herons fish at dawn. " * 500 + b"\x00" + b"more text")
    mixed = b"Herons fish at dawn. " * 500 + "Kayaks float.".encode("utf-16-le")
    (folder / "mixed.txt").write_bytes(mixed)
    (folder / "utf16.txt").write_bytes("Herons".encode("utf-16") + b"\x00\xd8A\x00")
    (folder / "stray.md").write_bytes(b"# Herons\n\nHerons fish at dawn \xff in the marsh.")
    (root / "secret.md").write_text("SECRET-TOKEN outside the folder given", "utf-8")
    (root / "private").mkdir()
    (root / "private" / "diary.md").write_text("SECRET-TOKEN in a folder outside", "utf-8")
    (folder / "link.md").symlink_to(root / "secret.md")
    (folder / "linked-folder").symlink_to(root / "private")
    (folder / "two\nlines.md").write_text("A name with a newline.", "utf-8")
    (folder / os.fsdecode(b"caf\xe9.md")).write_text("A name in Latin-1.", "utf-8")
    (folder / "good.md").write_text("# Herons\n\nHerons fish at dawn in the marsh.", "utf-8")
    return folder


# ----- the loader, in a child process -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("bomb.docx", "zip bomb"),
        ("dense.docx", "XML expands to 49 MiB; the limit is 32 MiB"),
        ("flate.pdf", "parser stopped"),
        ("nested.html", "no main text"),
        ("single-line.txt", "file too large (191 MiB; the limit is 16 MiB)"),
    ],
)
def test_heavy_bad_files_are_skipped_in_bounded_memory(bad: Path, name: str, reason: str) -> None:
    result = load_in_child(bad / name)
    assert result["skipped"] and reason in result["skipped"]
    assert result["grew_mib"] < 250, result  # the zip bomb took 2.1 GB before the size check


def test_ten_thousand_pages_load_in_bounded_time_and_memory(tmp_path: Path) -> None:
    path = tmp_path / "pages.pdf"
    path.write_bytes(many_pages_pdf(10_000))
    result = load_in_child(path)
    assert result["skipped"] is None and result["sections"] == 10_000
    assert result["grew_mib"] < 250, result  # its time is measured, not asserted (README)


def test_a_small_pdf_whose_pages_share_content_stops_at_its_limit(tmp_path: Path) -> None:
    from assistant.knowledge.loaders import PDF_CHARS_FLOOR, SkipFile, load_document

    path = tmp_path / "shared.pdf"
    path.write_bytes(shared_page_pdf(1000))
    assert path.stat().st_size < 8000
    with pytest.raises(SkipFile, match="sharing content") as caught:
        load_document(path)
    pages_read = int(str(caught.value).split("by page ")[1].split(" ")[0])
    assert pages_read < 100 and pages_read * 4082 > PDF_CHARS_FLOOR  # stopped at the limit
    path.write_bytes(shared_page_pdf(20))  # a few shared pages stay readable
    assert len(load_document(path).sections) == 20


def test_a_pdf_of_too_many_pages_is_refused_before_reading_them(tmp_path: Path) -> None:
    from assistant.knowledge.loaders import MAX_PDF_PAGES, SkipFile, load_document

    path = tmp_path / "count.pdf"
    path.write_bytes(many_pages_pdf(MAX_PDF_PAGES + 1))
    with pytest.raises(SkipFile, match="too many pages"):
        load_document(path)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("cyclic.pdf", "cyclic"),
        ("nul.txt", "NUL"),
        ("mixed.txt", "NUL"),
        ("utf16.txt", "UTF-16"),
    ],
)
def test_light_bad_files_are_skipped_with_a_reason(bad: Path, name: str, reason: str) -> None:
    from assistant.knowledge.loaders import SkipFile, load_document

    with pytest.raises(SkipFile, match=reason):
        load_document(bad / name)


def test_a_lying_page_count_and_a_stray_byte_are_read(bad: Path) -> None:
    from assistant.knowledge.loaders import load_document

    pdf_doc = load_document(bad / "count.pdf")
    assert [s.page for s in pdf_doc.sections] == [1] and pdf_doc.meta["pages"] == "1"
    assert "tiny page" in pdf_doc.text
    text_doc = load_document(bad / "stray.md")
    assert "Herons fish at dawn" in text_doc.text and text_doc.title == "Herons"


# ----- through `assistant index add-docs` -------------------------------------------------------


def test_add_docs_reports_every_bad_file_and_indexes_the_good_one(bad: Path) -> None:
    pack = make_pack("scratch")
    result = CliRunner().invoke(cli, ["index", "add-docs", "scratch", str(bad), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert sorted(report["paths"]["added"]) == ["docs/count.pdf", "docs/good.md", "docs/stray.md"]
    reasons = {Path(s["path"]).name: s["reason"] for s in report["skipped"]}
    expected = {
        "bomb.docx": "zip bomb",
        "dense.docx": "XML expands",
        "flate.pdf": "parser stopped",
        "cyclic.pdf": "cyclic",
        "nested.html": "no main text",
        "single-line.txt": "too large",
        "nul.txt": "NUL",
        "mixed.txt": "NUL",
        "utf16.txt": "UTF-16",
        "link.md": "outside",
        "linked-folder": "outside",
        "two<0a>lines.md": "control character",
        "caf<e9>.md": "not valid UTF-8",
    }
    assert set(reasons) == set(expected)
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons[name])
    copied = sorted(p.name for p in pack.docs_dir.rglob("*"))
    assert copied == ["count.pdf", "good.md", "stray.md"]  # nothing skipped is copied
    hits = CliRunner().invoke(cli, ["index", "search", "scratch", "SECRET-TOKEN", "--json"])
    assert hits.exit_code == 0 and "SECRET-TOKEN" not in hits.stdout


def test_text_report_prints_one_line_per_skipped_file(bad: Path) -> None:
    make_pack("scratch")
    result = CliRunner().invoke(cli, ["index", "add-docs", "scratch", str(bad)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("added 3") and len(lines) == 1 + 13
    assert all(line.startswith("  skipped ") for line in lines[1:])
    assert any("two<0a>lines.md: " in line for line in lines)


def test_rebuild_skips_a_link_out_of_the_pack(tmp_path: Path) -> None:
    """A pack that arrives with docs/secret.md -> a file outside it (a shared or downloaded
    pack) does not index that file."""
    pack = make_pack("scratch")
    (pack.docs_dir / "good.md").write_text("# Herons\n\nHerons fish at dawn.", "utf-8")
    (tmp_path / "id_rsa").write_text("SECRET-TOKEN private key", "utf-8")
    (pack.docs_dir / "secret.md").symlink_to(tmp_path / "id_rsa")
    result = CliRunner().invoke(cli, ["index", "rebuild", "scratch", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["paths"]["added"] == ["docs/good.md"]
    assert [Path(s["path"]).name for s in report["skipped"]] == ["secret.md"]
    assert "outside" in report["skipped"][0]["reason"]
