"""Durable file writes: every writer of persistent state goes through these, so a crash leaves
the old content or the new, never a mix (temp file beside the target, fsync, rename, fsync of
the folder)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory's entries."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def copy_atomic(source: Path, dest: Path) -> None:
    """Copy `source` to `dest` durably. The temporary name is fixed, so a copy left by a killed
    writer is overwritten by the rerun instead of piling up (hidden files are never indexed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.partial")
    try:
        shutil.copyfile(source, tmp)
        fsync_path(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
