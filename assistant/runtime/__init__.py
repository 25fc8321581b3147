"""The model runtime: model loading, the streaming generation engines, adapters, GGUF export,
quantization and the embedder."""
