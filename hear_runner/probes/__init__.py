"""Probes: small downstream models trained on frozen embeddings."""
