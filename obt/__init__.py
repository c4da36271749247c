"""OBT: a live, auditable registry of the machines that run Ollama."""

__version__ = "0.1.0"
