"""What the subcommands share: the per-invocation state (the --config file and the settings it
gives) and the exit code of an interrupted run."""

from __future__ import annotations

from pathlib import Path

import click

from assistant.settings import LoadedSettings, load_settings

INTERRUPTED_EXIT = 130  # the shell's code for a process stopped by Ctrl-C (128 + SIGINT)


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
