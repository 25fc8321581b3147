"""`assistant chat`: the Textual chat with one pack, or with every pack in auto mode."""

from __future__ import annotations

import click

from assistant.cli.context import Context, pass_context


@click.command()
@click.argument("pack", required=False)
@click.option("--max-tokens", type=click.IntRange(1, 4096), help="Most tokens in an answer.")
@pass_context
def chat(ctx: Context, pack: str | None, max_tokens: int | None) -> None:
    """Chat with PACK (or, without PACK, let the router pick the pack for each question).

    \b
    Enter sends · Ctrl+J or Shift+Enter: new line · Up/Down: earlier questions
    Esc stops an answer · Ctrl+R regenerates · Ctrl+L picks the pack · Ctrl+N new chat
    Ctrl+O reopens a saved chat · Ctrl+S exports it as Markdown · Ctrl+B shows/hides sources
    Ctrl+G copies the last answer · Ctrl+T light/dark · Ctrl+P command palette · Ctrl+Q quits

    Conversations are saved as you go (history.sqlite in the user data folder).
    """
    loaded = ctx.settings
    if pack is not None:
        from assistant.packs.locate import find_pack

        pack = find_pack(pack).name  # unknown pack: one line with the packs, exit 2
    if max_tokens is None and "env" in loaded.sources.get("generation.max_new_tokens", ""):
        # ASSISTANT_MAX_NEW_TOKENS caps answers in the chat too (packs set their own length).
        max_tokens = loaded.settings.generation.max_new_tokens
    from assistant.history import History
    from assistant.tui.app import ChatApp

    ChatApp(loaded, pack, history=History(), max_tokens=max_tokens).run()
