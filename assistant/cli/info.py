"""`assistant version`, `config` and `setup`: what is installed and how it is set
(`assistant models` is in `models.py`)."""

from __future__ import annotations

import json
import time

import click
from rich.console import Console
from rich.table import Table

from assistant import __version__
from assistant.cli.context import Context, pass_context
from assistant.settings import cache_dir, home_dir, settings_rows, user_config_file


@click.command()
def version() -> None:
    """Print the version of assistant and of its main libraries."""
    import importlib.metadata as md

    click.echo(f"assistant {__version__}")
    for package in ("torch", "transformers", "peft", "sentence-transformers", "faiss-cpu"):
        try:
            click.echo(f"  {package} {md.version(package)}")
        except md.PackageNotFoundError:
            click.echo(f"  {package} not installed")


@click.command("config")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@pass_context
def config_command(ctx: Context, as_json: bool) -> None:
    """Print the effective settings and where each value came from.

    Values come from the packaged defaults, then the user config file, then --config FILE,
    then environment variables ASSISTANT_<KEY> (e.g. ASSISTANT_MAX_NEW_TOKENS=128).
    """
    loaded = ctx.settings
    rows = settings_rows(loaded)
    paths = {
        "home": str(home_dir()),
        "user_config": str(user_config_file()),
        "cache": str(cache_dir(loaded.settings)),
    }
    if as_json:
        click.echo(json.dumps({"settings": rows, "paths": paths}, indent=2, default=str))
        return
    table = Table(title="Effective settings", title_justify="left")
    for column in ("key", "value", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["key"], repr(row["value"]), row["source"])
    console = Console()
    console.print(table)
    for name, value in paths.items():
        console.print(f"[bold]{name}[/]: {value}")


@click.command()
@click.option("--skip-indexes", is_flag=True, help="Only prepare the models.")
@pass_context
def setup(ctx: Context, skip_indexes: bool) -> None:
    """Prepare everything for first use: the configured base model (its GGUF joined from the
    installed parts and checked, converted once) and the index of every pack that has none (or
    one built with other settings). Fast when already done."""
    from assistant.errors import AssistantError
    from assistant.knowledge import open_index
    from assistant.packs.locate import list_packs
    from assistant.runtime.models import converted_dir, resolve_base_path

    loaded = ctx.settings
    base = loaded.settings.models.base_model
    converted = converted_dir(loaded)
    if converted is not None and (converted / "SOURCE").is_file():
        click.echo(f"base model {base}: ready")
    else:
        start = time.perf_counter()
        path = resolve_base_path(loaded)
        click.echo(f"base model {base}: ready in {path} ({time.perf_counter() - start:.0f} s)")
    if loaded.settings.models.backend == "llama_cpp":
        from assistant.runtime.gguf_files import runtime_gguf

        click.echo(f"llama.cpp model: ready in {runtime_gguf(loaded)}")
    if skip_indexes:
        return
    from assistant.cli.index import progress_bar

    for pack in list_packs():
        try:
            index = open_index(pack, loaded)
            stats = index.stats()
        except AssistantError as exc:
            click.echo(f"index {pack.name}: skipped ({exc})")
            continue
        if stats.exists and not stats.problem:
            continue
        start = time.perf_counter()
        with progress_bar(True, f"indexing {pack.name}") as progress:
            report = index.rebuild(progress=progress)
        click.echo(
            f"index {pack.name}: built, {report.chunks_total} chunks"
            f" ({time.perf_counter() - start:.0f} s)"
        )
    click.echo("indexes: ready")
