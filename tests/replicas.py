"""Replicas exchanging changes by hand: the store-level stand-in for peer links.

:func:`todos_con_todos` is a healthy cluster after a while: every store has
every change, and every node has acknowledged them (so cancellations and
keyed adjustments settle, as :class:`servidor.asentamiento.Asentador` does
on a real node). ``asentar=False`` stops before the acknowledgements.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from servidor.almacen import Almacen, consultas
from servidor.dominio import Dominio
from tests.bd import base_nueva


async def sincronizar(desde: Almacen, hacia: Almacen, limite: int = 1000) -> int:
    total = 0
    while True:
        lote = await desde.cambios_para(hacia.vector, limite)
        if not lote:
            return total
        total += len((await hacia.fusionar(lote)).aplicados)


async def intercambiar(dominios: list[Dominio]) -> None:
    for _ in range(2):
        for a in dominios:
            for b in dominios:
                if a is not b:
                    await sincronizar(a.almacen, b.almacen)


async def asentar(d: Dominio, dominios: list[Dominio]) -> int:
    """``d`` settles what the others' current vectors (as acknowledgements) allow."""
    otros = {o.nodo_id: o.almacen.vector for o in dominios if o is not d}
    n, _ = await d.asentar(frozenset(otros), otros)
    return n


async def todos_con_todos(dominios: list[Dominio], asentar_: bool = True) -> None:
    await intercambiar(dominios)
    if asentar_:
        for d in dominios:
            await asentar(d, dominios)
        await intercambiar(dominios)


async def digest(d: Dominio) -> str:
    return await d.almacen.leer(consultas.digest)


@contextlib.asynccontextmanager
async def tres_dominios(backend: str, carpeta: Path) -> AsyncIterator[list[Dominio]]:
    """Three stores ``nodo1``..``nodo3`` of one cluster, on fresh databases of ``backend``."""
    async with contextlib.AsyncExitStack() as pila:
        dominios = []
        for n in (1, 2, 3):
            url = await pila.enter_async_context(base_nueva(backend, carpeta, f"nodo{n}"))
            almacen = await Almacen.abrir(url, f"nodo{n}")
            pila.push_async_callback(almacen.cerrar)
            dominios.append(Dominio(almacen, nodos=3))
        yield dominios
