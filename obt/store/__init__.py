"""The event log and read-model store: ports, codec, and the memory, SQLite and MongoDB adapters."""
