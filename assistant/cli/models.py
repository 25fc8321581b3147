"""`assistant models`: the configured base model and every known one (installed or not, and how
to install it; its GGUF, the wheels it came from and whether its SHA-256 was checked; its
license), how long the configured one takes to load, and the embedder."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from assistant.cli.context import Context, pass_context
from assistant.settings import LoadedSettings


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_context
def models(ctx: Context, as_json: bool) -> None:
    """Show the base models (the configured one and every known one) and the embedder:
    installed or not, files, sources, licenses and load times."""
    loaded = ctx.settings
    report = {
        "configured": _configured(loaded),
        "bases": _bases(loaded),
        "embedder": _embedder(loaded),
    }
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print(report)


def _bases(loaded: LoadedSettings) -> list[dict[str, Any]]:
    """One row per known base, and one for the configured base if it is the user's own."""
    from assistant.runtime.bases import BASES, installed, joined_path

    configured = loaded.settings.models.base_model
    rows = []
    for base in BASES.values():
        joined = joined_path(base, loaded) if base.joined else None
        verified = joined is not None and joined.is_file()  # published only when it matched
        rows.append(
            {
                "name": base.name,
                "model": base.model,
                "configured": base.name == configured,
                "installed": installed(base, loaded),
                "install": base.install,
                "bytes": base.size,
                "license": base.license,
                "source": base.source,
                "packages": base.packages,
                "joined_file": str(joined) if verified else None,
                "sha256": base.sha256,
                "sha256_verified": verified,
            }
        )
    if configured not in BASES:
        rows.append(
            {"name": configured, "configured": True, "installed": Path(configured).exists()}
        )
    return rows


def _configured(loaded: LoadedSettings) -> dict[str, Any]:
    """The configured base as the configured engine loads it, prepared first (joined and
    converted once) so the load time is that of every later start."""
    from assistant.errors import MissingDependencyError
    from assistant.fsio import folder_size
    from assistant.runtime.engine import generator_for
    from assistant.runtime.llama_engine import LlamaCppGenerator
    from assistant.runtime.models import resolve_base_path

    models_settings = loaded.settings.models
    row: dict[str, Any] = {"name": models_settings.base_model, "backend": models_settings.backend}
    try:
        path = resolve_base_path(loaded)
    except MissingDependencyError as exc:
        return {**row, "path": None, "bytes": None, "load_seconds": None, "error": str(exc)}
    engine = generator_for(loaded)
    if isinstance(engine, LlamaCppGenerator):
        from assistant.runtime.gguf_files import runtime_gguf

        path = runtime_gguf(loaded)
    else:
        row["backend"] = "transformers"  # also where llama.cpp cannot run here
    engine.warm_up([])  # loads it, unless this process already has (then its load time stays)
    size = path.stat().st_size if path.is_file() else folder_size(path)
    return {**row, "path": str(path), "bytes": size, "load_seconds": round(engine.load_seconds, 3)}


def _embedder(loaded: LoadedSettings) -> dict[str, Any]:
    from assistant.fsio import folder_size
    from assistant.runtime.models import load_embedder, resolve_embedder_path

    start = time.perf_counter()
    embedder = load_embedder(loaded)
    seconds = _seconds(start)
    path = resolve_embedder_path(loaded)
    return {
        "name": loaded.settings.models.embedder,
        "runtime": loaded.settings.models.embedder_runtime,
        "path": str(path),
        "bytes": folder_size(path),
        "dimension": embedder.get_embedding_dimension(),
        "load_seconds": seconds,
    }


def _seconds(start: float) -> float:
    return round(time.perf_counter() - start, 3)


def _megabytes(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.0f} MB"


def _print(report: dict[str, Any]) -> None:
    console = Console(highlight=False)
    table = Table(title="Base models", title_justify="left")
    for column in ("base", "model", "installed", "size", "from", "license"):
        table.add_column(column)
    for row in report["bases"]:
        if "model" not in row:  # the user's own folder or file
            table.add_row(f"{row['name']} *", "your own", "yes" if row["installed"] else "no")
            continue
        packages = row["packages"]
        wheels = packages[0] if len(packages) == 1 else f"{packages[0]} … {packages[-1]}"
        source = f"{wheels} ({len(packages)} wheel{'s' if len(packages) > 1 else ''})"
        if row["sha256_verified"]:
            source += ", joined, SHA-256 verified"
        table.add_row(
            f"{row['name']} *" if row["configured"] else row["name"],
            row["model"],
            "yes" if row["installed"] else "no",
            _megabytes(row["bytes"]),
            source,
            row["license"],
        )
    console.print(table)
    configured = report["configured"]
    if configured["load_seconds"] is None:
        console.print(f"* configured: {configured['name']}: {configured['error']}", soft_wrap=True)
    else:
        console.print(
            f"* configured: {configured['name']}, loaded by {configured['backend']} in"
            f" {configured['load_seconds']:.2f} s from {configured['path']}",
            soft_wrap=True,
        )
    for row in report["bases"]:
        if not row["installed"] and "install" in row:
            console.print(f"to install {row['name']}: {row['install']}", soft_wrap=True)
    embedder = report["embedder"]
    console.print(
        f"embedder: {embedder['name']} ({embedder['runtime']}, {_megabytes(embedder['bytes'])}),"
        f" loaded in {embedder['load_seconds']:.2f} s from {embedder['path']}",
        soft_wrap=True,
    )
