"""Fresh databases for tests: a temp SQLite file, or a new MariaDB database.

MariaDB tests read the server URL from ``PEDIDOS_TEST_MYSQL_URL`` (for
example ``mysql+asyncmy://root@127.0.0.1:3306``). Without it they are skipped
with a message saying so, except under CI (``CI`` set), where a missing or
unreachable server fails the run: CI must prove both backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

VARIABLE = "PEDIDOS_TEST_MYSQL_URL"
BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


def url_servidor_mysql() -> str:
    url = os.environ.get(VARIABLE)
    if not url:
        mensaje = f"MariaDB tests need {VARIABLE}, e.g. {VARIABLE}=mysql+asyncmy://root@127.0.0.1:3306 make test"
        if os.environ.get("CI"):
            pytest.fail(mensaje)
        pytest.skip(mensaje)
    return url


@asynccontextmanager
async def base_mysql_nueva() -> AsyncIterator[str]:
    """A new empty database on the test server, dropped afterwards."""
    servidor = make_url(url_servidor_mysql())
    nombre = f"pedidos_t_{uuid.uuid4().hex[:12]}"
    motor = create_async_engine(servidor.set(database=""))
    try:
        async with motor.begin() as conn:
            await conn.execute(text(f"CREATE DATABASE `{nombre}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"))
    except Exception as e:  # noqa: BLE001 - any failure to reach the server is the same verdict
        await motor.dispose()
        pytest.fail(f"MariaDB at {servidor.render_as_string(hide_password=True)} unreachable: {e}")
    try:
        yield servidor.set(database=nombre).render_as_string(hide_password=False)
    finally:
        async with motor.begin() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS `{nombre}`"))
        await motor.dispose()


@asynccontextmanager
async def base_nueva(backend: str, carpeta: Path, nombre: str = "nodo") -> AsyncIterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{carpeta / (nombre + '.db')}"
    else:
        async with base_mysql_nueva() as url:
            yield url
