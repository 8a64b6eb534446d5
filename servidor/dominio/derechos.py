"""Rights to sell stock (escrow), and how they move between nodes.

Each node may sell, remove or transfer only the units it holds rights to
(``sync.reglas`` has the counter and why it never goes negative). Units
added at a node are its rights: a product's initial stock, restocks, and the
units of cancelled orders it sold. This module is the policy that moves
rights to where orders arrive.

Rebalancing policy:

- **Fair share.** A product's *cuota* is its stock divided among the nodes of
  the cluster, rounded up.
- **On demand.** When an order (or a removal) needs more units than this
  node holds, the write is undone and the node asks its linked peers for the
  shortfall, first those it last saw holding the most, each for what it
  holds; whatever is still missing is asked of every linked peer (and all of
  it, after a round that brought nothing: what it saw is stale). A grant is
  a change in the peer's log, applied here before the answer arrives; the
  order is then tried again. A round that brings nothing does not end the
  wait: units may be in flight (granted to a third node, about to be sold
  or handed on), so the order waits until rights to the product move here
  (a commit) or a short backoff passes (2 ms doubling to 50 ms), and asks
  again, until ``espera`` (``rights_wait_ms``) runs out. It is refused at
  once only when waiting cannot help: this node's view of the cluster's
  stock is below what is asked and every other node answered the round.
- **Waiting orders keep their units; the lower node id goes first.** The
  domain notes, per product, the units its own waiting orders need
  (:class:`Esperas`). A peer asked for units grants all it holds, up to what
  was asked, except those units, which it keeps back unless the asker has
  priority: a lower node id (:func:`tiene_prioridad`), to whom it grants
  everything. A top-up never takes them. This cannot starve: of the nodes
  whose orders wait for a product, take the one with the lowest id. It
  loses units only to its own sales: an asker with a higher id is refused
  its waiting units, and one with a lower id asks only while an order of
  its own waits, so it would be the lowest waiting node instead. And every
  node it asks hands it all it holds. So its holdings only grow until its
  order is served (or, the cluster out of units, refused), and then the
  next lowest goes. Two waiting nodes never both give way, so units are
  never handed back and forth; on a healthy cluster an order succeeds
  whenever the cluster's stock suffices.
- **Ahead of demand.** After a sale leaves this node under half its share,
  it asks, in the background, for a top-up to its share; a peer gives only
  what it holds above its own share and what its waiting orders need.
  Most orders on a balanced cluster then need no transfer.
- **Refusal.** A node cut off from the peers holding the rest, or a cluster
  out of units, refuses with ``STOCK_INSUFICIENTE``, saying which
  (``motivo``), the units held here and the units the cluster had when last
  heard from.

Peers are reached through :class:`Cedentes` (the peer manager), so this
module holds no socket; grants are answered by
:meth:`~servidor.dominio.operaciones.Dominio.ceder_derechos`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from servidor.errores import StockInsuficiente
from sync.cambios import Cambio

log = logging.getLogger(__name__)

ESPERA_S = 0.3
PAUSA_REPOSICION_S = 0.5  # at most one background top-up per product this often
PAUSA_MIN_S = 0.002  # after a round that brought nothing, before the next; doubles each time
PAUSA_MAX_S = 0.05


@dataclass(frozen=True)
class Falta:
    """A product this node holds too few rights to sell."""

    producto_id: str
    nombre: str
    pedido: int
    aqui: int
    global_: int
    derechos: Mapping[str, int]
    retirada: bool = False  # units to remove from stock, not to sell

    @property
    def deficit(self) -> int:
        return self.pedido - self.aqui

    @property
    def agotado(self) -> bool:
        """Whether the cluster, as this node last heard, lacks the units."""
        return self.global_ < self.pedido


class FaltanDerechos(Exception):
    """Raised inside a write when this node holds too few rights; undoes the write.

    The domain catches it outside the write transaction, asks peers, and tries
    again; a client only ever sees :meth:`rechazo`.
    """

    def __init__(self, faltas: list[Falta], nodo: str) -> None:
        super().__init__(", ".join(f.producto_id for f in faltas))
        self.faltas = faltas
        self.nodo = nodo

    @property
    def agotado(self) -> bool:
        """Whether the cluster, as this node last heard, lacks the units of some product."""
        return any(f.agotado for f in self.faltas)

    def rechazo(self) -> StockInsuficiente:
        f = next((f for f in self.faltas if f.agotado), self.faltas[0])
        detalle = {
            "producto_id": f.producto_id,
            "pedido": f.pedido,
            "disponible_aqui": max(0, f.aqui),
            "disponible_global": f.global_,
        }
        que = f"cannot remove {f.pedido} units of {f.nombre!r}" if f.retirada else f"not enough stock of {f.nombre!r}"
        if f.agotado:
            mensaje = f"{que}: {f.global_} in stock" if f.retirada else f"{que}: {f.pedido} asked, {f.global_} left"
            return StockInsuficiente(mensaje, {**detalle, "motivo": "agotado"})
        mensaje = (
            f"{que} within reach of {self.nodo}: {f.pedido} asked, "
            f"{max(0, f.aqui)} held here, {f.global_} in the cluster when last heard from; "
            "the nodes holding the rest did not answer"
        )
        return StockInsuficiente(mensaje, {**detalle, "motivo": "sin_derechos"})


def cuota(stock: int, nodos: int) -> int:
    """A node's fair share of a product's units."""
    return math.ceil(max(0, stock) / max(1, nodos))


def tiene_prioridad(solicitante: str, nodo: str) -> bool:
    """Whether ``solicitante`` goes before ``nodo`` when both wait for units: the lower node id."""
    return solicitante < nodo


def a_conceder(
    propios: int, necesita: int, extra: int, cuota_propia: int, reservadas: int = 0, prioridad: bool = False
) -> int:
    """Units a node grants to an asker.

    For what is ``necesita``: all it holds but the ``reservadas`` its own
    waiting orders need, and those too when the asker has ``prioridad``. For
    ``extra``: only what it holds above both its share and those units.
    """
    propios = max(0, propios)
    guardadas = 0 if prioridad else min(propios, max(0, reservadas))
    urgente = min(necesita, propios - guardadas)
    sobrante = max(0, propios - urgente - max(cuota_propia, reservadas))
    return urgente + min(extra, sobrante)


def plan(deficit: int, conocidos: Mapping[str, int], enlazados: list[str]) -> dict[str, int]:
    """Who to ask for how much: the biggest known holders first, the rest of everyone linked."""
    pedir: dict[str, int] = {}
    resto = deficit
    for par in sorted(enlazados, key=lambda p: (-conocidos.get(p, 0), p)):
        tiene = conocidos.get(par, 0)
        if resto > 0 and tiene > 0:
            pedir[par] = min(resto, tiene)
            resto -= pedir[par]
    if resto > 0:  # what we saw of the others may be stale: ask everyone for the rest
        for par in enlazados:
            pedir[par] = pedir.get(par, 0) + resto
    return pedir


class Cedentes(Protocol):
    """Peers that can grant rights (the peer manager)."""

    def enlazados(self) -> list[str]: ...

    async def pedir_derechos(
        self, par: str, producto_id: str, necesita: int, extra: int, plazo: float
    ) -> int | None: ...  # units granted and applied here; None when the peer did not answer


@dataclass(frozen=True)
class Ronda:
    """What one round of asking peers brought."""

    unidades: int  # granted, and applied here
    completa: bool  # every other node of the cluster answered, about every product short


class Esperas:
    """This node's orders waiting for rights: the units they need, and a wake-up when rights move.

    The domain notes an order here from its first shortfall until it is
    served or refused (:meth:`apuntar`); :meth:`reservadas` is what it keeps
    back from askers without priority. The store's commits
    (:meth:`al_confirmar`, local or merged) end a :meth:`pausa` early when a
    product some order waits for is sold, restocked or changes hands.
    """

    def __init__(self) -> None:
        self._unidades: dict[str, int] = {}
        self._movido = asyncio.Event()

    def apuntar(self, faltas: Sequence[Falta]) -> Callable[[], None]:
        """Note an order waiting for ``faltas``; answer what forgets it."""
        for f in faltas:
            self._unidades[f.producto_id] = self._unidades.get(f.producto_id, 0) + f.pedido
        apuntadas = list(faltas)

        def soltar() -> None:
            while apuntadas:
                f = apuntadas.pop()
                resto = self._unidades.get(f.producto_id, 0) - f.pedido
                if resto > 0:
                    self._unidades[f.producto_id] = resto
                else:
                    self._unidades.pop(f.producto_id, None)

        return soltar

    def reservadas(self, producto_id: str) -> int:
        """Units of a product this node's waiting orders need."""
        return self._unidades.get(producto_id, 0)

    def al_confirmar(self, lote: Sequence[Cambio]) -> None:
        if any(c.entidad == "stock" and c.clave in self._unidades for c in lote):
            self._movido.set()
            self._movido = asyncio.Event()

    async def pausa(self, segundos: float) -> None:
        """Wait at most ``segundos``; less if rights to a product waited for move meanwhile."""
        movido = self._movido
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(movido.wait(), max(0.0, segundos))


class Reparto:
    """Asks peers for rights, on demand and ahead of demand, for one node."""

    def __init__(self, cedentes: Cedentes, nodos: int, espera: float = ESPERA_S) -> None:
        self.cedentes = cedentes
        self.nodos = nodos
        self.espera = espera
        self._reponiendo: dict[str, float] = {}
        self._tareas: set[asyncio.Task[None]] = set()

    async def conseguir(self, faltas: list[Falta], plazo: float, a_todos: bool = False) -> Ronda:
        """Ask linked peers, once, for what ``faltas`` lack; the units granted are applied here.

        ``a_todos`` asks every linked peer for the whole shortfall, not the
        holders this node last saw first: after a round that brought nothing,
        what it saw is stale.
        """
        enlazados = self.cedentes.enlazados()
        pedidos = [
            (f.producto_id, par, n)
            for f in faltas
            for par, n in plan(f.deficit, {} if a_todos else f.derechos, enlazados).items()
        ]
        obtenidos = await asyncio.gather(
            *(self.cedentes.pedir_derechos(par, pid, n, 0, plazo) for pid, par, n in pedidos)
        )
        contestaron: dict[str, set[str]] = {f.producto_id: set() for f in faltas}
        for (pid, par, _), n in zip(pedidos, obtenidos, strict=True):
            if n is not None:
                contestaron[pid].add(par)
        completa = all(len(pares) >= self.nodos - 1 for pares in contestaron.values())
        return Ronda(sum(n or 0 for n in obtenidos), completa)

    def bajo_cuota(self, propios: int, stock: int) -> bool:
        """Whether ``propios`` is under half this node's fair share of ``stock``."""
        return propios * 2 < cuota(stock, self.nodos)

    def tras_venta(self, producto_id: str, propios: int, stock: int, derechos: Mapping[str, int]) -> None:
        """After a sale left ``propios`` here: top up to the fair share in the background if low."""
        objetivo = cuota(stock, self.nodos)
        if not self.bajo_cuota(propios, stock):
            return
        ahora = time.monotonic()
        if ahora - self._reponiendo.get(producto_id, -math.inf) < PAUSA_REPOSICION_S:
            return
        donantes = [p for p in self.cedentes.enlazados() if derechos.get(p, 0) > objetivo]
        if not donantes:
            return
        self._reponiendo[producto_id] = ahora
        donante = max(donantes, key=lambda p: (derechos.get(p, 0), p))
        tarea = asyncio.create_task(self._reponer(donante, producto_id, objetivo - propios))
        self._tareas.add(tarea)
        tarea.add_done_callback(self._tareas.discard)

    async def _reponer(self, par: str, producto_id: str, unidades: int) -> None:
        try:
            n = await self.cedentes.pedir_derechos(par, producto_id, 0, unidades, self.espera)
            log.debug("top-up of %s from %s: %s units", producto_id, par, n)
        except Exception:
            log.exception("top-up of %s from %s failed", producto_id, par)

    async def cerrar(self) -> None:
        for t in list(self._tareas):
            t.cancel()
        await asyncio.gather(*self._tareas, return_exceptions=True)
