"""The OBT agent: finds the local Ollama, watches it and reports to the OBT server."""
