"""hear-runner: evaluate audio embeddings on HEAR tasks, each model in its own container."""

__version__ = "0.1.0"
