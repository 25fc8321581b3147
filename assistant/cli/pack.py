"""`assistant pack list|show|validate|new|export|gguf-adapter|import`: author, check and share
domain packs.

A PACK argument is a pack name, or a path to a pack folder (anything with a slash, e.g.
`./my-pack`).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from assistant.cli.context import Context, pass_context
from assistant.errors import AssistantError
from assistant.packs.locate import DomainPack, list_packs, pack_from_argument

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _output_option(help_text: str) -> Any:
    return click.option(
        "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help=help_text
    )


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _shown(path: str | Path) -> str:
    """A path relative to the current folder when it is below it, else as is."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:
        return str(path)


def _adapter_text(row: dict[str, Any]) -> str:
    """The adapter for the configured base, and the bases the pack has other adapters for."""
    adapter = row["adapter"]
    if not adapter["trained"]:
        text = f"none for {adapter['base_model']} (base model answers)"
    else:
        text = f"trained on {adapter['base_model']}"
        text += f" (stale: {adapter['stale']})" if adapter.get("stale") else ""
    others = [a["base_model"] for a in row["adapters"] if a["base_model"] != adapter["base_model"]]
    return f"{text}; also for {', '.join(others)}" if others else text


@click.group()
def pack() -> None:
    """Create, inspect, check and share domain packs."""


@pack.command("list")
@JSON_OPTION
@pass_context
def list_command(ctx: Context, as_json: bool) -> None:
    """List the packs: documents, index chunks, adapter and evaluation questions."""
    from assistant.knowledge import index_stats
    from assistant.packs.info import pack_summary

    rows = [pack_summary(p, ctx.settings, index_stats(p, ctx.settings)) for p in list_packs()]
    if as_json:
        _echo_json(rows)
        return
    if not rows:
        click.echo("No packs yet. Create one with `assistant pack new NAME --from DOCS_FOLDER`.")
        return
    table = Table(title="Domain packs", title_justify="left")
    for column in ("name", "title", "documents", "chunks", "adapter", "eval questions"):
        table.add_column(column, justify="right" if column in ("documents", "chunks") else "left")
    for row in rows:
        title = row["title"] or "[red](invalid pack.toml)[/]"
        chunks = "-" if row["chunks"] is None else str(row["chunks"])
        table.add_row(
            row["name"],
            title,
            str(row["documents"]),
            chunks,
            _adapter_text(row),
            str(row["eval_questions"]),
        )
    Console().print(table)


@pack.command()
@click.argument("name")
@JSON_OPTION
@pass_context
def show(ctx: Context, name: str, as_json: bool) -> None:
    """Everything about pack NAME: settings, counts, paths, adapter and validation."""
    from assistant.knowledge import index_stats
    from assistant.packs.format import load_pack_config
    from assistant.packs.info import pack_summary
    from assistant.packs.validation import validate_pack

    domain = pack_from_argument(name)
    summary = pack_summary(domain, ctx.settings, index_stats(domain, ctx.settings))
    problems = validate_pack(domain)
    config = None
    if summary["error"] is None:
        config = load_pack_config(domain, ctx.settings).model_dump()
    report = {
        **summary,
        "paths": {
            "root": str(domain.root),
            "pack_toml": str(domain.pack_toml),
            "docs": str(domain.docs_dir),
            "sft": str(domain.sft_file),
            "eval": str(domain.eval_file),
            "adapter": summary["adapter"]["path"],
            "sources": str(domain.sources_file),
            "index": str(domain.index_dir),
        },
        "config": config,
        "valid": not problems,
        "problems": [p.as_dict() for p in problems],
    }
    if as_json:
        _echo_json(report)
        return
    console = Console(highlight=False)
    console.print(f"[bold]{domain.name}[/]: {summary['title'] or '(invalid pack.toml)'}")
    if config:
        console.print(config["description"].strip(), soft_wrap=True)
    console.print(f"folder: {domain.root}")
    chunks = "not built" if summary["chunks"] is None else f"{summary['chunks']} chunks"
    console.print(
        f"documents: {summary['documents']}   index: {chunks}   "
        f"training examples: {summary['sft_examples']}   "
        f"eval questions: {summary['eval_questions']}",
        soft_wrap=True,
    )
    console.print(f"adapter: {_adapter_text(summary)}", soft_wrap=True)
    if config:
        retrieval, generation = config["retrieval"], config["generation"]
        console.print(
            f"answer mode: {config['answer_mode']}   k: {retrieval['k']}   "
            f"decline below: {retrieval['decline_threshold']}   "
            f"max new tokens: {generation['max_new_tokens']}   style: {config['style']['kind']}",
            soft_wrap=True,
        )
        if config["attribution"]["text"]:
            console.print(f"attribution: {config['attribution']['text']}", soft_wrap=True)
    if problems:
        console.print(f"[red]{len(problems)} problem(s):[/]")
        for problem in problems:
            console.print(f"  {_problem_text(problem)}", soft_wrap=True, markup=False)
    else:
        console.print("[green]valid[/]")


def _problem_text(problem: Any) -> str:
    where = _shown(problem.file)
    where = where if problem.line is None else f"{where}:{problem.line}"
    return f"{where}: {problem.message}"


@pack.command()
@click.argument("name", required=False)
@JSON_OPTION
def validate(name: str | None, as_json: bool) -> None:
    """Check pack NAME (every pack when no name is given); exit 2 if any problem is found."""
    from assistant.packs.validation import validate_pack

    packs: list[DomainPack] = [pack_from_argument(name)] if name else list_packs()
    results = [(p, validate_pack(p)) for p in packs]
    invalid = sum(1 for _, problems in results if problems)
    if as_json:
        _echo_json(
            [
                {
                    "pack": p.name,
                    "path": str(p.root),
                    "valid": not problems,
                    "problems": [x.as_dict() for x in problems],
                }
                for p, problems in results
            ]
        )
    elif not results:
        click.echo("No packs found.")
    else:
        for domain, problems in results:
            if not problems:
                click.echo(f"{domain.name}: valid")
                continue
            click.secho(f"{domain.name}: {len(problems)} problem(s)", fg="red", err=True)
            for problem in problems:
                click.echo(f"  {_problem_text(problem)}", err=True)
    if invalid:
        sys.exit(2)


def _index_new_pack(domain: DomainPack, ctx: Context, from_dir: Path | None) -> str:
    """Index the new pack's documents (chunked as its pack.toml says); say what happened.
    Documents from --from that all failed to load are the user's mistake: nothing usable."""
    from assistant.knowledge import open_index

    index = open_index(domain, ctx.settings)
    report = index.add_docs([domain.docs_dir])
    read = [p for p in [*report.added, *report.unchanged] if not p.endswith("welcome.md")]
    # a skipped file is named as the user knows it: its path in --from, not its copy
    skips = [(_origin_of(domain, from_dir, s.path), s.reason) for s in report.skipped]
    if from_dir is not None and not read:
        why = "; ".join(f"{path}: {reason}" for path, reason in skips[:3])
        raise AssistantError(f"no document in {from_dir} could be read ({why})")
    for path, reason in skips:
        click.secho(f"  skipped {path}: {reason} (not copied)", fg="yellow", err=True)
    if from_dir is not None:
        _drop_copies(domain, [s.path for s in report.skipped])
    return f"indexed: {report.summary()}, {report.chunks_total} chunks"


def _drop_copies(domain: DomainPack, paths: list[str]) -> None:
    """Remove the new pack's copies of files its index skipped, and their SOURCES.md lines: a
    200 MB file nothing can read is not kept (the original in --from is untouched)."""
    sources = domain.root / "SOURCES.md"
    listing = sources.read_text("utf-8").splitlines(keepends=True) if sources.is_file() else []
    for path in paths:
        copy = Path(path).resolve()
        if domain.docs_dir.resolve() not in copy.parents:
            continue
        copy.unlink(missing_ok=True)
        relative = copy.relative_to(domain.root.resolve()).as_posix()
        listing = [line for line in listing if not line.startswith(f"- {relative} ")]
    if listing:
        sources.write_text("".join(listing), "utf-8")


def _origin_of(domain: DomainPack, from_dir: Path | None, path: str) -> str:
    try:
        relative = Path(path).resolve().relative_to(domain.docs_dir.resolve())
    except ValueError:
        return path
    return str(from_dir / relative) if from_dir is not None else f"docs/{relative.as_posix()}"


def _undo_new_pack(domain: DomainPack) -> None:
    """Remove a pack `pack new` was making, with its index (nobody else has opened either):
    never half a pack."""
    import shutil

    shutil.rmtree(domain.index_dir, ignore_errors=True)
    shutil.rmtree(domain.root, ignore_errors=True)


def _run_draft(domain: DomainPack, ctx: Context, show_progress: bool, **counts: int) -> Any:
    """`draft_pack` with the pack's built index as its answerability check (none when the
    pack is not indexed), and a progress bar while questions are checked."""
    from assistant.cli.index import progress_bar
    from assistant.knowledge import index_stats, open_index
    from assistant.packs.format import load_pack_config
    from assistant.training.draft_pack import draft_pack

    search = None
    if index_stats(domain, ctx.settings):
        index = open_index(domain, ctx.settings)
        k = load_pack_config(domain, ctx.settings).retrieval.k

        def search(question: str) -> list[str]:
            return [hit.text for hit in index.search(question, k=k)]

    with progress_bar(show_progress, "drafting: checking questions") as progress:
        return draft_pack(domain, search=search, progress=progress, **counts)


def _draft_summary(report: Any) -> str:
    left_out = (
        f" ({report.unanswerable} eval question(s) left out: retrieval does not find their facts)"
        if report.unanswerable
        else ""
    )
    return f"drafted {report.sft_drafted} training and {report.eval_drafted} eval lines{left_out}"


def _draft_new_pack(domain: DomainPack, ctx: Context, show_progress: bool) -> str:
    """Draft the new pack's lines from its documents; say what happened."""
    try:
        report = _run_draft(domain, ctx, show_progress)
    except AssistantError as exc:
        raise AssistantError(
            f"{exc}; nothing was created (--no-draft creates the pack with its documents and"
            " example lines anyway)"
        ) from None
    return _draft_summary(report)


@pack.command()
@click.argument("name")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Copy the documents of this folder into the pack's docs/ (and index them).",
)
@click.option("--title", help="The pack's title (default: from the name).")
@click.option(
    "--dir",
    "parent",
    type=click.Path(path_type=Path, file_okay=False),
    help="Create the pack in this folder (e.g. domains/) instead of the user packs folder.",
)
@click.option("--no-index", is_flag=True, help="Do not index the documents now.")
@click.option(
    "--no-draft",
    is_flag=True,
    help="With --from: do not draft training and eval lines from the documents"
    " (`assistant pack draft` does it later).",
)
@JSON_OPTION
@pass_context
def new(
    ctx: Context,
    name: str,
    from_dir: Path | None,
    title: str | None,
    parent: Path | None,
    no_index: bool,
    no_draft: bool,
    as_json: bool,
) -> None:
    """Create pack NAME: a commented pack.toml, docs/, example training and eval lines; with
    --from, the folder's documents, indexed, and training and eval lines drafted from them."""
    from assistant.packs.scaffold import create_pack

    created = create_pack(name, parent=parent, title=title, from_dir=from_dir)
    domain = created.pack
    try:
        indexing = (
            "indexing skipped (--no-index)" if no_index else _index_new_pack(domain, ctx, from_dir)
        )
        drafting = (
            "drafting skipped"
            if no_draft or from_dir is None
            else _draft_new_pack(domain, ctx, not as_json and sys.stderr.isatty())
        )
    except BaseException as exc:  # Ctrl-C too: the half-made pack goes
        _undo_new_pack(domain)
        if isinstance(exc, AssistantError) and "nothing was created" not in str(exc):
            raise type(exc)(f"{exc}; nothing was created") from None
        raise
    if as_json:
        _echo_json(
            {
                "name": domain.name,
                "path": str(domain.root),
                "documents": [str(p) for p in created.documents],
                "indexing": indexing,
                "drafting": drafting,
            }
        )
        return
    click.echo(f"Created pack {domain.name!r} in {domain.root}")
    click.echo(f"  copied {len(created.documents)} document(s); {indexing}; {drafting}")
    where = domain.name if parent is None else _shown(domain.root)
    if drafting.startswith("drafted"):
        click.echo('Next: review the lines marked "origin": "drafted" and pack.toml, then run')
        click.echo(f"  assistant train {where} && assistant eval {where}")
        return
    click.echo("Next: edit pack.toml, docs/, sft/train.jsonl and eval/qa.jsonl, then run")
    click.echo(f"  assistant pack validate {where}")


@pack.command()
@click.argument("name")
@click.option(
    "--count",
    default=40,
    show_default=True,
    type=click.IntRange(2, 10_000),
    help="Eval questions to draft (a dev and a test half; about a fifth are off-topic).",
)
@click.option(
    "--train-count",
    default=80,
    show_default=True,
    type=click.IntRange(1, 100_000),
    help="Training lines to draft at most (80 train in about 10 minutes on 2 CPU cores).",
)
@JSON_OPTION
@pass_context
def draft(ctx: Context, name: str, count: int, train_count: int, as_json: bool) -> None:
    """Draft sft/train.jsonl and eval/qa.jsonl from the pack's documents.

    Questions come from the documents' headings, definitions, steps and warnings, answered
    with the documents' own sentences; each line's facts are copied from its source, and
    off-topic questions are declined. Every line is marked "origin": "drafted" for review;
    running it again keeps the lines you wrote or edited and drafts the rest afresh. When the
    pack is indexed, an eval question is kept only if retrieval finds its facts.
    """
    domain = pack_from_argument(name)
    show = not as_json and sys.stderr.isatty()
    report = _run_draft(domain, ctx, show, count=count, train_count=train_count)
    if as_json:
        _echo_json(
            {
                "pack": report.pack,
                "sft_drafted": report.sft_drafted,
                "eval_drafted": report.eval_drafted,
                "kept": report.kept,
                "unanswerable": report.unanswerable,
                "skipped": [{"path": p, "reason": r} for p, r in report.skipped],
            }
        )
        return
    summary = _draft_summary(report)
    click.echo(
        f"{summary[0].upper()}{summary[1:]} for {report.pack!r}; kept {report.kept}"
        " line(s) a person wrote or edited"
    )
    for path, reason in report.skipped:
        click.secho(f"  skipped {path}: {reason}", fg="yellow", err=True)
    click.echo(f"Review them, then: assistant train {report.pack} && assistant eval {report.pack}")


@pack.command()
@click.argument("name")
@_output_option("The archive to write (default: ./NAME.tar.gz).")
@JSON_OPTION
def export(name: str, output: Path | None, as_json: bool) -> None:
    """Write pack NAME as one .tar.gz with a SHA-256 manifest (the index is not included)."""
    from assistant.packs.archive import export_pack

    report = export_pack(pack_from_argument(name), output)
    if as_json:
        _echo_json(
            {
                "pack": report.pack,
                "path": str(report.path),
                "files": report.files,
                "bytes": report.bytes,
            }
        )
        return
    click.echo(
        f"Exported {report.pack}: {report.files} files, {report.bytes:,} bytes -> {report.path}"
    )


@pack.command("gguf-adapter")
@click.argument("name")
@_output_option("The file to write (default: ./NAME-lora.gguf).")
@JSON_OPTION
@pass_context
def gguf_adapter(ctx: Context, name: str, output: Path | None, as_json: bool) -> None:
    """Write pack NAME's adapter as a GGUF LoRA for llama.cpp (llama-cli or llama-server
    --lora), to run beside the base model's GGUF."""
    from assistant.runtime.gguf_lora import export_pack_adapter
    from assistant.runtime.models import source_gguf

    domain = pack_from_argument(name)
    target = export_pack_adapter(domain, ctx.settings, output or Path(f"{domain.name}-lora.gguf"))
    base = ctx.settings.settings.models.base_model
    gguf = source_gguf(ctx.settings)
    base_gguf = str(gguf) if gguf else None
    if as_json:
        _echo_json({"pack": domain.name, "path": str(target), "base_gguf": base_gguf})
        return
    click.echo(f"Wrote {domain.name}'s adapter for llama.cpp -> {target}")
    if base_gguf:
        click.echo(f"  llama-server -m {base_gguf} --lora {_shown(target)}")
    else:
        click.echo(f"  use it with a GGUF of {base}")


@pack.command("import")
@click.argument("archive", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace an installed pack of the same name.")
@JSON_OPTION
def import_command(archive: Path, force: bool, as_json: bool) -> None:
    """Install a pack archive into the user packs folder after checking every file's hash."""
    from assistant.knowledge.index import forget_index
    from assistant.packs.archive import import_pack

    report = import_pack(archive, force=force, forget_index=forget_index)
    if as_json:
        _echo_json(
            {
                "pack": report.pack.name,
                "path": str(report.pack.root),
                "files": report.files,
                "bytes": report.bytes,
                "replaced": report.replaced,
                "problems": [p.as_dict() for p in report.problems],
            }
        )
        return
    verb = "Replaced" if report.replaced else "Installed"
    click.echo(f"{verb} pack {report.pack.name!r} in {report.pack.root} ({report.files} files)")
    for problem in report.problems:
        click.secho(f"  warning: {_problem_text(problem)}", fg="yellow", err=True)
    click.echo("Build its index before use (archives carry none): see `assistant index --help`")
