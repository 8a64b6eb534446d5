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
  holds; whatever is still missing is asked of every linked peer. A peer
  grants all it holds, up to what was asked: it never keeps units back from a
  waiting order, so on a healthy cluster an order succeeds whenever the
  cluster's stock suffices. The grant is a change in the peer's log, applied
  here before the answer arrives; the order is then tried again. Within
  ``espera`` (0.3 s by default) of trying; then it is refused.
- **Ahead of demand.** After a sale leaves this node under half its share,
  it asks, in the background, for a top-up to its share; a peer gives only
  what it holds above its own share. Most orders on a balanced cluster then
  need no transfer.
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
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from servidor.errores import StockInsuficiente

log = logging.getLogger(__name__)

ESPERA_S = 0.3
PAUSA_REPOSICION_S = 0.5  # at most one background top-up per product this often


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


class FaltanDerechos(Exception):
    """Raised inside a write when this node holds too few rights; undoes the write.

    The domain catches it outside the write transaction, asks peers, and tries
    again; a client only ever sees :meth:`rechazo`.
    """

    def __init__(self, faltas: list[Falta], nodo: str) -> None:
        super().__init__(", ".join(f.producto_id for f in faltas))
        self.faltas = faltas
        self.nodo = nodo

    def rechazo(self) -> StockInsuficiente:
        f = self.faltas[0]
        detalle = {
            "producto_id": f.producto_id,
            "pedido": f.pedido,
            "disponible_aqui": max(0, f.aqui),
            "disponible_global": f.global_,
        }
        que = f"cannot remove {f.pedido} units of {f.nombre!r}" if f.retirada else f"not enough stock of {f.nombre!r}"
        if f.global_ < f.pedido:
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


def a_conceder(propios: int, necesita: int, extra: int, cuota_propia: int) -> int:
    """Units a node grants: all it holds for what is needed, only its surplus for ``extra``."""
    propios = max(0, propios)
    urgente = min(necesita, propios)
    sobrante = max(0, propios - urgente - cuota_propia)
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

    async def pedir_derechos(self, par: str, producto_id: str, necesita: int, extra: int, plazo: float) -> int: ...


class Reparto:
    """Asks peers for rights, on demand and ahead of demand, for one node."""

    def __init__(self, cedentes: Cedentes, nodos: int, espera: float = ESPERA_S) -> None:
        self.cedentes = cedentes
        self.nodos = nodos
        self.espera = espera
        self._reponiendo: dict[str, float] = {}
        self._tareas: set[asyncio.Task[None]] = set()

    async def conseguir(self, faltas: list[Falta], plazo: float) -> int:
        """Ask linked peers for what ``faltas`` lack; answer the units granted (already applied here)."""
        enlazados = self.cedentes.enlazados()
        if not enlazados:
            return 0
        pedidos = [(f.producto_id, par, n) for f in faltas for par, n in plan(f.deficit, f.derechos, enlazados).items()]
        obtenidos = await asyncio.gather(
            *(self.cedentes.pedir_derechos(par, pid, n, 0, plazo) for pid, par, n in pedidos)
        )
        return sum(obtenidos)

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
            log.debug("top-up of %s from %s: %d units", producto_id, par, n)
        except Exception:
            log.exception("top-up of %s from %s failed", producto_id, par)

    async def cerrar(self) -> None:
        for t in list(self._tareas):
            t.cancel()
        await asyncio.gather(*self._tareas, return_exceptions=True)
