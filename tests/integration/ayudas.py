"""Helpers of the REST tests: entities made over HTTP, and the change log read back.

The change log is the truth (``docs/DESIGN.md``), so "changes nothing" is checked
there: :func:`sin_cambios` asserts that the log did not grow, and
:func:`registro` answers this node's changes for checking that they are
gap-free and stamped in increasing order.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette

from servidor.almacen import ResultadoFusion, consultas
from sync import reglas
from sync.cambios import Cambio

NODO = "nodo1"


async def cuenta_cambios(app: Starlette) -> int:
    return await app.state.almacen.leer(consultas.cuenta_cambios)


async def registro(app: Starlette, origen: str = NODO) -> list[Any]:
    """This node's changes, in seq order, checked gap-free with stamps that never go back."""
    filas = await app.state.almacen.leer(consultas.cambios_de, origen)
    assert [f.seq for f in filas] == list(range(1, len(filas) + 1)), "seq has gaps or repeats"
    hlcs = [f.hlc for f in filas]
    assert all(a <= b for a, b in zip(hlcs, hlcs[1:], strict=False)), "hlc goes back"
    return filas


@asynccontextmanager
async def sin_cambios(app: Starlette) -> AsyncIterator[None]:
    """Assert that whatever runs inside writes nothing to the change log."""
    antes = await cuenta_cambios(app)
    yield
    assert await cuenta_cambios(app) == antes, "a refused request wrote to the change log"


@asynccontextmanager
async def escribe(app: Starlette, *claves: str) -> AsyncIterator[list[Any]]:
    """Collect the changes written inside; assert there are some, all about ``claves`` if given.

    The list is filled on exit, so read it after the ``async with`` block.
    """
    antes = len(await registro(app))
    nuevos: list[Any] = []
    yield nuevos
    nuevos.extend((await registro(app))[antes:])
    assert nuevos, "a successful write is missing from the change log"
    if claves:
        assert {c.clave for c in nuevos} <= set(claves), f"changes outside {claves}: {nuevos}"


def valores(cambios: list[Any], entidad: str, campo: str) -> list[Any]:
    """Decoded values written to ``entidad.campo``, in order."""
    return [json.loads(c.valor) for c in cambios if c.entidad == entidad and c.campo == campo]


def error(respuesta: httpx.Response, estado_http: int, codigo: str) -> dict[str, Any]:
    """Assert the error answer's status, shape and code; answer its ``detalle``."""
    assert respuesta.status_code == estado_http, respuesta.text
    assert respuesta.headers["content-type"].startswith("application/json")
    cuerpo = respuesta.json()
    assert set(cuerpo) == {"error"}
    assert set(cuerpo["error"]) == {"codigo", "mensaje", "detalle"}
    assert cuerpo["error"]["codigo"] == codigo, cuerpo
    assert isinstance(cuerpo["error"]["mensaje"], str) and cuerpo["error"]["mensaje"]
    detalle: dict[str, Any] = cuerpo["error"]["detalle"]
    return detalle


async def crear_cliente(http: httpx.AsyncClient, **campos: Any) -> dict[str, Any]:
    datos = {"nombre": "Ana Pérez", "email": "ana@example.com", **campos}
    r = await http.post("/api/clientes", json=datos)
    assert r.status_code == 201, r.text
    cliente: dict[str, Any] = r.json()
    return cliente


async def crear_producto(http: httpx.AsyncClient, **campos: Any) -> dict[str, Any]:
    datos = {"nombre": "Taza", "precio": "12.50", "stock": 10, **campos}
    r = await http.post("/api/productos", json=datos)
    assert r.status_code == 201, r.text
    producto: dict[str, Any] = r.json()
    return producto


async def crear_pedido(http: httpx.AsyncClient, cliente_id: str, *lineas: tuple[str, int]) -> dict[str, Any]:
    items = [{"producto_id": pid, "cantidad": n} for pid, n in lineas]
    r = await http.post("/api/pedidos", json={"cliente_id": cliente_id, "items": items})
    assert r.status_code == 201, r.text
    pedido: dict[str, Any] = r.json()
    return pedido


async def stock(http: httpx.AsyncClient, producto_id: str) -> int:
    r = await http.get(f"/api/productos/{producto_id}")
    assert r.status_code == 200, r.text
    unidades: int = r.json()["stock"]
    return unidades


async def mover(http: httpx.AsyncClient, pedido_id: str, *estados: str) -> dict[str, Any]:
    """Walk an order through ``estados``, each step expected to succeed."""
    pedido: dict[str, Any] = {}
    for estado in estados:
        r = await http.put(f"/api/pedidos/{pedido_id}/estado", json={"estado": estado})
        assert r.status_code == 200, r.text
        pedido = r.json()
    return pedido


async def cancelacion_concurrente(app: Starlette, pedido_id: str, visto: dict[str, int]) -> ResultadoFusion:
    """nodo2 cancels the order having seen only the ``estado`` writes in ``visto``, stamped later, merged here.

    The test app is a cluster of one node: nodo2 is made a member of it first,
    for the store refuses changes of origins outside its cluster.
    """
    almacen = app.state.almacen
    almacen.miembros = frozenset({*(almacen.miembros or {almacen.nodo_id}), "nodo2"})
    remoto = Cambio(
        origen="nodo2",
        seq=1,
        hlc=app.state.almacen.reloj.ultimo + 1,
        entidad="pedido",
        clave=pedido_id,
        campo="estado",
        valor="cancelado",
        base=reglas.contexto_texto(visto),
    )
    resultado: ResultadoFusion = await app.state.almacen.fusionar([remoto])
    return resultado


# --- GraphQL ---------------------------------------------------------------------


async def gql(http: httpx.AsyncClient, consulta: str, **variables: Any) -> dict[str, Any]:
    r = await http.post("/graphql", json={"query": consulta, "variables": variables})
    assert r.status_code == 200, r.text
    cuerpo: dict[str, Any] = r.json()
    return cuerpo


async def datos(http: httpx.AsyncClient, consulta: str, **variables: Any) -> dict[str, Any]:
    cuerpo = await gql(http, consulta, **variables)
    assert "errors" not in cuerpo, cuerpo
    resultado: dict[str, Any] = cuerpo["data"]
    return resultado
