"""Every subcommand of `assistant`, in the one list the root group adds (`assistant.cli.app`).

The command modules define their click commands without knowing the root group, so nothing
registers itself on import.
"""

from __future__ import annotations

import click

from assistant.cli.ask import ask
from assistant.cli.chat import chat
from assistant.cli.engine import engine
from assistant.cli.eval import eval_command
from assistant.cli.index import index
from assistant.cli.info import config_command, setup, version
from assistant.cli.models import models
from assistant.cli.pack import pack
from assistant.cli.serve import serve
from assistant.cli.train import train

COMMANDS: tuple[click.Command, ...] = (
    ask,
    chat,
    config_command,
    engine,
    eval_command,
    index,
    models,
    pack,
    serve,
    setup,
    train,
    version,
)
