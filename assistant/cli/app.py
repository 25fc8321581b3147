"""The root command group, shared options and the one-line error handling."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from assistant.errors import AssistantError
from assistant.settings import LoadedSettings, load_settings


class Context:
    """Per-invocation state: the config file given with --config; settings load lazily."""

    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file
        self._settings: LoadedSettings | None = None

    @property
    def settings(self) -> LoadedSettings:
        if self._settings is None:
            self._settings = load_settings(self.config_file)
        return self._settings


pass_context = click.make_pass_decorator(Context)


class AssistantGroup(click.Group):
    """Turns AssistantError into one line on stderr and exit code 2; Ctrl-C into exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AssistantError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)


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


def main() -> None:
    from assistant.cli import commands  # noqa: F401  (registers the subcommands)

    cli()
