"""Scripted evaluation of packs: the run, the metrics and the report."""
