"""The Textual chat (`assistant chat`): `ChatApp` in app.py, its widgets, screens and app.tcss."""
