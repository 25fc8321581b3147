"""Command palette (Ctrl+P) entries: switch to any pack, or to auto mode."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from assistant.tui.screens import AUTO


class PackCommands(Provider):
    """ "Use pack: <title>" for every pack, plus "Use auto mode"."""

    def _entries(self) -> list[tuple[str, str, str]]:
        app = self.app
        entries = [(AUTO, "Use auto mode", "the router picks the pack for each question")]
        for info in app.backend_packs():  # type: ignore[attr-defined]
            entries.append((info.name, f"Use pack: {info.title} ({info.name})", info.description))
        return entries

    async def discover(self) -> Hits:
        for name, label, help_text in await self._load():
            yield DiscoveryHit(label, partial(self.app.switch_pack, name), help=help_text[:120])

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, label, help_text in await self._load():
            score = matcher.match(label)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(label),
                    partial(self.app.switch_pack, name),  # type: ignore[attr-defined]
                    help=help_text[:120],
                )

    async def _load(self) -> list[tuple[str, str, str]]:
        import asyncio

        return await asyncio.to_thread(self._entries)
