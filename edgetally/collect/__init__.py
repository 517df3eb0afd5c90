"""`edge collect`, the fleet side: every device's counts from MQTT into PostgreSQL or SQLite, exactly once.

Server-side only (it may import a PostgreSQL driver, never torch or a runtime). Modules:
``messages`` (what is accepted from the wire), ``store`` (the rules every database shares),
``sqlite_store`` / ``postgres_store`` (the SQL), ``schema`` (tables and views), ``spool`` (while
the database is away), ``collector`` (MQTT 5 in, batches out, acks last), ``metrics``.
docs/collect.md is the user's guide and the interval-count contract with the devices.
"""

from __future__ import annotations
