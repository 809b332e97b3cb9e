"""Embedding: task audio through a model server, split by split."""
