"""Durable file writes: every writer of persistent state goes through these, so a crash leaves
the old content or the new, never a mix, and a finished write survives a power cut.

One recipe for all: the new content is written beside its target under a hidden name, fsynced,
renamed onto the target, and the folder is fsynced so the rename itself is durable. Files:
`atomic_write_bytes`/`atomic_write_text` (content in memory), `atomic_output` (a library writes
to a path), `copy_atomic`, `replace_file` (a finished file). Folders: `publish_folder` (a new
folder) and `swap_folder` (replace a folder, the old one removed only after).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
import stat
import sys
from collections.abc import Iterator
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory's entries."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`, then `folder` itself (symbolic links are
    neither followed nor synced)."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if not path.is_symlink():
            fsync_path(path)
    fsync_path(folder)


def replace_file(source: Path, target: Path) -> None:
    """Rename the finished file `source` onto `target` (same folder or file system) durably."""
    fsync_path(source)
    os.replace(source, target)
    fsync_path(target.parent)


@contextlib.contextmanager
def atomic_output(target: Path) -> Iterator[Path]:
    """A hidden path beside `target` (`.<name>.<pid>-<random>.partial`, not created yet) for a
    writer that wants a path; when the block ends without an error the file written there
    replaces `target`, else it is removed. A new file has the permissions a plain write gives
    it, a replaced one keeps the target's."""
    partial = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
    try:
        yield partial
        with contextlib.suppress(FileNotFoundError):
            os.chmod(partial, stat.S_IMODE(target.stat().st_mode))
        replace_file(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, never a mix."""
    with atomic_output(path) as partial, open(partial, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text (written as given: no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def copy_atomic(source: Path, dest: Path) -> None:
    """Copy `source` to `dest` durably. The temporary name is fixed, so a copy left by a killed
    writer is overwritten by the rerun instead of piling up (hidden files are never indexed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        shutil.copyfile(source, tmp)
        replace_file(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish_folder(staged: Path, target: Path) -> None:
    """Rename the fully written folder `staged` to `target`, which must not exist (or be an
    empty folder); everything in it is on disk before the rename. An OSError means `target`
    was not created."""
    fsync_tree(staged)
    staged.rename(target)
    _settle(target.parent, None)


def exchange(first: Path, second: Path) -> bool:
    """Swap two paths in one atomic step (Linux renameat2 RENAME_EXCHANGE); False where the
    platform or the file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange):
        number = ctypes.get_errno()
        if number in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            return False
        raise OSError(number, os.strerror(number), str(first))
    return True


def set_aside_path(target: Path) -> Path:
    """Where `swap_folder` moves the old `target` when it cannot swap in one step:
    `.<name>.old-<pid>` beside it. A process killed between its two renames leaves the old
    folder there; the owner's sweep puts it back (`training.save.sweep_adapter_leftovers`)."""
    return target.with_name(f".{target.name}.old-{os.getpid()}")


def swap_folder(staged: Path, target: Path) -> None:
    """Put the fully written folder `staged` in place of `target` (or at `target` when there is
    none), then remove the old one. Everything in `staged` is on disk before the swap. An
    OSError means `target` is unchanged."""
    fsync_tree(staged)
    if target.exists() and exchange(staged, target):
        _settle(target.parent, staged)  # staged holds the old folder now
        return
    old = None
    if target.exists():
        old = set_aside_path(target)
        target.rename(old)  # a kill right here leaves no target: see set_aside_path
    try:
        staged.rename(target)
    except OSError:
        if old is not None:
            old.rename(target)
        raise
    _settle(target.parent, old)


def _settle(folder: Path, old: Path | None) -> None:
    """After the rename: make it durable and remove the old folder, if any. The new one is live
    already, so a failure here changes nothing a reader would see."""
    with contextlib.suppress(OSError):
        fsync_path(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def folder_size(path: Path) -> int:
    """The bytes of every file under `path`."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
