"""A node killed with SIGKILL right after answering loses nothing it acknowledged.

``docs/DESIGN.md``, invariant 2, on one node: a write answered with success
is in the change log, stamped ``(origen, seq, hlc)``, however the process
dies after the answer; ``seq`` stays gap-free 1..N across the restart and
``hlc`` keeps increasing, because both are stored in the same transaction as
the change.
The store is read directly, with the node stopped, so that what is checked
is what is on disk, not what a process holds in memory.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx
import pytest

from servidor.almacen import Almacen, consultas
from tests.bd import BACKENDS
from tests.procesos import FabricaClusters, ProcesoNodo, esperar

pytestmark = pytest.mark.parametrize("backend", BACKENDS)


async def crear(http: httpx.AsyncClient, i: int) -> tuple[dict[str, Any], dict[str, Any]]:
    r = await http.post("/api/clientes", json={"nombre": f"Cliente {i}", "email": f"c{i}@example.com"})
    assert r.status_code == 201, r.text
    s = await http.post("/api/productos", json={"nombre": f"Producto {i}", "precio": f"{i}.50", "stock": i})
    assert s.status_code == 201, s.text
    return r.json(), s.json()


async def en_disco(nodo: ProcesoNodo) -> tuple[list[Any], dict[str, Any], dict[str, Any]]:
    """The node's change log, clientes and productos, read from its database."""
    assert not nodo.vivo, "read the store only while the node is stopped"
    almacen = await Almacen.abrir(nodo.database, nodo.id)
    try:
        cambios = await almacen.leer(consultas.cambios_de, nodo.id)
        clientes = {c["id"]: c for c in await almacen.leer(consultas.clientes)}
        productos = {p["id"]: p for p in await almacen.leer(consultas.productos)}
    finally:
        await almacen.cerrar()
    return cambios, clientes, productos


def sin_huecos(cambios: list[Any]) -> None:
    assert [c.seq for c in cambios] == list(range(1, len(cambios) + 1)), "seq has gaps or repeats"
    hlcs = [c.hlc for c in cambios]
    # The changes of one write share a stamp; a later write's stamp is higher, across restarts too.
    assert all(a <= b for a, b in zip(hlcs, hlcs[1:], strict=False)), "hlc goes back"


async def test_acknowledged_writes_survive_sigkill_and_seq_continues_gap_free(
    clusters: FabricaClusters, backend: str
) -> None:
    nodo = (await clusters(1, backend=backend))["nodo1"]
    clientes: list[dict[str, Any]] = []
    productos: list[dict[str, Any]] = []
    async with nodo.cliente() as http:
        for i in range(1, 6):
            cliente, producto = await crear(http, i)
            clientes.append(cliente)
            productos.append(producto)
    assert await nodo.matar() == -signal.SIGKILL

    antes, en_clientes, en_productos = await en_disco(nodo)
    sin_huecos(antes)
    assert {c["id"] for c in clientes} <= set(en_clientes)
    assert {p["id"] for p in productos} <= set(en_productos)

    await nodo.arrancar()
    async with nodo.cliente() as http:
        for cliente in clientes:
            assert (await http.get(f"/api/clientes/{cliente['id']}")).json() == cliente
        for producto in productos:
            assert (await http.get(f"/api/productos/{producto['id']}")).json() == producto
        for i in range(6, 9):
            cliente, producto = await crear(http, i)
            clientes.append(cliente)
            productos.append(producto)
        r = await http.post(f"/api/productos/{productos[0]['id']}/stock", json={"cantidad": 4})
        assert r.status_code == 200, r.text
    assert await nodo.parar() == 0

    despues, en_clientes, en_productos = await en_disco(nodo)
    sin_huecos(despues)
    assert despues[: len(antes)] == antes, "the restart rewrote changes made before the kill"
    assert len(despues) > len(antes)
    assert [c["id"] for c in clientes] == list(en_clientes)
    assert [p["id"] for p in productos] == list(en_productos)
    assert en_productos[productos[0]["id"]]["stock"] == 1 + 4


async def test_a_kill_amid_concurrent_writes_loses_no_acknowledged_write(
    clusters: FabricaClusters, backend: str
) -> None:
    nodo = (await clusters(1, backend=backend))["nodo1"]
    reconocidos: list[str] = []
    async with nodo.cliente() as http:

        async def escribir(i: int) -> None:
            r = await http.post("/api/clientes", json={"nombre": f"C{i}", "email": f"c{i}@example.com"})
            if r.status_code == 201:
                reconocidos.append(r.json()["id"])

        tareas = [asyncio.create_task(escribir(i)) for i in range(40)]
        try:
            # Kill as soon as a few have been answered, with the rest still in flight.
            await esperar(lambda: len(reconocidos) >= 5 or all(t.done() for t in tareas), 30, que="5 answers")
            nodo.enviar(signal.SIGKILL)
            cortados = await asyncio.gather(*tareas, return_exceptions=True)
        finally:
            for t in tareas:
                t.cancel()
    assert await nodo.esperar_salida() == -signal.SIGKILL
    assert all(c is None or isinstance(c, httpx.TransportError) for c in cortados), cortados
    assert len(reconocidos) >= 5

    await nodo.arrancar()
    async with nodo.cliente() as http:
        for i in range(3):
            r = await http.post("/api/clientes", json={"nombre": f"D{i}", "email": f"d{i}@example.com"})
            assert r.status_code == 201, r.text
            reconocidos.append(r.json()["id"])
    assert await nodo.parar() == 0

    cambios, en_clientes, _ = await en_disco(nodo)
    sin_huecos(cambios)
    assert set(reconocidos) <= set(en_clientes)
    # A write the client never heard back about may or may not be there, but never half of it.
    por_cliente: dict[str, set[str]] = {}
    for c in cambios:
        por_cliente.setdefault(c.clave, set()).add(c.campo)
    assert len({frozenset(campos) for campos in por_cliente.values()}) == 1, por_cliente
