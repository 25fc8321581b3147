"""Helpers that turn /work/shared/corpora into the content of the shipped domain packs."""
