"""The `assistant` command line: a click group whose subcommands live in sibling modules."""

from assistant.cli.app import main

__all__ = ["main"]
