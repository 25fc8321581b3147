"""assistant: local, offline small domain experts (domain packs, retrieval, LoRA style adapters)."""

import os

# Nothing is ever fetched from a model hub: every model comes from a package or a local folder.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

__version__ = "0.1.0"


def __getattr__(name: str):  # lazy, so `import assistant` stays cheap for the CLI
    if name == "Assistant":
        from assistant.api import Assistant

        return Assistant
    raise AttributeError(name)
