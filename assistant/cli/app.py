"""The root command group: the --config option, the subcommands, and the one place where an
error becomes a line on stderr and an exit code."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from assistant.cli.commands import COMMANDS
from assistant.cli.context import INTERRUPTED_EXIT, Context
from assistant.errors import AssistantError


class AssistantGroup(click.Group):
    """Turns an AssistantError into `error: <message>` on one stderr line and the error's exit
    code (2 the user's mistake, 3 damaged data, 4 a missing dependency); Ctrl-C into 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AssistantError as exc:
            message = " ".join(str(exc).splitlines())
            click.secho(f"error: {message}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(INTERRUPTED_EXIT)


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.secho(record.getMessage(), err=True, dim=True)


@click.group(cls=AssistantGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path),
    help="Extra settings file (TOML) applied over the defaults and the user config.",
)
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """assistant: small, offline domain experts on your own machine.

    A domain pack bundles documents (searched with a FAISS index), a LoRA style adapter and
    evaluation questions; one small base model answers for every pack, citing its sources.
    """
    handler = _StderrHandler()
    logger = logging.getLogger("assistant")
    logger.handlers = [handler]
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    ctx.obj = Context(config_file)


for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli()
