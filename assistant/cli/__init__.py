"""The `assistant` command line: the root click group (`app.py`) and its subcommands, one
module per command family, listed in `commands.py`."""

from assistant.cli.app import cli, main

__all__ = ["cli", "main"]
