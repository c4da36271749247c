"""Stand-ins for programs the tests cannot run here (Ollama)."""
