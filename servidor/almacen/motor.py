"""Opening a node's database: SQLite (aiosqlite) or MySQL/MariaDB (asyncmy).

SQLite runs in WAL mode with ``synchronous=FULL`` (a commit is on disk
before the client hears "ok") and a busy timeout. Writes go through their own
single connection that opens transactions with ``BEGIN IMMEDIATE``, so a
write never has to upgrade a read lock halfway; reads use a separate pool
and never wait for the writer.

On MySQL/MariaDB the database is created if missing, and both roles share
one pool with ``pool_pre_ping``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from servidor.almacen.modelos import metadata

log = logging.getLogger(__name__)


@dataclass
class Motores:
    escritura: AsyncEngine
    lectura: AsyncEngine
    dialecto: str

    async def cerrar(self) -> None:
        await self.escritura.dispose()
        if self.lectura is not self.escritura:
            await self.lectura.dispose()


async def abrir(url: str) -> Motores:
    """Open the engines for ``url`` and create the schema where it is missing."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        motores = _abrir_sqlite(url)
    elif u.get_backend_name() in ("mysql", "mariadb"):
        motores = await _abrir_mysql(url)
    else:
        raise ValueError(f"unsupported database URL {u.render_as_string(hide_password=True)}")
    async with motores.escritura.begin() as conn:
        await conn.run_sync(metadata.create_all)
    return motores


def _abrir_sqlite(url: str) -> Motores:
    ruta = make_url(url).database
    if ruta and ruta != ":memory:":
        Path(ruta).parent.mkdir(parents=True, exist_ok=True)

    def preparar(inmediato: bool) -> AsyncEngine:
        motor = create_async_engine(url, pool_size=1 if inmediato else 4, max_overflow=0)

        @event.listens_for(motor.sync_engine, "connect")
        def _al_conectar(dbapi: Any, _registro: Any) -> None:
            # Take transaction control away from the driver so that BEGIN is ours.
            dbapi.isolation_level = None
            cursor = dbapi.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()

        @event.listens_for(motor.sync_engine, "begin")
        def _al_empezar(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if inmediato else "BEGIN")

        return motor

    return Motores(escritura=preparar(True), lectura=preparar(False), dialecto="sqlite")


async def _abrir_mysql(url: str) -> Motores:
    u = make_url(url)
    if "charset" not in u.query:
        u = u.update_query_dict({"charset": "utf8mb4"})
    if u.database:
        servidor = create_async_engine(u.set(database=""), pool_pre_ping=True)
        try:
            async with servidor.begin() as conn:
                await conn.execute(
                    text(f"CREATE DATABASE IF NOT EXISTS `{u.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                )
        finally:
            await servidor.dispose()
    motor = create_async_engine(u, pool_pre_ping=True, pool_size=5, pool_recycle=3600)
    return Motores(escritura=motor, lectura=motor, dialecto="mysql")
