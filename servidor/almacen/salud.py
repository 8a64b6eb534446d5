"""The health probe's one read: does the database answer?

Kept in the store so that the health route, like every other route, issues
no SQL of its own.
"""

from __future__ import annotations

from sqlalchemy import literal, select
from sqlalchemy.engine import Connection


def comprobar(conn: Connection) -> None:
    """Round-trip a trivial statement; raise whatever the driver raises."""
    conn.execute(select(literal(1)))
