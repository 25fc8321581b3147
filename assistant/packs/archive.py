"""Share a domain pack as one file: `export_pack` writes a `.tar.gz` with every file of the pack
and a `MANIFEST.json` of SHA-256 hashes (never the index, which is rebuilt); `import_pack`
installs one into the user packs folder after checking it.

An archive is untrusted input. Import reads members one by one and refuses anything that is not
a plain file or folder (symlinks, hard links, devices), any path that is absolute or uses `..`,
members bigger than `MAX_MEMBER_BYTES` or archives bigger than `MAX_TOTAL_BYTES` once unpacked,
files missing from the manifest or with the wrong hash. It unpacks into a temporary folder next
to the destination and renames it into place, so a pack is installed whole or not at all.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from filelock import FileLock

from assistant.errors import AssistantError
from assistant.fsio import atomic_output, swap_folder
from assistant.packs.locate import NAME_PATTERN, DomainPack, list_packs, user_packs_dir
from assistant.packs.validation import Problem, check_pack_toml, validate_pack

MANIFEST = "MANIFEST.json"
FORMAT = "assistant-pack"
FORMAT_VERSION = 1
MAX_MEMBER_BYTES = 200 * 1024**2
MAX_TOTAL_BYTES = 1024**3
MAX_MEMBERS = 50_000
# A GNU long name or a PAX header is read whole into memory by tarfile before anything else can
# look at it: 65 KB of gzip held an 80 MB header. Real ones are a few hundred bytes (a path is
# at most 4 KB). Python before 3.11.10 also parses a PAX header in quadratic time (60 KB of
# digits: 2.2 s here, on 3.11.7), so each is capped and so are all of them together.
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_TOTAL = 1024 * 1024
_CHUNK = 1024 * 1024
_EXTENDED_HEADERS = (
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
)


class _CappedTarInfo(tarfile.TarInfo):
    """A TarInfo that refuses an extended header (long name, PAX) over MAX_HEADER_BYTES before
    tarfile reads it into memory. `_proc_member` is tarfile's hook for each header it has
    parsed and not yet acted on (private, but the only place before the read; no library
    reads tar with such a cap). Capping the size also bounds the PAX parser's work, which
    was quadratic before Python 3.11.10 (this machine runs 3.11.7)."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED_HEADERS:
            name = Path(str(tarfile_.name)).name
            if self.size > MAX_HEADER_BYTES:
                raise AssistantError(
                    f"{name}: an entry's header is {self.size:,} bytes (the limit is"
                    f" {MAX_HEADER_BYTES:,}); refusing a damaged or hostile archive"
                )
            seen = getattr(tarfile_, "_assistant_header_bytes", 0) + self.size
            tarfile_._assistant_header_bytes = seen  # type: ignore[attr-defined]
            if seen > MAX_HEADERS_TOTAL:
                raise AssistantError(
                    f"{name}: the entries' extended headers pass {MAX_HEADERS_TOTAL:,} bytes;"
                    " refusing a damaged or hostile archive"
                )
        return super()._proc_member(tarfile_)  # type: ignore[misc]


@dataclass
class ExportReport:
    pack: str
    path: Path
    files: int
    bytes: int


@dataclass
class ImportReport:
    pack: DomainPack
    files: int
    bytes: int
    replaced: bool
    problems: list[Problem] = field(default_factory=list)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def pack_files(pack: DomainPack) -> list[Path]:
    """The files an export carries, relative to the pack folder: all but hidden ones and an old
    manifest. A symlink is an error (an archive holds plain files only)."""
    files = []
    for path in sorted(pack.root.rglob("*")):
        relative = path.relative_to(pack.root)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        if path.is_symlink():
            raise AssistantError(
                f"{path} is a symlink; replace it with the file itself before exporting"
            )
        if path.is_file() and relative.as_posix() != MANIFEST:
            files.append(relative)
    return files


def _tarinfo(name: str, size: int, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 0 if directory else size
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.mtime = 0  # reproducible archives: same pack, same bytes
    return info


def export_pack(pack: DomainPack, output: Path | None = None) -> ExportReport:
    """Write `pack` as `<output>` (default `./<name>.tar.gz`), atomically."""
    if not pack.pack_toml.is_file():
        raise AssistantError(f"{pack.root} has no pack.toml: it is not a pack")
    output = Path(output) if output else Path.cwd() / f"{pack.name}.tar.gz"
    files = pack_files(pack)
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": pack.name,
        "files": {
            f.as_posix(): {
                "sha256": sha256_file(pack.root / f),
                "size": (pack.root / f).stat().st_size,
            }
            for f in files
        },
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode("utf-8")
    output.parent.mkdir(parents=True, exist_ok=True)
    total = 0
    # No file name in the gzip header (it would be the temporary one): the same pack gives the
    # same bytes wherever it is written.
    with (
        atomic_output(output) as partial,
        open(partial, "wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        tar.addfile(_tarinfo(pack.name, 0, directory=True))
        tar.addfile(
            _tarinfo(f"{pack.name}/{MANIFEST}", len(manifest_bytes)),
            io.BytesIO(manifest_bytes),
        )
        for relative in files:
            path = pack.root / relative
            size = path.stat().st_size
            total += size
            with path.open("rb") as handle:
                tar.addfile(_tarinfo(f"{pack.name}/{relative.as_posix()}", size), handle)
        gz.flush()  # kept from the first format: the same pack gives the same bytes as before
    return ExportReport(pack.name, output.resolve(), len(files), total)


# ----------------------------------------------------------------------------- import


def _member_path(name: str, archive: Path) -> PurePosixPath:
    """A member's path, checked: relative, no `..`, one top folder that is a pack name."""
    bad = f"{archive.name}: refusing entry {name!r}"
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise AssistantError(f"{bad}: absolute paths are not allowed")
    path = PurePosixPath(name.replace("\\", "/"))
    parts = [p for p in path.parts if p not in ("", ".")]
    if ".." in parts:
        raise AssistantError(f"{bad}: '..' would write outside the pack folder")
    if not parts or not NAME_PATTERN.match(parts[0]):
        raise AssistantError(f"{bad}: every entry must be inside one folder named after the pack")
    return PurePosixPath(*parts)


def _unpack(archive: Path, staging: Path) -> tuple[str, dict[str, str], int]:
    """Unpack into `staging`; return the pack name, {relative path: sha256} and total bytes.

    One function (~70 lines) on purpose: every member runs the same checks, in order, inside one
    open archive, and a split would pass the running totals around. Extended headers are capped
    before tarfile reads them (`_CappedTarInfo`); member data is read in chunks against its
    recorded size."""
    pack_name: str | None = None
    hashes: dict[str, str] = {}
    total = 0
    try:
        tar = tarfile.open(archive, mode="r:*", tarinfo=_CappedTarInfo)  # noqa: SIM115 (closed below)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise AssistantError(f"{archive}: not a pack archive (.tar.gz): {exc}") from None
    with tar:
        count = 0
        while True:
            try:
                member = tar.next()
            except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
                raise AssistantError(f"{archive}: the archive is damaged: {exc}") from None
            if member is None:
                break
            count += 1
            if count > MAX_MEMBERS:
                raise AssistantError(f"{archive}: more than {MAX_MEMBERS} entries; refusing")
            path = _member_path(member.name, archive)
            if pack_name is None:
                pack_name = path.parts[0]
            elif path.parts[0] != pack_name:
                raise AssistantError(
                    f"{archive.name}: entries for two packs ({pack_name!r}, {path.parts[0]!r});"
                    " an archive holds one pack"
                )
            if member.issym() or member.islnk():
                raise AssistantError(
                    f"{archive.name}: refusing entry {member.name!r}: links are not allowed"
                )
            relative = PurePosixPath(*path.parts[1:]) if len(path.parts) > 1 else None
            if member.isdir():
                if relative is not None:
                    _make_folder(staging / relative, archive, member.name)
                continue
            if not member.isfile() or relative is None:
                raise AssistantError(
                    f"{archive.name}: refusing entry {member.name!r}: only files and folders"
                )
            key = relative.as_posix()
            if key in hashes:
                raise AssistantError(f"{archive.name}: entry {member.name!r} appears twice")
            if member.size > MAX_MEMBER_BYTES:
                raise AssistantError(
                    f"{archive.name}: entry {member.name!r} is {member.size} bytes, over the"
                    f" {MAX_MEMBER_BYTES // 1024**2} MB limit per file"
                )
            total += member.size
            if total > MAX_TOTAL_BYTES:
                raise AssistantError(
                    f"{archive.name}: unpacks to more than {MAX_TOTAL_BYTES // 1024**3} GB"
                )
            target = staging / relative
            _make_folder(target.parent, archive, member.name)
            if target.exists():
                raise AssistantError(_clash(archive, member.name))
            source = tar.extractfile(member)
            if source is None:
                raise AssistantError(f"{archive.name}: cannot read entry {member.name!r}")
            digest = hashlib.sha256()
            written = 0
            with target.open("xb") as handle:
                while block := source.read(_CHUNK):
                    written += len(block)
                    if written > member.size:
                        raise AssistantError(f"{archive.name}: entry {member.name!r} is damaged")
                    digest.update(block)
                    handle.write(block)
            hashes[key] = digest.hexdigest()
    if pack_name is None:
        raise AssistantError(f"{archive}: the archive is empty")
    return pack_name, hashes, total


def _clash(archive: Path, name: str) -> str:
    return f"{archive.name}: entry {name!r} is both a file and a folder; refusing"


def _make_folder(folder: Path, archive: Path, name: str) -> None:
    """Create a folder of the staging tree; a file already standing where it goes (an archive
    holding "docs" as a file and "docs/a.md") is refused in one line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise AssistantError(_clash(archive, name)) from None


def _check_manifest(archive: Path, name: str, hashes: dict[str, str], staging: Path) -> None:
    if MANIFEST not in hashes:
        raise AssistantError(
            f"{archive.name}: no {MANIFEST}; export packs with `assistant pack export`"
        )
    try:
        manifest = json.loads((staging / MANIFEST).read_text("utf-8"))
        files = {path: entry["sha256"] for path, entry in manifest["files"].items()}
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        raise AssistantError(f"{archive.name}: {MANIFEST} is malformed") from None
    if manifest.get("format") != FORMAT or manifest.get("name") != name:
        raise AssistantError(f"{archive.name}: {MANIFEST} is not a manifest of pack {name!r}")
    unpacked = {k: v for k, v in hashes.items() if k != MANIFEST}
    for path in sorted(set(files) | set(unpacked)):
        if path not in unpacked:
            raise AssistantError(f"{archive.name}: {path} is in {MANIFEST} but not in the archive")
        if path not in files:
            raise AssistantError(f"{archive.name}: {path} is not listed in {MANIFEST}; refusing")
        if files[path] != unpacked[path]:
            raise AssistantError(
                f"{archive.name}: {path} does not match its SHA-256 in {MANIFEST}: the archive"
                " is damaged; refusing (the hashes travel inside the archive, so they show"
                " damage, not who made it: import archives only from people you trust)"
            )
    (staging / MANIFEST).unlink()


def import_pack(
    archive: Path, force: bool = False, forget_index: Callable[[DomainPack], None] | None = None
) -> ImportReport:
    """Check `archive` and install its pack into the user packs folder; `force` replaces a user
    pack of the same name (atomically). The installed pack's remaining problems are reported.
    `forget_index(pack)` runs under the packs lock just before the pack goes into place: an
    index built from the documents it replaces must not keep serving their text (the knowledge
    layer, above this one, knows how to drop it)."""
    archive = Path(archive)
    if not archive.is_file():
        raise AssistantError(f"{archive}: no such archive")
    parent = user_packs_dir()
    parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(parent / ".packs.lock"), timeout=60):
        work = Path(tempfile.mkdtemp(prefix=".import-", dir=parent))
        try:
            staging = work / "pack"
            staging.mkdir()
            name, hashes, total = _unpack(archive, staging)
            _check_manifest(archive, name, hashes, staging)
            staged = staging.rename(work / name)
            _, problems = check_pack_toml(DomainPack(name, staged))
            if problems:
                raise AssistantError(f"{archive.name}: the pack is broken: {problems[0]}")
            destination = parent / name
            for other in list_packs():
                if other.name == name and other.root.resolve() != destination.resolve():
                    raise AssistantError(
                        f"a pack named {name!r} already exists in {other.root}; it would hide"
                        " the imported one"
                    )
            replaced = destination.exists()
            if replaced and not force:
                raise AssistantError(
                    f"pack {name!r} is already installed in {destination}; use --force to replace"
                )
            if forget_index is not None:
                forget_index(DomainPack(name, destination))
            _swap_into_place(staged, destination)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    pack = DomainPack(name, destination)
    files = len(hashes) - 1
    return ImportReport(pack, files, total, replaced, validate_pack(pack))


def _swap_into_place(staged: Path, destination: Path) -> None:
    """Put `staged` at `destination` (`fsio.swap_folder`: the pack it replaces stays on error)."""
    try:
        swap_folder(staged, destination)
    except OSError as exc:
        raise AssistantError(f"cannot install into {destination}: {exc.strerror}") from None
