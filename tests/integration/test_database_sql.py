"""``database.sql`` is the models' schema, and a node runs on it.

One fresh MariaDB database is built from ``database.sql``, another from the
models (``metadata.create_all``); both are read back from
``information_schema`` — tables (engine, collation), columns (type,
nullability, default, collation, extra), indexes (name, columns in order,
uniqueness) — and must be equal. A failure prints a unified diff of the two.

Both databases start with a latin1 default, not utf8mb4: ``database.sql`` is
loaded with ``mysql -u USER -p DBNAME < database.sql`` into whatever database
the operator made, so each table must carry its own charset and collation.

The file is loaded through the async engine, one statement at a time (the
driver does not take several statements in one call), so CI needs no mysql
client.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, MetaData, String, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from servidor.almacen import Almacen
from servidor.almacen.modelos import metadata
from servidor.dominio import Dominio
from tests.bd import base_mysql_nueva

DATABASE_SQL = Path(__file__).resolve().parents[2] / "database.sql"


def sentencias(guion: str) -> list[str]:
    """Split a SQL script on ``;``, ignoring those inside quotes and comments.

    Comments (``-- ``, ``#``, ``/* */``) are dropped; quoted text (``'``,
    ``"``, backticks, with backslash escapes) is kept whole.
    """
    resultado: list[str] = []
    actual: list[str] = []
    i, n = 0, len(guion)
    while i < n:
        c = guion[i]
        if c in "'\"`":
            fin = i + 1
            while fin < n and guion[fin] != c:
                fin += 2 if guion[fin] == "\\" and c != "`" else 1
            if fin >= n:
                raise ValueError(f"unterminated {c} quote at offset {i}")
            actual.append(guion[i : fin + 1])
            i = fin + 1
        elif c == "#" or (guion.startswith("--", i) and guion[i + 2 : i + 3] in ("", " ", "\t", "\r", "\n")):
            fin = guion.find("\n", i)
            i = n if fin < 0 else fin
        elif guion.startswith("/*", i):
            fin = guion.find("*/", i + 2)
            if fin < 0:
                raise ValueError(f"unterminated comment at offset {i}")
            actual.append(" ")
            i = fin + 2
        elif c == ";":
            resultado.append("".join(actual).strip())
            actual = []
            i += 1
        else:
            actual.append(c)
            i += 1
    resultado.append("".join(actual).strip())
    return [s for s in resultado if s]


async def ejecutar(url: str, *sql: str) -> None:
    motor = create_async_engine(url)
    try:
        async with motor.begin() as conn:
            for s in sql:
                await conn.exec_driver_sql(s)
    finally:
        await motor.dispose()


async def preparar(url: str) -> None:
    """Give the database a default that the schema must not inherit."""
    await ejecutar(url, "ALTER DATABASE CHARACTER SET latin1 COLLATE latin1_swedish_ci")


async def cargar_database_sql(url: str) -> None:
    await ejecutar(url, *sentencias(DATABASE_SQL.read_text(encoding="utf-8")))


async def crear_modelos(url: str, esquema: MetaData = metadata) -> None:
    motor = create_async_engine(url)
    try:
        async with motor.begin() as conn:
            await conn.run_sync(esquema.create_all)
    finally:
        await motor.dispose()


async def _filas(conn: AsyncConnection, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(f) for f in await conn.execute(text(sql))]


async def describir(url: str) -> list[str]:
    """The schema of a database as comparable lines: per table, its options, columns and indexes."""
    motor = create_async_engine(url)
    try:
        async with motor.connect() as conn:
            tablas = await _filas(
                conn,
                "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = DATABASE()",
            )
            columnas = await _filas(
                conn,
                "SELECT TABLE_NAME, ORDINAL_POSITION, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT,"
                " COLLATION_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
            )
            indices = await _filas(
                conn,
                "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, NON_UNIQUE, INDEX_TYPE"
                " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE()",
            )
    finally:
        await motor.dispose()

    indice: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for t, nombre, *resto in indices:
        indice.setdefault((t, nombre), []).append(tuple(resto))
    lineas = []
    for t, tipo_tabla, engine, coleccion in sorted(tablas):
        lineas.append(f"{t}: {tipo_tabla} ENGINE={engine} COLLATE={coleccion}")
        # Columns in table order, so that a moved column shows in the diff.
        for _, nombre, tipo, nulo, defecto, col, extra in sorted(f[1:] for f in columnas if f[0] == t):
            partes = [tipo, "NULL" if nulo == "YES" else "NOT NULL"]
            partes += [] if defecto is None else [f"DEFAULT {defecto}"]
            partes += [] if col is None else [f"COLLATE {col}"]
            partes += [extra] if extra else []
            lineas.append(f"{t}.{nombre}: {' '.join(partes)}")
        for (_, nombre), claves in sorted(i for i in indice.items() if i[0][0] == t):
            claves.sort()
            cols = ", ".join(c if p is None else f"{c}({p})" for _, c, p, _, _ in claves)
            unico = "NON_UNIQUE" if claves[0][3] else "UNIQUE"
            lineas.append(f"{t} index {nombre} ({cols}) {unico} {claves[0][4]}")
    return lineas


def diferencias(modelos: list[str], fichero: list[str]) -> str:
    return "\n".join(
        difflib.unified_diff(modelos, fichero, "models (metadata.create_all)", "database.sql", lineterm="")
    )


async def esquema_de_database_sql() -> list[str]:
    async with base_mysql_nueva() as url:
        await preparar(url)
        await cargar_database_sql(url)
        return await describir(url)


async def esquema_de_modelos(esquema: MetaData = metadata) -> list[str]:
    async with base_mysql_nueva() as url:
        await preparar(url)
        await crear_modelos(url, esquema)
        return await describir(url)


def test_statements_split_on_semicolons_outside_quotes_and_comments() -> None:
    guion = """
    -- a comment; with a semicolon
    CREATE TABLE a (x VARCHAR(3) DEFAULT ';');  # another; one
    /* block; comment */ INSERT INTO a VALUES ('it''s; \\'fine\\'');
    SELECT `odd;name` FROM a --not-a-comment-without-space
    """
    assert sentencias(guion) == [
        "CREATE TABLE a (x VARCHAR(3) DEFAULT ';')",
        "INSERT INTO a VALUES ('it''s; \\'fine\\'')",
        "SELECT `odd;name` FROM a --not-a-comment-without-space",
    ]


@pytest.mark.mariadb
async def test_database_sql_creates_exactly_the_schema_of_the_models() -> None:
    modelos = await esquema_de_modelos()
    fichero = await esquema_de_database_sql()

    assert len([linea for linea in modelos if ": BASE TABLE " in linea]) == len(metadata.tables)
    if fichero != modelos:
        pytest.fail("database.sql differs from the models:\n" + diferencias(modelos, fichero), pytrace=False)


@pytest.mark.mariadb
async def test_the_comparison_notices_a_model_column_missing_from_database_sql() -> None:
    otra = MetaData()
    for tabla in metadata.sorted_tables:
        tabla.to_metadata(otra)
    otra.tables["clientes"].append_column(Column("apodo", String(100)))

    modelos = await esquema_de_modelos(otra)
    fichero = await esquema_de_database_sql()

    assert fichero != modelos
    assert "-clientes.apodo: varchar(100) NULL DEFAULT NULL COLLATE utf8mb4_bin" in diferencias(modelos, fichero)


@pytest.mark.mariadb
async def test_database_sql_loads_again_over_its_own_schema_without_error() -> None:
    async with base_mysql_nueva() as url:
        await cargar_database_sql(url)
        antes = await describir(url)
        await cargar_database_sql(url)
        assert await describir(url) == antes


@pytest.mark.mariadb
async def test_a_node_store_opens_and_writes_on_a_database_created_only_from_database_sql() -> None:
    async with base_mysql_nueva() as url:
        await cargar_database_sql(url)
        esquema = await describir(url)

        almacen = await Almacen.abrir(url, "nodo1")
        try:
            dominio = Dominio(almacen)
            creado = await dominio.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
            leido = await dominio.obtener_cliente(creado["id"])
            todos = await dominio.listar_clientes()
        finally:
            await almacen.cerrar()

        assert leido == creado
        assert (leido["nombre"], leido["email"]) == ("Ana", "ana@example.com")
        assert [c["id"] for c in todos] == [creado["id"]]
        # Opening runs create_all; it must have found nothing missing.
        assert await describir(url) == esquema
