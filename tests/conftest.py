"""Shared fixtures: a fresh store, domain and app per test, on each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from servidor.ajustes import Ajustes, Cluster, Nodo
from servidor.almacen import Almacen
from servidor.dominio import Dominio
from tests import credenciales
from tests.bd import BACKENDS, base_nueva


def ajustes_de_prueba(url: str, nodo_id: str = "nodo1", port: int = 5000) -> Ajustes:
    nodo = Nodo(id=nodo_id, host="127.0.0.1", port=port, database=url)
    cluster = Cluster(
        name="pedidos-test",
        secret="secreto-de-prueba",
        max_clock_drift_ms=500,
        nodes=(nodo,),
        ruta=Path("settings.toml"),
        tokens=credenciales.tokens(),
    )
    return Ajustes(cluster=cluster, nodo=nodo)


@pytest.fixture(params=BACKENDS)
async def url_bd(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with base_nueva(request.param, tmp_path) as url:
        yield url


@pytest.fixture
async def almacen(url_bd: str) -> AsyncIterator[Almacen]:
    a = await Almacen.abrir(url_bd, "nodo1")
    try:
        yield a
    finally:
        await a.cerrar()


@pytest.fixture
def dominio(almacen: Almacen) -> Dominio:
    return Dominio(almacen)


@pytest.fixture
async def app(url_bd: str) -> AsyncIterator[Starlette]:
    from servidor.app import crear_app  # imported late: unit tests need no web stack

    aplicacion = crear_app(ajustes_de_prueba(url_bd))
    async with aplicacion.router.lifespan_context(aplicacion):
        yield aplicacion


@pytest.fixture
async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app in this process, sending the admin token (tests of roles send others)."""
    transporte = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transporte, base_url="http://test", headers=credenciales.cabecera()) as c:
        yield c
