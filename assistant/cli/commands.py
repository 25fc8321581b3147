"""Imports every command module so each registers its subcommands on the root group."""

from assistant.cli import ask, chat, eval, index, info, pack, serve, train  # noqa: F401
