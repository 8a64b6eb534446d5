"""Settling: the background task that makes returned and keyed units sellable.

Units of a cancelled order, and units a keyed adjustment adds, wait apart
(``por_devolver``, ``por_confirmar``) until no node can still undo what
freed them (``sync.reglas``, credits). Whether that moment has come depends
on what the other nodes acknowledged to this one, which only the peer
manager knows; the decision itself is a pure function
(:func:`servidor.dominio.operaciones.asentado`), and the settle is an
ordinary replicated write (:meth:`Dominio.asentar`), so every node counts
the units the same way once it has the write, whichever node wrote it
first, and two nodes writing it at once write the same thing.

The task wakes when a peer acknowledges or a commit may have left something
waiting, at most once every :data:`PAUSA_S`, and reads the store only while
something may be waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from servidor.dominio import Dominio
from sync.cambios import Cambio
from sync.pares import GestorPares

log = logging.getLogger(__name__)

PAUSA_S = 0.05
PLAZO_PARADA_S = 5.0


def _espera_algo(lote: Sequence[Cambio]) -> bool:
    return any(
        (c.entidad == "pedido" and c.campo == "estado" and c.valor == "cancelado")
        or (c.entidad == "ajuste" and c.campo == "movimiento" and c.valor["cantidad"] > 0)
        for c in lote
    )


class Asentador:
    def __init__(self, dominio: Dominio, pares: GestorPares) -> None:
        self.dominio = dominio
        self.pares = pares
        self._despertar = asyncio.Event()
        self._quizas = True  # something may be waiting (at start: whatever the store holds)
        self._tarea: asyncio.Task[None] | None = None
        self._quitar: list[Callable[[], None]] = []
        self._parado = False
        self._parada = asyncio.Event()

    def iniciar(self) -> None:
        self._quitar.append(self.pares.al_cambiar(self._despertar.set))
        self._quitar.append(self.dominio.almacen.observar(self._al_confirmar))
        self._despertar.set()
        self._tarea = asyncio.create_task(self._bucle(), name=f"asentar-{self.dominio.nodo_id}")

    async def detener(self) -> None:
        """Stop after the round in progress, if any.

        Not by cancelling it mid-round: a read cancelled inside the MySQL driver
        can leave its connection in a state in which closing the pool waits
        forever. A round is a few statements; past :data:`PLAZO_PARADA_S` it is
        cancelled all the same.
        """
        for quitar in self._quitar:
            quitar()
        self._parado = True
        self._parada.set()
        self._despertar.set()
        if self._tarea is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._tarea), PLAZO_PARADA_S)
            except TimeoutError:
                self._tarea.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._tarea

    def _al_confirmar(self, lote: Sequence[Cambio]) -> None:
        if _espera_algo(lote):
            self._quizas = True
        if self._quizas:
            self._despertar.set()

    async def _bucle(self) -> None:
        while not self._parado:
            await self._despertar.wait()
            self._despertar.clear()
            if self._parado:
                return
            if self._quizas:
                try:
                    await self.ronda()
                except Exception:
                    log.exception("%s: settling failed; will try again", self.dominio.nodo_id)
            with contextlib.suppress(TimeoutError):  # woken early only to stop
                await asyncio.wait_for(self._parada.wait(), PAUSA_S)

    async def ronda(self) -> int:
        """One settle round now; answers how many entities were settled."""
        acuses = self.pares.acuses()
        n, quedan = await self.dominio.asentar(self.pares.pares(), acuses)
        self._quizas = quedan
        if n:
            log.info("%s: settled %d cancelled orders or keyed adjustments", self.dominio.nodo_id, n)
        return n
