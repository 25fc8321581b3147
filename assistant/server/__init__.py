"""`assistant serve`: the packs behind an OpenAI-compatible HTTP API (FastAPI + uvicorn).

`create_app(router)` builds the app; one worker thread owns the generator (`queue.py`), a
bounded queue in front of it answers 503 when full. See docs/serve.md.
"""

from assistant.server.app import create_app

__all__ = ["create_app"]
