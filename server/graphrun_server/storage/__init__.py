"""Persistence: the connection pool, migrations, thread/run records and the checkpointer."""
