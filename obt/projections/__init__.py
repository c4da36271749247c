"""Projectors: one read model each, the checkpointing runner, rebuild."""
