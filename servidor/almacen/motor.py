"""Opening a node's database: SQLite or MySQL/MariaDB, and running SQL on it.

All SQL of the store is plain synchronous SQLAlchemy code taking a
``Connection``; :class:`Motores` runs it from the event loop:

- writes (:meth:`Motores.transaccion`): on SQLite, a whole transaction runs
  on one dedicated thread with a synchronous pysqlite connection, one hop
  for the transaction rather than one per statement (each hop to
  aiosqlite's thread and back costs more than the statement itself). The
  transaction opens with ``BEGIN IMMEDIATE``, in WAL mode with
  ``synchronous=FULL`` (a commit is on disk before the client hears "ok").
  A transaction that only merges peers' changes (``duradera=False``) commits
  with ``synchronous=NORMAL``: no fsync of its own. The log is sequential, so
  the next durable commit syncs it too, and a crash can only lose merged
  changes no local write has built on yet, which the peers still hold and
  send again (the version vector is read back from the log at start).
  On MySQL/MariaDB it runs through asyncmy with ``run_sync``.
- reads (:meth:`Motores.leer`): through the async engine's pool
  (aiosqlite or asyncmy) with ``run_sync``, never waiting for the writer.

On MySQL/MariaDB the database is created if missing; both roles share one
pool with ``pool_pre_ping``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from servidor.almacen.modelos import metadata

log = logging.getLogger(__name__)


T = TypeVar("T")


@dataclass
class Motores:
    lectura: AsyncEngine
    dialecto: str
    escritura: AsyncEngine | None = None  # MySQL: the one pool; SQLite: None
    escritor: Engine | None = None  # SQLite: synchronous, used only on ``hilo``
    hilo: ThreadPoolExecutor | None = None
    sincronia: dict[str, str] = field(default_factory=lambda: {"pedida": "FULL"})  # SQLite: see the docstring
    # SQLite: the writer's connection, kept checked out on ``hilo`` (no pool round trip,
    # and no reset rollback, per transaction).
    _conexion: Connection | None = None

    async def transaccion(
        self, cuerpo: Callable[[Connection], T], confirmado: Callable[[T], None] | None = None, duradera: bool = True
    ) -> T:
        """Run ``cuerpo`` in one write transaction: committed if it returns, rolled back if it raises.

        ``confirmado`` runs right after the commit, before anything else is
        written, with what ``cuerpo`` returned, even if the caller was
        cancelled meanwhile: what the node keeps in memory follows the disk.
        ``duradera=False`` lets SQLite skip the fsync (merges only; see above).
        """
        if self.escritor is not None and self.hilo is not None:
            escritor = self.escritor
            sincronia = self.sincronia

            def correr() -> T:
                sincronia["pedida"] = "FULL" if duradera else "NORMAL"
                if self._conexion is None or self._conexion.closed:
                    self._conexion = escritor.connect()
                conn = self._conexion
                try:
                    with conn.begin():
                        resultado = cuerpo(conn)
                except BaseException:
                    _salir_de_transaccion(conn)
                    raise
                if confirmado is not None:
                    confirmado(resultado)
                return resultado

            return await asyncio.get_running_loop().run_in_executor(self.hilo, correr)
        assert self.escritura is not None
        async with self.escritura.begin() as conn:
            resultado = await conn.run_sync(cuerpo)
        if confirmado is not None:
            confirmado(resultado)
        return resultado

    async def leer(self, lector: Callable[..., T], *args: Any, **kw: Any) -> T:
        async with self.lectura.connect() as conn:
            return await conn.run_sync(lector, *args, **kw)

    async def cerrar(self) -> None:
        await self.lectura.dispose()
        if self.escritura is not None and self.escritura is not self.lectura:
            await self.escritura.dispose()
        if self.escritor is not None and self.hilo is not None:
            escritor = self.escritor

            def soltar() -> None:
                if self._conexion is not None:
                    self._conexion.close()
                escritor.dispose()

            await asyncio.get_running_loop().run_in_executor(self.hilo, soltar)
            self.hilo.shutdown(wait=True)


def _salir_de_transaccion(conn: Connection) -> None:
    """Leave SQLite's transaction if a failed transaction left the writer's connection in it.

    A COMMIT that fails (disk full, I/O error) may leave SQLite inside the
    transaction, and SQLAlchemy does not roll back after a failed commit:
    the next ``BEGIN IMMEDIATE`` would fail ("cannot start a transaction
    within a transaction") long after the disk has room again.
    """
    try:
        dbapi = conn.connection.dbapi_connection
        if dbapi is not None and getattr(dbapi, "in_transaction", False):
            dbapi.rollback()
    except Exception:  # noqa: BLE001 - the original failure is the one to report
        log.warning("could not roll back the writer's connection after a failed transaction", exc_info=True)


async def abrir(url: str) -> Motores:
    """Open the engines for ``url`` and create the schema where it is missing."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        motores = _abrir_sqlite(url)
    elif u.get_backend_name() in ("mysql", "mariadb"):
        motores = await _abrir_mysql(url)
    else:
        raise ValueError(f"unsupported database URL {u.render_as_string(hide_password=True)}")
    await motores.transaccion(metadata.create_all)
    return motores


def _abrir_sqlite(url: str) -> Motores:
    u = make_url(url)
    ruta = u.database
    if ruta and ruta != ":memory:":
        Path(ruta).parent.mkdir(parents=True, exist_ok=True)

    sincronia = {"pedida": "FULL", "actual": "FULL"}

    def preparar(motor: Engine, inicio: str, escritor: bool = False) -> None:
        @event.listens_for(motor, "connect")
        def _al_conectar(dbapi: Any, _registro: Any) -> None:
            # Take transaction control away from the driver so that BEGIN is ours.
            dbapi.isolation_level = None
            cursor = dbapi.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.execute("PRAGMA foreign_keys=OFF")
            cursor.close()
            if escritor:
                sincronia["actual"] = "FULL"

        @event.listens_for(motor, "begin")
        def _al_empezar(conn: Any) -> None:
            if escritor and sincronia["pedida"] != sincronia["actual"]:
                conn.exec_driver_sql(f"PRAGMA synchronous={sincronia['pedida']}")
                sincronia["actual"] = sincronia["pedida"]
            conn.exec_driver_sql(inicio)

    lectura = create_async_engine(url, pool_size=4, max_overflow=0)
    preparar(lectura.sync_engine, "BEGIN")
    # One connection, only ever used on the one writer thread.
    escritor = create_engine(u.set(drivername="sqlite+pysqlite"), pool_size=1, max_overflow=0)
    preparar(escritor, "BEGIN IMMEDIATE", escritor=True)
    hilo = ThreadPoolExecutor(max_workers=1, thread_name_prefix="escritor-sqlite")
    return Motores(lectura=lectura, dialecto="sqlite", escritor=escritor, hilo=hilo, sincronia=sincronia)


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
    return Motores(lectura=motor, dialecto="mysql", escritura=motor)
