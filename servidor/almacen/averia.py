"""Storage failures: the database could not write for reasons of its own.

A write can fail because the request is wrong (a domain error), because of
a bug, or because the database cannot store anything right now: the disk is
full, the file system answers I/O errors or went read-only, the file cannot
be opened. Only the last kind says something about the node rather than the
request, and it passes by itself once space is freed, so it is told apart:
:func:`motivo` names it in a few fixed words (never the driver's message),
the store answers the write with ``ALMACEN_NO_DISPONIBLE`` (503) and keeps
the reason for the health route until a write commits again
(``Almacen.averia``).

Recognised: SQLite's ``SQLITE_FULL``, ``SQLITE_IOERR``, ``SQLITE_CANTOPEN``
and ``SQLITE_READONLY`` (with their extended codes); MySQL/MariaDB's disk
full (1021), table full (1114) and write errors (3); and an ``OSError`` with
``ENOSPC``, ``EDQUOT``, ``EIO`` or ``EROFS``. The error may come bare from
the driver (the hot path's plain SQL, ``crudo``), wrapped by SQLAlchemy
(``.orig``), or as the cause or context of another one (a savepoint that
cannot be rolled back to after the transaction was lost).
"""

from __future__ import annotations

import errno
import sqlite3

# SQLite's primary result codes (the low byte of an extended one).
_SQLITE = {
    sqlite3.SQLITE_FULL: "disk full",
    sqlite3.SQLITE_IOERR: "I/O error",
    sqlite3.SQLITE_CANTOPEN: "cannot open the database file",
    sqlite3.SQLITE_READONLY: "the database file is read-only",
}
_MYSQL = {1021: "disk full", 1114: "table full", 3: "error writing a file"}
_OS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EIO: "I/O error",
    errno.EROFS: "read-only file system",
}
_DRIVERS_MYSQL = ("asyncmy", "pymysql", "MySQLdb")


def motivo(error: BaseException) -> str | None:
    """Why the database could not store, when ``error`` says so; else None."""
    vistos: set[int] = set()
    pendientes: list[BaseException | None] = [error]
    while pendientes:
        e = pendientes.pop()
        if e is None or id(e) in vistos:
            continue
        vistos.add(id(e))
        propio = _propio(e)
        if propio is not None:
            return propio
        orig = getattr(e, "orig", None)
        pendientes += [orig if isinstance(orig, BaseException) else None, e.__cause__, e.__context__]
    return None


def _propio(e: BaseException) -> str | None:
    if isinstance(e, sqlite3.Error):
        codigo = getattr(e, "sqlite_errorcode", None)
        return _SQLITE.get(codigo & 0xFF) if isinstance(codigo, int) else None
    if type(e).__module__.startswith(_DRIVERS_MYSQL) and e.args and isinstance(e.args[0], int):
        return _MYSQL.get(e.args[0])
    if isinstance(e, OSError) and e.errno is not None:
        return _OS.get(e.errno)
    return None
