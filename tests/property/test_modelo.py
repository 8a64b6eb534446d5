"""A model of the merge: three stores, every operation, every way changes travel.

Three real stores (``Dominio(almacen, nodos=3)`` on SQLite files) take random
writes: orders created with and without an idempotency key (and keys sent
again, with the same body, to another store: a client retrying after a
failover), any ``estado`` asked of any order (also of one order on two
stores that have not heard of each other's answer), deletes, keyed and unkeyed
restocks and removals, rights granted between nodes, settling (each store
acknowledged by the others' current vectors, as a real ack is), restarts on
the same file. Changes travel as a peer link sends them
(:func:`tests.replicas.sincronizar`) or mangled: read from some vector (the
receiver's, an older one, nothing), then lost, duplicated, shuffled and cut
into pieces; what lands past a gap is held back and must come again.

The model knows what was acknowledged: every order with its units and the
``estado`` values and deletes written to it, every keyed adjustment, the units
added and removed. It states the order of an order's life itself, as the
design does, so that it never agrees with a broken rule.

After every step, on every store:

- a refused write (``TransicionInvalida``, short stock, ...) wrote nothing,
  and a repeated key answered the first creation, writing nothing;
- ``stock``, ``por_devolver``, ``por_confirmar`` and each node's credited
  units equal a recount from scratch (run in a transaction that is rolled
  back); the rights of all nodes add up to the stock;
- no order's ``estado`` goes back from what that store showed before (by
  ``sync.reglas.RANGO`` and by the design's own order); only
  an ``estado`` somebody wrote is shown; an order is hidden exactly when a
  delete saw it at least as advanced (so a shipment is never hidden by a
  delete that saw it earlier);
- on every store, its own node's rights are never negative and what is
  credited to it never shrinks, whatever order changes came in; on a store
  whose knowledge is causally closed (it holds everything each change it
  holds was written after, which is what a peer link delivers), stock and
  every node's rights are never negative too. Mangled deliveries break
  causality, and a store may then see a sale before the restock it came
  from. The two tests at the end pin what the model once found there.

At the end, after a full exchange, a settle on every store and another
exchange: equal digests, nothing left waiting, every acknowledged order and
keyed adjustment present once with what the model says (estado, hidden,
units), stock equal to units added minus units of orders that are not
cancelled (so a key created on two stores sold its units once), rights
non-negative and adding up; and the union of the logs fed to a fresh store
in random pieces, in any order, until its vector covers it, gives the same
digest. Digests leave out all-zero stock counter rows (see :func:`_digest`).

The starting cluster is built once and its files copied for each example.
``PEDIDOS_MODELO_GRANDE=1`` runs many more and longer examples.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test
from sqlalchemy.engine import Connection

from servidor.almacen import Almacen, consultas
from servidor.almacen.aplicar import recalcular_stock
from servidor.almacen.crudo import crudo
from servidor.dominio import Dominio
from servidor.dominio.idempotencia import Repeticion
from servidor.dominio.ids import id_de_clave
from servidor.dominio.operaciones import TRANSICIONES
from servidor.errores import ErrorPedidos, NoEncontrado, StockInsuficiente, TransicionInvalida
from sync import reglas
from sync.cambios import Cambio
from tests import replicas

T = TypeVar("T")
NODOS = 3
GRANDE = os.environ.get("PEDIDOS_MODELO_GRANDE") == "1"
STOCK_INICIAL = 30
CUOTA = STOCK_INICIAL // NODOS
# The order of an order's life as the design states it: written out here, not read from
# sync.reglas, so that a broken rule cannot make the model agree with it.
PROGRESO = ("pendiente", "confirmado", "cancelado", "enviado", "entregado")
RANGO = {e: n for n, e in enumerate(PROGRESO)}
SIGUIENTE = {"pendiente": "confirmado", "confirmado": "enviado", "enviado": "entregado"}

nodo = st.integers(0, NODOS - 1)
estados = st.one_of(st.just("siguiente"), st.sampled_from(PROGRESO))  # siguiente: on the way to delivery
claves = st.sampled_from(["sin", "nueva", "repetida"])  # no key, a new key, a key already sent
Vector = dict[str, int]


@dataclass
class PedidoModelo:
    unidades: dict[str, int]
    escritos: set[str] = field(default_factory=lambda: {"pendiente"})  # every estado written to it
    borrados: set[str] = field(default_factory=set)  # what each delete saw (its eliminado_en)

    @property
    def estado(self) -> str:
        return max(self.escritos, key=RANGO.__getitem__)

    def oculto(self, estado: str, borrados: set[str] | None = None) -> bool:
        return any(RANGO[b] >= RANGO[estado] for b in (self.borrados if borrados is None else borrados))


@dataclass(frozen=True)
class Cifras:
    """A store's figures that ``apply`` keeps incrementally."""

    productos: dict[str, tuple[int, int, int]]  # stock, por_devolver, por_confirmar
    devueltas: dict[tuple[str, str], int]  # credited units per (product, node), zeros left out


@dataclass(frozen=True)
class Foto:
    cifras: Cifras
    derechos: dict[str, dict[str, int]]
    pedidos: dict[str, tuple[str | None, bool, str | None]]  # estado, eliminado, eliminado_en


def _cifras(conn: Connection) -> Cifras:
    sql = crudo(conn)
    return Cifras(
        productos={
            pid: (int(s), int(d), int(c))
            for pid, s, d, c in sql.filas("SELECT id, stock, por_devolver, por_confirmar FROM productos")
        },
        devueltas={
            (pid, n): int(d)
            for pid, n, d in sql.filas("SELECT producto_id, nodo, devueltas FROM contadores_stock")
            if d
        },
    )


def _foto(conn: Connection) -> Foto:
    filas = crudo(conn).filas("SELECT id, estado, eliminado, eliminado_en FROM pedidos")
    return Foto(
        cifras=_cifras(conn),
        derechos=consultas.derechos(conn, None),
        pedidos={pid: (estado, bool(eliminado), eliminado_en) for pid, estado, eliminado, eliminado_en in filas},
    )


class _Deshacer(Exception):
    def __init__(self, valor: Any) -> None:
        super().__init__("rolled back")
        self.valor = valor


async def mirar(almacen: Almacen, lector: Callable[..., T], *args: Any) -> T:
    """Run ``lector`` in a write transaction of the store that is then rolled back.

    Checks may write (a recount does), and must leave no trace; on the
    writer's own connection a check also costs one hop instead of a pooled
    read's several.
    """

    def cuerpo(conn: Connection) -> NoReturn:
        raise _Deshacer(lector(conn, *args))

    try:
        await almacen.motores.transaccion(cuerpo)
    except _Deshacer as e:
        return e.valor  # type: ignore[no-any-return]
    raise AssertionError("unreachable")


def _foto_y_recuento(conn: Connection) -> tuple[Foto, Cifras]:
    """The store's figures as ``apply`` left them, and as a recount from scratch gives them."""
    foto = _foto(conn)
    ids = [f[0] for f in crudo(conn).filas("SELECT id FROM productos")]
    if ids:
        recalcular_stock(conn, ids)
    return foto, _cifras(conn)


def _digest(conn: Connection) -> str:
    """``consultas.digest``: equal logs must give equal digests, in whatever order they were applied."""
    return consultas.digest(conn)


def _reciente(lista: list[str], k: int) -> str:
    """An element of ``lista``; ``k`` = 0 (what examples shrink to) is the latest."""
    return lista[-1 - k % len(lista)]


def _retenidos(lote: list[Cambio], vector: Vector) -> int:
    """How many changes of ``lote`` a store whose vector is now ``vector`` must still be holding back."""
    return sum(1 for c in lote if c.seq > vector.get(c.origen, 0))


@dataclass(frozen=True)
class Plantilla:
    """The cluster every example starts from: built once, its files copied for each example."""

    carpeta: Path
    clientes: list[str]
    productos: list[str]
    entradas: dict[str, int]
    ajustes: dict[str, tuple[str, int]]
    causas: dict[str, list[tuple[int, int, Vector]]]


class Modelo(RuleBasedStateMachine):
    def __init__(self, plantilla: Plantilla | None = None) -> None:
        super().__init__()
        self.plantilla = plantilla
        self.bucle = asyncio.new_event_loop()
        self.carpeta = Path(tempfile.mkdtemp(prefix="pedidos-modelo-"))
        self.dominios: list[Dominio] = []
        self.clientes: list[str] = []
        self.productos: list[str] = []
        self.entradas: dict[str, int] = defaultdict(int)  # unkeyed units added minus removed
        self.ajustes: dict[str, tuple[str, int]] = {}  # keyed adjustment id -> (product, units)
        self.claves_ajuste: dict[str, tuple[str, int]] = {}  # key -> body
        self.pedidos: dict[str, PedidoModelo] = {}
        self.orden_pedidos: list[str] = []
        self.claves_pedido: dict[str, dict[str, Any]] = {}  # key -> body
        self.vistos: dict[tuple[int, str], str] = {}  # (store, order) -> last estado it showed
        self.abonos: dict[tuple[int, str], int] = {}  # (store, product) -> units last credited to itself
        # Per origin, its writes as (first seq, last seq, vector of the writer before it).
        self.causas: dict[str, list[tuple[int, int, Vector]]] = defaultdict(list)
        self.claves = 0
        self.roto = False  # a step failed: the final checks would only hide why

    # --- plumbing ------------------------------------------------------------

    def correr(self, corrutina: Awaitable[Any]) -> Any:
        self.roto = True
        resultado = self.bucle.run_until_complete(corrutina)
        self.roto = False
        return resultado

    def url(self, nombre: str) -> str:
        return f"sqlite+aiosqlite:///{self.carpeta / f'{nombre}.db'}"

    async def abrir(self, i: int) -> Dominio:
        return Dominio(await Almacen.abrir(self.url(f"nodo{i}"), f"nodo{i}"), nodos=NODOS)

    def nueva_clave(self, prefijo: str) -> str:
        self.claves += 1
        return f"{prefijo}-{self.claves}"

    async def operar(self, i: int, hacer: Callable[[Dominio], Awaitable[Any]]) -> tuple[Any, ErrorPedidos | None]:
        """Run a write on store ``i``; a refusal must leave the store as it was."""
        d = self.dominios[i]
        vector = d.almacen.vector
        antes = await mirar(d.almacen, consultas.digest)
        try:
            resultado = await hacer(d)
        except ErrorPedidos as e:
            event(f"refused: {e.codigo}")
            assert d.almacen.vector == vector, f"a write refused with {e.codigo} logged changes"
            assert await mirar(d.almacen, consultas.digest) == antes, (
                f"a write refused with {e.codigo} changed the state"
            )
            return None, e
        despues = d.almacen.vector
        propio = vector.get(d.nodo_id, 0)
        if despues.get(d.nodo_id, 0) > propio:
            self.causas[d.nodo_id].append((propio + 1, despues[d.nodo_id], vector))
        return resultado, None

    def cerrada(self, vector: Vector) -> bool:
        """Whether a store with ``vector`` holds everything each change it holds was written after."""
        for origen, escritas in self.causas.items():
            tengo = vector.get(origen, 0)
            for desde, _, previo in escritas:
                if desde <= tengo and any(vector.get(o, 0) < s for o, s in previo.items()):
                    return False
        return True

    # --- the cluster -----------------------------------------------------------

    @initialize()
    def arrancar(self) -> None:
        assert self.plantilla is not None
        self.correr(self._arrancar(self.plantilla))

    async def _arrancar(self, plantilla: Plantilla) -> None:
        for fichero in plantilla.carpeta.iterdir():
            shutil.copy(fichero, self.carpeta / fichero.name)
        self.clientes = list(plantilla.clientes)
        self.productos = list(plantilla.productos)
        self.entradas.update(plantilla.entradas)
        self.ajustes.update(plantilla.ajustes)
        for origen, escritas in plantilla.causas.items():
            self.causas[origen] = list(escritas)
        for i in range(NODOS):
            self.dominios.append(await self.abrir(i))

    async def sembrar(self) -> None:
        """Two clients, two products at the first node, a keyed product taken by two nodes at once."""
        for i in range(NODOS):
            self.dominios.append(await self.abrir(i))
        for nombre in ("Ana", "Luis"):
            cliente = {"nombre": nombre, "email": f"{nombre.lower()}@example.com"}
            c, _ = await self.operar(0, functools.partial(Dominio.crear_cliente, datos=cliente))
            self.clientes.append(c["id"])
        for nombre in ("Taza", "Plato"):
            datos: dict[str, Any] = {"nombre": nombre, "precio": "2.50", "stock": STOCK_INICIAL}
            p, _ = await self.operar(0, functools.partial(Dominio.crear_producto, datos=datos))
            self.productos.append(p["id"])
            self.entradas[p["id"]] += STOCK_INICIAL
        # Two nodes that have not heard of each other take the same key: the product's
        # initial units are a keyed adjustment, counted once, once settled.
        datos = {"nombre": "Vaso", "precio": "1.25", "stock": STOCK_INICIAL}
        for i in (0, 1):
            p, _ = await self.operar(i, lambda d: d.crear_producto(datos, clave="vaso"))
        self.productos.append(p["id"])
        self.ajustes[id_de_clave("producto-stock", "vaso")] = (p["id"], STOCK_INICIAL)
        await replicas.intercambiar(self.dominios)
        for d in self.dominios:
            await self.operar(self.dominios.index(d), lambda d: replicas.asentar(d, self.dominios))
        # Each node starts with rights to a share of every product.
        for pid in self.productos:
            dueno = 0 if pid != self.productos[-1] else await self._dueno(pid)
            for i in range(NODOS):
                destino = self.dominios[i].nodo_id
                if i != dueno:
                    await self.operar(
                        dueno,
                        functools.partial(
                            Dominio.ceder_derechos, destino=destino, producto_id=pid, necesita=CUOTA, extra=0
                        ),
                    )
        await replicas.intercambiar(self.dominios)

    async def _dueno(self, pid: str) -> int:
        """The store holding every right to a product."""
        derechos = (await mirar(self.dominios[0].almacen, consultas.derechos, [pid]))[pid]
        return next(i for i, d in enumerate(self.dominios) if derechos.get(d.nodo_id, 0) == STOCK_INICIAL)

    # --- writes ------------------------------------------------------------------

    @rule(
        i=nodo,
        c=st.integers(0, 1),
        lineas=st.lists(
            st.tuples(st.integers(0, 2), st.integers(1, 2)), min_size=1, max_size=2, unique_by=lambda t: t[0]
        ),
        clave=claves,
        k=st.integers(0, 1000),
    )
    def crear_pedido(self, i: int, c: int, lineas: list[tuple[int, int]], clave: str, k: int) -> None:
        """A new order, or (``repetida``) a client that lost the answer sending a create again, maybe elsewhere."""
        if clave == "repetida" and self.claves_pedido:
            usada = _reciente(list(self.claves_pedido), k)
            self.correr(self._crear_pedido(i, self.claves_pedido[usada], usada))
            return
        datos = {
            "cliente_id": self.clientes[c],
            "items": [{"producto_id": self.productos[p], "cantidad": q} for p, q in lineas],
        }
        nueva = self.nueva_clave("pedido") if clave == "nueva" else None
        if nueva is not None:
            self.claves_pedido[nueva] = datos
        self.correr(self._crear_pedido(i, datos, nueva))

    async def _crear_pedido(self, i: int, datos: dict[str, Any], clave: str | None) -> None:
        d = self.dominios[i]
        id_ = None if clave is None else id_de_clave("pedido", clave)
        ya = id_ is not None and await mirar(d.almacen, consultas.huella, "pedido", id_) is not None
        vector = d.almacen.vector
        pedido, error = await self.operar(i, lambda d: d.crear_pedido(datos, clave=clave))
        if ya:
            # The store holds that creation: it answers it (or, deleted, that it is gone).
            assert d.almacen.vector == vector, "a repeated key wrote again"
            assert isinstance(pedido, Repeticion) or isinstance(error, NoEncontrado), (pedido, error)
            event("key answered again")
            return
        assert not isinstance(pedido, Repeticion)
        if pedido is None:
            return
        if id_ is not None:
            assert pedido["id"] == id_
            if id_ in self.pedidos:
                event("key created again on another store")
        unidades = {it["producto_id"]: it["cantidad"] for it in datos["items"]}
        self.pedidos.setdefault(pedido["id"], PedidoModelo(unidades))
        if pedido["id"] not in self.orden_pedidos:
            self.orden_pedidos.append(pedido["id"])

    async def _pedido(self, i: int, k: int) -> str:
        """An order store ``i`` shows, if it shows any (else one it may not know of)."""
        visibles = await mirar(self.dominios[i].almacen, consultas.pedidos_por_ids, self.orden_pedidos)
        return _reciente([p for p in self.orden_pedidos if p in visibles] or self.orden_pedidos, k)

    @rule(i=nodo, k=st.integers(0, 1000), estado=estados)
    def cambiar_estado(self, i: int, k: int, estado: str) -> None:
        """Any estado asked of an order; ``siguiente``: the next one on the way to delivery."""
        if self.orden_pedidos:
            self.correr(self._cambiar_estado(i, self.correr(self._pedido(i, k)), estado))

    @rule(i=nodo, j=nodo, k=st.integers(0, 1000), estado_i=estados, estado_j=estados, borrar_j=st.booleans())
    def cambios_concurrentes(self, i: int, j: int, k: int, estado_i: str, estado_j: str, borrar_j: bool) -> None:
        """Two stores asked about one order, neither hearing of the other's answer in between."""
        if self.orden_pedidos and i != j:
            id_ = self.correr(self._pedido(i, k))
            self.correr(self._cambiar_estado(i, id_, estado_i))
            self.correr(self._eliminar_pedido(j, id_) if borrar_j else self._cambiar_estado(j, id_, estado_j))

    async def _cambiar_estado(self, i: int, id_: str, estado: str) -> None:
        d = self.dominios[i]
        actual = await mirar(d.almacen, consultas.pedido, id_)
        if estado == "siguiente":
            estado = SIGUIENTE.get(actual["estado"] if actual else "pendiente", "entregado")
        vector = d.almacen.vector
        _, error = await self.operar(i, lambda d: d.cambiar_estado(id_, estado))
        if actual is None:
            assert isinstance(error, NoEncontrado), error
            return
        legal = estado == actual["estado"] or estado in TRANSICIONES[actual["estado"]]
        if not legal:
            assert isinstance(error, TransicionInvalida), f"{actual['estado']} -> {estado} was allowed"
            return
        assert error is None, error
        if estado == actual["estado"]:
            assert d.almacen.vector == vector, "asking for the estado an order is in wrote something"
            return
        self.pedidos[id_].escritos.add(estado)
        event(f"estado {actual['estado']} -> {estado}")

    @rule(i=nodo, k=st.integers(0, 1000))
    def eliminar_pedido(self, i: int, k: int) -> None:
        if self.orden_pedidos:
            self.correr(self._eliminar_pedido(i, self.correr(self._pedido(i, k))))

    async def _eliminar_pedido(self, i: int, id_: str) -> None:
        d = self.dominios[i]
        actual = await mirar(d.almacen, consultas.pedido, id_)
        _, error = await self.operar(i, lambda d: d.eliminar_pedido(id_))
        if actual is None:
            assert isinstance(error, NoEncontrado), error
            return
        if actual["estado"] == "enviado":
            assert isinstance(error, TransicionInvalida), "a shipped order was deleted before delivery"
            return
        assert error is None, error
        visto = actual["estado"] if actual["estado"] in ("cancelado", "entregado") else "cancelado"
        self.pedidos[id_].escritos.add(visto)
        self.pedidos[id_].borrados.add(visto)
        assert await mirar(d.almacen, consultas.pedido, id_) is None, "a deleted order is still visible where deleted"

    @rule(i=nodo, p=st.integers(0, 2), n=st.integers(-4, 4).filter(bool), clave=claves, k=st.integers(0, 1000))
    def ajustar_stock(self, i: int, p: int, n: int, clave: str, k: int) -> None:
        """A restock (n > 0) or a removal (n < 0), with or without a key, or a keyed one sent again."""
        if clave == "repetida" and self.claves_ajuste:
            usada = _reciente(list(self.claves_ajuste), k)
            self.correr(self._ajustar(i, *self.claves_ajuste[usada], usada))
            return
        pid = self.productos[p]
        nueva = self.nueva_clave("ajuste") if clave == "nueva" else None
        if nueva is not None:
            self.claves_ajuste[nueva] = (pid, n)
        self.correr(self._ajustar(i, pid, n, nueva))

    async def _ajustar(self, i: int, pid: str, n: int, clave: str | None) -> None:
        d = self.dominios[i]
        id_ = None if clave is None else id_de_clave("ajuste", clave)
        ya = id_ is not None and await mirar(d.almacen, consultas.huella, "ajuste", id_) is not None
        vector = d.almacen.vector
        hecho, error = await self.operar(i, lambda d: d.ajustar_stock(pid, n, clave=clave))
        if ya:
            assert isinstance(hecho, Repeticion) and d.almacen.vector == vector, (hecho, error)
            return
        if hecho is None:
            return
        assert not isinstance(hecho, Repeticion)
        if id_ is None:
            self.entradas[pid] += n
        else:
            if id_ in self.ajustes:
                event("adjustment key created again on another store")
            self.ajustes[id_] = (pid, n)

    @rule(a=nodo, b=nodo, p=st.integers(0, 2), necesita=st.integers(0, 6), extra=st.integers(0, 6))
    def ceder(self, a: int, b: int, p: int, necesita: int, extra: int) -> None:
        if a != b:
            destino = self.dominios[b].nodo_id
            self.correr(self.operar(a, lambda d: d.ceder_derechos(destino, self.productos[p], necesita, extra)))

    @rule(i=nodo)
    def asentar(self, i: int) -> None:
        """Settle with the others' current vectors as their acknowledgements: what they really hold."""
        self.correr(self.operar(i, lambda d: replicas.asentar(d, self.dominios)))

    @rule(i=nodo)
    def reiniciar(self, i: int) -> None:
        self.correr(self._reiniciar(i))

    async def _reiniciar(self, i: int) -> None:
        await self.dominios[i].almacen.cerrar()
        self.dominios[i] = await self.abrir(i)

    # --- deliveries ----------------------------------------------------------------

    @rule(a=nodo, b=nodo)
    def sincronizar(self, a: int, b: int) -> None:
        """Everything ``a`` has that ``b`` lacks, as a peer link sends it."""
        if a != b:
            self.correr(replicas.sincronizar(self.dominios[a].almacen, self.dominios[b].almacen))

    @rule(
        a=nodo,
        b=nodo,
        desde=st.sampled_from(["suyo", "atrasado", "nada"]),
        limite=st.integers(1, 60),
        perder=st.floats(0, 0.5),
        duplicar=st.booleans(),
        barajar=st.booleans(),
        trozos=st.integers(1, 4),
        semilla=st.integers(0, 2**16),
    )
    def entregar_mal(
        self,
        a: int,
        b: int,
        desde: str,
        limite: int,
        perder: float,
        duplicar: bool,
        barajar: bool,
        trozos: int,
        semilla: int,
    ) -> None:
        """What ``a`` has, read from some vector, delivered to ``b`` lost, duplicated, shuffled, in pieces."""
        if a != b:
            self.correr(self._entregar_mal(a, b, desde, limite, perder, duplicar, barajar, trozos, semilla))

    async def _entregar_mal(
        self,
        a: int,
        b: int,
        desde: str,
        limite: int,
        perder: float,
        duplicar: bool,
        barajar: bool,
        trozos: int,
        semilla: int,
    ) -> None:
        azar = random.Random(semilla)
        origen, destino = self.dominios[a].almacen, self.dominios[b].almacen
        vector = destino.vector
        if desde == "atrasado":
            vector = {o: azar.randint(0, s) for o, s in vector.items()}
        elif desde == "nada":
            vector = {}
        # A peer never sends a node its own changes (the node refuses them whole: ORIGEN_PROPIO).
        lote = await origen.cambios_para(vector, limite, sin_origen=destino.nodo_id)
        lote = [c for c in lote if azar.random() >= perder]
        if duplicar:
            lote += azar.sample(lote, k=len(lote) // 2)
        if barajar:
            azar.shuffle(lote)
        cortes = sorted(azar.randint(0, len(lote)) for _ in range(trozos - 1))
        for i, j in zip([0, *cortes], [*cortes, len(lote)], strict=True):
            trozo = lote[i:j]
            r = await destino.fusionar(trozo)
            assert len(r.aplicados) + r.duplicados + r.pendientes == len(trozo)
            assert r.pendientes == _retenidos(trozo, destino.vector), "a change past a gap was applied"
            if r.pendientes:
                event("changes held back past a gap")

    # --- after every step ---------------------------------------------------------------

    @invariant()
    def cada_almacen_es_coherente(self) -> None:
        if self.dominios:
            self.correr(self._comprobar())

    async def _comprobar(self) -> None:
        for i, d in enumerate(self.dominios):
            foto, recuento = await mirar(d.almacen, _foto_y_recuento)
            assert foto.cifras == recuento, f"{d.nodo_id}: stock figures differ from a recount"
            causal = self.cerrada(d.almacen.vector)
            if not causal:
                event("a store whose knowledge is not causally closed")
            for pid, (stock, por_devolver, por_confirmar) in foto.cifras.productos.items():
                derechos = foto.derechos.get(pid, {})
                assert sum(derechos.values()) == stock, f"{d.nodo_id}: rights {derechos} do not add up to {stock}"
                assert por_devolver >= 0 and por_confirmar >= 0
                # A store's own rights, and what is credited to it, hold whatever order changes
                # came in (test_a_settled_keyed_restock_is_never_credited_to_its_losing_creation):
                # it spends only what it sees, and a credit is never taken back.
                assert derechos.get(d.nodo_id, 0) >= 0, f"{d.nodo_id} holds negative rights to {pid}: {derechos}"
                abonadas = foto.cifras.devueltas.get((pid, d.nodo_id), 0)
                previo = self.abonos.get((i, pid), 0)
                assert abonadas >= previo, f"{d.nodo_id}: a credit of {pid} to itself went {previo} -> {abonadas}"
                self.abonos[(i, pid)] = abonadas
                if causal:
                    # Out of causal order a store may see a sale before the restock it was made
                    # from: its view of the stock, and of other nodes' rights, is then below zero.
                    assert stock >= 0, f"{d.nodo_id} shows stock {stock} of {pid}"
                    assert all(n >= 0 for n in derechos.values()), f"{d.nodo_id} shows rights {derechos} of {pid}"
            for id_, (estado, eliminado, eliminado_en) in foto.pedidos.items():
                modelo = self.pedidos.get(id_)
                assert modelo is not None, f"{d.nodo_id} holds order {id_} nobody was told of"
                if estado is None:
                    continue
                assert estado in modelo.escritos, f"{d.nodo_id} shows {estado} for {id_}, written: {modelo.escritos}"
                antes = self.vistos.get((i, id_))
                if antes is not None:
                    atras = f"{d.nodo_id}: {id_} went {antes} -> {estado}"
                    assert reglas.RANGO[estado] >= reglas.RANGO[antes], atras
                    assert RANGO[estado] >= RANGO[antes], atras
                self.vistos[(i, id_)] = estado
                borrados = set() if eliminado_en is None else {eliminado_en}
                assert eliminado == modelo.oculto(estado, borrados), (
                    f"{d.nodo_id}: {id_} in {estado}, deleted as {eliminado_en}, hidden={eliminado}"
                )
                if eliminado and estado in reglas.ENVIADOS:
                    assert "entregado" in modelo.borrados, f"{d.nodo_id}: shipped {id_} hidden by a delete"

    # --- at the end -----------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            if self.dominios and not self.roto:
                self.correr(self._final())
        finally:
            self.cerrar()

    def cerrar(self, guardar_en: Path | None = None) -> None:
        """Close the stores and drop their files (``guardar_en``: keep a copy there)."""
        try:
            for d in self.dominios:
                self.bucle.run_until_complete(d.almacen.cerrar())
            if guardar_en is not None:
                for fichero in self.carpeta.iterdir():
                    shutil.copy(fichero, guardar_en / fichero.name)
        finally:
            self.dominios = []
            self.bucle.close()
            shutil.rmtree(self.carpeta, ignore_errors=True)

    async def _final(self) -> None:
        await replicas.todos_con_todos(self.dominios)
        digests = {await mirar(d.almacen, _digest) for d in self.dominios}
        assert len(digests) == 1, "stores differ after a full exchange"
        assert len({tuple(sorted(d.almacen.vector.items())) for d in self.dominios}) == 1
        await self._comprobar()
        d = self.dominios[0]
        foto = await mirar(d.almacen, _foto)
        assert set(foto.pedidos) == set(self.pedidos), "orders differ from those acknowledged"
        todos = await d.almacen.leer(consultas.pedidos_por_ids, list(self.pedidos), eliminados=True)
        esperado = defaultdict(int, self.entradas)
        for pid, n in self.ajustes.values():
            esperado[pid] += n
        for id_, modelo in self.pedidos.items():
            estado, eliminado, _ = foto.pedidos[id_]
            assert estado == modelo.estado, f"{id_} ended {estado}, written {modelo.escritos}"
            assert eliminado == modelo.oculto(modelo.estado), f"{id_} hidden={eliminado}, deletes saw {modelo.borrados}"
            assert {it["producto_id"]: it["cantidad"] for it in todos[id_]["items"]} == modelo.unidades
            if modelo.estado != "cancelado":
                for pid, n in modelo.unidades.items():
                    esperado[pid] -= n
        for id_, (pid, n) in self.ajustes.items():
            ajuste = await d.almacen.leer(consultas.ajuste, id_)
            assert ajuste is not None and (ajuste["producto_id"], ajuste["cantidad"]) == (pid, n)
            assert ajuste["firme"] or n < 0, f"adjustment {id_} not settled"
        for pid, (stock, por_devolver, por_confirmar) in foto.cifras.productos.items():
            assert (por_devolver, por_confirmar) == (0, 0), f"{pid} still waits after settling everything"
            assert stock == esperado[pid], f"{pid}: stock {stock}, units added less units sold {esperado[pid]}"
            derechos = foto.derechos.get(pid, {})
            assert all(n >= 0 for n in derechos.values()) and sum(derechos.values()) == stock
        await self._reconstruir(d)

    async def _reconstruir(self, d: Dominio) -> None:
        """The whole log, fed to a fresh store in random pieces in any order, gives the same state."""
        todo = await d.almacen.cambios_para({}, 10**6)
        objetivo = d.almacen.vector
        assert len(todo) == sum(objetivo.values())
        azar = random.Random(len(todo))
        testigo = await Almacen.abrir(self.url("testigo"), "testigo")
        try:
            for _ in range(10_000):
                if all(testigo.vector.get(o, 0) >= s for o, s in objetivo.items()):
                    break
                guardar = azar.uniform(0.5, 0.95)
                trozo = [c for c in todo if azar.random() < guardar]
                trozo += azar.sample(trozo, k=len(trozo) // 4)
                azar.shuffle(trozo)
                corte = azar.randint(0, len(trozo))
                await testigo.fusionar(trozo[:corte])
                await testigo.fusionar(trozo[corte:])
            else:
                raise AssertionError("a fresh store never caught up with the log")
            assert await mirar(testigo, _digest) == await mirar(d.almacen, _digest), "a replay of the log differs"
        finally:
            await testigo.cerrar()


def sembrar(carpeta: Path) -> Plantilla:
    """Build the starting cluster once, into ``carpeta``; every example starts from a copy."""
    m = Modelo()
    try:
        m.correr(m.sembrar())
        plantilla = Plantilla(
            carpeta=carpeta,
            clientes=list(m.clientes),
            productos=list(m.productos),
            entradas=dict(m.entradas),
            ajustes=dict(m.ajustes),
            causas={o: list(e) for o, e in m.causas.items()},
        )
    except BaseException:
        m.cerrar()
        raise
    m.cerrar(guardar_en=carpeta)
    return plantilla


AJUSTES = settings(
    max_examples=200 if GRANDE else 15,
    stateful_step_count=80 if GRANDE else 40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_el_modelo_de_tres_almacenes_se_cumple_paso_a_paso_y_al_final(tmp_path_factory: pytest.TempPathFactory) -> None:
    plantilla = sembrar(tmp_path_factory.mktemp("plantilla"))
    run_state_machine_as_test(lambda: Modelo(plantilla), settings=AJUSTES)


# --- what the model found ---------------------------------------------------------------


async def _tres_almacenes(carpeta: Path) -> list[Dominio]:
    return [
        Dominio(await Almacen.abrir(f"sqlite+aiosqlite:///{carpeta / f'nodo{i}.db'}", f"nodo{i}"), nodos=NODOS)
        for i in range(NODOS)
    ]


async def _reposicion_repetida_y_asentada(a: Dominio, b: Dominio, c: Dominio) -> str:
    """``a`` and ``b``, cut off from each other, both take one key for +4 units; ``c`` merges both and settles."""
    p = await c.crear_producto({"nombre": "Taza", "precio": "1.00", "stock": 0})
    await replicas.intercambiar([a, b, c])
    await a.ajustar_stock(p["id"], 4, clave="reponer-1")
    await b.ajustar_stock(p["id"], 4, clave="reponer-1")  # the later stamp: b's creation wins
    await replicas.sincronizar(a.almacen, c.almacen)
    await replicas.sincronizar(b.almacen, c.almacen)
    assert await replicas.asentar(c, [a, b, c]) == 1
    return str(p["id"])


async def _solo_de(origen: Dominio, destino: Dominio) -> None:
    """Deliver to ``destino`` only the changes ``origen`` wrote itself (each origin stays gap-free)."""
    lote = await origen.almacen.cambios_para(destino.almacen.vector, 1000)
    await destino.almacen.fusionar([x for x in lote if x.origen == origen.nodo_id])


async def test_a_settled_keyed_restock_is_never_credited_to_its_losing_creation(tmp_path: Path) -> None:
    a, b, c = tres = await _tres_almacenes(tmp_path)
    try:
        pid = await _reposicion_repetida_y_asentada(a, b, c)
        # a hears of the settle before it hears of b's creation; the settle names b's creation as
        # the one that counts, so a credits nothing to its own and cannot remove the units...
        await _solo_de(c, a)
        assert (await a.obtener_producto(pid))["derechos"].get("nodo1", 0) == 0
        with pytest.raises(StockInsuficiente):
            await a.ajustar_stock(pid, -4)
        # ...while b, whose creation won, can.
        await replicas.sincronizar(c.almacen, b.almacen)
        await b.ajustar_stock(pid, -4)
        await replicas.intercambiar(tres)
        for d in tres:
            producto = await d.obtener_producto(pid)
            assert producto["stock"] == 0 and sum(producto["derechos"].values()) == 0
    finally:
        for d in tres:
            await d.almacen.cerrar()


async def test_the_same_changes_in_another_order_give_the_same_digest(tmp_path: Path) -> None:
    a, b, c = tres = await _tres_almacenes(tmp_path)
    d = Dominio(await Almacen.abrir(f"sqlite+aiosqlite:///{tmp_path / 'nodo3.db'}", "nodo3"), nodos=NODOS)
    try:
        await _reposicion_repetida_y_asentada(a, b, c)
        await replicas.sincronizar(a.almacen, d.almacen)
        await _solo_de(c, d)  # the settle before b's creation
        await replicas.sincronizar(c.almacen, d.almacen)
        assert d.almacen.vector == c.almacen.vector
        assert await replicas.digest(d) == await replicas.digest(c)
    finally:
        for x in (*tres, d):
            await x.almacen.cerrar()
