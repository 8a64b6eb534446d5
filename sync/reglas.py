"""CRDT merge rules, as pure functions of values.

**Last-writer-wins registers.** The higher HLC stamp wins; on equal stamps
the higher origin id wins. Stamps of one origin never go back, and every
change of one local write carries the same stamp (a write never sets a field
twice), so ``(hlc, origen)`` orders all writes of a field totally, and every
node picks the same winner from the same set of writes, in whatever order
they arrive. Comparing origin ids as plain strings is arbitrary but fixed,
which is all a tie-break needs. Because one write's changes share a stamp, a
creation's fields all win or all lose together: two creations of one id (the
same idempotency key taken by two nodes cut off from each other) merge into
exactly one of them, never a mix.

**Registers ordered by progress.** ``pedido.estado`` is a max-register over
the order's life::

    pendiente < confirmado < cancelado < enviado < entregado

Every local transition moves up this order (``pendiente → confirmado →
enviado → entregado``, ``pendiente | confirmado → cancelado``), so the merged
value is the highest any node wrote: commutative, idempotent, and no node
ever shows an order going back. A cancellation beats a concurrent
``pendiente``/``confirmado``; a shipment (``enviado``, ``entregado``) beats a
concurrent cancellation, because goods that left cannot be un-shipped. The
stamp decides only between writes of the same value. ``pedido.eliminado_en``
(the ``estado`` a delete saw) is ordered the same way, and an order is hidden
while its ``estado`` ranks no higher than the most advanced delete: a delete
that saw a pending order cancels and hides it, yet a concurrent shipment
ranks above it and keeps the order visible.

Two ``estado`` writes are *concurrent* when neither writer had applied the
other; each write carries in ``base`` its writer's knowledge of the order's
``estado`` writes (``origen:seq`` of the last one applied per origin), so
concurrency is decided causally and the same pairs are found on every node
(:func:`concurrentes`).

**Stock** is a bounded counter (escrow; Balegas et al., SRDS 2015). Per
product, each node owns grow-only entries: units it added (``entradas``),
units it sold (``salidas``) and, per other node, rights it transferred to it
(``cedidas``). A change carries the entry's new total, so merging takes
``max`` and duplicates or reordering change nothing. Units that the state of
an entity gives back are *credited* to the node whose movement they were
(``devueltas``, see :func:`abono`)::

    stock            = Σ entradas − Σ salidas + Σ devueltas
    derechos(nodo)   = entradas(nodo) − salidas(nodo) + devueltas(nodo)
                       + Σ cedidas(* → nodo) − Σ cedidas(nodo → *)
    Σ derechos       = stock

A node sells, removes or transfers units only out of its own ``derechos`` as
it sees them. Its view of its own rights is never above the truth: its own
entries are exact, and what others transferred to it and what is credited to
it only grow (a credit, once given, is never taken back; see below), so no
node ever spends a unit twice and stock is never negative, on any node,
under any partition.

**Credits** (:func:`abono`). Each movement of units by an entity is kept per
node (``movimientos``): an order's items, sold by the node that created it,
and a keyed stock adjustment. A credit must never be taken back, or units
resold in between would be oversold:

- units of an order are credited back when its creation lost to another
  creation of the same id (a loser stays a loser: a later creation can beat
  the winner, never revive the loser), or when the order is cancelled *and*
  settled (``devuelto``). A cancellation can still lose to a concurrent
  shipment until every member node has applied it and this node has applied
  everything those nodes had written before they did; only then does a node
  write ``devuelto``, and from then on no node can ship the order. Until
  then the units are shown apart (``por_devolver``);
- units a keyed adjustment adds count once it is settled (``firme``, same
  condition: every node has it, so every duplicate made under a partition
  is known), and only for the creation the settle names: the settling node
  knows every creation, so it names the winner, and a node that has not yet
  heard of the winning creation still credits nothing wrong; until then
  they are shown apart (``por_confirmar``). Units a keyed adjustment removes are
  taken at once, and credited back if its creation lost.

Conservation holds by construction: ``stock`` is a pure function of the
converged entries and entity states, so equal logs give equal stock.
The SQL of these sums lives in ``servidor.almacen.aplicar`` and
``servidor.almacen.consultas``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

Sello = tuple[int, str]
Orden = tuple[int, int, str]
T = TypeVar("T", Sello, Orden)

PROGRESO = ("pendiente", "confirmado", "cancelado", "enviado", "entregado")
RANGO = {estado: n for n, estado in enumerate(PROGRESO)}
ENVIADOS = frozenset({"enviado", "entregado"})
# Registers ordered by their value's rank before their stamp.
POR_RANGO = frozenset({("pedido", "estado"), ("pedido", "eliminado_en")})


def gana(nuevo: T, actual: T | None) -> bool:
    """True when a write ordered ``nuevo`` (a stamp, or an :func:`orden`) replaces ``actual``."""
    return actual is None or nuevo > actual


def rango(entidad: str, campo: str, valor: object) -> int:
    """A register value's rank: its progress for ranked registers, else 0."""
    if (entidad, campo) in POR_RANGO and isinstance(valor, str):
        return RANGO.get(valor, 0)
    return 0


def orden(entidad: str, campo: str, valor: object, sello: Sello) -> Orden:
    """Merge order of a write to a register: its rank, then its stamp."""
    return (rango(entidad, campo, valor), sello[0], sello[1])


def oculto(estado: str | None, eliminado_en: str | None) -> bool:
    """Whether an order is hidden: a delete saw it at least as advanced as it is."""
    if eliminado_en is None:
        return False
    return RANGO.get(estado or "pendiente", 0) <= RANGO[eliminado_en]


def fusionar_contador(actual: int | None, nuevo: int) -> int:
    return nuevo if actual is None else max(actual, nuevo)


def sello_texto(sello: Sello) -> str:
    return f"{sello[0]}:{sello[1]}"


# --- causality of estado writes ------------------------------------------------


def contexto_texto(visto: Mapping[str, int]) -> str:
    """``base`` of an ``estado`` write: per origin, the seq of the last such write applied."""
    return ",".join(f"{o}:{s}" for o, s in sorted(visto.items()))


def contexto(texto: str | None) -> dict[str, int]:
    """Inverse of :func:`contexto_texto`; raises ``ValueError`` on anything else."""
    if not texto:
        return {}
    visto: dict[str, int] = {}
    for parte in texto.split(","):
        origen, _, seq = parte.rpartition(":")
        if not origen or not seq.isascii() or not seq.isdigit() or origen in visto:
            raise ValueError(f"bad context {texto!r}")
        visto[origen] = int(seq)
    if list(visto) != sorted(visto):
        raise ValueError(f"bad context {texto!r}")
    return visto


def vio(a: tuple[str, int, Mapping[str, int]], b: tuple[str, int, Mapping[str, int]]) -> bool:
    """Whether write ``a`` (origen, seq, context) was made after its writer applied ``b``."""
    origen_a, seq_a, visto_a = a
    origen_b, seq_b, _ = b
    if origen_a == origen_b:
        return seq_b < seq_a
    return visto_a.get(origen_b, 0) >= seq_b


def concurrentes(a: tuple[str, int, Mapping[str, int]], b: tuple[str, int, Mapping[str, int]]) -> bool:
    """Neither write had seen the other."""
    return (a[0], a[1]) != (b[0], b[1]) and not vio(a, b) and not vio(b, a)


# --- credits of units ------------------------------------------------------------


def abono(
    unidades: int,
    nodo: str,
    ganador: str | None,
    estado: str | None = None,
    devuelto: bool = False,
    firme: str | None = None,
) -> tuple[int, int, int]:
    """What a movement of ``unidades`` by ``nodo`` is worth now: (credited, por_devolver, por_confirmar).

    ``unidades`` < 0 were taken from stock when written (an order's items, a
    removal); > 0 are units a keyed adjustment adds. ``ganador`` is the
    origin of the entity's winning creation (``None`` while unknown);
    ``estado``/``devuelto`` are an order's; ``firme`` is the node whose
    creation of an adjustment counts, once settled.
    """
    perdio = ganador is not None and ganador != nodo
    if unidades < 0:
        if perdio or (estado == "cancelado" and devuelto):
            return -unidades, 0, 0
        if estado == "cancelado":
            return 0, -unidades, 0
        return 0, 0, 0
    if firme is not None:
        return (unidades, 0, 0) if firme == nodo else (0, 0, 0)
    return (0, 0, 0) if perdio else (0, 0, unidades)
