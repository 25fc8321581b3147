"""`assistant index add-docs | remove | rebuild | stats | search | migrate`: a pack's knowledge
index."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, get_args

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.cli.context import Context, pass_context
from assistant.errors import DamagedDataError, NotFoundError
from assistant.packs.format import VectorStoreName
from assistant.packs.locate import find_pack

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _open(ctx: Context, name: str) -> Any:
    """The pack's index with the pack's own chunking (pack.toml) when it sets one."""
    from assistant.knowledge import open_index

    return open_index(find_pack(name), ctx.settings)


@contextmanager
def progress_bar(enabled: bool, what: str) -> Iterator[Callable[[int, int, str], None] | None]:
    """A rich progress bar on stderr, shown once a run has lasted a moment."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn(f"{what} [dim]{{task.fields[label]}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task(what, total=None, label="")
    with bar:

        def update(done: int, total: int, label: str) -> None:
            bar.update(task, completed=done, total=total, label=label[-50:])

        yield update


def _print_report(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    line = report.summary()
    if report.removed:
        line = f"removed {len(report.removed)}, skipped {len(report.skipped)}"
    click.echo(f"{line} ({report.chunks_total} chunks in the index, {report.seconds:.1f} s)")
    for skipped in report.skipped:
        click.echo(f"  skipped {skipped.path}: {skipped.reason}")


@click.group()
def index() -> None:
    """Build and search a pack's knowledge index (dense vectors + BM25 over its docs/ folder)."""


@index.command("add-docs")
@click.argument("pack")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--include", multiple=True, help="Only files matching this glob (repeatable).")
@click.option("--exclude", multiple=True, help="Leave out files matching this glob (repeatable).")
@json_option
@pass_context
def add_docs(
    ctx: Context,
    pack: str,
    paths: tuple[Path, ...],
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    as_json: bool,
) -> None:
    """Copy files or folders into PACK's docs/ and index them.

    Folders keep their layout under docs/; files already in docs/ are indexed in place.
    Unchanged files are not embedded again. Unreadable files are skipped with a reason.
    """
    for path in paths:
        if not path.exists() and not path.is_symlink():
            raise NotFoundError(f"{path} does not exist; check the path and try again")
    idx = _open(ctx, pack)
    with progress_bar(not as_json and sys.stderr.isatty(), "indexing") as progress:
        report = idx.add_docs(list(paths), include=include, exclude=exclude, progress=progress)
    _print_report(report, as_json)


@index.command()
@click.argument("pack")
@click.argument("paths", nargs=-1, required=True)
@click.option("--keep-files", is_flag=True, help="Keep the files in docs/; only unindex them.")
@json_option
@pass_context
def remove(
    ctx: Context, pack: str, paths: tuple[str, ...], keep_files: bool, as_json: bool
) -> None:
    """Remove documents (paths like docs/a.md, or a folder) from PACK's index and docs/."""
    report = _open(ctx, pack).remove(list(paths), delete_files=not keep_files)
    _print_report(report, as_json)


@index.command()
@click.argument("pack")
@json_option
@pass_context
def rebuild(ctx: Context, pack: str, as_json: bool) -> None:
    """Index everything in PACK's docs/ from scratch with the current settings."""
    idx = _open(ctx, pack)
    with progress_bar(not as_json and sys.stderr.isatty(), "rebuilding") as progress:
        report = idx.rebuild(progress=progress)
    _print_report(report, as_json)


@index.command()
@click.argument("pack")
@json_option
@pass_context
def stats(ctx: Context, pack: str, as_json: bool) -> None:
    """Documents, chunks, size on disk, embedder and chunking of PACK's index."""
    result = _open(ctx, pack).stats()
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    if not result.exists:
        raise NotFoundError(f"pack {pack!r} has no index yet: run `assistant index rebuild {pack}`")
    if result.problem and result.problem.startswith("damaged"):
        raise DamagedDataError(
            f"the index of pack {pack!r} is {result.problem}; run `assistant index rebuild {pack}`"
        )
    click.echo(f"pack       {result.pack}")
    click.echo(f"documents  {result.documents}")
    click.echo(f"chunks     {result.chunks}")
    click.echo(f"size       {result.bytes / 2**20:.1f} MiB ({result.path})")
    click.echo(f"embedder   {result.embedder} ({result.dimension} dims)")
    click.echo(f"vectors    {result.store}")
    click.echo(f"chunking   {result.chunk_tokens} tokens, overlap {result.chunk_overlap}")
    click.echo(f"updated    {result.updated}")
    if result.problem:
        click.echo(f"warning    built with {result.problem}: run `assistant index rebuild {pack}`")


@index.command()
@click.argument("pack")
@click.argument("query")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, 100))
@json_option
@pass_context
def search(ctx: Context, pack: str, query: str, k: int, as_json: bool) -> None:
    """Hybrid (dense + BM25) search of PACK's index; prints ranked hits with scores."""
    hits = _open(ctx, pack).search(query, k=k)
    if as_json:
        click.echo(json.dumps([hit.to_dict() for hit in hits], indent=2))
        return
    if not hits:
        click.echo("no hits")
    for hit in hits:
        where = hit.path + (f" p.{hit.page}" if hit.page else "")
        section = f" § {hit.section}" if hit.section else ""
        click.echo(
            f"{hit.rank}. {where}{section}  [rrf {hit.score:.4f}, cosine"
            f" {hit.dense_score:.3f}, bm25 {hit.bm25_score:.2f}]"
        )
        snippet = " ".join(hit.text.split())
        click.echo(f"   {snippet[:200]}{'…' if len(snippet) > 200 else ''}")


@index.command()
@click.argument("pack")
@click.option(
    "--to", "to", required=True, type=click.Choice(get_args(VectorStoreName)), help="The store."
)
@json_option
@pass_context
def migrate(ctx: Context, pack: str, to: str, as_json: bool) -> None:
    """Move PACK's built index to another vector store without embedding anything.

    Set [retrieval] store in the pack's pack.toml to the same store first: new generations
    (add-docs, rebuild) go where it says.
    """
    report = _open(ctx, pack).migrate(to)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif not report.moved:
        click.echo(f"the vectors of pack {pack!r} are in the {to!r} store already")
    else:
        where = report.where.get("collection") or report.where.get("file")
        click.echo(
            f"moved {report.vectors} vectors from {report.source} to {report.target}"
            f" ({where}, generation {report.generation}, {report.seconds:.1f} s)"
        )
