"""Plain SQL straight to the driver, for the statements on every write's path.

SQLAlchemy Core costs about 100-200 µs a statement in Python before the
driver is called (cache keys, parameter processing, result wrappers); the
driver itself answers a by-key ``SELECT`` on SQLite in a few µs. An order
takes a dozen such statements, so the paths every order and every merge
take (``apply``, stamping, the readers a write uses) talk to the DBAPI
cursor of the same ``Connection`` directly, inside the same transaction.
Everything else stays Core.

SQL here is written with ``?`` placeholders and ``{en}`` where an ``IN``
list goes; :class:`Crudo` turns them into the driver's paramstyle (``%s``
for asyncmy) once per shape. Column values cross without SQLAlchemy's type
processing, so money and booleans are converted here: :func:`dinero` on the
way in, :func:`a_dinero` on the way out. The engine's
``before_cursor_execute`` listeners still see every statement (that is how
tests and ``bench.lista`` count them).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

CENTIMO = Decimal("0.01")
# Ids per IN list: enough that a page of 1,000 orders (its clients, items and products)
# takes one statement each, within SQLite's limit of 32,766 bound values.
TROZO = 5000


def dinero(valor: Any) -> str | None:
    """Money as both backends store it exactly: text on SQLite, parsed by MySQL into DECIMAL(12,2)."""
    return None if valor is None else str(Decimal(valor).quantize(CENTIMO))


def a_dinero(valor: Any) -> Decimal | None:
    return None if valor is None else Decimal(valor).quantize(CENTIMO)


def trozos(valores: Sequence[Any], n: int = TROZO) -> Iterable[Sequence[Any]]:
    for i in range(0, len(valores), n):
        yield valores[i : i + n]


def crudo(conn: Connection) -> Crudo:
    """The driver cursor of ``conn``, made once per DBAPI connection and reused.

    Outside a transaction it begins one, so that several reads see one
    snapshot, as they would through Core. The engine's listeners are looked
    up here, once per use rather than once per statement.
    """
    if not conn.in_transaction():
        conn.begin()
    c: Crudo | None = conn.info.get("crudo")
    if c is None or c.conn is not conn:
        c = conn.info["crudo"] = Crudo(conn)
    escuchas = conn.dispatch.before_cursor_execute
    c.escuchas = escuchas if escuchas else None
    return c


@functools.lru_cache(maxsize=4096)
def _texto(sql: str, n: int, formato: bool) -> str:
    if "{en}" in sql:
        sql = sql.replace("{en}", "(" + ",".join("?" * n) + ")")
    return sql.replace("?", "%s") if formato else sql


class Crudo:
    """The DBAPI cursor of ``conn``, in its open transaction (get one with :func:`crudo`)."""

    __slots__ = ("conn", "cur", "escuchas", "formato")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.formato = conn.dialect.paramstyle in ("format", "pyformat")
        self.cur = conn.connection.cursor()
        self.escuchas: Any = None

    def _correr(self, sql: str, n: int, params: Any, muchas: bool = False) -> None:
        texto = _texto(sql, n, self.formato)
        if self.escuchas:
            for fn in self.escuchas:
                texto, params = fn(self.conn, self.cur, texto, params, None, muchas)
        if muchas:
            self.cur.executemany(texto, params)
        else:
            self.cur.execute(texto, params)

    def ejecutar(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._correr(sql, 0, params)

    def filas(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self._correr(sql, 0, params)
        return list(self.cur.fetchall())

    def muchas(self, sql: str, filas: Sequence[Sequence[Any]]) -> None:
        if filas:
            self._correr(sql, 0, filas, muchas=True)

    def en(self, sql: str, claves: Iterable[Any], *antes: Any) -> list[Any]:
        """Rows of ``sql`` whose ``{en}`` list holds ``claves`` (in parts), after parameters ``antes``."""
        resultado: list[Any] = []
        for parte in trozos(sorted(set(claves))):
            self._correr(sql, len(parte), (*antes, *parte))
            resultado.extend(self.cur.fetchall())
        return resultado

    def en_sin_filas(self, sql: str, claves: Iterable[Any], *antes: Any) -> None:
        for parte in trozos(sorted(set(claves))):
            self._correr(sql, len(parte), (*antes, *parte))
