"""Runs over a Ray cluster (`hear run --ray`): the driver\x27s side and what runs on each node."""
