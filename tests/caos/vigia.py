"""The watcher: every node's view of the orders a client touched last, read every 20 ms.

The workload records the ``estado`` its answers show, but an answer shows
an order right after that node wrote it; what a node makes of the writes of
the others, merged later, is what the watcher reads. One task per node (so a
paused node stalls only its own): read ``GET /api/pedidos/{id}`` of one of
the recently touched orders, in turn, record a :class:`Lectura`, wait
:data:`INTERVALO_S` or until told to stop. A node that does not know the
order yet, hides it or does not answer is no reading.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from tests import credenciales

INTERVALO_S = 0.02
PLAZO_LECTURA_S = 0.5


@dataclass(frozen=True)
class Lectura:
    """An order's ``estado`` as ``nodo`` showed it, in an answer sent between ``inicio`` and ``fin``."""

    nodo: str
    pedido_id: str
    estado: str
    inicio: float
    fin: float


class Vigia:
    def __init__(self, nodos: dict[str, str], recientes: Sequence[str], lecturas: list[Lectura]) -> None:
        self.nodos = nodos
        self.recientes = recientes  # shared with the workload, which keeps it up to date
        self.lecturas = lecturas

    async def ejecutar(self, parar: asyncio.Event) -> None:
        await asyncio.gather(*(self._nodo(n, url, parar) for n, url in sorted(self.nodos.items())))

    async def _nodo(self, nodo: str, url: str, parar: asyncio.Event) -> None:
        turno = 0
        async with httpx.AsyncClient(base_url=url, timeout=PLAZO_LECTURA_S, headers=credenciales.cabecera()) as http:
            while not parar.is_set():
                recientes = list(self.recientes)
                if recientes:
                    turno += 1
                    await self._leer(http, nodo, recientes[turno % len(recientes)])
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(parar.wait(), INTERVALO_S)

    async def _leer(self, http: httpx.AsyncClient, nodo: str, pedido: str) -> None:
        inicio = time.monotonic()
        try:
            r = await http.get(f"/api/pedidos/{pedido}")
        except httpx.TransportError:
            return
        if r.status_code == 200:
            self.lecturas.append(Lectura(nodo, pedido, r.json()["estado"], inicio, time.monotonic()))
