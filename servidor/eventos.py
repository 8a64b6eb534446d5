"""Live events for subscribers: orders, stock and peers, after each commit.

The store tells :class:`Difusion` about every committed batch, local or
merged from a peer (an observer, so it never blocks a write). One task turns
batches into events: it reads each affected order or product once per batch,
however many subscribers there are, and hands the event to each subscriber's
bounded queue without waiting. A subscriber whose queue is full has fallen
too far behind: its queue is emptied and it is told so (``SUSCRIPTOR_LENTO``)
and dropped, rather than silently skipping events.

Topics: ``pedidos`` (one event per order per batch: created, updated or
deleted, with the order), ``stock`` (a product whose stock or fields
changed, with the product) and ``nodos`` (peer health, when a link goes up
or down or a peer acknowledges, at most every ``PAUSA_NODOS_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from servidor.almacen import Almacen, consultas
from servidor.errores import SuscriptorLento
from sync.cambios import Cambio
from sync.pares import GestorPares

log = logging.getLogger(__name__)

MAX_COLA = 256
PAUSA_NODOS_S = 0.5
_DESBORDE = object()


@dataclass(frozen=True)
class Evento:
    tema: str
    clave: str | None
    tipo: str
    datos: Any


class Suscriptor:
    def __init__(self, tema: str, clave: str | None, maximo: int) -> None:
        self.tema = tema
        self.clave = clave
        self._cola: asyncio.Queue[Any] = asyncio.Queue(maxsize=maximo)
        self.desbordado = False

    def entregar(self, evento: Evento) -> None:
        if self.desbordado or (self.clave is not None and evento.clave != self.clave):
            return
        try:
            self._cola.put_nowait(evento)
        except asyncio.QueueFull:
            self.desbordado = True
            while not self._cola.empty():
                self._cola.get_nowait()
            self._cola.put_nowait(_DESBORDE)

    async def __aiter__(self) -> AsyncIterator[Evento]:
        while True:
            evento = await self._cola.get()
            if evento is _DESBORDE:
                raise SuscriptorLento(
                    f"this subscriber fell more than {self._cola.maxsize} events behind and was dropped",
                    {"maximo": self._cola.maxsize},
                )
            yield evento


class Difusion:
    def __init__(self, almacen: Almacen, pares: GestorPares, maximo: int = MAX_COLA) -> None:
        self.almacen = almacen
        self.pares = pares
        self.maximo = maximo
        self._suscriptores: set[Suscriptor] = set()
        self._lotes: asyncio.Queue[Sequence[Cambio]] = asyncio.Queue()
        self._nodos = asyncio.Event()
        self._tareas: list[asyncio.Task[None]] = []
        self._quitar: list[Any] = []

    def iniciar(self) -> None:
        self._quitar.append(self.almacen.observar(self._lotes.put_nowait))
        self._quitar.append(self.pares.al_cambiar(self._nodos.set))
        self._tareas = [asyncio.create_task(self._cambios()), asyncio.create_task(self._salud_nodos())]

    async def detener(self) -> None:
        for quitar in self._quitar:
            quitar()
        for t in self._tareas:
            t.cancel()
        await asyncio.gather(*self._tareas, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def suscribir(self, tema: str, clave: str | None = None) -> AsyncIterator[Suscriptor]:
        s = Suscriptor(tema, clave, self.maximo)
        self._suscriptores.add(s)
        try:
            yield s
        finally:
            self._suscriptores.discard(s)

    def publicar(self, evento: Evento) -> None:
        for s in list(self._suscriptores):
            if s.tema == evento.tema:
                s.entregar(evento)
                if s.desbordado:
                    self._suscriptores.discard(s)
                    log.warning("%s: dropped a slow %s subscriber", self.almacen.nodo_id, s.tema)

    def _interesa(self, tema: str) -> bool:
        return any(s.tema == tema for s in self._suscriptores)

    async def _cambios(self) -> None:
        while True:
            lote = list(await self._lotes.get())
            while not self._lotes.empty():  # a burst of commits: one read for all of them
                lote.extend(self._lotes.get_nowait())
            try:
                await self._publicar_lote(lote)
            except Exception:
                log.exception("%s: could not publish events of a batch", self.almacen.nodo_id)

    async def _publicar_lote(self, lote: list[Cambio]) -> None:
        quieren_pedidos, quieren_stock = self._interesa("pedidos"), self._interesa("stock")
        if not quieren_pedidos and not quieren_stock:
            return
        tipos: dict[str, str] = {}
        productos: set[str] = set()
        ajustes: set[str] = set()
        for c in lote:
            if c.entidad == "pedido":
                tipo = {"creado_en": "CREADO", "eliminado_en": "ELIMINADO"}.get(c.campo, "ACTUALIZADO")
                if tipos.get(c.clave) not in ("CREADO", "ELIMINADO") or tipo == "ELIMINADO":
                    tipos[c.clave] = tipo
            elif c.entidad in ("stock", "producto"):
                productos.add(c.clave)
            elif c.entidad == "ajuste":
                ajustes.add(c.clave)

        def leer(conn: Connection) -> tuple[dict[str, Any], dict[str, Any]]:
            for aid in sorted(ajustes):
                ajuste = consultas.ajuste(conn, aid)
                if ajuste is not None:
                    productos.add(ajuste["producto_id"])
            pedidos = consultas.pedidos_por_ids(conn, sorted(tipos), eliminados=True) if tipos else {}
            for p in pedidos.values():
                productos.update(i["producto_id"] for i in p["items"])
            filas = consultas.productos_por_ids(conn, sorted(productos)) if quieren_stock else {}
            return pedidos, filas

        pedidos, filas = await self.almacen.leer(leer)
        for pid, tipo in tipos.items():
            if pid in pedidos:
                self.publicar(Evento("pedidos", pid, tipo, pedidos[pid]))
        for pid, producto in filas.items():
            self.publicar(Evento("stock", pid, "ACTUALIZADO", producto))

    async def _salud_nodos(self) -> None:
        ultimo: list[dict[str, Any]] | None = None
        while True:
            await self._nodos.wait()
            self._nodos.clear()
            if self._interesa("nodos"):
                salud = await self.pares.salud()
                visto = [{k: v for k, v in p.items() if k != "ultimo_contacto"} for p in salud]
                if visto != ultimo:
                    ultimo = visto
                    self.publicar(Evento("nodos", None, "ACTUALIZADO", salud))
            await asyncio.sleep(PAUSA_NODOS_S)  # at most two health events a second
