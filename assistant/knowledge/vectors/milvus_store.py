"""Vectors in Milvus, through pymilvus's MilvusClient: the same code for a local milvus-lite file
(the default, "milvus.db" in the pack's index folder) and a Milvus server ("http://host:19530",
its token read from the environment variable the pack names).

One collection per generation, named PREFIX_g000007 (PREFIX: `milvus_collection`, else
assistant_<pack>), with an INT64 primary key (the chunk id) and a FLAT inner-product index, so
search is exact, as FAISS's IndexFlatIP is. The SQLite docstore and BM25 stay in the generation
folder; the manifest records the collection.

Crash safety is the generations' own: a writer fills a fresh collection (the base generation's
vectors minus the dropped ones, then the new ones), flushes it, and only then writes the
manifest, renames the folder and switches CURRENT (store.py). A writer killed at any point
leaves CURRENT naming the previous generation, whose collection nobody wrote to; the next
writer takes the same generation number and drops the half-filled collection before it starts,
and every publish drops the collections of generations it does not keep (the live one and the
one before it, as for folders). Dense and BM25 results stay in step because both come from the
one generation CURRENT names. A write costs a copy of the live vectors (FAISS clones and
rewrites its file the same way); tags per row would save the copy but make every search filter.

milvus-lite serves one process at a time (it locks its file): a second process gets a one-line
error; packs served by several processes need a Milvus server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AssistantError, MissingDependencyError
from assistant.knowledge.vectors.base import (
    COPY_BATCH,
    StorePlace,
    Vectors,
    check_count,
)

LOCAL_FILE = "milvus.db"
CONNECT_TIMEOUT = 5.0  # seconds to reach a server
LOCKED_WAIT = 5.0  # a killed process's milvus-lite lets go of its file within a second
INSERT_BATCH = 2048
SERVER_SCHEMES = ("http://", "https://", "tcp://", "grpc://", "unix:")
ID, VECTOR = "id", "vector"
LITE_NAME = re.compile(r"^[A-Za-z0-9.\-_]{1,36}$")  # what milvus-lite accepts as a file name

_clients: dict[tuple[str, str], Any] = {}
_clients_lock = threading.Lock()


def resolve_uri(place: StorePlace) -> str:
    """The server URL, or the absolute path of the milvus-lite file."""
    uri = place.settings.milvus_uri.strip() or LOCAL_FILE
    if uri.startswith(SERVER_SCHEMES):
        return uri
    path = Path(uri).expanduser()
    return str(path if path.is_absolute() else place.index_dir / path)


def collection_prefix(place: StorePlace) -> str:
    """PREFIX of the pack's collections: Milvus names take letters, digits and underscores."""
    if place.settings.milvus_collection:
        return place.settings.milvus_collection
    safe = re.sub(r"[^A-Za-z0-9_]", "_", place.pack)
    if safe != place.pack:  # "a-b" and "a_b" must not share collections
        safe += "_" + hashlib.sha256(place.pack.encode()).hexdigest()[:6]
    return f"assistant_{safe}"


def connect(place: StorePlace) -> Any:
    """The process's MilvusClient for the pack's URI; one-line errors when it cannot be had."""
    uri = resolve_uri(place)
    env = place.settings.milvus_token_env
    with _clients_lock:
        client = _clients.get((uri, env))
        if client is None:
            client = _clients[(uri, env)] = _new_client(place, uri, _token(place))
        return client


def release() -> None:
    """Close this process's clients and stop its milvus-lite servers, so another process can
    open their files (milvus-lite serves one process at a time)."""
    with _clients_lock:
        for (uri, _env), client in list(_clients.items()):
            client.close()
            if not uri.startswith(SERVER_SCHEMES):
                from milvus_lite.server_manager import server_manager_instance

                server_manager_instance.release_server(uri)
        _clients.clear()


def _token(place: StorePlace) -> str:
    env = place.settings.milvus_token_env
    if not env:
        return ""
    token = os.environ.get(env, "")
    if not token:
        raise AssistantError(
            f"pack {place.pack!r} reads its Milvus token from the environment variable {env}"
            f" (milvus_token_env in its pack.toml), which is not set; export {env}=TOKEN"
        )
    return token


def _new_client(place: StorePlace, uri: str, token: str) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise MissingDependencyError(
            f"pack {place.pack!r} keeps its vectors in Milvus, and pymilvus is not installed:"
            " pip install 'assistant[milvus]' (or set [retrieval] store = \"faiss\")"
        ) from None
    logging.getLogger("pymilvus").setLevel(logging.CRITICAL)  # its errors become ours below
    server = uri.startswith(SERVER_SCHEMES)
    if not server and not LITE_NAME.match(Path(uri).name):
        raise AssistantError(
            f"milvus_uri {uri!r} of pack {place.pack!r} names a milvus-lite file that"
            " milvus-lite refuses: use a name of at most 36 letters, digits, '.', '-' or '_'"
        )
    deadline = time.monotonic() + LOCKED_WAIT
    while True:
        try:
            with warnings.catch_warnings():  # milvus-lite imports pkg_resources, deprecated
                warnings.filterwarnings("ignore", "pkg_resources", UserWarning)
                return MilvusClient(uri=uri, token=token, timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # pymilvus raises several types for one failure
            reason = " ".join((getattr(exc, "message", "") or str(exc)).split())
            if server:
                raise MissingDependencyError(
                    f"cannot reach the Milvus server at {uri} for pack {place.pack!r}"
                    f"{f' ({reason})' if reason else ''}; start it, or set [retrieval]"
                    " milvus_uri in the pack's pack.toml to a running one"
                ) from None
            if time.monotonic() < deadline and Path(uri).parent.is_dir():
                time.sleep(0.25)  # the file may still be held by a process that just died
                continue
            raise AssistantError(
                f"cannot open the milvus-lite file {uri} of pack {place.pack!r}"
                f"{f' ({reason})' if reason else ''}: milvus-lite serves one process at a"
                " time, so stop the other process using it, or serve the pack from a Milvus"
                ' server (milvus_uri = "http://host:19530" in its pack.toml)'
            ) from None


@contextmanager
def calls(place: StorePlace) -> Iterator[None]:
    """Milvus failures after connecting as one line naming the URI."""
    try:
        yield
    except AssistantError:
        raise
    except Exception as exc:
        from pymilvus.exceptions import MilvusException

        if not isinstance(exc, MilvusException):
            raise
        reason = " ".join((exc.message or str(exc)).split())
        raise MissingDependencyError(
            f"Milvus at {resolve_uri(place)} failed for pack {place.pack!r} ({reason}); check"
            " that it is running and reachable, then run the command again"
        ) from None


class MilvusVectors:
    """One generation's collection."""

    def __init__(self, place: StorePlace, collection: str, dimension: int, count: int) -> None:
        self.place = place
        self.collection = collection
        self.dimension = dimension
        self.count = count

    @property
    def client(self) -> Any:
        return connect(self.place)  # looked up each time: `release` may have closed the last

    def search(self, query: np.ndarray, k: int) -> list[tuple[int, float]]:
        if self.count == 0 or k < 1:
            return []
        with calls(self.place):
            found = self.client.search(
                self.collection,
                data=[np.asarray(query[0], dtype=np.float32)],
                limit=min(k, self.count),
                anns_field=VECTOR,
                search_params={"metric_type": "IP"},
            )
        return [(int(hit["id"]), float(hit["distance"])) for hit in found[0]]

    def vectors(self, ids: Sequence[int]) -> np.ndarray:
        if not len(ids):
            return np.zeros((0, self.dimension), np.float32)
        with calls(self.place):
            wanted = [int(i) for i in ids]
            rows = self.client.get(self.collection, ids=wanted, output_fields=[VECTOR])
        by_id = {int(row[ID]): row[VECTOR] for row in rows}
        missing = [int(i) for i in ids if int(i) not in by_id]
        if missing:
            raise KeyError(f"collection {self.collection} has no vector for chunk {missing[0]}")
        return np.asarray([by_id[int(i)] for i in ids], dtype=np.float32)

    def batches(self, size: int = COPY_BATCH) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        with calls(self.place):
            iterator = self.client.query_iterator(
                self.collection, batch_size=size, filter=f"{ID} >= 0", output_fields=[VECTOR]
            )
            try:
                while rows := iterator.next():
                    ids = np.asarray([row[ID] for row in rows], dtype=np.int64)
                    yield ids, np.asarray([row[VECTOR] for row in rows], dtype=np.float32)
            finally:
                iterator.close()


def count_rows(client: Any, collection: str) -> int:
    """Rows that are not deleted (a collection's statistics may count deleted ones)."""
    rows = client.query(collection, filter="", output_fields=["count(*)"])
    return int(rows[0]["count(*)"])


class MilvusBuilder:
    def __init__(
        self,
        place: StorePlace,
        collection: str,
        dimension: int,
        base: Vectors | None,
        drop: Sequence[int],
    ) -> None:
        self.place = place
        self.client = connect(place)
        self.collection = collection
        self.dimension = dimension
        self.count = 0
        with calls(place):
            if self.client.has_collection(collection):  # left by a writer that was killed
                self.client.drop_collection(collection)
            self._create()
        if base is not None:
            dropped = np.asarray(drop, dtype=np.int64)
            for ids, vectors in base.batches():
                keep = ~np.isin(ids, dropped)
                self.add(ids[keep], vectors[keep])

    def _create(self) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(ID, DataType.INT64, is_primary=True)
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=self.dimension)
        index = self.client.prepare_index_params()
        index.add_index(VECTOR, index_type="FLAT", metric_type="IP")
        self.client.create_collection(
            self.collection, schema=schema, index_params=index, consistency_level="Strong"
        )

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        with calls(self.place):
            for start in range(0, len(ids), INSERT_BATCH):
                stop = start + INSERT_BATCH
                rows = [
                    {ID: int(i), VECTOR: v}
                    for i, v in zip(ids[start:stop], vectors[start:stop], strict=True)
                ]
                self.client.insert(self.collection, rows)
        self.count += len(ids)

    def save(self, folder: Path) -> dict[str, Any]:
        with calls(self.place):
            self.client.flush(self.collection)
            stored = count_rows(self.client, self.collection)
        if stored != self.count:
            raise AssistantError(
                f"Milvus collection {self.collection} at {resolve_uri(self.place)} holds {stored}"
                f" vectors after {self.count} were written; run the command again"
            )
        uri = self.place.settings.milvus_uri or LOCAL_FILE
        return {"store": "milvus", "uri": uri, "collection": self.collection}

    def opened(self) -> MilvusVectors:
        return MilvusVectors(self.place, self.collection, self.dimension, self.count)

    def discard(self) -> None:
        # The failure being handled matters more than this one; the next publish sweeps it.
        with suppress(Exception):
            self.client.drop_collection(self.collection)


class MilvusStore:
    name = "milvus"

    def __init__(self, place: StorePlace) -> None:
        self.place = place
        self.prefix = collection_prefix(place)
        self._generation = re.compile(rf"^{re.escape(self.prefix)}_(g\d{{6,}})$")

    def builder(
        self, generation: str, dimension: int, base: Vectors | None, drop: Sequence[int]
    ) -> MilvusBuilder:
        return MilvusBuilder(self.place, f"{self.prefix}_{generation}", dimension, base, drop)

    def load(
        self, generation: Path, record: dict[str, Any], manifest: dict[str, Any]
    ) -> MilvusVectors:
        from pymilvus.client.types import LoadState

        collection = str(record.get("collection", ""))
        client = connect(self.place)
        uri = resolve_uri(self.place)
        with calls(self.place):
            if not client.has_collection(collection):
                raise ValueError(f"names Milvus collection {collection!r}, missing at {uri}")
            if client.get_load_state(collection).get("state") != LoadState.Loaded:
                client.load_collection(collection)
            count = count_rows(client, collection)
            fields = client.describe_collection(collection)["fields"]
        dims = [int(f["params"]["dim"]) for f in fields if f["name"] == VECTOR]
        dimension = dims[0] if dims else 0
        check_count(f"Milvus collection {collection} at {uri}", dimension, count, manifest)
        return MilvusVectors(self.place, collection, dimension, count)

    def source(self, generation: Path) -> None:
        """None: the manifest, which names the collection."""

    def sweep(self, keep: set[str]) -> None:
        client = connect(self.place)
        with calls(self.place):
            for name in client.list_collections():
                match = self._generation.match(name)
                if match and match.group(1) not in keep:
                    client.drop_collection(name)
