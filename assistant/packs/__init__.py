"""Domain packs: where they live, their format, validation, scaffolding, archives and info."""
