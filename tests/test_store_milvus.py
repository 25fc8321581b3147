"""The Milvus vector store on the real engine (milvus-lite 2.5, a local file per pack) against
FAISS: the same hits, removals gone from dense and BM25 results alike, the same hit@5 on a
shipped pack, `migrate` both ways without embedding, a SIGKILL during add-docs, and one-line
errors for a bad store name and an unreachable server."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import get_args

import pytest
from click.testing import CliRunner
from index_helpers import DIABETES, FIXTURES, CountingEmbedder, eval_questions, hit_at_k
from store_helpers import collections, set_store, store_pack

from assistant.cli import cli
from assistant.errors import AssistantError, MissingDependencyError
from assistant.knowledge import open_index
from assistant.knowledge.store import current_generation
from assistant.knowledge.vectors import STORES
from assistant.knowledge.vectors.milvus_store import release
from assistant.packs.format import VectorStoreName
from assistant.packs.validation import validate_pack

QUERIES = [
    "how much herring do penguins eat",
    "enclosure below four degrees with a deep saltwater pool",
    "turn the compost heap",
    "volcanic ash and goggles",
]
REMOVED = "docs/guide/penguins.md"


@pytest.fixture(autouse=True)
def released():
    """Each test's milvus-lite servers stop with it (they lock their file)."""
    yield
    release()


@pytest.fixture
def counting(embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


def found(hits) -> list[tuple[int, str, str]]:
    return [(h.chunk_id, h.path, h.text) for h in hits]


def scores(hits) -> list[float | None]:
    return [h.dense_score for h in hits]


def test_the_store_names_of_pack_toml_are_the_stores() -> None:
    assert set(get_args(VectorStoreName)) == set(STORES)


def test_milvus_finds_what_faiss_finds_and_forgets_a_removed_document(settings, embedder) -> None:
    faiss = open_index(store_pack("kb-faiss", "faiss"), settings, embedder=embedder)
    milvus_pack = store_pack("kb-milvus", "milvus")
    milvus = open_index(milvus_pack, settings, embedder=embedder)
    for idx in (faiss, milvus):
        assert len(idx.add_docs([FIXTURES]).added) == 3
    assert milvus.stats().store.startswith("milvus (collection assistant_kb_milvus_")
    assert faiss.stats().store == "faiss"
    for query in QUERIES:
        assert found(milvus.search(query, k=5)) == found(faiss.search(query, k=5))
        assert found(milvus.dense_search(query, k=5)) == found(faiss.dense_search(query, k=5))
        assert scores(milvus.search(query, k=5)) == pytest.approx(scores(faiss.search(query, k=5)))
    assert milvus.search(QUERIES[0], k=1)[0].path == REMOVED

    for idx in (faiss, milvus):
        assert idx.remove([REMOVED]).removed == [REMOVED]
    for query in QUERIES:
        for hits in (
            milvus.search(query, k=10),
            milvus.dense_search(query, k=10),
            milvus.bm25_search(query, k=10),
        ):
            assert REMOVED not in {h.path for h in hits}
        assert found(milvus.search(query, k=5)) == found(faiss.search(query, k=5))
    # A fresh reader (another process's view) sees the same; the store keeps two generations.
    again = open_index(milvus_pack, settings, embedder=embedder)
    assert found(again.search(QUERIES[0], k=5)) == found(faiss.search(QUERIES[0], k=5))
    live = current_generation(milvus_pack.index_dir)
    assert live is not None and len(collections(milvus_pack)) == 2
    assert collections(milvus_pack)[-1].endswith(live.name)


def test_hit_at_5_with_milvus_equals_faiss_on_the_diabetes_pack(settings, embedder) -> None:
    questions = eval_questions(DIABETES, split=None)
    assert len(questions) >= 40
    hit = {}
    for store in ("faiss", "milvus"):
        idx = open_index(store_pack(f"diabetes-{store}", store), settings, embedder=embedder)
        assert len(idx.add_docs([DIABETES / "docs"]).added) == 51
        hit[store] = hit_at_k(idx, questions, k=5)
    print(f"hit@5 on {len(questions)} diabetes questions: {hit}")
    assert hit["faiss"] >= 0.85, hit
    assert abs(hit["milvus"] - hit["faiss"]) <= 0.02, hit


def test_migrate_to_milvus_and_back_keeps_the_hits_and_embeds_nothing(settings, counting) -> None:
    pack = store_pack("kb", "faiss")
    idx = open_index(pack, settings, embedder=counting)
    idx.add_docs([FIXTURES])
    before = {q: found(idx.search(q, k=5)) for q in QUERIES}
    chunks = idx.stats().chunks

    result = CliRunner().invoke(cli, ["index", "migrate", "kb", "--to", "milvus"])
    assert result.exit_code == 2 and "set store = 'milvus' there first" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    for store in ("milvus", "faiss"):
        set_store(pack, store)
        idx = open_index(pack, settings, embedder=counting)
        texts = counting.texts
        report = idx.migrate(store)
        assert counting.texts == texts  # not one document embedded
        assert (report.moved, report.target, report.vectors) == (True, store, chunks)
        assert idx.stats().store.startswith(store)
        assert {q: found(idx.search(q, k=5)) for q in QUERIES} == before
        fresh = open_index(pack, settings, embedder=counting)  # read back from the store
        assert {q: found(fresh.search(q, k=5)) for q in QUERIES} == before
        assert not idx.migrate(store).moved  # there already: nothing to do
    # Back on FAISS: only the previous generation's collection is left, and it goes next time.
    assert len(collections(pack)) == 1
    idx.remove(["docs/notes.txt"])
    assert collections(pack) == []


# A child `assistant index add-docs` that stops at a chosen point and waits to be killed.
CHILD = r"""
import sys, time
from pathlib import Path

point, marker, pack, folder = sys.argv[1:5]


def reached(*_args, **_kwargs):
    Path(marker).write_text(point)
    time.sleep(600)


if point == "embedding":
    from assistant.knowledge.embedding import Embedding

    Embedding.embed = reached
elif point == "milvus-insert":  # after the first batch reached the new collection
    from pymilvus import MilvusClient

    insert = MilvusClient.insert

    def hooked(self, *args, **kwargs):
        insert(self, *args, **kwargs)
        reached()

    MilvusClient.insert = hooked
elif point == "current-switch":  # the collection and folder complete, CURRENT not yet switched
    from assistant.knowledge import store

    write = store.atomic_write_bytes

    def hooked(path, data):
        if path.name == store.CURRENT:
            reached()
        write(path, data)

    store.atomic_write_bytes = hooked
from assistant.cli.app import main

sys.argv = ["assistant", "index", "add-docs", pack, folder]
main()
"""
NOTES = {
    "compost.md": "# Compost\n\nTurn the compost heap every week so air reaches the microbes.",
    "n1.md": "# Lighthouses\n\nA lighthouse lamp turns once every ten seconds.",
    "n2.md": "# Glaciers\n\nGlaciers carve U-shaped valleys as they creep downhill.",
}
BATCH = {
    f"b{n}.md": f"# {topic}\n\nA short note about {topic} number {n}."
    for n, topic in enumerate(["tidal pools", "meteorites", "kites", "sourdough"])
}


@pytest.mark.parametrize("point", ["embedding", "milvus-insert", "current-switch"])
def test_a_kill_during_add_docs_leaves_the_previous_generation(
    settings, embedder, tmp_path: Path, point: str
) -> None:
    pack = store_pack("kb", "milvus")
    for name, text in NOTES.items():
        (pack.docs_dir / name).write_text(text, "utf-8")
    idx = open_index(pack, settings, embedder=embedder)
    idx.rebuild()
    before = {d.path: d.sha256 for d in idx.documents()}
    release()  # milvus-lite serves one process at a time: the child's turn
    folder = tmp_path / "batch"
    folder.mkdir()
    for name, text in BATCH.items():
        (folder / name).write_text(text, "utf-8")
    marker, log = tmp_path / "reached", tmp_path / "child.log"
    with log.open("wb") as out:
        argv = [sys.executable, "-c", CHILD, point, str(marker), "kb", str(folder)]
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert child.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the child never reached " + point
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL

    live = current_generation(pack.index_dir)
    assert live is not None and live.name == "g000001"
    left = [name for name in collections(pack) if name.endswith("_g000002")]
    assert len(left) == (0 if point == "embedding" else 1)  # the kill came after Milvus writes
    idx = open_index(pack, settings, embedder=embedder)
    assert {d.path: d.sha256 for d in idx.documents()} == before
    for search in (idx.search, idx.dense_search):
        assert search("how often do I turn the compost heap", k=1)[0].path == "docs/compost.md"
    assert "docs/b1.md" not in {h.path for h in idx.search("meteorites", k=5)}

    report = idx.add_docs([folder])
    assert sorted(report.added) == sorted(f"docs/{name}" for name in BATCH)
    assert idx.search("a short note about meteorites", k=1)[0].path == "docs/b1.md"
    assert idx.dense_search("how often do I turn the compost heap", k=1)[0].path == (
        "docs/compost.md"
    )
    # What the killed writer left in Milvus is gone: a collection per generation folder kept.
    folders = {p.name for p in pack.index_dir.glob("g[0-9]*")}
    kept = {name.rsplit("_", 1)[1] for name in collections(pack)}
    assert kept <= folders and len(kept) <= 2
    assert current_generation(pack.index_dir).name in kept


def test_an_unknown_store_fails_validation_in_one_line(settings) -> None:
    pack = store_pack("kb", "chroma")
    problems = [p for p in validate_pack(pack) if p.file == str(pack.pack_toml)]
    assert len(problems) == 1
    message = str(problems[0])
    assert "retrieval.store" in message and "'faiss' or 'milvus'" in message
    assert "\n" not in message
    with pytest.raises(AssistantError, match="'faiss' or 'milvus'"):
        open_index(pack, settings)


def test_an_unreachable_milvus_server_is_one_line_naming_it(settings, embedder) -> None:
    uri = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback here
    pack = store_pack("kb", "milvus", milvus_uri=uri)
    idx = open_index(pack, settings, embedder=embedder)
    with pytest.raises(MissingDependencyError) as caught:
        idx.add_docs([FIXTURES])
    message = str(caught.value)
    assert "\n" not in message
    assert f"cannot reach the Milvus server at {uri} for pack 'kb'" in message
    assert "milvus_uri" in message
    assert current_generation(pack.index_dir) is None  # nothing was published

    result = CliRunner().invoke(cli, ["index", "rebuild", "kb"])
    assert result.exit_code == MissingDependencyError.exit_code, result.output
    assert len(result.stderr.strip().splitlines()) == 1 and uri in result.stderr


def test_a_token_variable_that_is_not_set_is_named(settings, embedder, monkeypatch) -> None:
    monkeypatch.delenv("KB_MILVUS_TOKEN", raising=False)
    pack = store_pack(
        "kb", "milvus", milvus_uri="http://127.0.0.1:9", milvus_token_env="KB_MILVUS_TOKEN"
    )
    with pytest.raises(AssistantError, match="environment variable KB_MILVUS_TOKEN"):
        open_index(pack, settings, embedder=embedder).add_docs([FIXTURES])
