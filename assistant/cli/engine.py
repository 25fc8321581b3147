"""`assistant engine prepare|run`: a generation engine that serves every pack's adapter, for
`models.backend = "openai"` (one engine shared by many `assistant serve` workers or machines;
see docs/deploy.md)."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import click

from assistant.cli.context import Context, pass_context
from assistant.cli.serve import LOOPBACK
from assistant.errors import AssistantError

DIR_OPTION = click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path, file_okay=False),
    help="The engine's folder (default: engine/ in the cache folder).",
)


def _folder(ctx: Context, folder: Path | None) -> Path:
    from assistant.settings import cache_dir

    return folder if folder is not None else cache_dir(ctx.settings.settings) / "engine"


@click.group()
def engine() -> None:
    """Serve the packs' model from an engine other processes share."""


@engine.command()
@DIR_OPTION
@pass_context
def prepare(ctx: Context, folder: Path | None) -> None:
    """Write every pack's adapter in the engines' formats and print their launch lines.

    \b
    lora/PACK-HASH.gguf   for llama.cpp's server (and `assistant engine run`)
    peft/PACK/            for vLLM's --lora-modules
    launch.txt            the lines printed here
    Run it again after training a pack, and restart the engine.
    """
    from assistant.packs.locate import list_packs
    from assistant.runtime.engine_files import prepare_engine

    prepared = prepare_engine(_folder(ctx, folder), list_packs(), ctx.settings)
    click.echo(f"Prepared {len(prepared.loras)} adapter(s) in {prepared.folder}")
    for name, reason in prepared.skipped:
        click.secho(f"  skipped {name}: {reason}", fg="yellow", err=True)
    click.echo(prepared.launch_text(), nl=False)


@engine.command()
@DIR_OPTION
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--slots",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Answers generated at once (each has its own context).",
)
@pass_context
def run(ctx: Context, folder: Path | None, host: str, port: int, slots: int) -> None:
    """Run llama.cpp's server (from the installed xllamacpp wheel) on the prepared adapters.

    Requests must carry `Authorization: Bearer KEY` when the environment variable named by
    models.api_key_env (ASSISTANT_ENGINE_API_KEY) is set. Stops on Ctrl-C or SIGTERM.
    """
    from assistant.runtime.engine_files import prepared_loras
    from assistant.runtime.llama_engine import build_server

    models = ctx.settings.settings.models
    key = os.environ.get(models.api_key_env)
    if host not in LOOPBACK and not key:
        raise AssistantError(
            f"refusing to serve the engine on {host} without a key: set {models.api_key_env}"
        )
    loras = prepared_loras(_folder(ctx, folder))
    server = build_server(
        ctx.settings,
        [str(path) for path in loras],
        api_keys=[key] if key else [],
        host=host,
        port=port,
        slots=slots,
    )
    click.secho(
        f"engine serving {len(loras)} adapter(s) on {server.listening_address}"
        f" ({slots} slots); Ctrl-C stops it",
        err=True,
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    del server
