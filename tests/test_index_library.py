"""The index API: add, update, unchanged, remove, rebuild, mismatches, lock, retriever."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from filelock import FileLock
from index_helpers import FIXTURES, CountingEmbedder, make_pack, write_pdf
from settings_helpers import with_models

from assistant.errors import AssistantError, DamagedDataError, NotFoundError
from assistant.knowledge import open_index
from assistant.knowledge.store import current_generation


@pytest.fixture
def counting(embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


def paths(hits) -> list[str]:
    return [h.path for h in hits]


def test_add_update_unchanged_remove_rebuild(settings, counting, tmp_path: Path) -> None:
    pack = make_pack()
    idx = open_index(pack, settings, embedder=counting)
    report = idx.add_docs([FIXTURES])
    assert sorted(report.added) == [
        "docs/guide/page.html",
        "docs/guide/penguins.md",
        "docs/notes.txt",
    ]
    assert (pack.docs_dir / "guide" / "penguins.md").is_file()  # layout kept under docs/
    assert idx.stats().documents == 3
    assert paths(idx.search("how much herring do penguins eat", k=1)) == ["docs/guide/penguins.md"]

    calls = counting.calls
    report = idx.add_docs([FIXTURES])
    assert report.unchanged and not report.added and not report.updated
    assert counting.calls == calls  # nothing re-embedded
    assert idx.add_docs([pack.docs_dir]).unchanged  # in place, same paths

    changed = tmp_path / "notes.txt"
    changed.write_text("Sourdough starter needs flour and water daily to stay lively.")
    report = idx.add_docs([changed])
    assert report.updated == ["docs/notes.txt"]
    hit = idx.search("sourdough starter feeding", k=1)[0]
    assert hit.path == "docs/notes.txt" and "Sourdough" in hit.text
    assert all("Compost" not in h.text for h in idx.search("compost heap", k=5))

    report = idx.remove(["docs/guide/page.html"])
    assert report.removed == ["docs/guide/page.html"]
    assert not (pack.docs_dir / "guide" / "page.html").exists()
    assert "docs/guide/page.html" not in paths(idx.search("volcano ash", k=5))
    assert idx.remove(["docs/nothing.md"]).skipped[0].reason == "not in the index"

    report = idx.rebuild()
    assert sorted(report.added) == ["docs/guide/penguins.md", "docs/notes.txt"]
    assert idx.stats().documents == 2


def test_hits_carry_scores_offsets_and_metadata(settings, embedder, tmp_path: Path) -> None:
    pack = make_pack()
    idx = open_index(pack, settings, embedder=embedder)
    pdf = write_pdf(tmp_path / "pump.pdf", ["Cover page of the pump guide.", "Bolus wizard math."])
    idx.add_docs([FIXTURES, pdf])
    hits = idx.search("enclosure below four degrees with a deep saltwater pool", k=3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert hits[0].score >= hits[1].score >= hits[2].score
    top = hits[0]
    assert top.section == "Housing" and top.title == "Penguin Care"
    assert -1.0 <= top.dense_score <= 1.0 and top.bm25_score > 0
    for hit in hits:
        assert idx.document_text(hit.path)[hit.start : hit.end] == hit.text
    assert idx.chunk(top.chunk_id).text == top.text
    with pytest.raises(NotFoundError, match="no chunk 999999 in the index of pack 'kb'"):
        idx.chunk(999999)
    with pytest.raises(NotFoundError, match="docs/nope.md is not in the index of pack 'kb'"):
        idx.document_text("docs/nope.md")
    source = next(d for d in idx.documents() if d.path == "docs/guide/penguins.md")
    assert source.meta["source"].startswith("Source: written for the assistant tests")
    page = idx.search("bolus wizard", k=1)[0]
    assert (page.path, page.page) == ("docs/pump.pdf", 2)
    assert idx.dense_search("bolus wizard", k=1)[0].dense_score > 0
    assert idx.bm25_search("bolus wizard", k=1)[0].path == "docs/pump.pdf"
    # inside one document: only its chunks, every one scored, best first
    inside = idx.search_document("bolus wizard", "docs/guide/penguins.md", k=50)
    assert inside and {h.path for h in inside} == {"docs/guide/penguins.md"}
    assert len(inside) == next(d.chunks for d in idx.documents() if d.path == inside[0].path)
    assert inside[0].score >= inside[-1].score
    assert idx.search_document("bolus wizard", "pump.pdf", k=1)[0].page == 2


def test_bad_files_are_reported_and_never_abort(settings, embedder, tmp_path: Path) -> None:
    pack = make_pack()
    src = tmp_path / "in"
    src.mkdir()
    (src / "good.md").write_text("# Kayaks\n\nA spray skirt keeps water out of the cockpit.")
    (src / "latin.txt").write_bytes("Crème brûlée needs a blowtorch.".encode("latin-1"))
    (src / "blob.txt").write_bytes(b"\x00\xff" * 100)
    (src / "empty.md").write_bytes(b"")
    (src / "zero.pdf").write_bytes(b"")
    (src / "broken.pdf").write_bytes(b"%PDF-1.7\ngarbage")
    (src / "loop").symlink_to(src / "loop")
    calls: list[tuple[int, int, str]] = []
    report = open_index(pack, settings, embedder=embedder).add_docs(
        [src, tmp_path / "nope.md"], progress=lambda *args: calls.append(args)
    )
    assert [c[0] for c in calls] == list(range(1, 7)) and {c[1] for c in calls} == {6}
    assert sorted(report.added) == ["docs/good.md", "docs/latin.txt"]
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"blob.txt", "empty.md", "zero.pdf", "broken.pdf", "loop", "nope.md"}
    assert "binary" in reasons["blob.txt"] and "empty" in reasons["zero.pdf"]
    assert not (pack.docs_dir / "blob.txt").exists()  # skipped files are not copied
    idx = open_index(pack, settings, embedder=embedder)
    assert "brûlée" in idx.document_text("docs/latin.txt")


def test_mismatched_index_is_refused_until_rebuilt(settings, embedder) -> None:
    pack = make_pack()
    open_index(pack, settings, embedder=embedder).add_docs([FIXTURES / "notes.txt"])
    other_chunks = open_index(pack, settings, embedder=embedder, chunk_tokens=120)
    with pytest.raises(DamagedDataError, match=r"chunking.*assistant index rebuild kb"):
        other_chunks.search("compost")
    with pytest.raises(DamagedDataError, match="rebuild"):
        other_chunks.add_docs([FIXTURES / "notes.txt"])
    other_model = open_index(
        pack, with_models(settings, embedder="some-other-model"), embedder=embedder
    )
    with pytest.raises(DamagedDataError, match=r"embedder 'all-minilm-l6-v2\+onnx_int8'.*rebuild"):
        other_model.search("compost")
    assert other_chunks.stats().problem
    other_chunks.rebuild()
    assert other_chunks.search("compost", k=1)[0].path == "docs/notes.txt"


def test_missing_index_and_bad_chunking(settings, embedder) -> None:
    pack = make_pack()
    with pytest.raises(NotFoundError, match="run `assistant index rebuild kb`"):
        open_index(pack, settings, embedder=embedder).search("anything")
    assert not open_index(pack, settings).stats().exists
    with pytest.raises(AssistantError, match="smaller than the chunk size") as mistake:
        open_index(pack, settings, chunk_tokens=50, chunk_overlap=50)
    assert type(mistake.value) is AssistantError  # the user's mistake: exit 2, HTTP 400


def test_second_writer_waits_or_fails_clearly(settings, embedder) -> None:
    pack = make_pack()
    idx = open_index(pack, settings, embedder=embedder, lock_timeout=0.2)
    pack.index_dir.mkdir(parents=True)
    holder = FileLock(str(pack.index_dir / ".lock"), thread_local=False)
    with holder, pytest.raises(AssistantError, match="being written by another process"):
        idx.add_docs([FIXTURES / "notes.txt"])
    assert not idx.exists()

    holder.acquire()
    released = threading.Timer(0.5, holder.release)
    released.start()
    waiting = open_index(pack, settings, embedder=embedder, lock_timeout=60)
    assert waiting.add_docs([FIXTURES / "notes.txt"]).added == ["docs/notes.txt"]
    released.join()


def test_retriever_in_an_lcel_chain(settings, embedder) -> None:
    from langchain_core.documents import Document
    from langchain_core.runnables import RunnableLambda

    pack = make_pack()
    idx = open_index(pack, settings, embedder=embedder)
    idx.add_docs([FIXTURES])

    def format_docs(docs: list[Document]) -> str:
        return "\n".join(
            f"[{d.metadata['path']}#{d.metadata['section']}] {d.page_content}" for d in docs
        )

    chain = idx.retriever(k=2) | RunnableLambda(format_docs)
    context = chain.invoke("what should adult emperor penguins eat")
    assert context.startswith("[docs/guide/penguins.md#Feeding]")
    docs = idx.retriever(k=2).invoke("volcanic ash")
    assert docs[0].metadata["path"] == "docs/guide/page.html"
    assert {"score", "dense_score", "bm25_score", "start", "end", "page"} <= set(docs[0].metadata)


def test_readers_follow_a_new_generation(settings, embedder) -> None:
    pack = make_pack()
    writer = open_index(pack, settings, embedder=embedder)
    writer.add_docs([FIXTURES / "notes.txt"])
    reader = open_index(pack, settings, embedder=embedder)
    assert reader.search("penguins", k=5)[0].path == "docs/notes.txt"
    first = current_generation(pack.index_dir)
    writer.add_docs([FIXTURES / "guide"])
    assert current_generation(pack.index_dir) != first
    assert reader.search("penguin herring", k=1)[0].path == "docs/penguins.md"


def test_readers_never_see_a_half_written_index(settings, embedder, tmp_path: Path) -> None:
    pack = make_pack()
    open_index(pack, settings, embedder=embedder).add_docs([FIXTURES / "notes.txt"])
    errors: list[BaseException] = []
    counts: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:  # a fresh reader each time opens whatever generation CURRENT names
                reader = open_index(pack, settings, embedder=embedder)
                counts.append(len(reader.documents()))
                assert reader.bm25_search("compost", k=1)[0].path == "docs/notes.txt"
            except BaseException as exc:  # collected for the main thread to report
                errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    writer = open_index(pack, settings, embedder=embedder)
    try:
        for n in range(4):
            note = tmp_path / f"extra{n}.txt"
            note.write_text(f"Extra note number {n} about harbour cranes.")
            writer.add_docs([note])
    finally:
        stop.set()
        thread.join()
    assert not errors, errors[0]
    assert counts and counts == sorted(counts) and set(counts) <= {1, 2, 3, 4, 5}
