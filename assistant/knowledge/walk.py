"""Expand the paths given to add-docs into files, with include/exclude globs.

Directories are walked recursively; symbolic links are followed, but a directory reached a second
time (a link loop) is reported and not entered again. Hidden files and folders (a leading dot)
are passed over silently. Globs match the path relative to the directory given, and the name.
"""

from __future__ import annotations

import errno
import fnmatch
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Skipped:
    """A file that was not indexed and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Found:
    """A file to index: its real location, the directory given (or None) and its path inside."""

    path: Path
    base: Path | None
    relative: str


def matches(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]

    def hit(pattern: str) -> bool:
        return fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(name, pattern)

    if include and not any(hit(p) for p in include):
        return False
    return not any(hit(p) for p in exclude)


def _file_problem(path: Path) -> str | None:
    """Why this path cannot be read as a file, or None."""
    try:
        path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop"
        if exc.errno == errno.ENOENT:
            return "broken symbolic link" if path.is_symlink() else "does not exist"
        return f"cannot read: {exc.strerror}"
    return None


def expand(
    paths: Iterable[Path], include: Sequence[str] = (), exclude: Sequence[str] = ()
) -> tuple[list[Found], list[Skipped]]:
    """Files under `paths` that pass the globs, and the paths that were skipped with reasons."""
    found: list[Found] = []
    skipped: list[Skipped] = []
    for given in paths:
        given = Path(given)
        problem = _file_problem(given)
        if problem:
            skipped.append(Skipped(str(given), problem))
        elif given.is_dir():
            _walk(given, include, exclude, found, skipped)
        elif not given.is_file():
            skipped.append(Skipped(str(given), "not a regular file"))
        elif matches(given.name, include, exclude):
            found.append(Found(given, None, given.name))
    return found, skipped


def _walk(
    root: Path,
    include: Sequence[str],
    exclude: Sequence[str],
    found: list[Found],
    skipped: list[Skipped],
) -> None:
    seen: set[tuple[int, int]] = set()
    for folder, dirs, files in os.walk(root, followlinks=True):
        here = Path(folder)
        stat = here.stat()
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            skipped.append(Skipped(str(here), "symbolic link loop (folder already visited)"))
            dirs[:] = []
            continue
        seen.add(key)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = here / name
            relative = path.relative_to(root).as_posix()
            if not matches(relative, include, exclude):
                continue
            problem = _file_problem(path)
            if problem:
                skipped.append(Skipped(str(path), problem))
            elif not path.is_file():
                skipped.append(Skipped(str(path), "not a regular file"))
            else:
                found.append(Found(path, root, relative))
