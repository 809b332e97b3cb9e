"""Engines: where a model server runs (a Docker container, or a local process)."""
