"""The store of one node: stamping, serializing and committing changes.

Two entrances, one path:

- :meth:`Almacen.escribir` runs a domain operation in a write transaction.
  The operation reads what it needs through the :class:`Escritura` it is
  given and declares changes; the store stamps them ``(origen, seq, hlc)``
  and hands them to ``apply``. ``seq`` and the clock's high-water mark are
  stored in the same transaction, so a crash rolls back both the changes and
  their numbers.
- :meth:`Almacen.fusionar` takes changes from a peer, refuses the whole
  batch if one claims this node's own origin (a node is the only writer of
  its origin, and its changes never come back to it) or that of a node that
  is not a member of the cluster, drops those already here, keeps each
  origin gap-free (a change past a gap waits for a later round), refuses the
  whole batch if one is stamped too far ahead, and hands the rest to the
  same ``apply``. The batches of one peer link form a
  :class:`~servidor.almacen.cadena.Cadena`: once one is refused, none after
  it is applied.

Group commit: both entrances queue their work for one writer task, which
runs whatever has queued up while the previous transaction committed as one
transaction, each piece of work inside its own savepoint. A piece that fails
is rolled back to its savepoint and fails alone; the others share one commit
and one fsync. Nobody hears "done" before that commit, so an acknowledged
write is as durable as when each had its own transaction. A lone piece of
work runs without a savepoint.

Operations, ``apply`` and the readers of ``consultas`` are plain code on a
``Connection``; :class:`~servidor.almacen.motor.Motores` runs them (on
SQLite, a write transaction on the writer thread). The node's ``seq`` and
version vector move right after the commit, and the applied changes then go
to the observers (subscriptions, peer streams) on the event loop. Observers
are plain callbacks and must not block.

A write that fails because the database cannot store (disk full, I/O error:
``averia``) is answered ``AlmacenNoDisponible``, and :attr:`Almacen.averia`
keeps why for the health route until a transaction that writes commits
again: nothing has to be reset by hand once space is freed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from servidor.almacen import modelos as m
from servidor.almacen.aplicar import aplicar
from servidor.almacen.averia import motivo as motivo_de_averia
from servidor.almacen.cadena import Cadena, Eslabon
from servidor.almacen.crudo import Crudo, crudo
from servidor.almacen.motor import Motores, abrir
from servidor.almacen.registro import cambios_para, lote_para
from servidor.errores import AlmacenNoDisponible, Validacion
from sync import protocolo as p
from sync import reglas
from sync.cambios import MAX_UNIDADES, Cambio, validar
from sync.errores import OrigenDesconocido, OrigenPropio
from sync.reloj import Reloj, reloj_de_pared

log = logging.getLogger(__name__)
T = TypeVar("T")
Observador = Callable[[Sequence[Cambio]], None]

# Work per transaction, at most: enough to share one fsync among many writes, few enough
# that a write's answer never waits behind a long transaction.
MAX_GRUPO = 64


@dataclass
class Escritura:
    """What a domain operation sees inside its write transaction."""

    conn: Connection
    nodo_id: str
    _campos: dict[tuple[str, str, str], Any] = field(default_factory=dict)
    stock: dict[tuple[str, str], int] = field(default_factory=dict)
    cesiones: dict[tuple[str, str], int] = field(default_factory=dict)
    sellados: list[Cambio] = field(default_factory=list)  # what was stamped, once committed

    @property
    def sql(self) -> Crudo:
        """The transaction's driver cursor (see ``crudo``), for reads on the write path."""
        return crudo(self.conn)

    @property
    def campos(self) -> list[tuple[str, str, str, Any]]:
        """The fields set, in the order first set; a field set twice keeps its last value."""
        return [(*k, v) for k, v in self._campos.items()]

    def poner(self, entidad: str, clave: str, campo: str, valor: Any) -> None:
        self._campos[(entidad, clave, campo)] = valor

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


@dataclass
class _Grupo:
    """What the work of one transaction moves; the store takes it over once it commits."""

    siguiente_seq: int
    vector: dict[str, int]
    aplicados: list[Cambio] = field(default_factory=list)


Trabajo = Callable[[Connection, Crudo, _Grupo], Any]


@dataclass
class _Encargo:
    trabajo: Trabajo
    futuro: asyncio.Future[Any]
    duradero: bool  # a local write, acknowledged once on disk; a merge can be fetched again
    eslabon: Eslabon | None = None  # its place in the chain of a peer link's merges

    def fallido(self, motivo: BaseException | str) -> None:
        """It did not succeed: no later piece of its chain may run."""
        if self.eslabon is not None:
            self.eslabon.romper(motivo)


class Almacen:
    def __init__(
        self,
        motores: Motores,
        nodo_id: str,
        reloj: Reloj,
        siguiente_seq: int,
        vector: dict[str, int],
        miembros: frozenset[str] | None = None,
    ):
        self.motores = motores
        self.nodo_id = nodo_id
        # The nodes of the cluster, the only origins a merge takes; None takes any (tools, tests).
        self.miembros = miembros
        self.reloj = reloj
        self._siguiente_seq = siguiente_seq
        self._vector = vector
        self._observadores: list[Observador] = []
        self._cola: collections.deque[_Encargo] = collections.deque()
        self._hay_trabajo = asyncio.Event()
        self._escritor: asyncio.Task[None] | None = None
        self._abierto = True
        self._en_curso = False
        self._averia: str | None = None

    @classmethod
    async def abrir(
        cls,
        url: str,
        nodo_id: str,
        max_deriva_ms: int = 500,
        ahora: Callable[[], int] = reloj_de_pared,
        miembros: frozenset[str] | None = None,
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
        reloj = Reloj(hlc, max_deriva_ms, ahora)
        if reloj.adelanto_ms() > max_deriva_ms:
            # Its stamps never go back, so every change it makes is as far ahead, and peers
            # refuse them (max_clock_drift_ms) until their wall clocks reach it.
            log.warning(
                "%s: this node's clock stamps run %.1f s ahead of its wall clock (it once ran ahead); "
                "peers refuse its changes until their clocks catch up: see the README, Clocks",
                nodo_id,
                reloj.adelanto_ms() / 1000,
            )
        return cls(motores, nodo_id, reloj, siguiente, vector, miembros)

    async def cerrar(self) -> None:
        """Finish the work already queued, then close the database."""
        self._abierto = False
        if self._escritor is not None and not self._escritor.done():
            self._hay_trabajo.set()
            await self._escritor
        await self.motores.cerrar()

    @property
    def escribiendo(self) -> bool:
        """A transaction of the writer is running."""
        return self._en_curso

    @property
    def averia(self) -> str | None:
        """Why the database could not store the last write (``averia``), until a write commits again."""
        return self._averia

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

    async def lote_para(self, vector: dict[str, int], limite: int, sin_origen: str | None = None) -> p.Lote:
        """The same changes as :meth:`cambios_para`, encoded for a peer link."""
        return await self.leer(lote_para, vector, self.vector, limite, sin_origen)

    async def escribir(
        self, operacion: Callable[[Escritura], Any], despues: Callable[[Connection], T] | None = None
    ) -> T | None:
        """Run a domain operation in a write transaction and apply what it declares.

        The operation is plain code on ``tx.conn``: on SQLite it runs, with the
        whole transaction, on the writer thread. ``despues`` reads the result
        back in the same transaction, once the changes are applied, and is what
        this answers.
        """

        def trabajo(conn: Connection, sql: Crudo, grupo: _Grupo) -> T | None:
            tx = Escritura(conn, self.nodo_id)
            operacion(tx)
            lote = tx.sellados = self._sellar(tx, grupo.siguiente_seq)
            aplicar(conn, lote, sql)
            if lote:
                grupo.siguiente_seq += len(lote)
                grupo.vector[self.nodo_id] = lote[-1].seq
                grupo.aplicados.extend(lote)
            return despues(conn) if despues is not None else None

        resultado: T | None = await self._encargar(trabajo, duradero=True)
        return resultado

    async def fusionar(
        self, cambios: Sequence[Cambio], validados: bool = False, cadena: Cadena | None = None
    ) -> ResultadoFusion:
        """Apply a peer's changes; ``validados`` when they came through ``sync.cambios.desde_json``.

        ``cadena`` is the peer link's: batches of one chain are applied in the
        order this is called, and once one of them is refused, every later one
        is refused too (``CadenaRota``), untouched (see ``cadena``).

        A batch holding a change of this node's own origin (``OrigenPropio``)
        or of a node outside ``miembros`` (``OrigenDesconocido``) is refused
        whole, duplicates included: no honest peer sends either, and invented
        origins, once stored, would travel to every node and swell its vector.
        """
        eslabon = cadena.eslabon() if cadena is not None else None
        try:
            if not validados:
                for c in cambios:
                    validar(c)
            self._comprobar_origenes({c.origen for c in cambios})
            if eslabon is not None and (rechazo := eslabon.rechazo()) is not None:
                raise rechazo
        except Exception as error:
            if eslabon is not None:
                eslabon.romper(error)
            raise
        # What the vector already covers is a duplicate for good (it only grows): a batch
        # of nothing else, common when a third node relays what its origin sent too,
        # costs no transaction.
        visto = self._vector
        ordenados = sorted((c for c in cambios if c.seq > visto.get(c.origen, 0)), key=lambda c: (c.origen, c.seq))
        ya_vistos = len(cambios) - len(ordenados)
        if not ordenados:
            return ResultadoFusion([], ya_vistos, 0)

        def trabajo(conn: Connection, sql: Crudo, grupo: _Grupo) -> ResultadoFusion:
            vector = grupo.vector
            lote: list[Cambio] = []
            duplicados, pendientes = ya_vistos, 0
            for c in ordenados:
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
                aplicar(conn, lote, sql)
                grupo.siguiente_seq = max(grupo.siguiente_seq, vector.get(self.nodo_id, 0) + 1)
                grupo.aplicados.extend(lote)
            return ResultadoFusion(lote, duplicados, pendientes)

        resultado: ResultadoFusion = await self._encargar(trabajo, duradero=False, eslabon=eslabon)
        return resultado

    def _comprobar_origenes(self, origenes: set[str]) -> None:
        if self.nodo_id in origenes:
            raise OrigenPropio(f"a change claims this node's origin {self.nodo_id}: only {self.nodo_id} writes it")
        if self.miembros is not None and (ajenos := origenes - self.miembros):
            nombres = ", ".join(sorted(ajenos)[:3]) + (", …" if len(ajenos) > 3 else "")
            raise OrigenDesconocido(f"changes of {len(ajenos)} origins that are not members of the cluster: {nombres}")

    async def _encargar(self, trabajo: Trabajo, duradero: bool, eslabon: Eslabon | None = None) -> Any:
        """Queue work for the writer task and wait until the transaction that ran it is over.

        The writer runs the queue in order. Work with an ``eslabon`` is refused
        without running if an earlier piece of its chain did not succeed, and
        breaks its chain when it does not succeed itself: it raised, its
        transaction failed, or it was dropped because its caller stopped waiting.
        """
        if not self._abierto:
            raise RuntimeError(f"{self.nodo_id}: the store is closed")
        encargo = _Encargo(trabajo, asyncio.get_running_loop().create_future(), duradero, eslabon)
        self._cola.append(encargo)
        self._hay_trabajo.set()
        if self._escritor is None or self._escritor.done():  # first write, or the last writer was stopped
            self._escritor = asyncio.create_task(self._escribir_grupos(), name=f"escritor-{self.nodo_id}")
        return await encargo.futuro

    async def _escribir_grupos(self) -> None:
        """The writer task: one transaction at a time, each with all the work queued meanwhile."""
        while True:
            await self._hay_trabajo.wait()
            self._hay_trabajo.clear()
            while self._cola:
                encargos: list[_Encargo] = []
                while self._cola and len(encargos) < MAX_GRUPO:
                    e = self._cola.popleft()
                    if not e.futuro.done():  # its caller has stopped waiting before it began
                        encargos.append(e)
                    else:
                        e.fallido("dropped before it ran: its caller stopped waiting")
                if encargos:
                    self._en_curso = True
                    try:
                        await self._transaccion(encargos)
                    finally:
                        self._en_curso = False
            if not self._abierto:
                return

    async def _transaccion(self, encargos: list[_Encargo]) -> None:
        bucle = asyncio.get_running_loop()
        solo = len(encargos) == 1

        def cuerpo(conn: Connection) -> tuple[_Grupo, list[tuple[bool, Any]]]:
            sql = crudo(conn)
            grupo = _Grupo(self._siguiente_seq, dict(self._vector))
            hechos: list[tuple[bool, Any]] = []
            for e in encargos:
                rechazo = e.eslabon.rechazo() if e.eslabon is not None else None
                if rechazo is not None:  # refused for its chain before its savepoint: it touches nothing
                    if solo:
                        raise rechazo
                    hechos.append((False, rechazo))
                    continue
                if solo:  # its failure rolls back the transaction, and is raised from it
                    hechos.append((True, e.trabajo(conn, sql, grupo)))
                    continue
                antes = (grupo.siguiente_seq, dict(grupo.vector), len(grupo.aplicados))
                sql.ejecutar("SAVEPOINT encargo")
                try:
                    hechos.append((True, e.trabajo(conn, sql, grupo)))
                except Exception as error:  # noqa: BLE001 - it fails alone, and its caller hears why
                    e.fallido(error)  # now, on this thread: a later piece of its chain may be next
                    sql.ejecutar("ROLLBACK TO SAVEPOINT encargo")
                    grupo.siguiente_seq, grupo.vector = antes[0], antes[1]
                    del grupo.aplicados[antes[2] :]
                    hechos.append((False, error))
                else:
                    sql.ejecutar("RELEASE SAVEPOINT encargo")
            if grupo.aplicados:
                self._guardar_estado(sql, grupo.siguiente_seq)
            return grupo, hechos

        def confirmado(hecho: tuple[_Grupo, list[tuple[bool, Any]]]) -> None:
            grupo = hecho[0]
            if grupo.aplicados:
                self._siguiente_seq = max(self._siguiente_seq, grupo.siguiente_seq)
                self._vector = {o: max(s, self._vector.get(o, 0)) for o, s in grupo.vector.items()}
                bucle.call_soon_threadsafe(self._avisar, grupo.aplicados)

        try:
            duradera = any(e.duradero for e in encargos)
            grupo, hechos = await self.motores.transaccion(cuerpo, confirmado, duradera)
        except Exception as error:  # noqa: BLE001 - the transaction failed: so did all its work
            oido = self._fallo(error)
            for e in encargos:
                e.fallido(error)
                if not e.futuro.done():
                    e.futuro.set_exception(oido)
            return
        except BaseException:  # the writer task itself is stopped: nobody may wait for it forever
            for e in encargos:
                e.fallido("its writer task was stopped")
                e.futuro.cancel()
            raise
        averiada = False
        for e, (bien, valor) in zip(encargos, hechos, strict=True):
            if not bien:
                valor = self._fallo(valor)
                averiada = averiada or isinstance(valor, AlmacenNoDisponible)
            if e.futuro.done():
                continue
            if bien:
                e.futuro.set_result(valor)
            else:
                e.futuro.set_exception(valor)
        if grupo.aplicados and not averiada and self._averia is not None:
            log.warning("%s: the database writes again (it could not: %s)", self.nodo_id, self._averia)
            self._averia = None

    def _fallo(self, error: BaseException) -> BaseException:
        """What the caller of failed work hears: a storage failure is noted and told as one."""
        motivo = motivo_de_averia(error)
        if motivo is None:
            return error
        if self._averia is None:
            log.error("%s: the database cannot write (%s); writes fail until one commits", self.nodo_id, motivo)
        self._averia = motivo
        oido = AlmacenNoDisponible(
            "the database cannot write right now; nothing was written, try again later", {"motivo": motivo}
        )
        oido.__cause__ = error
        return oido

    def _sellar(self, tx: Escritura, siguiente_seq: int) -> list[Cambio]:
        """Turn declared writes into stamped changes, in declaration order.

        Every change of one write carries the same stamp: a write sets each
        field once, so stamps still order the writes of a field totally, and
        the fields of one creation win or lose together (see ``sync.reglas``).
        """
        sql = tx.sql
        bases: dict[tuple[str, str, str], str] = {}
        for entidad, clave, campo, _ in tx.campos:
            if (entidad, campo) == ("pedido", "estado"):
                filas = sql.filas(
                    "SELECT origen, MAX(seq) FROM escrituras"
                    " WHERE entidad = 'pedido' AND clave = ? AND campo = 'estado' AND origen <> ? GROUP BY origen",
                    (clave, self.nodo_id),
                )
                bases[(entidad, clave, campo)] = reglas.contexto_texto({o: int(n) for o, n in filas})
        declarados: list[tuple[str, str, str, Any]] = list(tx.campos)
        if tx.stock:
            filas = sql.en(
                "SELECT producto_id, entradas, salidas FROM contadores_stock WHERE nodo = ? AND producto_id IN {en}",
                {pid for pid, _ in tx.stock},
                self.nodo_id,
            )
            actuales = {pid: {"entradas": e, "salidas": s} for pid, e, s in filas}
            for (pid, campo), unidades in sorted(tx.stock.items()):
                if unidades:
                    total = actuales.get(pid, {}).get(campo, 0) + unidades
                    if total > MAX_UNIDADES:
                        raise Validacion(f"this node's stock counter for {pid} is full", {"campo": "stock"})
                    declarados.append(("stock", pid, campo, total))
        if tx.cesiones:
            filas = sql.en(
                "SELECT producto_id, destino, unidades FROM cesiones_stock WHERE origen = ? AND producto_id IN {en}",
                {pid for pid, _ in tx.cesiones},
                self.nodo_id,
            )
            cedidas = {(pid, destino): n for pid, destino, n in filas}
            for (pid, destino), unidades in sorted(tx.cesiones.items()):
                if unidades:
                    total = cedidas.get((pid, destino), 0) + unidades
                    declarados.append(("stock", pid, "cedidas", {"destino": destino, "unidades": total}))
        if not declarados:
            return []
        hlc = self.reloj.tic()
        lote = []
        for n, (entidad, clave, campo, valor) in enumerate(declarados):
            lote.append(
                Cambio(
                    origen=self.nodo_id,
                    seq=siguiente_seq + n,
                    hlc=hlc,
                    entidad=entidad,
                    clave=clave,
                    campo=campo,
                    valor=valor,
                    base=bases.get((entidad, clave, campo)),
                )
            )
        return [validar(c) for c in lote]

    def _guardar_estado(self, sql: Crudo, siguiente_seq: int) -> None:
        sql.ejecutar(
            "UPDATE estado_nodo SET hlc = ?, siguiente_seq = ? WHERE nodo_id = ?",
            (self.reloj.ultimo, siguiente_seq, self.nodo_id),
        )

    def _avisar(self, lote: Sequence[Cambio]) -> None:
        if not lote:
            return
        for fn in list(self._observadores):
            try:
                fn(lote)
            except Exception:
                log.exception("%s: observer failed", self.nodo_id)
