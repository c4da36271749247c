"""Ollama's rules for model names: the one rule in obt/domain/model_names.py, which the server
also checks a fleet operation's model with (the agent already imports obt.domain, see digest.py)."""

from obt.domain.model_names import MAX_NAME_LENGTH, is_valid_model_name

__all__ = ["MAX_NAME_LENGTH", "is_valid_model_name"]
