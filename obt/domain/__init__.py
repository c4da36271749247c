"""The domain: events, the client aggregate's rules and liveness. Pure Python, no I/O."""
