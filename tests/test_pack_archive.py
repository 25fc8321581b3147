"""Export/import: a round trip keeps every byte; hostile or damaged archives are refused and
leave nothing behind."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from test_pack_helpers import new_pack

from assistant.errors import AssistantError
from assistant.packs import archive as pack_archive
from assistant.packs.archive import MANIFEST, export_pack, import_pack
from assistant.packs.locate import DomainPack, find_pack, user_packs_dir


@pytest.fixture
def pack(tmp_path: Path) -> DomainPack:
    domain = new_pack(tmp_path / "domains")
    for base in ("tiny", "other-base"):  # an adapter per base, each in adapter/<base>/
        folder = domain.adapter_dir_for(base)
        folder.mkdir(parents=True)
        (folder / "adapter_model.safetensors").write_bytes(os.urandom(70_000))
        (folder / "training.json").write_text(f'{{"base_model": "{base}"}}', "utf-8")
    (domain.docs_dir / "sub").mkdir()
    (domain.docs_dir / "sub" / "näme with space.txt").write_bytes(b"caf\xc3\xa9\r\nno newline")
    (domain.root / ".hidden").write_text("not exported", "utf-8")
    return domain


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def packs_folder_entries() -> list[str]:
    folder = user_packs_dir()
    return sorted(p.name for p in folder.iterdir() if p.name != ".packs.lock")


def members(archive: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(archive) as tar:
        out = []
        for member in tar.getmembers():
            handle = tar.extractfile(member) if member.isfile() else None
            out.append((member, handle.read() if handle else None))
        return out


def write_tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_round_trip_is_byte_for_byte(pack: DomainPack, tmp_path: Path) -> None:
    report = export_pack(pack, tmp_path / "out" / "demo.tar.gz")
    assert report.path.is_file()
    names = [m.name for m, _ in members(report.path)]
    assert f"demo/{MANIFEST}" in names
    assert "demo/.hidden" not in names
    assert report.files == len(tree(pack.root))
    result = import_pack(report.path)
    assert result.pack.root == user_packs_dir() / "demo"
    assert result.problems == []
    assert not result.replaced
    assert tree(result.pack.root) == tree(pack.root)
    assert not (result.pack.root / MANIFEST).exists()
    assert packs_folder_entries() == ["demo"]
    assert find_pack("demo").root == result.pack.root


def test_export_is_reproducible(pack: DomainPack, tmp_path: Path) -> None:
    first = export_pack(pack, tmp_path / "a.tar.gz").path.read_bytes()
    second = export_pack(pack, tmp_path / "b.tar.gz").path.read_bytes()
    assert first == second


def test_export_never_includes_the_index(pack: DomainPack, tmp_path: Path) -> None:
    pack.index_dir.mkdir(parents=True)
    (pack.index_dir / "index.faiss").write_bytes(b"x")
    names = [m.name for m, _ in members(export_pack(pack, tmp_path / "a.tar.gz").path)]
    assert not any("index" in n for n in names)


def test_export_refuses_symlinks(pack: DomainPack, tmp_path: Path) -> None:
    (pack.docs_dir / "link.md").symlink_to(pack.docs_dir / "welcome.md")
    with pytest.raises(AssistantError, match="symlink"):
        export_pack(pack, tmp_path / "a.tar.gz")
    assert not (tmp_path / "a.tar.gz").exists()


def test_existing_pack_needs_force(pack: DomainPack, tmp_path: Path) -> None:
    archive = export_pack(pack, tmp_path / "a.tar.gz").path
    import_pack(archive)
    installed = user_packs_dir() / "demo"
    (installed / "docs" / "local-edit.md").write_text("mine", "utf-8")
    with pytest.raises(AssistantError, match="--force"):
        import_pack(archive)
    assert (installed / "docs" / "local-edit.md").exists()
    report = import_pack(archive, force=True)
    assert report.replaced
    assert not (installed / "docs" / "local-edit.md").exists()
    assert tree(installed) == tree(pack.root)
    assert packs_folder_entries() == ["demo"]


def test_project_pack_of_same_name_is_not_shadowed(
    pack: DomainPack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = export_pack(pack, tmp_path / "a.tar.gz").path
    monkeypatch.setattr("assistant.packs.locate.project_domains_dir", lambda: pack.root.parent)
    with pytest.raises(AssistantError, match="already exists"):
        import_pack(archive, force=True)
    assert packs_folder_entries() == []


def _tampered(pack: DomainPack, tmp_path: Path, change) -> Path:
    archive = export_pack(pack, tmp_path / "good.tar.gz").path
    entries = [change(info, data) for info, data in members(archive)]
    return write_tar(tmp_path / "bad.tar.gz", [e for e in entries if e is not None])


def test_refuses_a_tampered_file(pack: DomainPack, tmp_path: Path) -> None:
    def change(info, data):
        if info.name == "demo/docs/welcome.md":
            data = data.replace(b"Welcome", b"Malware")
        return info, data

    with pytest.raises(AssistantError, match="SHA-256"):
        import_pack(_tampered(pack, tmp_path, change))
    assert packs_folder_entries() == []


def test_refuses_a_file_missing_from_the_manifest(pack: DomainPack, tmp_path: Path) -> None:
    def change(info, data):
        if info.name == "demo/docs/welcome.md":
            info.name = "demo/docs/extra.md"
        return info, data

    with pytest.raises(AssistantError, match="not listed"):
        import_pack(_tampered(pack, tmp_path, change))
    assert packs_folder_entries() == []


def test_refuses_an_archive_without_manifest(pack: DomainPack, tmp_path: Path) -> None:
    def change(info, data):
        return None if info.name.endswith(MANIFEST) else (info, data)

    with pytest.raises(AssistantError, match="no MANIFEST"):
        import_pack(_tampered(pack, tmp_path, change))


def _with_extra(pack: DomainPack, tmp_path: Path, extra: tarfile.TarInfo, data=None) -> Path:
    archive = export_pack(pack, tmp_path / "good.tar.gz").path
    return write_tar(tmp_path / "bad.tar.gz", [*members(archive), (extra, data)])


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("demo/../../evil.txt", "'..'"),
        ("../evil.txt", "'..'"),
        ("/tmp/evil.txt", "absolute"),
        ("other/evil.txt", "two packs"),
    ],
)
def test_refuses_paths_outside_the_pack(
    pack: DomainPack, tmp_path: Path, name: str, words: str
) -> None:
    archive = _with_extra(pack, tmp_path, tarfile.TarInfo(name), b"evil")
    with pytest.raises(AssistantError, match=words):
        import_pack(archive)
    assert packs_folder_entries() == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE])
def test_refuses_links(pack: DomainPack, tmp_path: Path, kind: bytes) -> None:
    info = tarfile.TarInfo("demo/docs/link.md")
    info.type = kind
    info.linkname = "/etc/passwd"
    with pytest.raises(AssistantError, match="links are not allowed"):
        import_pack(_with_extra(pack, tmp_path, info))
    assert packs_folder_entries() == []


def test_refuses_devices(pack: DomainPack, tmp_path: Path) -> None:
    info = tarfile.TarInfo("demo/docs/fifo")
    info.type = tarfile.FIFOTYPE
    with pytest.raises(AssistantError, match="only files and folders"):
        import_pack(_with_extra(pack, tmp_path, info))


def test_refuses_oversized_members(
    pack: DomainPack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = export_pack(pack, tmp_path / "a.tar.gz").path
    monkeypatch.setattr(pack_archive, "MAX_MEMBER_BYTES", 50_000)
    with pytest.raises(AssistantError, match="limit per file"):
        import_pack(archive)
    monkeypatch.setattr(pack_archive, "MAX_MEMBER_BYTES", 10**9)
    monkeypatch.setattr(pack_archive, "MAX_TOTAL_BYTES", 60_000)
    with pytest.raises(AssistantError, match="unpacks to more than"):
        import_pack(archive)
    assert packs_folder_entries() == []


def test_refuses_a_broken_pack_toml(pack: DomainPack, tmp_path: Path) -> None:
    pack.pack_toml.write_text("name = ", "utf-8")
    with pytest.raises(AssistantError, match="broken"):
        import_pack(export_pack(pack, tmp_path / "a.tar.gz").path)
    assert packs_folder_entries() == []


@pytest.mark.parametrize("content", [b"", b"not a tar at all", b"\x1f\x8b\x08\x00garbage"])
def test_refuses_non_archives(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.tar.gz"
    path.write_bytes(content)
    with pytest.raises(AssistantError):
        import_pack(path)


def test_manifest_lists_hashes(pack: DomainPack, tmp_path: Path) -> None:
    archive = export_pack(pack, tmp_path / "a.tar.gz").path
    data = dict(members(archive))
    manifest = json.loads(next(d for m, d in data.items() if m.name.endswith(MANIFEST)))
    assert manifest["name"] == "demo"
    assert set(manifest["files"]) == set(tree(pack.root))
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())


def header_bomb(path: Path, size: int) -> Path:
    """A .tar.gz whose first entry is a PAX header claiming `size` bytes (zeros: ~1000:1 in
    gzip), written in chunks so the test itself never holds it."""
    import gzip

    info = tarfile.TarInfo("demo/PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, size
    with gzip.open(path, "wb") as out:
        out.write(info.tobuf(format=tarfile.USTAR_FORMAT))
        block = b"0" * 2**20
        for _ in range(size // len(block)):
            out.write(block)
        out.write(b"\0" * 1024)
    return path


def test_a_header_bomb_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """tarfile reads a long-name or PAX header whole before anything can look at it: a 100 MB
    one (100 KB of gzip) cost 100 MB; now it is refused from its recorded size."""
    import tracemalloc

    archive = header_bomb(tmp_path / "bomb.tar.gz", 100 * 2**20)
    assert archive.stat().st_size < 200_000
    tracemalloc.start()
    try:
        with pytest.raises(AssistantError, match="header is 104,857,600 bytes"):
            import_pack(archive)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"{peak / 2**20:.0f} MiB held"
    assert packs_folder_entries() == []


def test_a_deeply_nested_manifest_is_one_line(pack: DomainPack, tmp_path: Path) -> None:
    def change(info, data):
        if info.name.endswith(MANIFEST):
            data = b"[" * 100_000 + b"]" * 100_000
        return info, data

    with pytest.raises(AssistantError, match="malformed"):
        import_pack(_tampered(pack, tmp_path, change))
    assert packs_folder_entries() == []


@pytest.mark.parametrize("folder_first", [True, False])
def test_a_file_and_a_folder_of_the_same_name_is_one_line(
    pack: DomainPack, tmp_path: Path, folder_first: bool
) -> None:
    archive = export_pack(pack, tmp_path / "good.tar.gz").path
    as_file = tarfile.TarInfo("demo/docs/notes")
    inside = tarfile.TarInfo("demo/docs/notes/a.md")
    extra = [(inside, b"inside"), (as_file, b"a file")]
    bad = write_tar(
        tmp_path / "bad.tar.gz", [*members(archive), *extra[:: 1 if folder_first else -1]]
    )
    with pytest.raises(AssistantError, match="both a file and a folder"):
        import_pack(bad)
    assert packs_folder_entries() == []


def test_a_replaced_pack_s_index_is_forgotten(pack: DomainPack, tmp_path: Path, settings) -> None:
    """`pack import --force` replaced the documents but kept the index built from the old
    ones: its text was still served and `setup` skipped the rebuild."""
    from assistant.knowledge import index_stats, open_index
    from assistant.knowledge.index import forget_index

    archive = export_pack(pack, tmp_path / "a.tar.gz").path
    installed = import_pack(archive, forget_index=forget_index).pack
    open_index(installed, settings).rebuild()
    assert index_stats(installed, settings)
    (pack.docs_dir / "welcome.md").write_text("# New\n\nEntirely new text about kayaks.\n", "utf-8")
    changed = export_pack(pack, tmp_path / "b.tar.gz").path
    import_pack(changed, force=True, forget_index=forget_index)
    assert index_stats(installed, settings) is None
    assert not list(installed.index_dir.glob("g*"))


def pax_record(key: str, value: str) -> bytes:
    """One PAX record, "<length> <key>=<value>\\n", its length counting itself."""
    body = f" {key}={value}\n".encode()
    length = len(body) + len(str(len(body)))
    length = len(body) + len(str(length))
    return str(length).encode() + body


def test_many_extended_headers_are_refused_together(tmp_path: Path) -> None:
    """Each header under the per-header cap, but together past MAX_HEADERS_TOTAL: Python before
    3.11.10 parses each in quadratic time, so their number is bounded too."""
    entries = []
    for n in range(pack_archive.MAX_HEADERS_TOTAL // 6000):
        record = pax_record("comment", "x" * 6900)
        header = tarfile.TarInfo(f"demo/PaxHeader{n}")
        header.type = tarfile.XHDTYPE
        entries.append((header, record))
        entries.append((tarfile.TarInfo(f"demo/docs/f{n}.md"), b"text"))
    archive = write_tar(tmp_path / "many.tar.gz", entries)
    with pytest.raises(AssistantError, match="extended headers pass"):
        import_pack(archive)
    assert packs_folder_entries() == []
