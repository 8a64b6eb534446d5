"""The store of one node: stamping, serializing and committing changes.

Two entrances, one path:

- :meth:`Almacen.escribir` runs a domain operation inside the write lock and
  one transaction. The operation reads what it needs through the
  :class:`Escritura` it is given and declares changes; the store stamps them
  ``(origen, seq, hlc)`` and hands them to ``apply``. ``seq`` and the clock's
  high-water mark are stored in the same transaction, so a crash rolls back
  both the changes and their numbers.
- :meth:`Almacen.fusionar` takes changes from a peer, drops those already
  here, keeps each origin gap-free (a change past a gap waits for a later
  round), refuses the whole batch if one is stamped too far ahead, and hands
  the rest to the same ``apply``.

Operations, ``apply`` and the readers of ``consultas`` are plain code on a
``Connection``; :class:`~servidor.almacen.motor.Motores` runs them (on
SQLite, a write transaction on the writer thread). The node's ``seq`` and
version vector move right after the commit, and the applied changes then go
to the observers (subscriptions, peer streams) on the event loop. Observers
are plain callbacks and must not block.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from servidor.almacen import modelos as m
from servidor.almacen.aplicar import aplicar
from servidor.almacen.motor import Motores, abrir
from servidor.almacen.registro import cambios_para
from servidor.errores import Validacion
from sync import reglas
from sync.cambios import MAX_UNIDADES, Cambio, validar
from sync.reloj import Reloj, reloj_de_pared

log = logging.getLogger(__name__)
T = TypeVar("T")
Observador = Callable[[Sequence[Cambio]], None]

# Fields whose writes remember the stamp they replaced, to recognise clashes.
CON_BASE = {("pedido", "estado")}


@dataclass
class Escritura:
    """What a domain operation sees inside the write lock."""

    conn: Connection
    nodo_id: str
    campos: list[tuple[str, str, str, Any]] = field(default_factory=list)
    stock: dict[tuple[str, str], int] = field(default_factory=dict)
    cesiones: dict[tuple[str, str], int] = field(default_factory=dict)
    sellados: list[Cambio] = field(default_factory=list)  # what was stamped, once committed

    def poner(self, entidad: str, clave: str, campo: str, valor: Any) -> None:
        self.campos.append((entidad, clave, campo, valor))

    def sumar_stock(self, producto_id: str, campo: str, unidades: int) -> None:
        """Grow this node's ``entradas`` or ``salidas`` entry of a product."""
        k = (producto_id, campo)
        self.stock[k] = self.stock.get(k, 0) + unidades

    def ceder(self, producto_id: str, destino: str, unidades: int) -> None:
        """Transfer rights to ``unidades`` of a product from this node to ``destino``."""
        k = (producto_id, destino)
        self.cesiones[k] = self.cesiones.get(k, 0) + unidades


@dataclass(frozen=True)
class ResultadoFusion:
    aplicados: list[Cambio]
    duplicados: int
    pendientes: int


async def _hasta_el_final(transaccion: Awaitable[T]) -> T:
    """Await a transaction to its end, even when the caller is cancelled meanwhile.

    A write runs on the writer thread (SQLite) whatever happens to the task
    that asked for it; if that task's cancellation let go of the write lock
    before the commit, the next write would read ``seq`` and the vector as they
    were before it. So the lock is held until the transaction is over, and the
    cancellation is raised after.
    """
    tarea = asyncio.ensure_future(transaccion)
    cancelado = False
    while True:
        try:
            resultado = await asyncio.shield(tarea)
            break
        except asyncio.CancelledError:
            if tarea.done():
                raise
            cancelado = True
    if cancelado:
        raise asyncio.CancelledError
    return resultado


class Almacen:
    def __init__(self, motores: Motores, nodo_id: str, reloj: Reloj, siguiente_seq: int, vector: dict[str, int]):
        self.motores = motores
        self.nodo_id = nodo_id
        self.reloj = reloj
        self._siguiente_seq = siguiente_seq
        self._vector = vector
        self._cerrojo = asyncio.Lock()
        self._observadores: list[Observador] = []

    @classmethod
    async def abrir(
        cls,
        url: str,
        nodo_id: str,
        max_deriva_ms: int = 500,
        ahora: Callable[[], int] = reloj_de_pared,
    ) -> Almacen:
        motores = await abrir(url)

        def estado(conn: Connection) -> tuple[int, int, dict[str, int]]:
            fila = conn.execute(select(m.estado_nodo).where(m.estado_nodo.c.nodo_id == nodo_id)).first()
            if fila is None:
                conn.execute(insert(m.estado_nodo).values(nodo_id=nodo_id, hlc=0, siguiente_seq=1))
                hlc, siguiente = 0, 1
            else:
                hlc, siguiente = fila.hlc, fila.siguiente_seq
            c = m.cambios.c
            vector = {o: s for o, s in conn.execute(select(c.origen, func.max(c.seq)).group_by(c.origen))}
            return hlc, siguiente, vector

        hlc, siguiente, vector = await motores.transaccion(estado)
        siguiente = max(siguiente, vector.get(nodo_id, 0) + 1)
        log.info("%s: store open (%s), next seq %d, hlc %d", nodo_id, motores.dialecto, siguiente, hlc)
        return cls(motores, nodo_id, Reloj(hlc, max_deriva_ms, ahora), siguiente, vector)

    async def cerrar(self) -> None:
        await self.motores.cerrar()

    @property
    def vector(self) -> dict[str, int]:
        """Version vector: per origin, the highest seq applied (gap-free)."""
        return dict(self._vector)

    def observar(self, fn: Observador) -> Callable[[], None]:
        self._observadores.append(fn)
        return lambda: self._observadores.remove(fn)

    async def leer(self, lector: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run a reader of ``consultas`` (plain SQL code on a ``Connection``) on a read connection."""
        return await self.motores.leer(lector, *args, **kw)

    async def cambios_para(self, vector: dict[str, int], limite: int, sin_origen: str | None = None) -> list[Cambio]:
        """The next changes a peer with ``vector`` lacks (see ``registro``)."""
        return await self.leer(cambios_para, vector, self.vector, limite, sin_origen)

    async def escribir(
        self, operacion: Callable[[Escritura], Any], despues: Callable[[Connection], T] | None = None
    ) -> T | None:
        """Run a domain operation in one write transaction and apply what it declares.

        The operation is plain code on ``tx.conn``: on SQLite it runs, with the
        whole transaction, on the writer thread. ``despues`` reads the result
        back in the same transaction, once the changes are applied, and is what
        this answers.
        """
        async with self._cerrojo:
            bucle = asyncio.get_running_loop()

            def cuerpo(conn: Connection) -> tuple[T | None, list[Cambio]]:
                tx = Escritura(conn, self.nodo_id)
                operacion(tx)
                lote = tx.sellados = self._sellar(tx)
                aplicar(conn, lote)
                self._guardar_estado(conn, self._siguiente_seq + len(lote))
                return (despues(conn) if despues is not None else None), lote

            def confirmado(hecho: tuple[T | None, list[Cambio]]) -> None:
                lote = hecho[1]
                self._siguiente_seq += len(lote)
                if lote:
                    self._vector = {**self._vector, self.nodo_id: lote[-1].seq}
                    bucle.call_soon_threadsafe(self._avisar, lote)

            resultado, _ = await _hasta_el_final(self.motores.transaccion(cuerpo, confirmado))
        return resultado

    async def fusionar(self, cambios: Sequence[Cambio], validados: bool = False) -> ResultadoFusion:
        """Apply a peer's changes; ``validados`` when they came through ``sync.cambios.desde_json``."""
        async with self._cerrojo:
            vector = dict(self._vector)
            lote: list[Cambio] = []
            duplicados = pendientes = 0
            for c in sorted(cambios, key=lambda c: (c.origen, c.seq)):
                if not validados:
                    validar(c)
                visto = vector.get(c.origen, 0)
                if c.seq <= visto:
                    duplicados += 1
                elif c.seq == visto + 1:
                    vector[c.origen] = c.seq
                    lote.append(c)
                else:
                    pendientes += 1
            for c in lote:
                self.reloj.comprobar(c.hlc)
            if lote:
                self.reloj.observar(max(c.hlc for c in lote))
                bucle = asyncio.get_running_loop()

                def cuerpo(conn: Connection) -> int:
                    aplicar(conn, lote)
                    siguiente = max(self._siguiente_seq, vector.get(self.nodo_id, 0) + 1)
                    self._guardar_estado(conn, siguiente)
                    return siguiente

                def confirmado(siguiente: int) -> None:
                    self._vector = {o: max(s, self._vector.get(o, 0)) for o, s in vector.items()}
                    self._siguiente_seq = max(self._siguiente_seq, siguiente)
                    bucle.call_soon_threadsafe(self._avisar, lote)

                await _hasta_el_final(self.motores.transaccion(cuerpo, confirmado))
        return ResultadoFusion(lote, duplicados, pendientes)

    def _sellar(self, tx: Escritura) -> list[Cambio]:
        """Turn declared writes into stamped changes, in declaration order."""
        bases: dict[tuple[str, str, str], str] = {}
        for entidad, clave, campo, _ in tx.campos:
            if (entidad, campo) in CON_BASE:
                s = m.sellos.c
                fila = tx.conn.execute(
                    select(s.hlc, s.origen).where(s.entidad == entidad, s.clave == clave, s.campo == campo)
                ).first()
                if fila is not None:
                    bases[(entidad, clave, campo)] = reglas.sello_texto((fila.hlc, fila.origen))
        declarados: list[tuple[str, str, str, Any]] = list(tx.campos)
        if tx.stock:
            c = m.contadores_stock.c
            ids = sorted({pid for pid, _ in tx.stock})
            filas = tx.conn.execute(
                select(c.producto_id, c.entradas, c.salidas).where(c.nodo == self.nodo_id, c.producto_id.in_(ids))
            )
            actuales = {f.producto_id: {"entradas": f.entradas, "salidas": f.salidas} for f in filas}
            for (pid, campo), unidades in sorted(tx.stock.items()):
                if unidades:
                    total = actuales.get(pid, {}).get(campo, 0) + unidades
                    if total > MAX_UNIDADES:
                        raise Validacion(f"this node's stock counter for {pid} is full", {"campo": "stock"})
                    declarados.append(("stock", pid, campo, total))
        if tx.cesiones:
            t = m.cesiones_stock.c
            ids = sorted({pid for pid, _ in tx.cesiones})
            filas = tx.conn.execute(
                select(t.producto_id, t.destino, t.unidades).where(t.origen == self.nodo_id, t.producto_id.in_(ids))
            )
            cedidas = {(f.producto_id, f.destino): f.unidades for f in filas}
            for (pid, destino), unidades in sorted(tx.cesiones.items()):
                if unidades:
                    total = cedidas.get((pid, destino), 0) + unidades
                    declarados.append(("stock", pid, "cedidas", {"destino": destino, "unidades": total}))
        lote = []
        for n, (entidad, clave, campo, valor) in enumerate(declarados):
            lote.append(
                Cambio(
                    origen=self.nodo_id,
                    seq=self._siguiente_seq + n,
                    hlc=self.reloj.tic(),
                    entidad=entidad,
                    clave=clave,
                    campo=campo,
                    valor=valor,
                    base=bases.get((entidad, clave, campo)),
                )
            )
        return [validar(c) for c in lote]

    def _guardar_estado(self, conn: Connection, siguiente_seq: int) -> None:
        conn.execute(
            update(m.estado_nodo)
            .where(m.estado_nodo.c.nodo_id == self.nodo_id)
            .values(hlc=self.reloj.ultimo, siguiente_seq=siguiente_seq)
        )

    def _avisar(self, lote: Sequence[Cambio]) -> None:
        if not lote:
            return
        for fn in list(self._observadores):
            try:
                fn(lote)
            except Exception:
                log.exception("%s: observer failed", self.nodo_id)
