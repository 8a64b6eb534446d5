"""A store whose database cannot write: the failure is told as one, and forgotten once a write commits."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from servidor.almacen import Almacen, consultas
from servidor.almacen.averia import motivo
from servidor.dominio import Dominio
from servidor.errores import AlmacenNoDisponible

DIRECCION = "Calle Mayor 1, " * 60


@pytest.fixture
async def dominio(tmp_path: Path) -> AsyncIterator[Dominio]:
    almacen = await Almacen.abrir(f"sqlite+aiosqlite:///{tmp_path / 'nodo1.db'}", "nodo1")
    try:
        yield Dominio(almacen)
    finally:
        await almacen.cerrar()


async def _limitar_paginas(almacen: Almacen, maximo: int) -> None:
    """SQLite's own "database or disk is full": the file may not grow past ``maximo`` pages (or its size now)."""

    def pragma(conn: Connection) -> None:
        conn.exec_driver_sql(f"PRAGMA max_page_count = {maximo}")

    await almacen.motores.transaccion(pragma)


def _cliente(n: int) -> dict[str, str]:
    return {"nombre": f"Cliente {n}", "email": f"c{n}@example.com", "direccion": DIRECCION}


async def test_a_full_database_refuses_writes_as_almacen_no_disponible_until_one_commits_again(
    dominio: Dominio,
) -> None:
    almacen = dominio.almacen
    escritos = [(await dominio.crear_cliente(_cliente(0)))["id"]]
    assert almacen.averia is None
    await _limitar_paginas(almacen, 1)  # no page more than it has
    with pytest.raises(AlmacenNoDisponible) as refusal:
        for n in range(1, 500):  # bounded: a few writes fill the last free page
            escritos.append((await dominio.crear_cliente(_cliente(n)))["id"])
    assert refusal.value.codigo == "ALMACEN_NO_DISPONIBLE" and refusal.value.estado_http == 503
    assert refusal.value.detalle == {"motivo": "disk full"}
    assert almacen.averia == "disk full"
    # Reads still work.
    assert len(await almacen.leer(consultas.cambios_de, "nodo1")) > 0

    await _limitar_paginas(almacen, 1_000_000)  # room again
    escritos.append((await dominio.crear_cliente(_cliente(999)))["id"])
    assert almacen.averia is None
    for ident in escritos:  # every acknowledged write is there
        assert (await dominio.obtener_cliente(ident))["id"] == ident


async def test_a_failed_write_for_another_reason_does_not_mark_the_store(dominio: Dominio) -> None:
    with pytest.raises(Exception):  # noqa: B017 - a validation error, whatever its class
        await dominio.crear_cliente({"nombre": "", "email": "no"})
    assert dominio.almacen.averia is None


@pytest.mark.parametrize(
    ("error", "dice"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "disk full"),
        (OSError(errno.EIO, "Input/output error"), "I/O error"),
        (OSError(errno.EROFS, "Read-only file system"), "read-only file system"),
    ],
)
def test_os_level_storage_errors_are_named(error: OSError, dice: str) -> None:
    assert motivo(error) == dice
    envuelto = OperationalError("COMMIT", {}, error)
    assert motivo(envuelto) == dice
    try:
        try:
            raise error
        except OSError:
            raise RuntimeError("no such savepoint") from None
    except RuntimeError as despues:
        assert motivo(despues) == dice  # found as the context of a later error


def test_other_errors_are_not_storage_failures() -> None:
    assert motivo(sqlite3.OperationalError("database is locked")) is None
    assert motivo(ConnectionRefusedError(errno.ECONNREFUSED, "refused")) is None
    assert motivo(ValueError("bad")) is None
